"""The lag the autoscaler reads is the real lag, with the real broker.

The ingest consumer exports `gridtwin_ingest_consumer_lag{topic, partition}`; the HPA alternative
in k8s/ reads it through prometheus-adapter (sum over the telemetry topic's partitions). Here it
is scraped from a /metrics endpoint as Prometheus would, and compared with the lag measured
without the consumer: the high watermark seen by a separate consumer's fetches minus the group's
committed offset read through the admin API, and with the producer's own acknowledged offsets.
Records are produced in multi-record batches: the case in which this broker's ListOffsets
"latest" is wrong (see ENVIRONMENT.md), so neither side may use it.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Sequence

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from gridtwin.settings import Settings
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from tests.integration.twins_support import stream

pytestmark = pytest.mark.integration

METRIC = "gridtwin_ingest_consumer_lag"


class HeldSink:
    """Twins that accept the first `allow` batches, then hold every delivery until released: the
    consumer's commits stop there, as behind a stalled twin runtime."""

    def __init__(self, allow: int) -> None:
        self.allow = allow
        self.calls = 0
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def deliver(self, records: Sequence[TelemetryRecord]) -> None:
        self.calls += 1
        if self.calls > self.allow:
            self.held.set()
            await self.release.wait()


async def test_exported_lag_equals_high_watermark_minus_committed_offset(
        isolated: Settings, pool: asyncpg.Pool) -> None:
    settings = isolated
    topic = settings.kafka.telemetry_topic
    # Small batches and room for every batch in the queue: the fetch loop never blocks, so it keeps
    # refreshing the exported lag while the writer is held.
    ingest = settings.ingest.model_copy(update={"max_records_per_batch": 25, "max_pending_batches": 1_000})
    records = [r for chunk in stream(40, 120, per_record=10, prefix="lag") for r in chunk]   # 480 records
    produced = await _produce(settings, records)
    partitions = sorted(produced)
    assert len(partitions) == settings.kafka.telemetry_partitions       # every partition has records

    server, thread = start_http_server(0, addr="127.0.0.1")
    port = server.server_port
    sink = HeldSink(allow=3)
    try:
        async with IngestConsumer(ingest, settings.kafka, TelemetryStore(pool, 300.0), sink):
            await asyncio.wait_for(sink.held.wait(), 30)
            exported = await _steady(port, topic, partitions)
            highwater = await _high_watermarks(settings, partitions)
            committed = await _committed(settings, ingest.group_id, partitions)
            independent = {p: highwater[p] - committed.get(p, 0) for p in partitions}
            print(f"exported {exported} independent {independent} committed {committed} end {produced}")

            assert highwater == produced                 # the fetch high watermark is the true end
            assert exported == independent
            assert sum(exported.values()) == len(records) - sum(committed.values())
            assert 0 < sum(exported.values()) < len(records)   # a real backlog, partly committed

            sink.release.set()                           # the twins catch up: the lag drains to zero
            deadline = time.monotonic() + 30
            while sum((await _committed(settings, ingest.group_id, partitions)).values()) < len(records):
                assert time.monotonic() < deadline, "the consumer did not catch up"
                await asyncio.sleep(0.1)
            assert await _steady(port, topic, partitions) == dict.fromkeys(partitions, 0)
    finally:
        sink.release.set()
        server.shutdown()
        thread.join(5)


async def _produce(settings: Settings, records: list[TelemetryRecord]) -> dict[int, int]:
    """Sends with linger (batches of many records) keyed like the gateway; returns partition →
    the offset after its last acknowledged record."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, linger_ms=50, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(settings.kafka.telemetry_topic, r.SerializeToString(),
                                       key=r.installation_id.encode()) for r in records]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    end: dict[int, int] = {}
    for m in metadata:
        end[m.partition] = max(end.get(m.partition, 0), m.offset + 1)
    return end


def _scrape(port: int, topic: str) -> dict[int, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {int(s.labels["partition"]): int(s.value)
            for family in text_string_to_metric_families(text) if family.name == METRIC
            for s in family.samples if s.labels.get("topic") == topic}


async def _steady(port: int, topic: str, partitions: list[int], timeout_s: float = 20.0) -> dict[int, int]:
    """The exported lag once it covers every partition and holds still for a second."""
    deadline = time.monotonic() + timeout_s
    previous: dict[int, int] | None = None
    while True:
        current = await asyncio.to_thread(_scrape, port, topic)
        if sorted(current) == partitions and current == previous:
            return current
        assert time.monotonic() < deadline, f"exported lag never settled: {current}"
        previous = current
        await asyncio.sleep(1.0)


async def _high_watermarks(settings: Settings, partitions: list[int]) -> dict[int, int]:
    """High watermarks from fetch responses of a consumer outside the group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.kafka.telemetry_topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 20
        while any(consumer.highwater(tp) is None for tp in tps):
            assert time.monotonic() < deadline, "no fetch response for some partition"
            await consumer.getmany(timeout_ms=200, max_records=1)
        return {tp.partition: int(consumer.highwater(tp) or 0) for tp in tps}
    finally:
        await consumer.stop()


async def _committed(settings: Settings, group_id: str, partitions: list[int]) -> dict[int, int]:
    """The group's committed offsets, read with the admin API (OffsetFetch)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(
            group_id, partitions=[TopicPartition(settings.kafka.telemetry_topic, p) for p in partitions])
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
