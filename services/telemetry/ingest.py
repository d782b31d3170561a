"""Ingest consumers: the telemetry topic → Postgres (samples and rollups) → the twins.

One `IngestConsumer` is one member of the consumer group. Its fetch loop decodes batches
(`getmany`) and queues them for a single writer; the queue is bounded, and when it is full the
loop pauses every assigned partition until the writer catches up. The writer stores a batch,
hands it to the twins and only then commits its offsets, so a crash at any point re-delivers
batches that the idempotent store and the twins absorb. Writes are sequential on purpose: the
store's rollups depend on each device's previous sample being committed.

Lag per partition is the fetch response's high watermark minus the committed offset (the
broker's ListOffsets is not trusted, see ENVIRONMENT.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from google.protobuf.message import DecodeError
from prometheus_client import Counter, Gauge, Histogram

from actors.handoff import TwinSink
from gridtwin import unixtime
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from gridtwin.settings import IngestSettings, KafkaSettings
from services.telemetry import hotmetrics
from services.telemetry.hotmetrics import FastHistogram
from services.telemetry.notices import MAX_TIMESTAMPS_PER_NOTICE, NoticeSink, conflicting_resends
from services.telemetry.store import TelemetryStore

log = logging.getLogger(__name__)

RECORDS = Counter("gridtwin_ingest_records_total", "Telemetry records consumed")
SAMPLES = Counter("gridtwin_ingest_samples_total", "Samples consumed")
STORED = Counter("gridtwin_ingest_samples_stored_total", "Samples newly stored")
DUPLICATES = Counter("gridtwin_ingest_samples_duplicate_total", "Samples already stored (replays)")
CONFLICTING = Counter("gridtwin_ingest_samples_conflicting_total",
                      "Re-sent samples whose values differ from the stored ones (the stored ones stay)")
UNDECODABLE = Counter("gridtwin_ingest_records_undecodable_total", "Records skipped as not a TelemetryRecord")
WRITE_SECONDS = Histogram(
    "gridtwin_ingest_write_seconds", "Store + twin hand-off time per batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_RECORDS = Histogram("gridtwin_ingest_batch_records", "Records per fetched batch",
                          buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000))
LAG = Gauge("gridtwin_ingest_consumer_lag", "High watermark minus committed offset", ["topic", "partition"])
# One observation per record: lock-free and observed per batch as an array (hotmetrics.py).
FRESHNESS = FastHistogram(
    "gridtwin_ingest_sample_age_seconds", "Device timestamp of a record's newest sample → stored and committed",
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 5, 10, 30, 60, 300, 3600),
)
hotmetrics.register(FRESHNESS)
PAUSED = Gauge("gridtwin_ingest_paused", "1 while fetching is paused for backpressure")
WRITE_RETRIES = Counter("gridtwin_ingest_write_retries_total", "Batch writes retried after an error")


@dataclass(frozen=True)
class _Batch:
    records: list[TelemetryRecord]
    offsets: dict[TopicPartition, int]  # next offset to commit per partition


class IngestConsumer:
    """`async with IngestConsumer(...)` runs it until the block ends."""

    def __init__(self, settings: IngestSettings, kafka: KafkaSettings, store: TelemetryStore, twins: TwinSink, *,
                 notices: NoticeSink | None = None) -> None:
        """`notices`: where the samples the store did not take are told to their devices
        (services/telemetry/notices.py); None: they are only logged and counted."""
        self._settings = settings
        self._notices = notices
        self._kafka = kafka
        self._store = store
        self._twins = twins
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue(maxsize=settings.max_pending_batches)
        self._committed: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.lag: dict[int, int] = {}  # partition → lag, as exported
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=self._settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=16 << 20,
            # The broker answers a fetch at once when data is there; this bounds the wait when not.
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
        )
        self._consumer.subscribe([self._kafka.telemetry_topic], listener=_Rebalance(self))
        await self._consumer.start()
        self._tasks = [asyncio.create_task(self._fetch_loop()), asyncio.create_task(self._write_loop())]
        for task in self._tasks:
            task.add_done_callback(self._on_loop_done)

    def _on_loop_done(self, task: asyncio.Task[None]) -> None:
        # A loop that ends by itself is a bug or an unrecoverable error: make it visible at once
        # (the process exits non-zero and its supervisor restarts it) instead of stalling silently.
        if not task.cancelled() and task.exception() is not None and not self.failed.done():
            log.critical("ingest loop failed", exc_info=task.exception())
            self.failed.set_result(task.exception())  # type: ignore[arg-type]

    async def stop(self) -> None:
        """Finishes what was fetched (stored and committed), then leaves the group."""
        if not self._tasks:
            return
        self._tasks[0].cancel()
        await asyncio.gather(self._tasks[0], return_exceptions=True)
        await self._drain()
        self._tasks[1].cancel()
        await asyncio.gather(self._tasks[1], return_exceptions=True)
        assert self._consumer is not None
        await self._consumer.stop()
        self._tasks = []

    async def __aenter__(self) -> IngestConsumer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _drain(self) -> None:
        await self._queue.join()

    # ------------------------------------------------------------ fetching

    async def _fetch_loop(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            fetched = await consumer.getmany(
                timeout_ms=self._settings.fetch_timeout_ms, max_records=self._settings.max_records_per_batch
            )
            if fetched:
                await self._enqueue(self._decode(fetched))
            self._update_lag()

    def _decode(self, fetched: dict[TopicPartition, list]) -> _Batch:  # type: ignore[type-arg]
        records: list[TelemetryRecord] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, messages in fetched.items():
            for message in messages:
                record = TelemetryRecord()
                try:
                    record.ParseFromString(message.value)
                except DecodeError:
                    # A poison record must not stop the partition: count it, log it, skip it.
                    UNDECODABLE.inc()
                    log.error("skipping undecodable record %s@%d", tp, message.offset)
                    continue
                records.append(record)
            offsets[tp] = messages[-1].offset + 1
        BATCH_RECORDS.observe(len(records))
        return _Batch(records, offsets)

    async def _enqueue(self, batch: _Batch) -> None:
        if not self._queue.full():
            self._queue.put_nowait(batch)
            return
        consumer = self._consumer
        assert consumer is not None
        paused = consumer.assignment()
        consumer.pause(*paused)
        PAUSED.set(1)
        try:
            await self._queue.put(batch)
        finally:
            consumer.resume(*(tp for tp in paused if tp in consumer.assignment()))
            PAUSED.set(0)

    def _update_lag(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            committed = self._committed.get(tp)
            if committed is None:
                continue
            lag = max(0, highwater - committed)
            self.lag[tp.partition] = lag
            LAG.labels(tp.topic, str(tp.partition)).set(lag)

    # ------------------------------------------------------------ writing

    async def _write_loop(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                await self._write(batch)
            finally:
                self._queue.task_done()

    async def _write(self, batch: _Batch) -> None:
        started = time.perf_counter()
        delay_s = 0.1
        while True:
            try:
                result = await self._store.write(batch.records)
                await self._twins.deliver(batch.records)
                break
            except (TimeoutError, OSError, ConnectionError) as exc:
                self._on_retry(exc, delay_s)
            except Exception as exc:  # asyncpg raises its own classes for a restarting server
                if not _retriable(exc):
                    raise
                self._on_retry(exc, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 5.0)
        assert self._consumer is not None
        await self._consumer.commit(batch.offsets)
        self._committed.update(batch.offsets)
        now_ms = unixtime.now_ms()
        newest_ms = np.fromiter((r.samples[-1].timestamp_unix_ms if r.samples else now_ms for r in batch.records),
                                np.int64, len(batch.records))
        FRESHNESS.observe_many((now_ms - newest_ms) / 1_000)
        WRITE_SECONDS.observe(time.perf_counter() - started)
        RECORDS.inc(len(batch.records))
        SAMPLES.inc(result.samples)
        STORED.inc(result.stored)
        DUPLICATES.inc(result.duplicates)
        if result.conflicts:
            CONFLICTING.inc(result.conflicts)
            log.warning("%d re-sent samples differ from the stored ones, which stay (first: %s)", result.conflicts,
                        ", ".join(f"{device}@{ts_us // 1_000}" for device, ts_us in result.conflicting[:5]))
            if self._notices is not None:
                self._notices.publish(conflicting_resends(result.conflicting, batch.records,
                                                          max_timestamps=MAX_TIMESTAMPS_PER_NOTICE))

    def _on_retry(self, exc: BaseException, delay_s: float) -> None:
        WRITE_RETRIES.inc()
        self._store.forget_recent()
        log.warning("batch write failed (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay_s)

    async def _on_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        # Everything fetched so far is stored and committed before another member takes over.
        await self._drain()
        self._store.forget_recent()
        for tp in revoked:
            self._committed.pop(tp, None)
            if self.lag.pop(tp.partition, None) is not None:
                LAG.remove(tp.topic, str(tp.partition))

    async def _on_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        consumer = self._consumer
        assert consumer is not None
        self._store.forget_recent()
        for tp in assigned:
            committed = await consumer.committed(tp)
            self._committed[tp] = committed if committed is not None else 0


def _retriable(exc: Exception) -> bool:
    import asyncpg

    return isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                            asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError))


class _Rebalance(ConsumerRebalanceListener):
    """aiokafka awaits these: revocation finishes in-flight work before partitions move."""

    def __init__(self, owner: IngestConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._owner._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self._owner._on_assigned(assigned)
