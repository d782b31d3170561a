"""Analytics benchmark on this machine: one year of one-minute data for 1,000 installations.

    python -m bench.analytics [--installations 1000] [--runs 30]

Seeding: 525 million raw rows (or the 1-minute rollups of them) would take longer to write than
every measurement together, and the measured queries never read them, so the bench writes the
**1-hour and 1-day rollups** that one year of one-minute samples would produce, straight into
`telemetry_rollups` with binary COPY (energy channels from a synthetic solar/load/battery day
with seasons and clouds, 60 samples per hour; 2 days of margin on each side of 2024 so that
every zone's local year is complete). Installations are spread over four whole-hour zones (Los
Angeles, New York, Berlin, Sydney), all members of the group `bench.fleet`. Own database
(gridtwin_bench_analytics).

Measured, one request at a time, median and p95 over --runs:

1. daily totals of one installation-year (366 local days, a TOU tariff: ratios, cost,
   savings) through `Analytics.energy` — the hourly rollups grouped by local day — and the same
   through the gRPC AnalyticsService (token check, protobuf);
2. one local day for the 1,000-installation group (members resolved by ltree, summed per bucket
   in SQL, per zone), directly and through gRPC;
3. LTTB of 1,000,000 points to 2,000 (tsdownsample).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import grpc
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import fresh_database
from gridtwin.api.analytics.v1 import analytics_pb2 as pb
from gridtwin.api.analytics.v1 import analytics_pb2_grpc as pb_grpc
from gridtwin.observability import run_service
from gridtwin.settings import Settings
from services.access.model import Scope
from services.access.service_tokens import issue_token
from services.analytics import series
from services.analytics.api import AnalyticsApi
from services.analytics.reader import AnalyticsReader
from services.analytics.service import Analytics, LocalDates
from services.analytics.tariffs import Tariff, TouWindow
from services.assets.database import create_engine
from services.assets.model import GroupPath
from services.assets.repository import AssetRepository
from services.telemetry.energy import ENERGY_FIELDS, POWER_FIELDS
from services.telemetry.store import PG_EPOCH_US, init_connection

console = Console(width=130)
ZONES = ("America/Los_Angeles", "America/New_York", "Europe/Berlin", "Australia/Sydney")
GROUP = "bench.fleet"
FIRST_HOUR_MS = int(dt.datetime(2023, 12, 30, tzinfo=dt.UTC).timestamp() * 1_000)
HOURS = (366 + 4) * 24
TARIFF = Tariff(0.28, 0.07, (TouWindow(16 * 60, 21 * 60, 0.48, weekdays=frozenset(range(1, 6)), name="peak"),
                             TouWindow(0, 7 * 60, 0.16, name="night")), "USD")
YEAR = LocalDates(dt.date(2024, 1, 1), dt.date(2025, 1, 1))


def bench_settings() -> Settings:
    base = Settings()
    settings = base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench_analytics"),
        "analytics": base.analytics.model_copy(update={"port": 0, "metrics_port": 0}),
    })
    return settings


# ------------------------------------------------------------ seeding

def hourly_energy(rng: np.random.Generator, zone_offset_h: int) -> np.ndarray:
    """(HOURS, ENERGY_FIELDS) Wh of one home: PV with seasons and clouds, a two-peak load, a
    battery that stores midday surplus up to 3 kW and covers the evening."""
    hour_utc = np.arange(HOURS)
    local_hour = (hour_utc + zone_offset_h) % 24
    day = hour_utc // 24
    season = 0.65 + 0.35 * np.cos((day - 172) / 365.25 * 2 * np.pi) * (1 if zone_offset_h < 5 else -1)
    clouds = np.repeat(rng.uniform(0.2, 1.0, HOURS // 24 + 1), 24)[:HOURS]
    kwp = rng.uniform(3, 10)
    solar = np.maximum(0, np.sin((local_hour + 0.5 - 6) / 13 * np.pi)) * kwp * 1_000 * 0.8 * season * clouds
    evening_peak, morning_peak = np.exp(-((local_hour - 19) ** 2) / 6), np.exp(-((local_hour - 7) ** 2) / 3)
    load = (rng.uniform(300, 600) + 900 * evening_peak + 500 * morning_peak) * rng.uniform(0.8, 1.2, HOURS)
    direct = np.minimum(solar, load)
    charge = np.minimum(solar - direct, 3_000.0)
    evening = (local_hour >= 17) & (local_hour < 23)
    discharge = np.where(evening, np.minimum(load - direct, 3_000.0), 0.0)
    daily_in = np.bincount(day, charge)[day]
    discharge = np.where(evening, np.minimum(discharge, daily_in * 0.9 / 6), 0.0)
    grid_import = load - direct - discharge
    grid_export = solar - direct - charge
    out = np.zeros((HOURS, len(ENERGY_FIELDS)))
    columns = {"battery_charge_wh": charge, "battery_discharge_wh": discharge, "solar_wh": solar, "load_wh": load,
               "grid_import_wh": grid_import, "grid_export_wh": grid_export, "covered_s": np.full(HOURS, 3_600.0),
               "solar_direct_wh": direct,
               **{f"{signal}_covered_s": np.full(HOURS, 3_600.0) for signal in ("site", "battery", "solar", "load")}}
    for i, name in enumerate(ENERGY_FIELDS):
        out[:, i] = columns[name]
    return out


_STATS = [f"{f}_{agg}" for f in POWER_FIELDS for agg in ("sum", "min", "max")]
_COUNTS = [f"{f}_count" for f in POWER_FIELDS]   # every sample reports every signal
_COLUMNS = ["installation_id", "resolution_s", "bucket", "sample_count", *_STATS, *ENERGY_FIELDS, *_COUNTS]
_FLOATS = len(_STATS) + len(ENERGY_FIELDS)


def copy_payload(ids: list[str], resolution_s: int, bucket_ms: np.ndarray, energy: np.ndarray,
                 samples: int) -> bytes:
    """PostgreSQL binary COPY of rollup rows, built as one numpy record array. `energy` is
    (installations, buckets, ENERGY_FIELDS); sample statistics are the mean power per bucket."""
    n_inst, n_buckets = energy.shape[:2]
    id_len = len(ids[0])
    fields: list[tuple[str, str]] = [("n", ">i2"), ("l_id", ">i4"), ("id", f"S{id_len}"), ("l_res", ">i4"),
                                     ("res", ">i4"), ("l_bucket", ">i4"), ("bucket", ">i8"), ("l_count", ">i4"),
                                     ("count", ">i4")]
    for k in range(_FLOATS):
        fields += [(f"l{k}", ">i4"), (f"v{k}", ">f8")]
    for k in range(len(_COUNTS)):
        fields += [(f"lc{k}", ">i4"), (f"c{k}", ">i4")]
    rows = np.zeros(n_inst * n_buckets, dtype=np.dtype(fields))
    rows["n"] = len(_COLUMNS)
    rows["l_id"], rows["id"] = id_len, np.repeat(np.array(ids, dtype=f"S{id_len}"), n_buckets)
    rows["l_res"], rows["res"] = 4, resolution_s
    rows["l_bucket"], rows["bucket"] = 8, np.tile(bucket_ms * 1_000 - PG_EPOCH_US, n_inst)
    rows["l_count"], rows["count"] = 4, samples
    hours = resolution_s / 3_600
    e = {name: energy[:, :, i].reshape(-1) for i, name in enumerate(ENERGY_FIELDS)}
    mean_w = {
        "site_power_w": (e["grid_import_wh"] - e["grid_export_wh"]) / hours,
        "battery_power_w": (e["battery_discharge_wh"] - e["battery_charge_wh"]) / hours,
        "solar_power_w": e["solar_wh"] / hours, "load_power_w": e["load_wh"] / hours,
        "state_of_charge_pct": np.full(len(rows), 50.0),
    }
    values = []
    for f in POWER_FIELDS:
        values += [mean_w[f] * samples, mean_w[f], mean_w[f]]
    values += [e[name] for name in ENERGY_FIELDS]
    for k, v in enumerate(values):
        rows[f"l{k}"], rows[f"v{k}"] = 8, v
    for k in range(len(_COUNTS)):
        rows[f"lc{k}"], rows[f"c{k}"] = 4, samples
    return b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows.tobytes() + b"\xff\xff"


async def _chunks(payload: bytes, size: int = 4 * 2**20) -> AsyncIterator[bytes]:
    view = memoryview(payload)
    for lo in range(0, len(view), size):
        yield bytes(view[lo:lo + size])


async def seed(pool: asyncpg.Pool, installations: int) -> tuple[int, float]:
    ids = [f"bench-{i:05d}" for i in range(installations)]
    zones = [ZONES[i % len(ZONES)] for i in range(installations)]
    offsets = {"America/Los_Angeles": -8, "America/New_York": -5, "Europe/Berlin": 1, "Australia/Sydney": 10}
    async with pool.acquire() as con:
        await con.executemany(
            "INSERT INTO installations (installation_id, time_zone, battery_nominal_energy_wh) VALUES ($1, $2, 13500)",
            list(zip(ids, zones, strict=True)))
        await con.execute("INSERT INTO hierarchy_groups (path) VALUES ('bench'::ltree), ($1::text::ltree)", GROUP)
        await con.executemany("INSERT INTO group_memberships (installation_id, path) VALUES ($1, $2::text::ltree)",
                              [(i, GROUP) for i in ids])
    rng = np.random.default_rng(2024)
    hours_ms = FIRST_HOUR_MS + np.arange(HOURS, dtype=np.int64) * 3_600_000
    days_ms = FIRST_HOUR_MS + np.arange(HOURS // 24, dtype=np.int64) * 86_400_000
    started, rows = time.perf_counter(), 0
    chunk = 50
    for lo in range(0, installations, chunk):
        part = ids[lo:lo + chunk]
        energy = np.stack([hourly_energy(rng, offsets[zones[lo + k]]) for k in range(len(part))])
        daily = energy.reshape(len(part), HOURS // 24, 24, -1).sum(axis=2)
        async with pool.acquire() as con:
            for resolution, buckets, values, samples in ((3_600, hours_ms, energy, 60),
                                                         (86_400, days_ms, daily, 1_440)):
                payload = copy_payload(part, resolution, buckets, values, samples)
                await con.copy_to_table("telemetry_rollups", source=_chunks(payload), columns=_COLUMNS,
                                        format="binary")
                rows += len(part) * len(buckets)
        console.print(f"  seeded {lo + len(part):,} / {installations:,} installations ({rows:,} rollup rows)",
                      end="\r")
    console.print()
    await pool.execute("ANALYZE telemetry_rollups")
    return rows, time.perf_counter() - started


# ------------------------------------------------------------ measuring

async def measure(runs: int, query: Callable[[int], Awaitable[object]]) -> list[float]:
    await query(0)  # warm-up: plans, connections
    latencies = []
    for run in range(1, runs + 1):
        started = time.perf_counter()
        await query(run)
        latencies.append(time.perf_counter() - started)
    return latencies


def figures(name: str, goal_ms: float | None, latencies: list[float]) -> list[str]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    median = statistics.median(ordered) * 1e3
    verdict = "" if goal_ms is None else ("met" if median < goal_ms else "MISSED")
    return [name, str(len(ordered)), f"{median:.1f}", f"{p95 * 1e3:.1f}",
            "" if goal_ms is None else f"< {goal_ms:.0f}", verdict]


async def main(settings: Settings, args: argparse.Namespace) -> None:
    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=4, init=init_connection)
    engine = create_engine(settings.postgres, pool_size=2)
    assert pool is not None
    try:
        console.print(f"[bold]seeding[/] {args.installations:,} installations × one year of hourly and daily "
                      "rollups (binary COPY straight into telemetry_rollups; raw samples and 1-/15-minute "
                      "rollups are not written: nothing measured reads them)")
        rows, seconds = await seed(pool, args.installations)
        console.print(f"  {rows:,} rollup rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)")
        analytics = Analytics(AnalyticsReader(pool))
        rng = np.random.default_rng(7)
        ids = [f"bench-{i:05d}" for i in range(args.installations)]
        day_list = [dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 366, args.runs + 1)]
        picks = [ids[int(i)] for i in rng.integers(0, len(ids), args.runs + 1)]

        async def year(run: int) -> object:
            sites = await analytics.reader.sites([picks[run]])
            result = await analytics.energy(sites, YEAR, TARIFF)
            assert len(result.report.days) == 366 and result.resolutions_s == (3_600,)
            return result

        async def group_day(run: int) -> object:
            sites = await analytics.reader.group_sites(GROUP)
            assert sites is not None and len(sites) == args.installations
            day = day_list[run]
            result = await analytics.energy(sites, LocalDates(day, day + dt.timedelta(days=1)), TARIFF)
            assert result.installations == args.installations
            return result

        results = [figures("installation-year, daily totals + TOU cost", 200, await measure(args.runs, year)),
                   figures(f"one day, {args.installations:,}-installation group", 500,
                           await measure(args.runs, group_day))]

        settings_api = settings.analytics.model_copy(update={"auth_cache_s": 60.0})
        token, principal = issue_token("bench", frozenset({Scope.READ}), (GroupPath("bench"),), None)
        await AssetRepository(engine).create_principal(principal, hashlib.sha256(token.encode()).digest(), "bench")
        metadata = (("authorization", f"Bearer {token}"),)
        async with AnalyticsApi(settings_api, pool, engine, max_gap_s=settings.ingest.max_gap_s) as api, \
                grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            stub = pb_grpc.AnalyticsServiceStub(channel)
            tariff = pb.Tariff(currency="USD", import_price_per_kwh=0.28, export_price_per_kwh=0.07, windows=[
                pb.TouWindow(start_minute=960, end_minute=1_260, import_price_per_kwh=0.48, weekdays=[1, 2, 3, 4, 5]),
                pb.TouWindow(start_minute=0, end_minute=420, import_price_per_kwh=0.16)])

            async def year_grpc(run: int) -> object:
                return await stub.GetEnergyReport(pb.EnergyReportRequest(
                    target=pb.Target(installation_id=picks[run]), tariff=tariff,
                    range=pb.TimeRange(dates=pb.LocalDateRange(first_date="2024-01-01", end_date="2025-01-01"))),
                    metadata=metadata)

            async def group_grpc(run: int) -> object:
                day = day_list[run]
                return await stub.GetEnergyReport(pb.EnergyReportRequest(
                    target=pb.Target(group_path=GROUP), tariff=tariff, range=pb.TimeRange(dates=pb.LocalDateRange(
                        first_date=day.isoformat(), end_date=(day + dt.timedelta(days=1)).isoformat()))),
                    metadata=metadata)

            results += [figures("  the same through gRPC", 200, await measure(args.runs, year_grpc)),
                        figures("  the same through gRPC", 500, await measure(args.runs, group_grpc))]

        x = np.arange(1_000_000, dtype=np.int64) * 1_000
        y = np.cumsum(rng.normal(0, 1, len(x)))

        async def downsample(_: int) -> object:
            kept = series.lttb(x, y, 2_000)
            assert len(kept) == 2_000
            return kept

        results.append(figures("LTTB 1,000,000 → 2,000 points", 50, await measure(max(args.runs, 30), downsample)))
    finally:
        await engine.dispose()
        await pool.close()

    table = Table(title="analytics (ms)")
    for column in ("query", "runs", "median", "p95", "goal", ""):
        table.add_column(column, justify="left" if column == "query" else "right")
    for row in results:
        table.add_row(*row)
    console.print(table)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--installations", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    run_service(main(bench_settings(), args))


if __name__ == "__main__":
    cli()
