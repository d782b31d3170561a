"""The store against real Postgres: idempotent writes and exact rollups."""

import numpy as np
import pytest

from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from services.telemetry.store import TelemetryStore

pytestmark = pytest.mark.integration

T0 = 1_750_000_000_000 // 60_000 * 60_000  # a minute boundary in mid-2025


def record(device: str, installation: str, ts_ms: list[int], load_w: float = 1_000.0) -> TelemetryRecord:
    samples = [pb.Sample(timestamp_unix_ms=t, load_power_w=load_w, site_power_w=load_w,
                         state_of_charge_pct=50, grid_status=pb.GRID_STATUS_CONNECTED) for t in ts_ms]
    return TelemetryRecord(device_id=device, installation_id=installation, sequence=1,
                           received_unix_ms=T0, samples=samples)


async def rollup(pool, installation: str, resolution_s: int):
    return await pool.fetch(
        "SELECT bucket, sample_count, load_wh, grid_import_wh, covered_s FROM telemetry_rollups "
        "WHERE installation_id = $1 AND resolution_s = $2 ORDER BY bucket", installation, resolution_s)


async def test_replay_stores_nothing_twice_and_keeps_rollups(clean_db):
    store = TelemetryStore(clean_db, max_gap_s=300)
    ts = [T0 + i * 1_000 for i in range(180)]
    first = await store.write([record("d1", "i1", ts)])
    assert (first.samples, first.stored) == (180, 180)
    before = await rollup(clean_db, "i1", 60)

    replay = await store.write([record("d1", "i1", ts[100:]), record("d1", "i1", ts[:50])])
    assert (replay.stored, replay.duplicates) == (0, 130)
    assert await clean_db.fetchval("SELECT count(*) FROM telemetry_samples") == 180
    assert await rollup(clean_db, "i1", 60) == before


async def test_out_of_order_arrival_gives_the_same_rollups(clean_db):
    ts = [T0 + i * 1_000 for i in range(600)]
    in_order = TelemetryStore(clean_db, max_gap_s=300)
    await in_order.write([record("a", "in-order", ts)])

    shuffled = TelemetryStore(clean_db, max_gap_s=300)
    chunks = np.array_split(np.random.default_rng(1).permutation(ts), 12)
    for chunk in chunks:
        await shuffled.write([record("b", "shuffled", sorted(int(t) for t in chunk))])

    for resolution in (60, 900, 3_600, 86_400):
        a = await rollup(clean_db, "in-order", resolution)
        b = await rollup(clean_db, "shuffled", resolution)
        assert [r["bucket"] for r in a] == [r["bucket"] for r in b]
        for ra, rb in zip(a, b, strict=True):
            assert ra["sample_count"] == rb["sample_count"]
            assert ra["load_wh"] == pytest.approx(rb["load_wh"], abs=1e-9)
            assert ra["covered_s"] == pytest.approx(rb["covered_s"], abs=1e-9)
    # 599 one-second segments at 1 kW
    total = sum(r["load_wh"] for r in await rollup(clean_db, "in-order", 60))
    assert total == pytest.approx(599 / 3.6)


async def test_a_restarted_store_continues_the_integral(clean_db):
    ts = [T0 + i * 1_000 for i in range(120)]
    await TelemetryStore(clean_db, max_gap_s=300).write([record("d", "i", ts[:60])])
    await TelemetryStore(clean_db, max_gap_s=300).write([record("d", "i", ts[60:])])
    total = sum(r["load_wh"] for r in await rollup(clean_db, "i", 60))
    assert total == pytest.approx(119 / 3.6)


async def test_min_max_and_means_per_bucket(clean_db):
    store = TelemetryStore(clean_db, max_gap_s=300)
    ts = [T0 + i * 1_000 for i in range(120)]
    loads = [float((i * 37) % 101) for i in range(120)]
    records = [record("m", "mm", [t], load_w=w) for t, w in zip(ts, loads, strict=True)]
    await store.write(records[60:])  # the second minute first
    await store.write(records[:60])
    rows = await clean_db.fetch(
        "SELECT bucket, sample_count, load_power_w_min, load_power_w_max, load_power_w_sum FROM telemetry_rollups "
        "WHERE installation_id = 'mm' AND resolution_s = 60 ORDER BY bucket")
    assert [r["sample_count"] for r in rows] == [60, 60]
    for row, chunk in zip(rows, (loads[:60], loads[60:]), strict=True):
        assert (row["load_power_w_min"], row["load_power_w_max"]) == (min(chunk), max(chunk))
        assert row["load_power_w_sum"] == pytest.approx(sum(chunk))


async def test_a_resent_sample_with_other_values_is_counted_and_the_stored_one_stays(clean_db):
    """Issue 15: a re-send with different values is never merged silently: it is counted."""
    store = TelemetryStore(clean_db, max_gap_s=300)
    await store.write([record("d1", "s1", [T0, T0 + 1_000, T0 + 2_000])])
    same = await store.write([record("d1", "s1", [T0, T0 + 1_000])])                 # a plain replay
    assert (same.stored, same.duplicates, same.conflicts) == (0, 2, 0)
    other = await store.write([record("d1", "s1", [T0 + 1_000, T0 + 2_000, T0 + 3_000], load_w=5.0)])
    assert (other.stored, other.duplicates, other.conflicts) == (1, 2, 2)
    assert other.conflicting == (("d1", (T0 + 1_000) * 1_000), ("d1", (T0 + 2_000) * 1_000))
    stored = await clean_db.fetch("SELECT ts, load_power_w FROM telemetry_samples ORDER BY ts")
    assert [r["load_power_w"] for r in stored] == [1_000.0, 1_000.0, 1_000.0, 5.0]
