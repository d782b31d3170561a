"""`gridtwin control`: the ControlService process, and commands from the shell."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridtwin.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)
console = Console()


@app.command()
def serve() -> None:
    """Runs the ControlService (gRPC, health, reflection), the dispatcher and the acknowledgement
    consumer in the foreground."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.control(settings))


@app.command()
def progress(fanout_id: Annotated[str, typer.Argument(help="The fan-out id")]) -> None:
    """Counts by state and failures of a fan-out."""
    from gridtwin.db import create_pool
    from services.control.service import Control
    from services.control.store import CommandStore

    async def main() -> None:
        pool = await create_pool(Settings().postgres)
        try:
            p = await Control(CommandStore(pool)).progress(fanout_id)
        finally:
            await pool.close()
        table = Table(title=f"fan-out {p.fanout_id} ({p.group_path or p.source})")
        table.add_column("state")
        table.add_column("commands", justify="right")
        for state, n in sorted(p.counts.items()):
            table.add_row(state.value, str(n))
        console.print(table)
        console.print(f"total {p.total}, completed {p.completed}, done: {p.done}")
        for f in p.failures:
            console.print(f"  {f.device_id} ({f.installation_id}): {f.state.value} — {f.detail}")

    asyncio.run(main())


@app.command()
def charge(
    group: Annotated[str, typer.Argument(help="ltree group path, e.g. utility.pge")],
    target: Annotated[float, typer.Option(help="state of charge to reach, %")] = 100.0,
    minutes: Annotated[float, typer.Option(help="reach it within this many minutes")] = 60.0,
    ttl_s: Annotated[float, typer.Option(help="time to live of the commands")] = 600.0,
) -> None:
    """Sends a charge-to plan to every installation of a group (a fan-out) and prints its id."""
    from gridtwin.db import create_pool
    from services.control.model import ChargeTo, ControlPlan, PlanStep
    from services.control.service import Control
    from services.control.store import CommandStore

    async def main() -> None:
        pool = await create_pool(Settings().postgres)
        try:
            now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            plan = ControlPlan((PlanStep(now_ms, now_ms + int(minutes * 60_000), ChargeTo(target)),))
            fanout_id, total, _ = await Control(CommandStore(pool)).submit_group(group, plan, ttl_s=ttl_s,
                                                                                 source="operator")
        finally:
            await pool.close()
        console.print(f"fan-out {fanout_id}: {total} commands")

    asyncio.run(main())
