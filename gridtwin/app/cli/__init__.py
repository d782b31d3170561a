"""The `gridtwin` command: set up and run the platform, its services and the simulator; and, as a
client of the platform's gRPC APIs with your token (`gridtwin login`), look at and command it."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from edge import cli as edge_cli
from gridtwin import kafka_topics, ray_env
from gridtwin.app import infra, processes
from gridtwin.app.cli import analytics as analytics_cli
from gridtwin.app.cli import assets as assets_cli
from gridtwin.app.cli import client, errors, output, session
from gridtwin.app.cli import control as control_cli
from gridtwin.app.cli import twins as twins_cli
from gridtwin.app.cli import vpp as vpp_cli
from gridtwin.app.cli import weather as weather_cli
from gridtwin.settings import Settings

if TYPE_CHECKING:
    from services.access.demo import DemoAccount

app = typer.Typer(help=__doc__, no_args_is_help=True, cls=errors.OneLineErrors)
infra_app = typer.Typer(help="The real components on this machine: Postgres/PostGIS and the Kafka broker.")
proto_app = typer.Typer(help="The generated code of the .proto contracts.")
http_app = typer.Typer(help="The HTTP API (JSON, Server-Sent Events, OpenAPI) over the gRPC services.",
                       no_args_is_help=True)
devices_app = typer.Typer(help="Devices: list an installation's (AssetService); on the platform's machine, "
                               "register simulated ones.", no_args_is_help=True)
app.add_typer(infra_app, name="infra")
app.add_typer(proto_app, name="proto")
app.add_typer(devices_app, name="devices")
app.add_typer(assets_cli.app, name="assets")
app.add_typer(weather_cli.app, name="weather")
app.add_typer(twins_cli.app, name="twins")
app.add_typer(analytics_cli.app, name="analytics")
app.add_typer(control_cli.app, name="control")
app.add_typer(vpp_cli.app, name="vpp")
app.add_typer(edge_cli.app, name="edge")
app.add_typer(http_app, name="http")
app.add_typer(assets_cli.installations_app, name="installations")
app.add_typer(assets_cli.groups_app, name="groups")
devices_app.command("list")(assets_cli.devices_list)


app.add_typer(session.config_app, name="config")
app.command()(session.login)
app.command()(session.logout)
app.command()(session.whoami)


@app.callback(epilog=errors.EXIT_CODES_HELP)
def _entry(
    context: Annotated[str, typer.Option(help="the context of the configuration file to use (default: its current)",
                                         envvar="GRIDTWIN_CONTEXT")] = "",
    token: Annotated[str, typer.Option(help="the token to send (default: the context's)",
                                       envvar="GRIDTWIN_TOKEN", show_envvar=True)] = "",
) -> None:
    client.INVOCATION.context, client.INVOCATION.token = context, token
    ray_env.configure_ray_auth()
console = Console()

# The service processes `up` starts: name → `gridtwin` arguments.
SERVICES: dict[str, tuple[str, ...]] = {
    "gateway": ("gateway",),
    "ingest": ("ingest",),
    "api": ("api",),
    "assets": ("assets", "serve"),
    "weather": ("weather", "serve"),
    "twins": ("twins", "serve"),
    "analytics": ("analytics", "serve"),
    "control": ("control", "serve"),
    "vpp": ("vpp", "serve"),
    "http": ("http", "serve"),
}
DEMO_PREFIX = "demo"


def _settings() -> Settings:
    return Settings()


def _step(progress: Progress, text: str):  # type: ignore[no-untyped-def]
    return progress.add_task(text, total=None)


# ------------------------------------------------------------------ infra


def _infra_up(settings: Settings) -> None:
    from gridtwin import db

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as p:
        _step(p, "Postgres + PostGIS + ltree")
        infra.ensure_postgres(settings.postgres)
        _step(p, "schema migrations")
        db.migrate(settings.postgres)
        _step(p, f"Kafka broker ({settings.kafka.local_broker_storage})")
        infra.ensure_broker(settings.kafka, settings.var_dir)
        _step(p, "topics")
        asyncio.run(kafka_topics.ensure_topics(settings.kafka, kafka_topics.platform_topics(settings.kafka)))
        _step(p, "Ray head (twins)")
        infra.ensure_ray(settings.twins, settings.var_dir)
    console.print(f"[green]infra up[/]: postgres {settings.postgres.url.split('@')[-1]}, "
                  f"kafka {settings.kafka.bootstrap_servers}")


@infra_app.command("up")
def infra_up() -> None:
    """Install-free start of Postgres and the broker, migrations and topics (idempotent)."""
    _infra_up(_settings())


@infra_app.command("down")
def infra_down() -> None:
    """Stops the broker and the project's Postgres cluster."""
    settings = _settings()
    infra.stop_ray(settings.var_dir)
    infra.stop_broker(settings.var_dir)
    infra.stop_postgres(settings.postgres)
    console.print("infra stopped")


@app.command()
def migrate() -> None:
    """Applies the schema migrations."""
    from gridtwin import db

    db.migrate(_settings().postgres)


# ------------------------------------------------------------------ services


@app.command()
def gateway() -> None:
    """Runs the device websocket gateway in the foreground."""
    from gridtwin.app import wiring as services

    settings = _settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.gateway(settings))


@app.command()
def ingest() -> None:
    """Runs one ingest consumer (a consumer-group member) in the foreground."""
    from gridtwin.app import wiring as services

    settings = _settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.ingest(settings))


@app.command()
def api() -> None:
    """Runs the telemetry gRPC API in the foreground."""
    from gridtwin.app import wiring as services

    settings = _settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.api(settings))


@http_app.command("serve")
def http_serve() -> None:
    """Runs the HTTP API (OpenAPI at /api/v1/openapi.json, docs at /docs) in the foreground."""
    from gridtwin.app import wiring as services

    settings = _settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.http(settings))


@app.command()
def simulate(
    devices: Annotated[int, typer.Option(help="Number of simulated devices")] = 100,
    prefix: Annotated[str, typer.Option(help="Device id prefix (must be provisioned)")] = DEMO_PREFIX,
) -> None:
    """Runs a simulated fleet against the gateway in the foreground."""
    from gridtwin.app import wiring as services

    settings = _settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.simulator(settings, devices, prefix))


@devices_app.command("provision")
def provision(
    count: Annotated[int, typer.Option(help="Number of simulated devices to register")] = 100,
    prefix: Annotated[str, typer.Option()] = DEMO_PREFIX,
) -> None:
    """Registers simulated devices with credentials derived from the fleet secret."""
    asyncio.run(_provision(_settings(), count, prefix))


async def _provision(settings: Settings, count: int, prefix: str) -> int:
    from gridtwin.db import create_pool
    from services.access.credentials import register_devices
    from simulator.fleet import FleetOptions, registrations

    pool = await create_pool(settings.postgres)
    try:
        options = FleetOptions(devices=count, fleet_secret=settings.simulator.fleet_secret, id_prefix=prefix)
        return await register_devices(pool, registrations(options))
    finally:
        await pool.close()


# ------------------------------------------------------------------ the whole platform


@app.command()
def up(devices: Annotated[int, typer.Option(help="Simulated devices to start")] = 100) -> None:
    """Starts everything: infra, migrations, topics, the services and a simulated fleet."""
    from services.assets import bulk
    from services.assets.database import create_engine
    from services.assets.seed import FleetPlan, demo_fleet

    settings = _settings()
    _infra_up(settings)
    # The demo fleet: installations with locations, utilities, regions and a VPP program, and the
    # devices the simulator runs (their credentials derive from the fleet secret).
    plan = FleetPlan(installations=devices, seed=1, prefix=DEMO_PREFIX, fleet_secret=settings.simulator.fleet_secret)

    async def seed() -> list[DemoAccount]:
        from gridtwin.db import create_pool
        from services.access.demo import seed_demo_accounts
        from services.assets.seed import installation_id

        engine = create_engine(settings.postgres)
        try:
            await bulk.load(engine, demo_fleet(plan), actor="cli:up", reason="demo fleet")
        finally:
            await engine.dispose()
        pool = await create_pool(settings.postgres)
        try:   # people to log in as: an operator, a viewer, homeowners of the first two homes
            return await seed_demo_accounts(pool, [installation_id(DEMO_PREFIX, i) for i in range(min(devices, 2))])
        finally:
            await pool.close()

    accounts = asyncio.run(seed())
    exe = [sys.executable, "-m", "gridtwin.app.cli"]
    for name, args in SERVICES.items():
        processes.spawn(settings.var_dir, name, [*exe, *args])
    processes.wait_for_port(settings.gateway.host, settings.gateway.port, 30, "gateway")
    processes.spawn(settings.var_dir, "simulator", [*exe, "simulate", "--devices", str(devices)])
    _print_status(settings)
    _print_demo_accounts(accounts)
    console.print("Use the APIs from this shell: gridtwin login --username operator (the password above), then "
                  f"e.g. gridtwin installations show {DEMO_PREFIX}-site-00000. The HTTP API and its docs: "
                  f"http://{settings.http.host}:{settings.http.port}/docs", highlight=False, soft_wrap=True)


def _print_demo_accounts(accounts: list[DemoAccount]) -> None:
    table = Table(title="log in as (demo accounts: public passwords, never for production)")
    for column in ("username", "password", "who"):
        table.add_column(column, overflow="fold")
    for account in accounts:
        table.add_row(account.username, account.password, account.what)
    output.stdout().print(table)


@app.command()
def down() -> None:
    """Stops what `up` started (the simulator first, infra last)."""
    settings = _settings()
    for name in ("simulator", *reversed(list(SERVICES))):
        if processes.stop(settings.var_dir, name):
            console.print(f"stopped {name}")
    infra.stop_ray(settings.var_dir)
    infra.stop_broker(settings.var_dir)
    infra.stop_postgres(settings.postgres)
    console.print("platform stopped")


@app.command()
def status() -> None:
    """What runs, and where to look."""
    _print_status(_settings())


def _print_status(settings: Settings) -> None:
    table = Table(title="gridtwin")
    for column in ("process", "pid", "where to look", "log"):
        table.add_column(column, overflow="fold")   # paths and addresses whole, never cut
    where = {
        "gateway": f"{'wss' if settings.tls.enabled else 'ws'}://{settings.gateway.host}:{settings.gateway.port}"
                   f"  metrics :{settings.gateway.metrics_port}",
        "ingest": f"metrics http://127.0.0.1:{settings.ingest.metrics_port}/metrics (lag)",
        "api": f"gRPC {settings.api.host}:{settings.api.port}  metrics :{settings.api.metrics_port}",
        "assets": f"gRPC {settings.assets.host}:{settings.assets.port}  metrics :{settings.assets.metrics_port}",
        "analytics": f"gRPC {settings.analytics.host}:{settings.analytics.port}  "
                     f"metrics :{settings.analytics.metrics_port}",
        "control": f"gRPC {settings.control.host}:{settings.control.port}  metrics :{settings.control.metrics_port}",
        "vpp": f"gRPC {settings.vpp.host}:{settings.vpp.port}  OpenADR http://{settings.vpp.rest_host}:"
               f"{settings.vpp.rest_port}/openadr3/events  metrics :{settings.vpp.metrics_port}",
        "simulator": f"{settings.simulator.gateway_url}",
        "weather": f"gRPC {settings.weather.host}:{settings.weather.port}  metrics :{settings.weather.metrics_port}",
        "broker": settings.kafka.bootstrap_servers,
        "twins": f"gRPC {settings.twins.host}:{settings.twins.port}  metrics :{settings.twins.metrics_port}  "
                 f"Ray {settings.twins.ray_address}",
        "http": f"{'https' if settings.tls.enabled else 'http'}://{settings.http.host}:{settings.http.port}/api/v1  "
                f"docs /docs  metrics :{settings.http.metrics_port}",
    }
    for name in ("broker", *SERVICES, "simulator"):
        pid = processes.running_pid(settings.var_dir, name)
        table.add_row(name, str(pid or "-"), where[name], str(processes.log_file(settings.var_dir, name)))
    output.stdout().print(table)
    console.print(f"Postgres: {settings.postgres.url}")


# ------------------------------------------------------------------ contracts


@proto_app.command("generate")
def proto_generate() -> None:
    """Regenerates gridtwin/api from proto/."""
    from gridtwin.app import codegen

    console.print(f"generated {codegen.generate()}")


@proto_app.command("check")
def proto_check() -> None:
    """Fails when gridtwin/api differs from what proto/ generates."""
    from gridtwin.app import codegen

    stale = codegen.check()
    if stale:
        console.print("[red]gridtwin/api is out of date; run `gridtwin proto generate`:[/]")
        for path in stale:
            console.print(f"  {path}")
        raise typer.Exit(1)
    console.print("generated code is up to date")
