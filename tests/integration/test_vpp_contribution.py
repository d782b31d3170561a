"""Live contribution from the real broker: the tracker's node sums equal sums computed
independently (ltree queries in Postgres over the newest produced samples)."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from gridtwin.api.device.v1.device_pb2 import Sample
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from gridtwin.settings import Settings
from services.control.vpp.contribution import ContributionTracker

pytestmark = pytest.mark.integration

N = 30


async def _seed(pool: asyncpg.Pool) -> None:
    ids = [f"h{k}" for k in range(N)]
    await pool.execute("INSERT INTO installations (installation_id) SELECT unnest($1::text[])", ids)
    paths = sorted({f"utility.u{k % 2}.f{k % 3}" for k in range(N)}
                   | {"program.vpp.enrolled", "program.vpp.eligible", "program.vpp"})
    await pool.execute("INSERT INTO hierarchy_groups (path) SELECT text2ltree(unnest($1::text[]))", paths)
    await pool.execute("INSERT INTO programs (path) VALUES ('program.vpp')")
    for k, inst in enumerate(ids):
        await pool.execute("INSERT INTO group_memberships (installation_id, path) VALUES ($1, text2ltree($2))",
                           inst, f"utility.u{k % 2}.f{k % 3}")
        state = "eligible" if k % 5 == 0 else "enrolled"
        await pool.execute(
            "INSERT INTO group_memberships (installation_id, path, program, enrollment_state) "
            "VALUES ($1, text2ltree($2), 'program.vpp', $3)", inst, f"program.vpp.{state}", state)


async def _expected(pool: asyncpg.Pool, node: str, newest: dict[str, float]) -> tuple[float, int]:
    members = await pool.fetch(
        "SELECT DISTINCT installation_id FROM group_memberships WHERE path <@ text2ltree($1) "
        "AND (program IS NULL OR enrollment_state = 'enrolled')", node)
    reporting = [r[0] for r in members if r[0] in newest]
    return sum(max(newest[i], 0.0) for i in reporting), len(reporting)


def _record(inst: str, ts_ms: int, power_w: float) -> bytes:
    return TelemetryRecord(device_id=f"d-{inst}", installation_id=inst, received_unix_ms=ts_ms, samples=[
        Sample(timestamp_unix_ms=ts_ms, battery_power_w=power_w, state_of_charge_pct=50)]).SerializeToString()


async def test_tracker_sums_match_the_database(isolated: Settings, clean_db: asyncpg.Pool) -> None:
    pool = clean_db
    await _seed(pool)
    kafka = isolated.kafka
    tracker = ContributionTracker(bootstrap_servers=kafka.bootstrap_servers, topic=kafka.telemetry_topic,
                                  group_id=f"contribution-{uuid.uuid4().hex[:8]}", pool=pool, stale_after_s=300)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        async with tracker:
            await asyncio.wait_for(tracker.ready.wait(), 60)
            base = int(time.time() * 1000)
            newest: dict[str, float] = {}
            for round_ in range(3):
                for k in range(N):
                    inst = f"h{k}"
                    power = (k * 137 + round_ * 911) % 7000 - 2000.0    # some charging, some discharging
                    ts = base + round_ * 1000
                    await producer.send(kafka.telemetry_topic, _record(inst, ts, power), key=inst.encode())
                    newest[inst] = power
                # an older sample after the newer ones: ignored
                await producer.send(kafka.telemetry_topic, _record("h1", base - 5000, 99_999.0), key=b"h1")
            await producer.flush()
            sent = time.perf_counter()
            while tracker.index.installations_counted < N or any(
                    (tracker.index.installation(i) or None) is None
                    or tracker.index.installation(i).battery_power_w != p  # type: ignore[union-attr]
                    for i, p in newest.items()):
                assert time.perf_counter() - sent < 30, "the tracker did not see every sample"
                await asyncio.sleep(0.01)
            print(f"\nproduced → visible in the contribution: {(time.perf_counter() - sent) * 1000:.0f} ms")
            for node in ["utility", "utility.u0", "utility.u1.f2", "program", "program.vpp",
                         "program.vpp.enrolled", "program.vpp.eligible"]:
                total, count = await _expected(pool, node, newest)
                got = tracker.index.node(node)
                assert got.discharge_w == pytest.approx(total, abs=0.01), node
                assert got.installations_reporting == count, node
            assert tracker.index.node("program.vpp.eligible").installations_reporting == 0
            watched = tracker.watch("program.vpp", "h3", interval_s=0.05)
            snapshots = [await anext(watched) for _ in range(3)]
            await watched.aclose()  # type: ignore[attr-defined]
            assert snapshots[-1].node.discharge_w == tracker.index.node("program.vpp").discharge_w
            assert snapshots[-1].installation is not None and snapshots[-1].installation.battery_power_w == newest["h3"]
    finally:
        await producer.stop()
