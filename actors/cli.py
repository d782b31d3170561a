"""`gridtwin twins …`: the twin runtime process and operator commands."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from gridtwin.settings import Settings

app = typer.Typer(help="The digital twins on Ray: the runtime process, shard layout, statistics.", no_args_is_help=True)


@app.command("serve")
def serve() -> None:
    """Runs the twin runtime (coordinator, shards, supervision) and the TwinService gRPC API."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.twins(settings))


@app.command("reshard")
def reshard(shards: Annotated[int, typer.Option(help="The new number of shard actors")]) -> None:
    """Moves every twin to a layout of N shards without losing state (the old shards snapshot
    their twins and stop; the new ones recover them)."""
    from actors.runtime.cluster import start_runtime

    async def run() -> None:
        runtime = await start_runtime(Settings())
        await runtime.router.reshard(shards)
        typer.echo(f"layout: epoch {runtime.router.epoch}, {runtime.router.count} shards")

    asyncio.run(run())


@app.command("stats")
def stats() -> None:
    """Per shard: resident twins, samples, alert changes, snapshots, memory."""
    from actors.runtime.cluster import start_runtime

    async def run() -> None:
        runtime = await start_runtime(Settings())
        for shard in await runtime.router.stats():
            typer.echo(json.dumps(shard))

    asyncio.run(run())
