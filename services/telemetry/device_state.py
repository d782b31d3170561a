"""Device state reports → twins: the device-events topic's StateReports (the mode a device runs in
and the plan it says is active) become `DeviceStateReported` messages for the installation's
twin, so `Twin.reported.mode` and the plan the device runs are what the device said.

A consumer group of its own on the device-events topic (the control service's acknowledgement
consumer reads the same records for command acks; each group sees every record). Per fetch: one
`tell` to the twins for every report in it, then the offsets are committed — at least once, and
a report applied twice changes nothing (the twin keeps the newest by the device's timestamp).
A record that does not parse is counted, logged and skipped; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter

from actors.twin.model import DeviceStateReported
from gridtwin.aio import cancel_and_wait
from gridtwin.api.device.v1 import device_pb2 as dpb
from gridtwin.settings import KafkaSettings
from services.control.convert import MODES_FROM_PB

log = logging.getLogger(__name__)

REPORTS = Counter("gridtwin_twins_state_reports_total", "Device state reports handed to twins, by outcome",
                  ["outcome"])


class TwinTeller(Protocol):
    async def tell(self, items: Sequence[tuple[str, DeviceStateReported]]) -> object: ...


def parse_state_report(kind: bytes, payload: bytes,
                       headers: dict[str, bytes]) -> tuple[str, DeviceStateReported] | None:
    """(installation id, message) for a state_report record; None for any other kind. Raises
    ValueError for a state report that cannot be read."""
    if kind != b"state_report":
        return None
    installation_id = headers.get("installation_id", b"").decode()
    device_id = headers.get("device_id", b"").decode()
    if not installation_id or not device_id:
        raise ValueError("state report without installation or device id")
    report = dpb.StateReport()
    try:
        report.ParseFromString(payload)
    except Exception as exc:   # protobuf's DecodeError
        raise ValueError(f"state report of {device_id} does not parse: {exc}") from exc
    mode = MODES_FROM_PB.get(report.mode)   # None: unspecified, or a mode this version does not know
    return installation_id, DeviceStateReported(device_id, report.timestamp_unix_ms, mode, report.active_plan_id)


class StateReportConsumer:
    """`async with StateReportConsumer(...)` hands state reports to the twins until the block ends."""

    def __init__(self, kafka: KafkaSettings, group_id: str, twins: TwinTeller, *, max_records: int = 5_000) -> None:
        self._kafka = kafka
        self._group_id = group_id
        self._twins = twins
        self._max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StateReportConsumer:
        self._consumer = AIOKafkaConsumer(
            self._kafka.device_events_topic, bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=self._group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=100, client_id="twin-state-reports")
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="twin-state-reports")
        return self

    async def __aexit__(self, *_: object) -> None:
        await cancel_and_wait(self._task)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            fetched = await consumer.getmany(timeout_ms=200, max_records=self._max_records)
            if not fetched:
                continue
            items: list[tuple[str, DeviceStateReported]] = []
            for records in fetched.values():
                for record in records:
                    headers = dict(record.headers or ())
                    try:
                        parsed = parse_state_report(headers.get("kind", b""), record.value or b"", headers)
                    except ValueError as exc:
                        REPORTS.labels("unreadable").inc()
                        log.warning("device state report skipped: %s", exc)
                        continue
                    if parsed is not None:
                        items.append(parsed)
            while items:
                try:
                    await self._twins.tell(items)
                    REPORTS.labels("applied").inc(len(items))
                    break
                except Exception:   # not committed: retried, never lost
                    log.exception("handing %d state reports to the twins failed; retrying", len(items))
                    await asyncio.sleep(1.0)
            await consumer.commit()
