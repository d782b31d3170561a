"""The control service's background loops: the dispatcher (store → `commands` topic → gateways)
and the acknowledgement consumer (`device-events` topic → store). Routing is explained in
`routing.py`.

Dispatcher: wakes on `NOTIFY control_due` (new commands, devices connecting), at the next retry
or expiry time, or every `idle_poll_s` at the latest; claims up to `claim_batch` due commands at
once (SKIP LOCKED: replicas share the work), commits them as sent, and produces one
GatewayCommandBatch per gateway (≤ `max_commands_per_message` commands each). A produce that
fails leaves the commands "sent": they go again after their retry delay. Expired commands are
swept every second, also those of devices that stay offline.

Ack consumer: a consumer group on `device-events`; each fetched batch of CommandAcks is applied
in one store call (idempotent) and StateReports are upserted, then offsets are committed — so an
acknowledgement is applied at least once, and applying it again changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import Counter, Histogram

from gridtwin import kafka_topics
from gridtwin.api.control.v1 import control_pb2 as cpb
from gridtwin.api.device.v1 import device_pb2 as dpb
from gridtwin.settings import KafkaSettings
from gridtwin.unixtime import now_ms
from services.control.convert import MODES_FROM_PB, OUTCOMES_FROM_PB, device_command
from services.control.model import CommandRecord, Outcome
from services.control.routing import gateway_partition
from services.control.store import CommandStore

log = logging.getLogger(__name__)

SENT = Counter("gridtwin_control_commands_sent_total", "Command sends handed to the broker (retries included)")
FINISHED_UNSENT = Counter("gridtwin_control_commands_finished_unsent_total",
                          "Commands expired or out of attempts when they came due")
ACKS = Counter("gridtwin_control_acks_total", "Command acknowledgements received", ["outcome"])
UNKNOWN_ACKS = Counter("gridtwin_control_unknown_acks_total", "Acknowledgements naming no stored command")
CLAIM_SECONDS = Histogram("gridtwin_control_claim_seconds", "Claim + produce of one dispatcher round",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))


async def ensure_commands_topic(kafka: KafkaSettings) -> None:
    from aiokafka.errors import TopicAlreadyExistsError


    with contextlib.suppress(TopicAlreadyExistsError):
        await kafka_topics.ensure_topics(kafka, {kafka.commands_topic: kafka.commands_partitions})


@dataclass(frozen=True)
class DispatcherOptions:
    claim_batch: int = 5_000
    max_commands_per_message: int = 1_000
    idle_poll_s: float = 1.0
    gateway_stale_s: float = 30.0
    expiry_sweep_s: float = 1.0


class Dispatcher:
    """Owned loop: `async with Dispatcher(...)` or start()/stop()."""

    def __init__(self, store: CommandStore, kafka: KafkaSettings, listen_dsn: str,
                 options: DispatcherOptions = DispatcherOptions(), *, clock_ms: Callable[[], int] = now_ms) -> None:
        self._store = store
        self._kafka = kafka
        self._dsn = listen_dsn
        self._options = options
        self._clock_ms = clock_ms
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitions = 1

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await ensure_commands_topic(self._kafka)
        self._producer = AIOKafkaProducer(bootstrap_servers=self._kafka.bootstrap_servers, linger_ms=2,
                                          max_batch_size=1 << 20, max_request_size=4 << 20, acks="all",
                                          client_id="control-dispatcher")
        await self._producer.start()
        self._partitions = len(await self._producer.partitions_for(self._kafka.commands_topic))
        await self._listen()
        self._task = asyncio.create_task(self._run(), name="control-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        if self._producer is not None:
            await self._producer.stop()

    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _listen(self) -> None:
        try:
            self._listener = await asyncpg.connect(self._dsn)
            await self._listener.add_listener("control_due", lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError) as exc:  # the idle poll still finds the work
            log.warning("LISTEN control_due failed (polling every %.1f s): %s", self._options.idle_poll_s, exc)
            self._listener = None

    async def _run(self) -> None:
        last_sweep = 0.0
        while True:
            try:
                self._wake.clear()
                if self._listener is None or self._listener.is_closed():
                    await self._listen()
                started = time.perf_counter()
                now_ms = self._clock_ms()
                due, finished = await self._store.claim_due(
                    now_ms, limit=self._options.claim_batch, gateway_stale_s=self._options.gateway_stale_s)
                FINISHED_UNSENT.inc(finished)
                if due:
                    await self._deliver(due)
                    CLAIM_SECONDS.observe(time.perf_counter() - started)
                if time.monotonic() - last_sweep >= self._options.expiry_sweep_s:
                    last_sweep = time.monotonic()
                    await self._store.expire_due(now_ms, limit=self._options.claim_batch)
                if len(due) + finished >= self._options.claim_batch:
                    continue   # more may be due right now
                next_ms = await self._store.next_wakeup_ms()
                timeout_s = self._options.idle_poll_s
                if next_ms is not None:
                    timeout_s = min(timeout_s, max(0.01, (next_ms - self._clock_ms()) / 1_000))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout_s):
                        await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher round failed; retrying")
                await asyncio.sleep(1.0)

    async def _deliver(self, due: list[tuple[CommandRecord, bytes, str]]) -> None:
        producer = self._producer
        assert producer is not None
        by_gateway: dict[str, list[cpb.DeviceCommand]] = defaultdict(list)
        for record, body, gateway_id in due:
            by_gateway[gateway_id].append(cpb.DeviceCommand(
                device_id=record.device_id, session_id=record.sent_session or "",
                command=device_command(record.command_id, record.expires_ms, record.created_ms, body)))
        deliveries = []
        step = self._options.max_commands_per_message
        for gateway_id, commands in by_gateway.items():
            partition = gateway_partition(gateway_id, self._partitions)
            for i in range(0, len(commands), step):
                batch = cpb.GatewayCommandBatch(gateway_id=gateway_id, commands=commands[i:i + step])
                deliveries.append(await producer.send(
                    self._kafka.commands_topic, batch.SerializeToString(), key=gateway_id.encode(),
                    partition=partition, headers=[("gateway", gateway_id.encode())]))
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning("%d command batches not produced (retried after their delay): %s", len(failed), failed[0])
        SENT.inc(len(due))


# ------------------------------------------------------------------ acknowledgements


def parse_device_event(kind: str, payload: bytes, headers: dict[str, bytes]) -> tuple[str, object] | None:
    """A record of the device-events topic as ("ack", (id, outcome, detail)) or ("state", (...))."""
    try:
        if kind == "command_ack":
            ack = dpb.CommandAck()
            ack.ParseFromString(payload)
            outcome = OUTCOMES_FROM_PB.get(ack.outcome)
            if outcome is None or not ack.command_id:
                return None
            return "ack", (ack.command_id, outcome, ack.detail)
        if kind == "state_report":
            report = dpb.StateReport()
            report.ParseFromString(payload)
            device_id = headers.get("device_id", b"").decode()
            installation_id = headers.get("installation_id", b"").decode()
            if not device_id:
                return None
            mode = MODES_FROM_PB.get(report.mode)
            return "state", (device_id, installation_id, report.timestamp_unix_ms, mode.value if mode else "",
                             report.backup_reserve_pct, report.firmware_version, report.active_plan_id)
    except Exception:  # a malformed event from a device must not stop the consumer
        return None
    return None


class AckConsumer:
    """Owned loop over the device-events topic; see the module docstring."""

    def __init__(self, store: CommandStore, kafka: KafkaSettings, group_id: str, *, max_records: int = 10_000,
                 clock_ms: Callable[[], int] = now_ms) -> None:
        self._store = store
        self._kafka = kafka
        self._group_id = group_id
        self._max_records = max_records
        self._clock_ms = clock_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.assigned = asyncio.Event()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self._kafka.device_events_topic, bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=self._group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=50, client_id="control-acks")
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="control-acks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def __aenter__(self) -> AckConsumer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=self._max_records)
            if consumer.assignment():
                self.assigned.set()
            acks: list[tuple[str, Outcome, str]] = []
            states: list[tuple[str, str, int, str, float, str, str]] = []
            for records in batches.values():
                for record in records:
                    headers = {k: v for k, v in (record.headers or ())}
                    parsed = parse_device_event(headers.get("kind", b"").decode(), record.value or b"", headers)
                    if parsed is None:
                        continue
                    if parsed[0] == "ack":
                        acks.append(parsed[1])  # type: ignore[arg-type]
                    else:
                        states.append(parsed[1])  # type: ignore[arg-type]
            if not batches:
                continue
            while True:
                try:
                    _, unknown = await self._store.apply_acks(acks, self._clock_ms())
                    await self._store.record_states(states)
                    break
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("storing %d acknowledgements failed (retrying): %s", len(acks), exc)
                    await asyncio.sleep(1.0)
            for _, outcome, _ in acks:
                ACKS.labels(outcome.value).inc()
            UNKNOWN_ACKS.inc(unknown)
            await consumer.commit()
