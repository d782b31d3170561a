"""`gridtwin weather`: zone geometries, feed ingest, active alerts, the WeatherService."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import asyncpg
import grpc
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
    from gridtwin.app import wiring as services

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

    async def work(pool: asyncpg.Pool) -> tuple[int, int]:
        store = AlertStore(pool)
        count = await store.save_zones(loaded.zones, str(path))
        # Active alerts stored before their zones were known get their area now (and StormWatch acts).
        resolved = await store.resolve_zones(await store.load_zones(), dt.datetime.now(dt.UTC))
        return count, len(resolved)

    count, resolved = _run(work)
    console.print(f"loaded {count:,} zones ({len(loaded.errors)} skipped); "
                  f"{resolved} active alert(s) of unknown area now have one")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="an alerts GeoJSON file or a folder of them")],
    now: Annotated[str, typer.Option(help="the ISO time 'date:now' placeholders of a recorded feed stand for "
                                          "(default: the feed's @saved, else now)")] = "",
) -> None:
    """Parses, normalizes and stores the alerts of feed files (rejections are listed). The lifecycle
    runs on the real clock: an alert whose end has passed (a feed replayed with an old --now) is
    stored as expired, and the output says how many were."""
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
            # The real clock, not --now: an alert that is over must never become active (and charge batteries).
            result = await store.ingest(parsed.alerts, dt.datetime.now(dt.UTC), str(file))
            console.print(f"{file.name}: {result.received} alerts, {result.duplicates} duplicates, "
                          f"{len(result.changes)} changes, {len(parsed.rejections)} rejected")
            if result.expired:
                console.print(f"  {result.expired} already over: stored as expired (their end has passed)")
            if result.area_unknown:
                console.print(f"  {result.area_unknown} with unknown area: stored, matched to no installation "
                              "until their zones are loaded (gridtwin weather load-zones)")
            for rejection in parsed.rejections[:10]:
                console.print(f"  [yellow]{rejection.alert_id}[/]: {rejection.reason}")

    _run(work)


@app.command()
def active() -> None:
    """Lists the active alerts (recording first, as the weather service's sweep does, the expiry of
    those whose end has passed). An alert of unknown area (zones not loaded) is marked as such."""
    from services.weather.model import Alert
    from services.weather.store import AlertStore

    async def work(pool: asyncpg.Pool) -> tuple[int, list[Alert]]:
        store = AlertStore(pool)
        ended = await store.expire(dt.datetime.now(dt.UTC))
        return len(ended), await store.active()

    expired, alerts = _run(work)
    if expired:
        console.print(f"recorded {expired} alert(s) expired (their end has passed)")
    table = Table(title=f"{len(alerts)} active alerts")
    for column in ("event", "type", "severity", "onset", "end", "area (bbox)", "id"):
        table.add_column(column)
    for a in alerts:
        end = a.end.isoformat(timespec="minutes") if a.end else ""
        area = (" ".join(f"{v:.2f}" for v in a.bbox) if a.bbox is not None
                else f"[yellow]unknown, not matched[/] (zones {' '.join(a.unresolved_zones[:4])}"
                     f"{' …' if len(a.unresolved_zones) > 4 else ''})")
        table.add_row(a.event, a.message_type.value, a.severity, a.start.isoformat(timespec="minutes"), end,
                      area, a.alert_id[-24:])
    console.print(table)


@app.command()
def affected(
    alert_id: Annotated[str, typer.Argument(help="the alert (any message of its thread)")],
    token: Annotated[str, typer.Option(envvar="GRIDTWIN_TOKEN", help="an AssetService token (read scope)")],
    page_size: Annotated[int, typer.Option(help="installations per page (at most 1,000)")] = 100,
    every_page: Annotated[bool, typer.Option("--all", help="every page, not only the first")] = False,
) -> None:
    """The installations an alert affects, with their StormWatch state and the counts by state
    (WeatherService.ListAffectedInstallations: only installations within the token's groups)."""
    from gridtwin.api.weather.v1 import weather_pb2 as pb
    from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc
    from gridtwin.tls import channel as grpc_channel

    settings = Settings()
    request = pb.ListAffectedInstallationsRequest(alert_id=alert_id, page_size=page_size)
    with grpc_channel(f"{settings.weather.host}:{settings.weather.port}", settings.tls) as channel:
        stub = pb_grpc.WeatherServiceStub(channel)
        metadata = [("authorization", f"Bearer {token}")]
        try:
            reply = stub.ListAffectedInstallations(request, metadata=metadata, timeout=60)
            rows = list(reply.installations)
            while every_page and reply.next_page_token:
                request.page_token = reply.next_page_token
                reply = stub.ListAffectedInstallations(request, metadata=metadata, timeout=60)
                rows += reply.installations
        except grpc.RpcError as error:
            console.print(f"[red]{error.code().name}[/]: {error.details()}")  # type: ignore[attr-defined]
            raise typer.Exit(1) from None
    if reply.area_unknown:
        console.print(f"alert {alert_id}: area unknown (no polygon, zones not loaded): it affects no installation "
                      "until its zones are loaded (gridtwin weather load-zones)")
        return
    name = {v.number: v.name.removeprefix("STORM_WATCH_STATE_").lower()
            for v in pb.StormWatchState.DESCRIPTOR.values}
    counts = ", ".join(f"{name[c.state]} {c.installations:,}" for c in reply.counts)
    console.print(f"alert {alert_id}: {reply.total:,} installations affected ({counts or 'none'})")
    table = Table()
    for column in ("installation", "stormwatch", "watched message", "until"):
        table.add_column(column)
    for r in rows:
        until = dt.datetime.fromtimestamp(r.until_unix_ms / 1_000, dt.UTC).isoformat(timespec="minutes") \
            if r.until_unix_ms else ""
        table.add_row(r.installation_id, name[r.state], r.watched_alert_id[-24:], until)
    console.print(table)
    if reply.next_page_token:
        console.print(f"{len(rows)} shown; --all for every page")
