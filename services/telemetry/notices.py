"""Telling a device which of its acknowledged samples the store did not take (device.proto,
SampleNotice): today, re-sends whose values differ from the stored ones (the stored ones stay).

    ingest ──a written batch's conflicts──▶ SampleNotices.publish (no I/O, bounded queue)
        ──owned loop──▶ topic `commands`: GatewayCommandBatch{notices}, to the gateway that
                        received the sample (TelemetryRecord.gateway_id; key, header and
                        partition as services/control/routing.py routes commands)
    gateway ──holds the device's session?──▶ CloudFrame{sample_notice}; else counted, dropped

Why this path: the gateway already reads its own partition of the commands topic to reach a
device's live session, and the record names the gateway that received the sample, so ingest needs
no session registry. A device that has moved to another gateway since is not told (counted as
`not_connected` by the gateway it left), nor is one behind a gateway run without a session
registry (telemetry only: it reads no commands partition).

Guarantees: best effort and at least once — a batch ingest writes again (after a crash or a
failed commit) finds the same conflicts and notices them again. `publish` never blocks ingest:
beyond `max_pending_notices` waiting notices the new ones are dropped and counted. A notice names
at most MAX_TIMESTAMPS_PER_NOTICE timestamps (about 20 kB, far below any frame limit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from gridtwin.aio import cancel_and_wait
from gridtwin.api.control.v1 import control_pb2 as cpb
from gridtwin.api.device.v1 import device_pb2 as dpb
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from gridtwin.settings import KafkaSettings

log = logging.getLogger(__name__)

NOTICES = Counter("gridtwin_ingest_sample_notices_total",
                  "Samples named in notices to their devices, by what became of the notice "
                  "(published, dropped: queue full, failed: produce failed, no_gateway: record names none)",
                  ["result"])

CONFLICTING_RESEND_DETAIL = "conflicting re-send: the stored values differ"
MAX_TIMESTAMPS_PER_NOTICE = 2_000   # as the default max_samples_per_batch: one batch, one notice


@dataclass(frozen=True)
class SamplesNotStored:
    """Samples of one device, received by one gateway, that the store did not take."""

    gateway_id: str
    device_id: str
    timestamps_ms: tuple[int, ...]   # ascending


class NoticeSink(Protocol):
    def publish(self, notices: Sequence[SamplesNotStored]) -> None: ...


def conflicting_resends(conflicting: Sequence[tuple[str, int]], records: Sequence[TelemetryRecord], *,
                        max_timestamps: int) -> list[SamplesNotStored]:
    """The notices for a written batch: `conflicting` as the store reports it ((device, µs)),
    `records` the batch. A device's gateway is the one of its last record in the batch (the
    newest session, should it have moved within the batch)."""
    wanted = {device for device, _ in conflicting}
    gateway_of = {r.device_id: r.gateway_id for r in records if r.device_id in wanted}
    by_device: dict[str, set[int]] = {}
    for device, ts_us in conflicting:
        by_device.setdefault(device, set()).add(ts_us // 1_000)
    notices = []
    for device, stamps in by_device.items():
        ordered = sorted(stamps)
        for i in range(0, len(ordered), max_timestamps):
            notices.append(SamplesNotStored(gateway_of.get(device, ""), device, tuple(ordered[i:i + max_timestamps])))
    return notices


def notice_message(notice: SamplesNotStored) -> bytes:
    """A GatewayCommandBatch carrying `notice` for its gateway (what the commands topic holds)."""
    body = dpb.SampleNotice(timestamps_unix_ms=notice.timestamps_ms, reason=dpb.REJECT_REASON_CONFLICTING_RESEND,
                            detail=CONFLICTING_RESEND_DETAIL)
    return cpb.GatewayCommandBatch(gateway_id=notice.gateway_id, notices=[
        cpb.DeviceSampleNotice(device_id=notice.device_id, notice=body)]).SerializeToString()


class SampleNotices:
    """Publishes notices to the commands topic from an owned loop; `async with` runs it."""

    def __init__(self, kafka: KafkaSettings, *, max_pending_notices: int = 1_000,
                 client_id: str = "ingest-notices") -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._queue: asyncio.Queue[SamplesNotStored] = asyncio.Queue(maxsize=max_pending_notices)
        self._producer: AIOKafkaProducer | None = None
        self._partitions = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from services.control.dispatcher import ensure_commands_topic

        await ensure_commands_topic(self._kafka)
        self._producer = AIOKafkaProducer(bootstrap_servers=self._kafka.bootstrap_servers, acks="all",
                                          client_id=self._client_id)
        await self._producer.start()
        self._partitions = len(await self._producer.partitions_for(self._kafka.commands_topic))
        self._task = asyncio.create_task(self._run(), name="ingest-sample-notices")

    async def stop(self) -> None:
        """Stops at once: notices still waiting are not published (best effort)."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._producer is not None:
            await self._producer.stop()

    async def __aenter__(self) -> SampleNotices:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def publish(self, notices: Sequence[SamplesNotStored]) -> None:
        for notice in notices:
            samples = len(notice.timestamps_ms)
            if not notice.gateway_id:
                NOTICES.labels("no_gateway").inc(samples)
            elif self._queue.full():
                NOTICES.labels("dropped").inc(samples)
                log.warning("sample notice for %s dropped: %d notices wait already", notice.device_id,
                            self._queue.qsize())
            else:
                self._queue.put_nowait(notice)

    async def _run(self) -> None:
        from services.control.routing import gateway_partition

        producer = self._producer
        assert producer is not None
        while True:
            notice = await self._queue.get()
            samples = len(notice.timestamps_ms)
            gateway = notice.gateway_id.encode()
            try:
                delivery = await producer.send(
                    self._kafka.commands_topic, notice_message(notice), key=gateway,
                    partition=gateway_partition(notice.gateway_id, self._partitions), headers=[("gateway", gateway)])
                await delivery
            except Exception as exc:   # best effort: the device is not told, the store is unaffected
                NOTICES.labels("failed").inc(samples)
                log.warning("sample notice for %s not published: %s", notice.device_id, exc)
                continue
            NOTICES.labels("published").inc(samples)
