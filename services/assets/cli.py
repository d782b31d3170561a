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
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

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
    """Imports installations (with customers and group memberships); all rows or none."""
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
    from services.assets.access import Scope
    from services.assets.api import issue_token
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
    token: Annotated[str, typer.Option(envvar="GRIDTWIN_TOKEN", help="an AssetService token (admin scope)")],
    grace_s: Annotated[float, typer.Option(help="how long the current credential keeps working")] = 3_600.0,
) -> None:
    """Gives a device a new credential through the AssetService (TLS when GRIDTWIN_TLS__ENABLED)
    and prints it once; the current one keeps working for --grace-s, then the gateway refuses it."""
    import grpc

    from gridtwin.api.assets.v1 import assets_pb2, assets_pb2_grpc
    from gridtwin.tls import channel

    settings = Settings()
    with channel(f"{settings.assets.host}:{settings.assets.port}", settings.tls) as rpc_channel:
        try:
            reply = assets_pb2_grpc.AssetServiceStub(rpc_channel).RotateDeviceCredential(
                assets_pb2.RotateDeviceCredentialRequest(device_id=device_id, grace_s=grace_s),
                metadata=[("authorization", f"Bearer {token}")], timeout=30)
        except grpc.RpcError as error:
            console.print(f"[red]refused[/]: {error.code().name}: {error.details()}")  # type: ignore[attr-defined]
            raise typer.Exit(1) from None
    until = dt.datetime.fromtimestamp(reply.previous_valid_until_unix_ms / 1_000, dt.UTC).isoformat()
    console.print(f"device {device_id}: new credential; the previous one works until {until}")
    print(reply.credential)


@device_app.command("claim")
def device_claim(
    installation_id: Annotated[str, typer.Argument()],
    serial: Annotated[str, typer.Option(help="the device's serial (its id unless --device-id)")],
    token: Annotated[str, typer.Option(envvar="GRIDTWIN_TOKEN", help="an AssetService token (admin scope)")],
    device_id: Annotated[str, typer.Option(help="the device id (default: the serial)")] = "",
    kind: Annotated[str, typer.Option(help="gateway, battery, solar_inverter or meter")] = "gateway",
    ttl_days: Annotated[float, typer.Option(help="how long the code can be redeemed (at most 30 days)")] = 7.0,
) -> None:
    """Creates a device that an edge agent claims: prints its one-time claim code (put it in the
    agent's configuration as `claim_code`; `gridtwin edge claim` or `edge run` exchanges it for the
    device's credential, which nobody else sees)."""
    import grpc

    from gridtwin.api.assets.v1 import assets_pb2, assets_pb2_grpc
    from gridtwin.tls import channel

    kinds = {"gateway": assets_pb2.DEVICE_KIND_GATEWAY, "battery": assets_pb2.DEVICE_KIND_BATTERY,
             "solar_inverter": assets_pb2.DEVICE_KIND_SOLAR_INVERTER, "meter": assets_pb2.DEVICE_KIND_METER}
    if kind not in kinds:
        console.print(f"[red]refused[/]: kind must be one of {', '.join(kinds)}")
        raise typer.Exit(1)
    settings = Settings()
    with channel(f"{settings.assets.host}:{settings.assets.port}", settings.tls) as rpc_channel:
        try:
            reply = assets_pb2_grpc.AssetServiceStub(rpc_channel).CreateDeviceClaim(
                assets_pb2.CreateDeviceClaimRequest(installation_id=installation_id, serial=serial,
                                                    device_id=device_id, kind=kinds[kind], ttl_s=ttl_days * 86_400),
                metadata=[("authorization", f"Bearer {token}")], timeout=30)
        except grpc.RpcError as error:
            console.print(f"[red]refused[/]: {error.code().name}: {error.details()}")  # type: ignore[attr-defined]
            raise typer.Exit(1) from None
    until = dt.datetime.fromtimestamp(reply.expires_unix_ms / 1_000, dt.UTC).isoformat()
    console.print(f"device {reply.device.device_id} in {reply.device.installation_id}: claim code valid until {until}")
    print(reply.claim_code)
