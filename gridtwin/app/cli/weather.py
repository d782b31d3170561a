"""`gridtwin weather`: active alerts and the installations they affect (through the
WeatherService), and, on the platform's machine, loading zone geometries and feed files."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import asyncpg
import typer
from rich.console import Console

from gridtwin.app.cli import client, output
from gridtwin.app.cli.errors import USAGE, CliError
from gridtwin.app.cli.output import Format, OutputOption
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
def active(
    bbox: Annotated[str, typer.Option(help="only alerts touching MIN_LON,MIN_LAT,MAX_LON,MAX_LAT")] = "",
    limit: Annotated[int, typer.Option(min=0, help="at most this many (0: all)")] = 0,
    fmt: OutputOption = Format.table,
) -> None:
    """Lists the active alerts (WeatherService.ListActiveAlerts). An alert of unknown area (its
    zones not loaded) matches no installation and is marked as such."""
    from gridtwin.api.weather.v1 import weather_pb2 as pb
    from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc

    request = pb.ListActiveAlertsRequest(page_size=1_000)
    if bbox:
        try:
            west, south, east, north = (float(v) for v in bbox.split(","))
        except ValueError:
            raise CliError("--bbox: four numbers, MIN_LON,MIN_LAT,MAX_LON,MAX_LAT", USAGE) from None
        request.bbox.CopyFrom(pb.BoundingBox(min_longitude_deg=west, min_latitude_deg=south,
                                             max_longitude_deg=east, max_latitude_deg=north))
    with client.api("weather") as api:
        alerts = list(api.pages(pb_grpc.WeatherServiceStub(api.channel).ListActiveAlerts, request, "alerts",
                                limit=limit))
    rows = []
    for a_ in alerts:
        area = ("unknown, not matched (zones " + " ".join(a_.unresolved_zones[:4])
                + (" …" if len(a_.unresolved_zones) > 4 else "") + ")") if a_.area_unknown else \
            " ".join(f"{v:.2f}" for v in (a_.bbox.min_longitude_deg, a_.bbox.min_latitude_deg,
                                           a_.bbox.max_longitude_deg, a_.bbox.max_latitude_deg))
        rows.append({"event": a_.event, "type": pb.MessageType.Name(a_.message_type).removeprefix("MESSAGE_TYPE_")
                     .lower(), "severity": a_.severity, "onset": output.when(a_.onset_unix_ms),
                     "end": output.when(a_.ends_unix_ms or a_.expires_unix_ms), "area (bbox)": area,
                     "alert_id": a_.alert_id})
    output.emit(rows, ("event", "type", "severity", "onset", "end", "area (bbox)", "alert_id"), fmt,
                title=f"{len(rows)} active alerts", empty="0 active alerts")


@app.command()
def affected(
    alert_id: Annotated[str, typer.Argument(help="the alert (any message of its thread)")],
    page_size: Annotated[int, typer.Option(min=1, max=1_000, help="installations per page")] = 100,
    every_page: Annotated[bool, typer.Option("--all", help="every page, not only the first")] = False,
    fmt: OutputOption = Format.table,
) -> None:
    """The installations an alert affects, with their StormWatch state and the counts by state
    (WeatherService.ListAffectedInstallations: only installations within the token's groups)."""
    from gridtwin.api.weather.v1 import weather_pb2 as pb
    from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc

    request = pb.ListAffectedInstallationsRequest(alert_id=alert_id, page_size=page_size)
    with client.api("weather") as api:
        stub = pb_grpc.WeatherServiceStub(api.channel)
        reply = api.call(stub.ListAffectedInstallations, request, timeout_s=60)
        rows = list(reply.installations)
        while every_page and reply.next_page_token:
            request.page_token = reply.next_page_token
            reply = api.call(stub.ListAffectedInstallations, request, timeout_s=60)
            rows += reply.installations
    if reply.area_unknown:
        output.note(f"alert {alert_id}: area unknown (no polygon, zones not loaded): it affects no installation "
                    "until its zones are loaded (gridtwin weather load-zones)")
        output.emit([], ("installation_id", "stormwatch", "watched_alert_id", "until"), fmt)
        return
    name = {v.number: v.name.removeprefix("STORM_WATCH_STATE_").lower()
            for v in pb.StormWatchState.DESCRIPTOR.values}
    counts = ", ".join(f"{name[c.state]} {c.installations:,}" for c in reply.counts)
    output.note(f"alert {alert_id}: {reply.total:,} installations affected ({counts or 'none'})")
    output.emit([{"installation_id": r.installation_id, "stormwatch": name[r.state],
                  "watched_alert_id": r.watched_alert_id, "until": output.when(r.until_unix_ms)} for r in rows],
                ("installation_id", "stormwatch", "watched_alert_id", "until"), fmt)
    if reply.next_page_token:
        output.note(f"{len(rows)} shown; --all for every page")
