"""`gridtwin assets …`: serve the AssetService, import installations, seed a demo fleet, issue tokens.

Run after `gridtwin infra up` (or `gridtwin migrate`): the commands expect the schema in place.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from gridtwin.app.cli import client, output
from gridtwin.app.cli.errors import USAGE, CliError
from gridtwin.app.cli.output import Format, OutputOption
from gridtwin.settings import Settings
from services.assets.errors import AssetError

if TYPE_CHECKING:  # keeps `gridtwin …` startup free of SQLAlchemy
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(help=__doc__, no_args_is_help=True)
token_app = typer.Typer(help="API tokens (scopes and allowed group paths).", no_args_is_help=True)
app.add_typer(token_app, name="token")
device_app = typer.Typer(help="Device credentials.", no_args_is_help=True)
app.add_typer(device_app, name="device")
console = Console()
T = TypeVar("T")


def _run(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    from services.assets.database import create_engine

    async def main() -> T:
        engine = create_engine(settings.postgres)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except AssetError as error:
        console.print(f"[red]refused[/]: {error}")
        raise typer.Exit(1) from None


@app.command()
def serve() -> None:
    """Runs the AssetService (gRPC, health, reflection) in the foreground."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.assets(settings))


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or GeoJSON file")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or geojson (default: from the suffix)")] = None,
) -> None:
    """Imports installations (with customers and group memberships) into the
    database on this machine; all rows or none (every bad row is listed: row
    number, field, reason). Existing installations are updated.

    \b
    CSV: a header row, then one installation per row. Columns:
      installation_id              required
      longitude, latitude          degrees (WGS 84), required
      time_zone                    IANA, e.g. America/Los_Angeles, required
      customer_id, customer_name, customer_email
      address, utility
      battery_nominal_energy_wh, max_charge_power_w, max_discharge_power_w
      backup_reserve_pct           0-100, default 20
      stormwatch_enabled           true/false, default true
      priority                     stormwatch_first (default) or vpp_first
      groups                       paths, ";"-separated: utility.pge;region.us.ca

    GeoJSON: a FeatureCollection of Point features (longitude, latitude)
    whose properties carry the same fields (groups: a list or ";"-separated).
    Program groups are refused (enrollment goes through the AssetService)."""
    from services.assets import bulk, importer

    try:
        data = importer.read(file, fmt)
    except AssetError as error:
        console.print(f"[red]refused[/]: {error}")
        raise typer.Exit(1) from None
    started = time.perf_counter()
    result = _run(Settings(), lambda engine: bulk.load(engine, data, actor="cli:import", reason=f"import {file.name}"))
    console.print(f"imported {result.installations} installations, {result.customers} customers, "
                  f"{result.memberships} new memberships in {time.perf_counter() - started:.1f} s")


@app.command()
def seed(
    installations: Annotated[int, typer.Option(min=1, help="Installations to create")] = 10_000,
    seed_: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same fleet)")] = 1,
    prefix: Annotated[str, typer.Option(help="Id prefix, as `gridtwin simulate --prefix`")] = "demo",
) -> None:
    """Seeds a demo fleet over several utilities and regions with a VPP program (idempotent)."""
    from services.assets import bulk
    from services.assets.seed import FleetPlan, demo_fleet

    settings = Settings()
    started = time.perf_counter()
    data = demo_fleet(FleetPlan(installations=installations, seed=seed_, prefix=prefix,
                                fleet_secret=settings.simulator.fleet_secret))
    result = _run(settings, lambda engine: bulk.load(engine, data, actor="cli:seed", reason="demo fleet"))
    console.print(f"seeded {result.installations} installations, {result.devices} devices, "
                  f"{result.enrollments} new enrollments in {data.programs[0].path} "
                  f"in {time.perf_counter() - started:.1f} s")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Who or what holds the token")],
    scope: Annotated[list[str], typer.Option(help="read, command or admin (repeatable)")],
    path: Annotated[list[str], typer.Option(help='Allowed group path (repeatable); "" = every group')],
    expires_days: Annotated[float | None, typer.Option(help="Lifetime in days (default: no expiry)")] = None,
) -> None:
    """Creates an API token and prints it once (only its SHA-256 is stored)."""
    from services.access.model import Scope
    from services.access.service_tokens import issue_token
    from services.assets.paths import parse_path
    from services.assets.repository import AssetRepository

    try:
        scopes = frozenset(Scope(s) for s in scope)
        allowed = tuple(parse_path(p, "path", allow_root=True) for p in path)
    except (ValueError, AssetError) as error:
        console.print(f"[red]refused[/]: {error}")
        raise typer.Exit(1) from None
    expires_ms = int((time.time() + expires_days * 86_400) * 1_000) if expires_days else None
    token, principal = issue_token(name, scopes, allowed, expires_ms)
    digest = hashlib.sha256(token.encode()).digest()
    _run(Settings(), lambda engine: AssetRepository(engine).create_principal(principal, digest, "cli"))
    expiry = dt.datetime.fromtimestamp(expires_ms / 1_000, dt.UTC).isoformat() if expires_ms else "never"
    console.print(f"principal {principal.principal_id} (scopes {', '.join(sorted(scopes))}; "
                  f"paths {', '.join(repr(p) for p in allowed)}; expires {expiry})")
    print(token)


@token_app.command("revoke")
def token_revoke(principal_id: Annotated[str, typer.Argument()]) -> None:
    """Revokes a token (servers notice within their auth cache time)."""
    from services.assets.repository import AssetRepository

    async def revoke(engine: AsyncEngine) -> None:
        repository = AssetRepository(engine)
        await repository.principal(principal_id)
        await repository.revoke_principal(principal_id)

    _run(Settings(), revoke)
    console.print(f"revoked {principal_id}")


@device_app.command("rotate")
def device_rotate(
    device_id: Annotated[str, typer.Argument()],
    grace_s: Annotated[float, typer.Option(help="how long the current credential keeps working")] = 3_600.0,
) -> None:
    """Gives a device a new credential through the AssetService (admin scope) and prints it once;
    the current one keeps working for --grace-s, then the gateway refuses it."""
    from gridtwin.api.assets.v1 import assets_pb2, assets_pb2_grpc

    with client.api("assets") as api:
        reply = api.call(assets_pb2_grpc.AssetServiceStub(api.channel).RotateDeviceCredential,
                         assets_pb2.RotateDeviceCredentialRequest(device_id=device_id, grace_s=grace_s))
    output.note(f"device {device_id}: new credential; the previous one works until "
                f"{output.when(reply.previous_valid_until_unix_ms)}")
    print(reply.credential)


DEVICE_KINDS = ("gateway", "battery", "solar_inverter", "meter")


@device_app.command("claim")
def device_claim(
    installation_id: Annotated[str, typer.Argument()],
    serial: Annotated[str, typer.Option(help="the device's serial (its id unless --device-id)")],
    device_id: Annotated[str, typer.Option(help="the device id (default: the serial)")] = "",
    kind: Annotated[str, typer.Option(help=f"one of {', '.join(DEVICE_KINDS)}")] = "gateway",
    ttl_days: Annotated[float, typer.Option(help="how long the code can be redeemed (at most 30 days)")] = 7.0,
) -> None:
    """Creates a device that an edge agent claims (admin scope): prints its one-time claim code
    (put it in the agent's configuration as `claim_code`; `gridtwin edge claim` or `edge run`
    exchanges it for the device's credential, which nobody else sees)."""
    from gridtwin.api.assets.v1 import assets_pb2, assets_pb2_grpc

    if kind not in DEVICE_KINDS:
        raise CliError(f"--kind must be one of {', '.join(DEVICE_KINDS)}", USAGE)
    with client.api("assets") as api:
        reply = api.call(assets_pb2_grpc.AssetServiceStub(api.channel).CreateDeviceClaim,
                         assets_pb2.CreateDeviceClaimRequest(
                             installation_id=installation_id, serial=serial, device_id=device_id,
                             kind=assets_pb2.DeviceKind.Value(f"DEVICE_KIND_{kind.upper()}"), ttl_s=ttl_days * 86_400))
    output.note(f"device {reply.device.device_id} in {reply.device.installation_id}: claim code valid until "
                f"{output.when(reply.expires_unix_ms)}")
    print(reply.claim_code)


# ------------------------------------------------------------------ listings over the AssetService

installations_app = typer.Typer(help="Installations (AssetService): list a group's, search by place, show one.",
                                no_args_is_help=True)
groups_app = typer.Typer(help="Hierarchy groups (AssetService).", no_args_is_help=True)
INSTALLATION_COLUMNS = ("installation_id", "customer_id", "utility", "time_zone", "longitude_deg", "latitude_deg",
                        "battery_kwh", "backup_reserve_pct", "stormwatch", "address")


def installation_record(i: Any) -> dict[str, object]:
    from gridtwin.api.assets.v1 import assets_pb2 as pb

    located = i.HasField("location")
    return {"installation_id": i.installation_id, "customer_id": i.customer_id, "utility": i.utility,
            "time_zone": i.time_zone, "longitude_deg": i.location.longitude_deg if located else None,
            "latitude_deg": i.location.latitude_deg if located else None,
            "battery_kwh": i.battery_nominal_energy_wh / 1_000 if i.HasField("battery_nominal_energy_wh") else None,
            "backup_reserve_pct": i.backup_reserve_pct if i.HasField("backup_reserve_pct") else None,
            "stormwatch": i.stormwatch_enabled if i.HasField("stormwatch_enabled") else None,
            "priority": pb.Priority.Name(i.priority).removeprefix("PRIORITY_").lower(), "address": i.address}


@installations_app.command("list")
def installations_list(
    group: Annotated[str, typer.Argument(help="group path, e.g. utility.pge (every member at any depth)")],
    details: Annotated[bool, typer.Option("--details", help="each installation's record, not only its id "
                                                            "(one call each)")] = False,
    limit: Annotated[int, typer.Option(min=0, help="at most this many (0: all)")] = 0,
    fmt: OutputOption = Format.table,
) -> None:
    """The installations of a group (AssetService.ListGroupInstallations), in id order."""
    from gridtwin.api.assets.v1 import assets_pb2 as pb
    from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc

    with client.api("assets") as api:
        stub = pb_grpc.AssetServiceStub(api.channel)
        ids = [str(i) for i in api.pages(stub.ListGroupInstallations,
                                         pb.ListGroupInstallationsRequest(path=group), "installation_ids",
                                         limit=limit)]
        if not details:
            output.emit([{"installation_id": i} for i in ids], ("installation_id",), fmt,
                        empty=f"group {group} has no installations")
            return
        rows = [installation_record(api.call(stub.GetInstallation, pb.GetInstallationRequest(installation_id=i)))
                for i in ids]
    output.emit(rows, INSTALLATION_COLUMNS, fmt, empty=f"group {group} has no installations")


def _floats(text: str, count: int, option: str, shape: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise CliError(f"{option}: {shape}", USAGE)
    return values


@installations_app.command("search")
def installations_search(
    box: Annotated[str, typer.Option(help="MIN_LON,MIN_LAT,MAX_LON,MAX_LAT (degrees)")] = "",
    near: Annotated[str, typer.Option(help="LON,LAT (degrees): the nearest within --radius-km")] = "",
    radius_km: Annotated[float, typer.Option(min=0.001, help="with --near")] = 10.0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many")] = 1_000,
    fmt: OutputOption = Format.table,
) -> None:
    """Installations in a box (--box) or near a point (--near, nearest first) that your token sees."""
    from gridtwin.api.assets.v1 import assets_pb2 as pb
    from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc

    if bool(box) == bool(near):
        raise CliError("give --box or --near", USAGE)
    with client.api("assets") as api:
        stub = pb_grpc.AssetServiceStub(api.channel)
        if box:
            west, south, east, north = _floats(box, 4, "--box", "four numbers MIN_LON,MIN_LAT,MAX_LON,MAX_LAT")
            request = pb.SearchInstallationsInBoxRequest(min_longitude_deg=west, min_latitude_deg=south,
                                                         max_longitude_deg=east, max_latitude_deg=north,
                                                         page_size=min(limit, 1_000))
            rows = [installation_record(i) for i in api.pages(stub.SearchInstallationsInBox, request,
                                                                "installations", limit=limit)]
            columns: tuple[str, ...] = INSTALLATION_COLUMNS
        else:
            lon, lat = _floats(near, 2, "--near", "two numbers LON,LAT")
            near_request = pb.SearchInstallationsNearRequest(
                center=pb.GeoPoint(longitude_deg=lon, latitude_deg=lat), radius_m=radius_km * 1_000,
                page_size=min(limit, 1_000))
            rows = [{**installation_record(d.installation), "distance_km": round(d.distance_m / 1_000, 3)}
                    for d in api.pages(stub.SearchInstallationsNear, near_request, "installations", limit=limit)]
            columns = ("installation_id", "distance_km", *INSTALLATION_COLUMNS[1:])
    output.emit(rows, columns, fmt, right=("distance_km", "battery_kwh"), empty="no installations there")


@installations_app.command("show")
def installations_show(installation_id: Annotated[str, typer.Argument()], fmt: OutputOption = Format.table) -> None:
    """One installation with its devices and groups."""
    from gridtwin.api.assets.v1 import assets_pb2 as pb
    from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc

    with client.api("assets") as api:
        stub = pb_grpc.AssetServiceStub(api.channel)
        record = installation_record(api.call(stub.GetInstallation,
                                              pb.GetInstallationRequest(installation_id=installation_id)))
        devices = list(api.pages(stub.ListDevices, pb.ListDevicesRequest(installation_id=installation_id),
                                 "devices"))
        groups = api.call(stub.ListInstallationGroups,
                          pb.ListInstallationGroupsRequest(installation_id=installation_id)).groups
    record["devices"] = [d.device_id for d in devices]
    record["groups"] = [g.path for g in groups]
    output.emit_one(record, fmt, title=f"installation {installation_id}")


def devices_list(installation_id: Annotated[str, typer.Argument()], fmt: OutputOption = Format.table) -> None:
    """The devices of an installation (AssetService.ListDevices)."""
    from gridtwin.api.assets.v1 import assets_pb2 as pb
    from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc

    with client.api("assets") as api:
        devices = list(api.pages(pb_grpc.AssetServiceStub(api.channel).ListDevices,
                                 pb.ListDevicesRequest(installation_id=installation_id), "devices"))
    rows = [{"device_id": d.device_id, "serial": d.serial,
             "kind": pb.DeviceKind.Name(d.kind).removeprefix("DEVICE_KIND_").lower(), "firmware": d.firmware,
             "installation_id": d.installation_id, "revoked": d.revoked, "created": output.when(d.created_unix_ms)}
            for d in devices]
    output.emit(rows, ("device_id", "serial", "kind", "firmware", "installation_id", "revoked", "created"), fmt,
                empty=f"installation {installation_id} has no devices")


@groups_app.command("list")
def groups_list(
    path: Annotated[str, typer.Argument(help="a group path, e.g. utility or region.us.ca")],
    ancestors: Annotated[bool, typer.Option("--ancestors", help="the groups above PATH instead of below")] = False,
    fmt: OutputOption = Format.table,
) -> None:
    """PATH and every group below it (or, with --ancestors, above it)."""
    from gridtwin.api.assets.v1 import assets_pb2 as pb
    from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc

    with client.api("assets") as api:
        groups = list(api.pages(pb_grpc.AssetServiceStub(api.channel).ListGroups, pb.ListGroupsRequest(
            path=path, relation=pb.RELATION_ANCESTORS if ancestors else pb.RELATION_DESCENDANTS), "groups"))
    output.emit([{"path": g.path, "display_name": g.display_name, "program": g.program} for g in groups],
                ("path", "display_name", "program"), fmt, empty=f"no groups at {path}")
