"""Twin runtime benchmark on this machine: real Ray shards, Postgres and the broker.

    python -m bench.twins [--twins 100000] [--shards 2] [--recovery-twins 10000]

1. Recovery: 10,000 twins resident in one shard, snapshotted; the shard's process is killed and
   Ray restarts it. Prints kill → every twin resident again (and the shard's own load time).
2. Resident twins: N twins activated across the shards; prints the shards' memory and bytes per
   twin (RSS growth / twins).
3. Throughput: columnar batches of 1,000 samples (1,000 twins × 1 sample, as live telemetry
   arrives) through the shards' rules, 4 batches in flight per shard; prints samples/s. Also the
   pure rule loop on one core, without Ray, for reference.
4. Latency: batches stored in the telemetry table (as ingest does), then delivered; every batch
   carries anomalies. Prints p50/p99 from "stored" to "alert stored in Postgres and acknowledged
   by the broker on the alerts topic" (when `deliver` returns).
5. Backlog: 1,000 devices whose twins passivated (snapshot at the outage) come back with six
   hours of buffered samples (one every `--backlog-interval-s`). The backlog is stored first (as a
   burst of ingest batches would be), then each device's first replayed batch reaches its twin,
   which replays everything stored after its snapshot. Prints samples applied per second and
   the time until every twin is current (applied = stored).

Uses its own database (gridtwin_bench_twins), topics and Ray namespace; starts Ray in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import numpy as np
import ray
from rich.console import Console
from rich.table import Table

from actors.runtime.batch import ShardBatch
from actors.runtime.cluster import start_runtime
from actors.runtime.routing import shard_of
from actors.twin.config import RulesConfig
from actors.twin.model import UNKNOWN_FACTS
from actors.twin.twin import TwinState
from bench.common import fresh_database, run_topics
from gridtwin import kafka_topics, unixtime
from gridtwin.api.device.v1.device_pb2 import Sample as PbSample
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from gridtwin.app import infra
from gridtwin.observability import run_service
from gridtwin.settings import Settings
from services.telemetry.store import TelemetryStore, init_connection

console = Console()
RULES: dict[str, dict[str, object]] = {"telemetry_stale": {"enabled": False},
                                       "solar_negative": {"raise_after": 1, "clear_after": 1}}


def bench_settings(shards: int) -> Settings:
    base = Settings()
    run = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench_twins"),
        "kafka": run_topics(base.kafka, run),
        "twins": base.twins.model_copy(update={"ray_address": "local", "namespace": f"bench-{run}",
                                               "shards": shards, "rules": json.dumps(RULES),
                                               "snapshot_interval_s": 3_600.0, "tick_interval_s": 3_600.0}),
    })
    infra.ensure_broker(settings.kafka, settings.var_dir)
    return settings


def columnar(ids: list[str], now_ms: int, step: int, negative: set[str] = frozenset()) -> ShardBatch:  # type: ignore[assignment]
    n = len(ids)
    rng = np.random.default_rng(step)
    values = np.empty((n, 5))
    values[:, 0] = rng.uniform(-500, 500, n)
    values[:, 1] = rng.uniform(-3_000, 3_000, n)
    values[:, 2] = [-50.0 if i in negative else 1_500.0 for i in ids]
    values[:, 3] = values[:, 0] + values[:, 1] + values[:, 2]
    values[:, 4] = 50.0
    return ShardBatch(ids, [f"{i}-dev" for i in ids], np.arange(n + 1, dtype=np.int64),
                      np.full(n, now_ms - 3_600_000 + step * 1_000, dtype=np.int64), values,
                      np.ones(n, dtype=np.int8))


def by_shard(ids: list[str], count: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {k: [] for k in range(count)}
    for i in ids:
        out[shard_of(i, count)].append(i)
    return out


async def recovery(runtime, pool, count: int, now_ms: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    router = runtime.router
    ids: list[str] = []
    k = 0
    while len(ids) < count:
        candidate = f"rec-{k:07d}"
        if shard_of(candidate, router.count) == 0:
            ids.append(candidate)
        k += 1
    shard = router.shards[0]
    for lo in range(0, count, 1_000):
        await shard.deliver.remote(router.epoch, columnar(ids[lo:lo + 1_000], now_ms, 0))
    await shard.flush.remote()
    pid = (await shard.stats.remote())["pid"]
    started = time.perf_counter()
    ray.kill(shard, no_restart=False)
    while True:
        try:
            stats = await shard.stats.remote()
            if stats["pid"] != pid and stats["recovery"]:
                break
        except Exception:
            pass
        await asyncio.sleep(0.01)
    return {"twins": stats["recovery"]["twins"], "shard_load_s": stats["recovery"]["seconds"],
            "kill_to_resident_s": time.perf_counter() - started}


async def backlog(settings: Settings, pool, devices: int, hours: float, interval_s: float) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Section 5 (see the module docstring), in a runtime of its own whose twins passivate at once."""
    quick = settings.model_copy(update={"twins": settings.twins.model_copy(update={
        "namespace": f"{settings.twins.namespace}-backlog", "passivation_idle_s": 0.5, "tick_interval_s": 0.25,
        "snapshot_interval_s": 0.25})})
    runtime = await start_runtime(quick)
    router = runtime.router
    ids = [f"bk-{k:05d}" for k in range(devices)]
    now_ms = unixtime.now_ms()
    outage_ms = now_ms - int(hours * 3_600_000)
    step_ms = int(interval_s * 1_000)

    def records(start_ms: int, end_ms: int) -> list[TelemetryRecord]:
        out = []
        for k, inst in enumerate(ids):
            r = TelemetryRecord(device_id=f"{inst}-dev", installation_id=inst, sequence=start_ms)
            for ts in range(start_ms, end_ms, step_ms):
                solar = -60.0 if (ts // 600_000 + k) % 37 == 0 else 900.0     # now and then a faulty meter
                battery = 500.0 * ((ts // step_ms + k) % 7 - 3)
                r.samples.append(PbSample(timestamp_unix_ms=ts, site_power_w=200.0, battery_power_w=battery,
                                          solar_power_w=solar, load_power_w=200.0 + battery + solar,
                                          state_of_charge_pct=50.0, grid_status=1))  # type: ignore[arg-type]
            out.append(r)
        return out

    store = TelemetryStore(pool, 300.0)
    first = records(outage_ms - step_ms, outage_ms)        # the last sample before the outage
    await store.write(first)
    await router.deliver(first)
    while sum(s["resident"] for s in await router.stats()) > 0:   # snapshot written, twin passivated
        await asyncio.sleep(0.1)
    hour_ms = 3_600_000
    chunks = [(t, min(t + hour_ms, now_ms)) for t in range(outage_ms, now_ms, hour_ms)]
    started = time.perf_counter()
    stored = 0
    for lo, hi in chunks:
        batch = records(lo, hi)
        for part in range(0, len(batch), 100):
            await store.write(batch[part:part + 100])
        stored += sum(len(r.samples) for r in batch)
    store_s = time.perf_counter() - started
    newest_ms = range(outage_ms, now_ms, step_ms)[-1]
    started = time.perf_counter()
    for lo, hi in chunks:                                  # the devices' batches reach the twins in order
        await router.deliver(records(lo, min(hi, lo + 60_000)))
    while True:
        views = await asyncio.gather(*(router.view(i) for i in ids))
        if all(v is not None and v.reported.timestamp_unix_ms == newest_ms for v in views):
            break
        await asyncio.sleep(0.05)
    current_s = time.perf_counter() - started
    applied = sum(v.counts.applied for v in views if v is not None) - devices   # less the pre-outage sample
    assert applied == stored, f"{applied} of {stored} backlog samples applied"
    replayed = sum(s["replayed"] for s in await router.stats())
    return {
        f"backlog: {devices:,} devices × {hours:g} h at {interval_s:g} s": (
            f"{stored:,} samples stored in {store_s:.1f} s ({stored / store_s:,.0f}/s)"),
        "backlog: passivated twins replay it": (
            f"{applied / current_s:,.0f} samples applied/s; every twin current after {current_s:.1f} s "
            f"({replayed:,} rows replayed from the store)"),
    }


async def main(settings: Settings, args: argparse.Namespace) -> None:
    await kafka_topics.ensure_topics(settings.kafka, kafka_topics.platform_topics(settings.kafka))
    import asyncpg

    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=4, init=init_connection)
    assert pool is not None
    console.print("starting Ray and the shards …")
    runtime = await start_runtime(settings)
    router = runtime.router
    now_ms = unixtime.now_ms()
    results: dict[str, str] = {}

    console.print(f"[bold]1. recovery[/]: {args.recovery_twins} twins in one shard, process killed …")
    rec = await recovery(runtime, pool, args.recovery_twins, now_ms)
    results[f"recover a shard of {rec['twins']:.0f} twins"] = (
        f"{rec['kill_to_resident_s']:.2f} s kill → all resident (shard's own load {rec['shard_load_s']:.2f} s)")
    await pool.execute("TRUNCATE twin_snapshots")

    console.print(f"[bold]2. resident twins[/]: activating {args.twins} …")
    base = sum(s["rss_bytes"] for s in await router.stats())
    base_resident = sum(s["resident"] for s in await router.stats())
    ids = [f"twin-{k:07d}" for k in range(args.twins)]
    groups = by_shard(ids, router.count)
    for k, members in groups.items():
        for lo in range(0, len(members), 5_000):
            await router.shards[k].deliver.remote(router.epoch, columnar(members[lo:lo + 5_000], now_ms, 1))
    stats = await router.stats()
    resident = sum(s["resident"] for s in stats) - base_resident
    rss = sum(s["rss_bytes"] for s in stats)
    results["resident twins"] = f"{resident:,} in {router.count} shards"
    results["shard memory (all shards)"] = f"{rss / 2**30:.2f} GiB ({(rss - base) / 2**30:.2f} GiB for the twins)"
    results["bytes per twin"] = f"{(rss - base) / max(resident, 1):,.0f}"

    console.print("[bold]3. throughput[/] …")
    config = RulesConfig.defaults().with_overrides(RULES)
    local = [TwinState(i, UNKNOWN_FACTS, config) for i in ids[:1_000]]
    batch = columnar(ids[:1_000], now_ms, 2)
    ts, v = batch.ts_ms.tolist(), batch.values
    cols = [v[:, c].tolist() for c in range(5)]
    started, applied = time.perf_counter(), 0
    for step in range(100):
        for j, twin in enumerate(local):
            twin.apply_rows(batch.device_ids[j], [ts[j] + step * 1_000], [cols[0][j]], [cols[1][j]], [cols[2][j]],
                            [cols[3][j]], [cols[4][j]], [1], now_ms, [])
            applied += 1
    results["pure rules, one core"] = f"{applied / (time.perf_counter() - started):,.0f} samples/s"
    batches = {k: [columnar(m[lo:lo + 1_000], now_ms, 10 + s) for s in range(args.steps)
                   for lo in range(0, min(len(m), 20_000), 1_000)] for k, m in groups.items()}
    total = sum(b.samples for bs in batches.values() for b in bs)

    async def pump(k: int) -> None:
        sem = asyncio.Semaphore(4)

        async def one(b: ShardBatch) -> None:
            async with sem:
                await router.shards[k].deliver.remote(router.epoch, b)
        await asyncio.gather(*(one(b) for b in batches[k]))

    started = time.perf_counter()
    await asyncio.gather(*(pump(k) for k in batches))
    elapsed = time.perf_counter() - started
    results["through the shards (Ray, batches of 1,000)"] = f"{total / elapsed:,.0f} samples/s ({total:,} samples)"

    console.print("[bold]4. latency[/]: stored → alert raised …")
    store = TelemetryStore(pool, 300.0)
    latencies = []
    lat_ids = [f"lat-{k:05d}" for k in range(2_000)]
    for step in range(args.latency_batches):
        now = unixtime.now_ms()
        records = []
        for j, inst in enumerate(lat_ids[(step % 4) * 500:(step % 4 + 1) * 500]):
            negative = (j + step) % 50 == 0
            record = TelemetryRecord(device_id=f"{inst}-dev", installation_id=inst, sequence=step)
            solar = -60.0 if negative else 900.0
            record.samples.append(PbSample(timestamp_unix_ms=now - 1_000 + j, site_power_w=100, battery_power_w=0,
                                           solar_power_w=solar, load_power_w=100 + solar, state_of_charge_pct=50,
                                           grid_status=1))  # type: ignore[arg-type]
            records.append(record)
        await store.write(records)
        started = time.perf_counter()
        await router.deliver(records)
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    raised = await pool.fetchval("SELECT count(*) FROM twin_alerts WHERE installation_id LIKE 'lat-%'")
    p50, p99 = np.percentile(latencies, [50, 99])
    results["stored → alert raised (stored + on the topic)"] = (
        f"p50 {p50 * 1_000:.1f} ms, p99 {p99 * 1_000:.1f} ms ({len(latencies)} batches of 500, {raised} alerts)")

    console.print(f"[bold]5. backlog[/]: {args.backlog_devices} devices × {args.backlog_hours} h after passivation …")
    results.update(await backlog(settings, pool, args.backlog_devices, args.backlog_hours, args.backlog_interval_s))

    table = Table(title="twins benchmark")
    table.add_column("figure")
    table.add_column("value")
    for key, value in results.items():
        table.add_row(key, value)
    console.print(table)
    await pool.close()
    ray.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--twins", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--recovery-twins", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=10, help="samples per twin in the throughput phase")
    parser.add_argument("--latency-batches", type=int, default=300)
    parser.add_argument("--backlog-devices", type=int, default=1_000)
    parser.add_argument("--backlog-hours", type=float, default=6.0)
    parser.add_argument("--backlog-interval-s", type=float, default=10.0)
    args = parser.parse_args()
    run_service(main(bench_settings(args.shards), args))
