"""`gridtwin weather`: zone geometries, feed ingest, active alerts, the WeatherService."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from gridtwin.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)
console = Console()
T = TypeVar("T")


def _run(work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    settings = Settings()

    async def main() -> T:
        pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=2)
        assert pool is not None
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


@app.command()
def serve() -> None:
    """Runs the WeatherService (gRPC, health, reflection) and the feed ingest loop in the foreground
    (GRIDTWIN_WEATHER__FEED_URL / __FEED_DIR name the feeds)."""
    from gridtwin import services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.weather(settings))


@app.command("load-zones")
def load_zones(path: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection or .shp of NWS zones")]) -> None:
    """Loads zone/county geometries (UGC code → area) for alerts that name zones only."""
    from services.weather import zones
    from services.weather.store import AlertStore

    loaded = zones.load_file(path)
    for error in loaded.errors[:20]:
        console.print(f"[yellow]skipped[/]: {error}")
    count = _run(lambda pool: AlertStore(pool).save_zones(loaded.zones, str(path)))
    console.print(f"loaded {count:,} zones ({len(loaded.errors)} skipped)")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="an alerts GeoJSON file or a folder of them")],
    now: Annotated[str, typer.Option(help="replay as of this ISO time: 'date:now' placeholders and the "
                                          "lifecycle (default: the feed's @saved, else now)")] = "",
) -> None:
    """Parses, normalizes and stores the alerts of feed files (rejections are listed)."""
    from services.weather import nws
    from services.weather.store import AlertStore

    files = sorted(path.glob("*.json")) if path.is_dir() else [path]

    async def work(pool: asyncpg.Pool) -> None:
        store = AlertStore(pool)
        zone_table = await store.load_zones()
        for file in files:
            body = file.read_bytes()
            at = dt.datetime.fromisoformat(now) if now else None
            try:
                at = at or nws.saved_at(body)
                parsed = nws.parse_feed(body, now=at or dt.datetime.now(dt.UTC), zones=zone_table,
                                        source=str(file))
            except (nws.FeedError, ValueError) as exc:
                console.print(f"[red]{file}[/]: {exc}")
                continue
            await store.record_rejections(parsed.rejections)
            # A replayed feed is applied as of its own time (else its alerts would be long expired).
            result = await store.ingest(parsed.alerts, at or dt.datetime.now(dt.UTC), str(file))
            console.print(f"{file.name}: {result.received} alerts, {result.duplicates} duplicates, "
                          f"{len(result.changes)} changes, {len(parsed.rejections)} rejected")
            for rejection in parsed.rejections[:10]:
                console.print(f"  [yellow]{rejection.alert_id}[/]: {rejection.reason}")

    _run(work)


@app.command()
def active() -> None:
    """Lists the active alerts."""
    from services.weather.store import AlertStore

    alerts = _run(lambda pool: AlertStore(pool).active())
    table = Table(title=f"{len(alerts)} active alerts")
    for column in ("event", "type", "severity", "onset", "end", "area (bbox)", "id"):
        table.add_column(column)
    for a in alerts:
        end = a.end.isoformat(timespec="minutes") if a.end else ""
        table.add_row(a.event, a.message_type.value, a.severity, a.start.isoformat(timespec="minutes"), end,
                      " ".join(f"{v:.2f}" for v in a.bbox), a.alert_id[-24:])
    console.print(table)
