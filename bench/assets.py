"""Assets benchmark on this machine: 100,000 installations in real PostGIS.

    python -m bench.assets [--installations 100000] [--runs 200] [--grpc-runs 50]

Seeds a fleet with the demo generator over a fresh database of its own (gridtwin_bench_assets):
customers, installations, utility and region hierarchies, one gateway device each, and every
installation in one VPP program (`program.bench_vpp`, in eligible/pending/enrolled) — written
by the bulk loader's binary COPY path. Then, one query at a time, it measures:

1. bounding-box search (`location && envelope` on the GiST index), city-sized (0.2°) and
   storm-sized (1°) boxes around random installations, for an all-groups token and for a token
   limited to one utility (the `path <@ ANY(allowed)` filter);
2. group resolution: every member of the 100,000-member program (`path <@ program`, GiST), and
   the same walked in 10,000-id pages as ListGroupInstallations serves it;
3. groups of an installation (`group @> membership`) for random installations;

through the repository (SQL and row decoding), and the same three through the gRPC API
(protobuf, a loopback channel). Prints median and p99 latency per query and rows/s (rows
returned over the total time of all runs).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bench.common import fresh_database
from gridtwin.api.assets.v1 import assets_pb2 as pb
from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc
from gridtwin.observability import run_service
from gridtwin.settings import Settings
from services.access.model import Scope, Visibility
from services.access.service_tokens import issue_token
from services.assets import bulk
from services.assets.api import AssetApi
from services.assets.database import create_engine
from services.assets.model import GroupPath
from services.assets.repository import AssetRepository
from services.assets.seed import FleetPlan, demo_fleet
from services.assets.validation import Box

console = Console(width=130)
PROGRAM = GroupPath("program.bench_vpp")


def bench_settings() -> Settings:
    base = Settings()
    settings = base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench_assets"),
        "assets": base.assets.model_copy(update={"port": 0, "metrics_port": 0}),
    })
    return settings


@dataclass
class Result:
    name: str
    latencies_s: list[float]
    rows: list[int]

    def row(self) -> list[str]:
        ordered = sorted(self.latencies_s)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        rate = sum(self.rows) / sum(self.latencies_s)
        return [self.name, str(len(ordered)), f"{statistics.median(self.rows):,.0f}",
                f"{statistics.median(ordered) * 1e3:.2f}", f"{p99 * 1e3:.2f}", f"{rate:,.0f}"]


async def measure(name: str, runs: int, query: Callable[[int], Awaitable[int]]) -> Result:
    await query(0)  # warm-up: plans, caches, connections
    latencies, rows = [], []
    for run in range(runs):
        started = time.perf_counter()
        rows.append(await query(run))
        latencies.append(time.perf_counter() - started)
    console.print(f"  {name}: done")
    return Result(name, latencies, rows)


def boxes(centers: list[tuple[float, float]], size_deg: float) -> list[Box]:
    half = size_deg / 2
    return [Box(lon - half, lat - half, lon + half, lat + half) for lon, lat in centers]


async def repository_queries(repo: AssetRepository, ids: Sequence[str], centers: list[tuple[float, float]],
                             pge_centers: list[tuple[float, float]], runs: int) -> list[Result]:
    everything, pge = Visibility(everything=True), Visibility(paths=(GroupPath("utility.pge"),))
    city, storm, pge_storm = boxes(centers, 0.2), boxes(centers, 1.0), boxes(pge_centers, 1.0)

    def box_search(candidates: list[Box], vis: Visibility) -> Callable[[int], Awaitable[int]]:
        async def query(run: int) -> int:
            return len((await repo.search_box(candidates[run % len(candidates)], vis, 100_000)).items)
        return query

    async def resolve(_: int) -> int:
        return len(await repo.all_group_installations(PROGRAM))

    async def walk(_: int) -> int:
        total, after = 0, ""
        while True:
            page = await repo.group_installations(PROGRAM, 10_000, after)
            total += len(page.items)
            if not page.next_page_token:
                return total
            after = page.next_page_token

    async def groups_of(run: int) -> int:
        return len(await repo.installation_groups(ids[run % len(ids)], everything))

    return [
        await measure("bbox 0.2° (all groups)", runs, box_search(city, everything)),
        await measure("bbox 1° (all groups)", runs, box_search(storm, everything)),
        await measure("bbox 1° around PG&E sites (token: utility.pge)", runs, box_search(pge_storm, pge)),
        await measure("program members, one query", max(runs // 10, 5), resolve),
        await measure("program members, 10k pages", max(runs // 10, 5), walk),
        await measure("groups of an installation", runs, groups_of),
    ]


async def grpc_queries(api: AssetApi, token: str, ids: Sequence[str], centers: list[tuple[float, float]],
                       runs: int) -> list[Result]:
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}",
                                         options=[("grpc.max_receive_message_length", 64 * 2**20)]) as channel:
        stub = pb_grpc.AssetServiceStub(channel)
        storm = boxes(centers, 1.0)

        async def box_search(run: int) -> int:
            box, total, token_ = storm[run % len(storm)], 0, ""
            while True:
                answer = await stub.SearchInstallationsInBox(pb.SearchInstallationsInBoxRequest(
                    min_longitude_deg=box.min_longitude_deg, min_latitude_deg=box.min_latitude_deg,
                    max_longitude_deg=box.max_longitude_deg, max_latitude_deg=box.max_latitude_deg,
                    page_size=10_000, page_token=token_), metadata=metadata)
                total += len(answer.installations)
                token_ = answer.next_page_token
                if not token_:
                    return total

        async def walk(_: int) -> int:
            total, token_ = 0, ""
            while True:
                answer = await stub.ListGroupInstallations(pb.ListGroupInstallationsRequest(
                    path=PROGRAM, page_size=10_000, page_token=token_), metadata=metadata)
                total += len(answer.installation_ids)
                token_ = answer.next_page_token
                if not token_:
                    return total

        async def groups_of(run: int) -> int:
            answer = await stub.ListInstallationGroups(pb.ListInstallationGroupsRequest(
                installation_id=ids[run % len(ids)]), metadata=metadata)
            return len(answer.groups)

        return [
            await measure("gRPC SearchInstallationsInBox 1°", runs, box_search),
            await measure("gRPC ListGroupInstallations (program)", max(runs // 10, 5), walk),
            await measure("gRPC ListInstallationGroups", runs, groups_of),
        ]


async def main(settings: Settings, args: argparse.Namespace) -> None:
    engine = create_engine(settings.postgres)
    try:
        plan = FleetPlan(installations=args.installations, seed=42, prefix="bench", program=PROGRAM,
                         program_name="Bench VPP", program_states=None, program_share=1.0)
        started = time.perf_counter()
        data = demo_fleet(plan)
        generated = time.perf_counter()
        loaded = await bulk.load(engine, data, actor="bench", reason="bench fleet")
        seconds = time.perf_counter() - generated
        async with engine.begin() as con:  # committed: statistics written in a rolled-back transaction vanish
            await con.execute(text("ANALYZE"))
        rows = (loaded.customers + loaded.installations + loaded.memberships + loaded.enrollments + loaded.devices
                + loaded.audit_entries)
        console.print(f"seeded {loaded.installations:,} installations ({loaded.enrollments:,} in {PROGRAM}, "
                      f"{loaded.memberships:,} other memberships, {loaded.devices:,} devices, "
                      f"{loaded.audit_entries:,} audit entries): generated in {generated - started:.1f} s, "
                      f"loaded in {seconds:.1f} s ({rows / seconds:,.0f} rows/s, one transaction, COPY)")

        rng = random.Random(7)
        sample = rng.sample(list(data.installations), 1_000)
        ids = [i.installation_id for i in sample]
        centers = [(i.location.longitude_deg, i.location.latitude_deg) for i in sample if i.location is not None]
        pge_centers = [(i.location.longitude_deg, i.location.latitude_deg) for i in sample
                       if i.location is not None and i.utility == "Pacific Gas and Electric"]
        repo = AssetRepository(engine)
        console.print("[bold]repository[/] (SQL + row decoding, one query at a time)")
        results = await repository_queries(repo, ids, centers, pge_centers, args.runs)

        token, principal = issue_token("bench", frozenset({Scope.READ}), (GroupPath(""),), None)
        await repo.create_principal(principal, hashlib.sha256(token.encode()).digest(), "bench")
        console.print("[bold]gRPC[/] (loopback, protobuf, auth; one call at a time)")
        async with AssetApi(settings.assets, engine) as api:
            results += await grpc_queries(api, token, ids, centers, args.grpc_runs)
    finally:
        await engine.dispose()

    table = Table(title=f"assets, {args.installations:,} installations")
    for column in ("query", "runs", "rows/query (median)", "median ms", "p99 ms", "rows/s"):
        table.add_column(column, justify="left" if column == "query" else "right")
    for result in results:
        table.add_row(*result.row())
    console.print(table)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--installations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200, help="runs of each short query (long ones: a tenth)")
    parser.add_argument("--grpc-runs", type=int, default=50)
    args = parser.parse_args()
    run_service(main(bench_settings(), args))


if __name__ == "__main__":
    cli()
