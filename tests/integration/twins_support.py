"""Shared pieces of the twin runtime tests: a runtime per test (own Ray namespace, clean tables),
a deterministic telemetry stream with anomalies, and the reference the pure model computes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
import ray
from aiokafka import AIOKafkaConsumer, TopicPartition

from actors.runtime.cluster import TwinRuntime, start_runtime
from actors.twin.config import RulesConfig
from actors.twin.model import UNKNOWN_FACTS, AlertEvent, Sample
from actors.twin.twin import TwinState
from gridtwin import unixtime
from gridtwin.api.device.v1.device_pb2 import Sample as PbSample
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from gridtwin.api.twins.v1 import twin_service_pb2 as pb
from gridtwin.settings import Settings

# Wall-clock rules off, quick lifecycle: the outcome depends on the telemetry alone.
RULES = {"telemetry_stale": {"enabled": False}, "solar_negative": {"raise_after": 2, "clear_after": 2},
         "power_balance": {"raise_after": 2, "clear_after": 2}}


@dataclass
class Twins:
    settings: Settings
    runtime: TwinRuntime
    pool: asyncpg.Pool


@contextlib.asynccontextmanager
async def twin_runtime(isolated: Settings, ray_cluster: Settings, pool: asyncpg.Pool,
                       **twins: object) -> AsyncIterator[Twins]:
    """A runtime in a namespace of its own on empty twin tables; `twins`: settings to override."""
    await pool.execute("TRUNCATE telemetry_samples, telemetry_rollups, twin_snapshots, twin_alerts, "
                       "twin_rule_overrides, twin_layout, twin_control_intents, customer_notifications")
    settings = isolated.model_copy(update={"twins": ray_cluster.twins.model_copy(update={
        "namespace": f"twins-{uuid.uuid4().hex[:8]}", "rules": json.dumps(RULES), "tick_interval_s": 1.0,
        "snapshot_interval_s": 1.0, **twins})})
    runtime = await start_runtime(settings)
    try:
        yield Twins(settings, runtime, pool)
    finally:
        kill_namespace(settings.twins.namespace)


@pytest.fixture
async def twins(isolated: Settings, ray_cluster: Settings, pool: asyncpg.Pool) -> AsyncIterator[Twins]:
    async with twin_runtime(isolated, ray_cluster, pool) as runtime:
        yield runtime


def kill_namespace(namespace: str) -> int:
    """Kills every named actor of a Ray namespace (shards, coordinator, poller): detached actors
    outlive their test, and a left-over shard would go on ticking and snapshotting its twins into
    the session's database, where a later test's recovery would find them. Returns how many."""
    killed = 0
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == namespace:
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(actor["name"], namespace=namespace), no_restart=True)
                killed += 1
    return killed


def stream(installations: int, seconds: int, per_record: int = 10, end_ms: int | None = None,
           prefix: str = "site") -> list[list[TelemetryRecord]]:
    """Chunks (one per `per_record` seconds) of records, one record per installation and chunk.
    Installation k: solar negative for samples 20–39 when k % 3 == 0 (raised, then cleared) and
    from 60 on when k % 4 == 0 (still open at the end); the battery swings so energy integrates."""
    end_ms = end_ms or unixtime.now_ms() - 1_000
    start_ms = end_ms - seconds * 1_000
    chunks = []
    for c in range(0, seconds, per_record):
        records = []
        for k in range(installations):
            record = TelemetryRecord(device_id=f"{prefix}-dev-{k}", installation_id=f"{prefix}-{k}", sequence=c)
            for t in range(c, min(c + per_record, seconds)):
                negative = (k % 3 == 0 and 20 <= t < 40) or (k % 4 == 0 and t >= 60)
                solar = -40.0 if negative else 1_000.0 + k
                battery = 500.0 * ((t + k) % 7 - 3)
                site = 300.0
                record.samples.append(PbSample(
                    timestamp_unix_ms=start_ms + t * 1_000 + k, site_power_w=site, battery_power_w=battery,
                    solar_power_w=solar, load_power_w=site + battery + solar, state_of_charge_pct=50.0 + t / 100,
                    grid_status=1))
            records.append(record)
        chunks.append(records)
    return chunks


def reference(chunks: list[list[TelemetryRecord]]) -> tuple[dict[str, TwinState], dict[str, AlertEvent]]:
    """The pure model over the same telemetry: twins, and the last event of every alert."""
    config = RulesConfig.defaults().with_overrides(RULES)
    twins: dict[str, TwinState] = {}
    last: dict[str, AlertEvent] = {}
    now_ms = unixtime.now_ms()
    for records in chunks:
        for r in records:
            twin = twins.setdefault(r.installation_id, TwinState(r.installation_id, UNKNOWN_FACTS, config))
            events: list[AlertEvent] = []
            for s in r.samples:
                sample = Sample(r.device_id, s.timestamp_unix_ms, s.site_power_w, s.battery_power_w,
                                s.solar_power_w, s.load_power_w, s.state_of_charge_pct, s.grid_status)
                twin.apply(sample, now_ms, events)
            for e in events:
                last[e.alert.alert_id] = e
    return twins, last


async def stored_alerts(pool: asyncpg.Pool) -> dict[str, tuple[str, int, int | None]]:
    rows = await pool.fetch("SELECT alert_id, state, first_seen, cleared_at FROM twin_alerts")
    return {r["alert_id"]: (r["state"], r["first_seen"] // 1_000,
                            r["cleared_at"] // 1_000 if r["cleared_at"] is not None else None) for r in rows}


def expected_alerts(last: dict[str, AlertEvent]) -> dict[str, tuple[str, int, int | None]]:
    return {i: ("cleared" if e.alert.cleared_ms is not None else e.alert.state.value, e.alert.first_seen_ms,
                e.alert.cleared_ms) for i, e in last.items()}


def normalized(expected: dict[str, tuple[str, int, int | None]]) -> dict[str, tuple[str, int, int | None]]:
    """Open alerts may be stored as raised or ongoing depending on batching; compare open/cleared."""
    return {i: ("open" if state != "cleared" else state, first, cleared) for i, (state, first, cleared) in
            expected.items()}


async def topic_alerts(settings: Settings, idle_s: float = 2.0) -> list[pb.Alert]:
    """Every message on the alerts topic so far, in partition order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic(settings.kafka.alerts_topic) or set()
        consumer.assign([TopicPartition(settings.kafka.alerts_topic, p) for p in sorted(partitions)])
        out: list[pb.Alert] = []
        deadline = time.monotonic() + idle_s
        while time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=200)
            for messages in fetched.values():
                for m in messages:
                    alert = pb.Alert()
                    alert.ParseFromString(m.value)
                    out.append(alert)
                    deadline = time.monotonic() + idle_s
        return out
    finally:
        await consumer.stop()


async def until(predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not await predicate():
            await asyncio.sleep(0.1)

