"""Weather benchmark: which of 100,000 installations a hurricane covers, two steps vs one query.

    python -m bench.weather [--installations 100000] [--vertices 1200] [--runs 30]

Seeds installations by binary COPY into a fresh database of its own (gridtwin_bench_weather):
a third spread over the US east and south, two thirds around southern Florida where the storm
lands. The storm is a hurricane-like MultiPolygon (a ragged spiral body of `--vertices` vertices
with an eye as a hole, plus an outer rain band). Then, each `--runs` times after a warm-up:

- **two steps**: `location && envelope` per polygon part in PostGIS (GiST index only), then
  Shapely 2 `intersects_xy` on the prepared polygon over the candidates' coordinates, and
  PostGIS's verdict for the (usually zero) candidates within 1e-9° of the boundary
  (services/weather/matching.py);
- **direct**: `ST_Intersects(location, polygon)` in PostGIS.

Prints the median and p90 end-to-end time of each (query, transfer, decoding, refinement), the
database execution time of each query from `EXPLAIN (ANALYZE, FORMAT JSON)`, and whether the
two sets are identical (they must be).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg
import shapely
from rich.console import Console
from rich.table import Table

from bench.common import fresh_database
from gridtwin.observability import run_service
from gridtwin.settings import Settings
from services.weather import matching
from tests.weather_data import hurricane

console = Console(width=130)


def bench_settings() -> Settings:
    base = Settings()
    settings = base.model_copy(update={"postgres": fresh_database(base.postgres, "gridtwin_bench_weather")})
    return settings


async def seed(pool: asyncpg.Pool, count: int, storm: shapely.Geometry) -> float:
    rng = random.Random(42)
    x0, y0, x1, y1 = storm.bounds
    rows = []
    for i in range(count):
        if i % 3 == 0:
            lon, lat = rng.uniform(-98, -75), rng.uniform(25, 40)
        else:
            lon, lat = rng.uniform(x0 - 1, x1 + 1), rng.uniform(y0 - 1, y1 + 1)
        rows.append((f"bench-{i:06d}", lon, lat))
    started = time.perf_counter()
    async with pool.acquire() as con, con.transaction():
        await con.execute("CREATE TEMP TABLE stage (installation_id text, lon float8, lat float8) ON COMMIT DROP")
        await con.copy_records_to_table("stage", records=rows)
        await con.execute("""INSERT INTO installations (installation_id, location)
                             SELECT installation_id, ST_SetSRID(ST_MakePoint(lon, lat), 4326) FROM stage""")
    await pool.execute("ANALYZE installations")
    return time.perf_counter() - started


async def timed(runs: int, fn: Callable[[], Awaitable[list[str]]]) -> tuple[list[float], list[str]]:
    result = await fn()   # warm-up: plans, caches, connections
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - started)
    return times, result


async def explain_ms(pool: asyncpg.Pool, sql: str, *args: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs + 1):
        plan = json.loads(await pool.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args))
        times.append(plan[0]["Execution Time"])
    return statistics.median(times[1:])


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


async def main(settings: Settings, args: argparse.Namespace) -> None:
    storm = hurricane(vertices=args.vertices)
    wkt = shapely.to_wkt(storm, rounding_precision=-1)
    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=2)
    assert pool is not None
    try:
        seconds = await seed(pool, args.installations, storm)
        console.print(f"seeded {args.installations:,} installations by COPY in {seconds:.1f} s; storm: "
                      f"{shapely.get_num_coordinates(storm):,} vertices, {len(storm.geoms)} polygons, "
                      f"{len(storm.geoms[0].interiors)} hole")

        async def two_step() -> list[str]:
            return list(await matching.affected(pool, shapely.from_wkt(wkt), wkt))

        async def direct() -> list[str]:
            return list(await matching.affected_direct(pool, wkt))

        two_times, two_ids = await timed(args.runs, two_step)
        direct_times, direct_ids = await timed(args.runs, direct)
        found = await matching.candidates(pool, storm)
        refined = matching.refine(storm, found)
        boxes = matching.envelopes(storm)
        db_two = await explain_ms(pool, matching.candidates_sql(len(boxes)), *(v for b in boxes for v in b))
        db_direct = await explain_ms(pool, matching.DIRECT_SQL, wkt)
        started = time.perf_counter()
        matching.refine(storm, found)
        refine_ms = (time.perf_counter() - started) * 1e3
    finally:
        await pool.close()

    identical = sorted(two_ids) == sorted(direct_ids)
    table = Table(title=f"weather matching, {args.installations:,} installations, "
                        f"{shapely.get_num_coordinates(storm):,}-vertex storm")
    for column in ("method", "installations", "median ms (end to end)", "p90 ms", "database ms (EXPLAIN ANALYZE)"):
        table.add_column(column, justify="left" if column == "method" else "right")
    table.add_row("two steps (&& bbox → Shapely)", f"{len(two_ids):,}", f"{statistics.median(two_times) * 1e3:.1f}",
                  f"{p90(two_times) * 1e3:.1f}", f"{db_two:.1f}")
    table.add_row("direct ST_Intersects", f"{len(direct_ids):,}", f"{statistics.median(direct_times) * 1e3:.1f}",
                  f"{p90(direct_times) * 1e3:.1f}", f"{db_direct:.1f}")
    console.print(table)
    console.print(f"candidates from the index: {len(found):,}; refinement alone {refine_ms:.1f} ms; "
                  f"boundary cases sent to PostGIS: {len(refined.boundary)}")
    console.print(f"identical sets: {'[green]yes[/]' if identical else '[red]NO[/]'}; database time "
                  f"{db_direct / db_two:.1f}× lower with two steps; end to end two steps / direct = "
                  f"{statistics.median(two_times) / statistics.median(direct_times):.2f}")
    if not identical:
        raise SystemExit("two-step and direct sets differ")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--installations", type=int, default=100_000)
    parser.add_argument("--vertices", type=int, default=1_200)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    run_service(main(bench_settings(), args))


if __name__ == "__main__":
    cli()
