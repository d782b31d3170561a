"""Fault report: each case against the real services as processes, what was injected and what was
lost or duplicated (goal: nothing).

    python -m bench.faults [--devices 1000] [--storm-devices 10000] [--cases gateway,ingest,…]

Cases, in this order: gateway (kill -9 of the gateway while devices stream), ingest (kill -9 of
one of two ingest members mid-batch), postgres (restart of a fault-owned Postgres cluster under
load), broker (kill -9 and restart of a fault-owned durable broker), shard (a twin shard's
process SIGKILLed), poller (the StormWatch weather poller singleton SIGKILLed, callers racing to
bring it back), storm (N devices lose their gateway at once and reconnect), commands (one plan
per device in flight while the gateway is killed).

After each: the simulator's ledger against telemetry_samples (exactly once per device and
timestamp) and the 1-minute rollups; every twin's applied count against the store and its state
and alerts against the pure model replayed over the stored samples; commands acknowledged and
executed at most once on the devices.

Uses its own database (gridtwin_bench_faults), topics, Ray head, and for the postgres and broker
cases a Postgres cluster (`gridtwin_faults`, own port) and a durable broker of its own: the
shared cluster on 55432 and broker on 9092 are never restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from bench import fault_cases as cases
from bench.common import fresh_database
from bench.fault_rig import Rig, fault_broker, fault_postgres, isolated_kafka, run_suffix, running_rig
from gridtwin.app import infra
from gridtwin.observability import run_service
from gridtwin.settings import Settings

console = Console(width=160)

ALL_CASES = ("gateway", "ingest", "postgres", "broker", "shard", "poller", "storm", "commands")


def base_settings(suffix: str) -> Settings:
    base = Settings()
    return base.model_copy(update={"kafka": isolated_kafka(base.kafka, suffix)})


async def run_case(name: str, args: argparse.Namespace, var_root: Path) -> cases.CaseResult:
    suffix = run_suffix()
    settings = base_settings(suffix)
    var_dir = var_root / name
    var_dir.mkdir(parents=True, exist_ok=True)
    n = args.devices

    async def on_shared_cluster(case: Callable[[Rig, asyncpg.Pool], Awaitable[cases.CaseResult]], *,
                                control: bool = False, weather: bool = False) -> cases.CaseResult:
        pg = await asyncio.to_thread(fresh_database, settings.postgres, "gridtwin_bench_faults", pool_max_size=4)
        infra.ensure_broker(settings.kafka, settings.var_dir)
        async with running_rig(settings.model_copy(update={"postgres": pg}), var_dir, control=control,
                               weather=weather) as (rig, pool):
            return await case(rig, pool)

    if name == "gateway":
        return await on_shared_cluster(lambda rig, pool: cases.gateway_kill(rig, pool, n))
    if name == "ingest":
        return await on_shared_cluster(lambda rig, pool: cases.ingest_kill(rig, pool, n))
    if name == "shard":
        return await on_shared_cluster(lambda rig, pool: cases.shard_kill(rig, pool, n))
    if name == "poller":
        return await on_shared_cluster(lambda rig, pool: cases.poller_kill(rig), weather=True)
    if name == "storm":
        return await on_shared_cluster(lambda rig, pool: cases.reconnect_storm(rig, pool, args.storm_devices))
    if name == "commands":
        return await on_shared_cluster(lambda rig, pool: cases.commands_during_gateway_kill(rig, pool, n),
                                       control=True)
    if name == "postgres":
        infra.ensure_broker(settings.kafka, settings.var_dir)
        owned = fault_postgres(settings.postgres, "gridtwin_faults")
        pg = await asyncio.to_thread(owned.__enter__)
        try:
            async with running_rig(settings.model_copy(update={"postgres": pg}), var_dir) as (rig, pool):
                return await cases.postgres_restart(rig, pool, n)
        finally:
            owned.__exit__(None, None, None)
    if name == "broker":
        pg = await asyncio.to_thread(fresh_database, settings.postgres, "gridtwin_bench_faults", pool_max_size=4)
        with fault_broker(settings.kafka, var_dir) as kafka:
            durable = Settings.model_validate({**settings.model_dump(), "postgres": pg.model_dump(),
                                                "kafka": kafka.model_dump(), "ingest": {}})
            async with running_rig(durable, var_dir) as (rig, pool):
                return await cases.broker_restart(rig, pool, n)
    raise ValueError(f"unknown case {name!r}; known: {', '.join(ALL_CASES)}")


def _figures(result: cases.CaseResult) -> str:
    parts = [f"{k}={v}" for k, v in result.figures.items()]
    if result.twins is not None:
        parts.append(f"twins={result.twins.twins} (model mismatches {result.twins.model_mismatches})")
    if result.alerts is not None:
        a = result.alerts
        parts.append(f"alerts stored {a.stored} of {a.expected} ({a.cleared} cleared)")
    if result.commands is not None:
        c = result.commands
        parts.append(f"commands acked={c.acknowledged}/{c.submitted} redelivered={c.redelivered}")
    return ", ".join(parts)


def print_report(results: list[cases.CaseResult]) -> None:
    table = Table(title="gridtwin faults: what was injected, what was lost or duplicated", show_lines=True)
    for column in ("case", "injected", "samples generated", "stored", "lost", "duplicated", "verdict", "figures"):
        table.add_column(column, overflow="fold")
    for r in results:
        s = r.samples
        table.add_row(r.case, r.injected, f"{s.generated:,}" if s else "–", f"{s.stored:,}" if s else "–",
                      str(r.lost()), str(r.duplicated()), "[green]ok[/]" if r.ok else "[red]FAILED[/]", _figures(r))
    console.print(table)


async def main(args: argparse.Namespace) -> int:
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    var_root = Path(tempfile.mkdtemp(prefix="gridtwin-bench-faults-"))
    results: list[cases.CaseResult] = []
    for name in names:
        console.print(f"[bold]{name}[/] …")
        started = time.monotonic()
        result = await run_case(name, args, var_root)
        console.print(f"  {result.case}: lost {result.lost()}, duplicated {result.duplicated()}, "
                      f"{'ok' if result.ok else 'FAILED'} ({time.monotonic() - started:.0f} s) {_figures(result)}")
        results.append(result)
    print_report(results)
    console.print(f"logs: {var_root}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1_000, help="devices streaming at 1 Hz in each case")
    parser.add_argument("--storm-devices", type=int, default=10_000, help="devices in the reconnect storm")
    parser.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma-separated, of {', '.join(ALL_CASES)}")
    raise SystemExit(run_service(main(parser.parse_args())))
