"""The `gridtwin` command as a client of the platform's APIs: real AssetService (with the
AccessService), AnalyticsService, WeatherService and ControlService on ephemeral ports, shared by
the module; the CLI finds them through a context of its configuration file and sends the token it
stores. Errors are one line on stderr with the documented exit code; json and csv parse."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import stat
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from gridtwin import kafka_topics
from gridtwin.app import wiring
from gridtwin.app.cli import app, config
from gridtwin.settings import Settings
from services.access.model import Scope
from tests.integration.access_support import mint

pytestmark = pytest.mark.integration


@dataclass
class Platform:
    settings: Settings
    ports: dict[str, int]
    prefix: str
    config_file: Path
    admin: str     # tokens
    reader: str


@pytest.fixture(scope="module")
async def platform_apis(platform: Settings, pool: asyncpg.Pool,
                        tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    from services.assets import bulk
    from services.assets.database import create_engine
    from services.assets.seed import FleetPlan, demo_fleet

    suffix = uuid.uuid4().hex[:8]
    kafka = platform.kafka.model_copy(update={
        "telemetry_topic": f"telemetry-{suffix}", "device_events_topic": f"device-events-{suffix}",
        "alerts_topic": f"twin-alerts-{suffix}", "commands_topic": f"commands-{suffix}"})
    await kafka_topics.ensure_topics(kafka, kafka_topics.platform_topics(kafka))

    def ephemeral(part: object, **more: object) -> object:
        return part.model_copy(update={"port": 0, "metrics_port": 0, **more})  # type: ignore[attr-defined]

    settings = platform.model_copy(update={
        "kafka": kafka, "assets": ephemeral(platform.assets, auth_cache_s=0.0),
        "analytics": ephemeral(platform.analytics), "weather": ephemeral(platform.weather, feed_dir="", feed_url=""),
        "control": ephemeral(platform.control, ack_group_id=f"acks-{suffix}")})
    prefix = f"cli{suffix}"
    engine = create_engine(settings.postgres)
    try:
        await bulk.load(engine, demo_fleet(FleetPlan(installations=6, seed=3, prefix=prefix)), actor="test",
                        reason="cli test fleet")
    finally:
        await engine.dispose()
    admin, reader = await mint(pool, Scope.ADMIN), await mint(pool, Scope.READ)
    async with AsyncExitStack() as stack:
        ports = {name: (await stack.enter_async_context(getattr(wiring, name)(settings))).port  # type: ignore[attr-defined]
                 for name in ("assets", "analytics", "weather", "control")}
        folder = tmp_path_factory.mktemp("cli-config")
        yield Platform(settings, ports, prefix, folder / "config.toml", admin, reader)


def _servers(p: Platform) -> config.Context:
    addresses = {name: f"127.0.0.1:{port}" for name, port in p.ports.items()}
    return config.Context("test", servers=addresses)


async def gridtwin(p: Platform, *args: str, token: str | None = None) -> Result:
    """`gridtwin ARGS` in a thread (the servers run on this loop), with the module's config file."""
    env = {"GRIDTWIN_CONFIG": str(p.config_file), "GRIDTWIN_TOKEN": token, "COLUMNS": "80"}
    return await asyncio.to_thread(CliRunner(env=env).invoke, app, list(args))


def one_line_error(result: Result, exit_code: int) -> str:
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
async def logged_in(platform_apis: Platform) -> Platform:
    """A configuration with a context whose token is the admin's (stored by `login --token`)."""
    config.save(config.Config("test", {"test": _servers(platform_apis)}), platform_apis.config_file)
    result = await gridtwin(platform_apis, "login", "--with-token", platform_apis.admin)
    assert result.exit_code == 0, result.output
    return platform_apis


# ------------------------------------------------------------------ login, contexts, whoami

async def test_login_stores_the_token_privately_and_whoami_reads_it(logged_in: Platform) -> None:
    p = logged_in
    assert stat.S_IMODE(os.stat(p.config_file).st_mode) == 0o600
    assert config.load(p.config_file).contexts["test"].token == p.admin
    result = await gridtwin(p, "whoami", "-o", "json")
    assert result.exit_code == 0, result.output
    me = json.loads(result.stdout)
    assert "admin" in me["scopes"] and me["kind"] == "TOKEN"

    result = await gridtwin(p, "config", "get-contexts", "-o", "json")
    (context,) = json.loads(result.stdout)
    assert context["current"] == "*" and context["logged_in"] is True and "token" not in context

    result = await gridtwin(p, "logout")
    assert result.exit_code == 0 and config.load(p.config_file).contexts["test"].token == ""
    line = one_line_error(await gridtwin(p, "whoami"), 4)
    assert "gridtwin login" in line


async def test_a_wrong_token_is_one_line_and_exit_code_4(logged_in: Platform) -> None:
    line = one_line_error(await gridtwin(logged_in, "login", "--token", "gta_nobody"), 4)
    assert "not authenticated" in line
    assert config.load(logged_in.config_file).contexts["test"].token == logged_in.admin   # nothing lost
    for args in (("installations", "list", "utility"), ("weather", "active"), ("control", "progress", "x"),
                 ("analytics", "report", "x", "--from", "2026-01-01", "--to", "2026-01-02")):
        one_line_error(await gridtwin(logged_in, *args, token="gta_nobody"), 4)


async def test_password_login_through_the_access_service(logged_in: Platform) -> None:
    from gridtwin.api.access.v1 import access_pb2 as pb
    from gridtwin.api.access.v1 import access_pb2_grpc as pb_grpc
    from gridtwin.tls import channel

    username, password = f"op{uuid.uuid4().hex[:8]}", "correct horse battery staple"
    with channel(f"127.0.0.1:{logged_in.ports['assets']}", None) as rpc:
        await asyncio.to_thread(pb_grpc.AccessServiceStub(rpc).CreateUser, pb.CreateUserRequest(
            username=username, password=password, kind=pb.Principal.OPERATOR, role="viewer", allowed_paths=["utility"]),
            metadata=[("authorization", f"Bearer {logged_in.admin}")], timeout=30)
    one_line_error(await gridtwin(logged_in, "login", "--username", username, "--password", "wrong password!"), 4)
    result = await gridtwin(logged_in, "login", "--username", username, "--password", password)
    assert result.exit_code == 0, result.output
    result = await gridtwin(logged_in, "whoami", "-o", "json")
    me = json.loads(result.stdout)
    assert me["name"] == username and me["role"] == "viewer" and me["allowed_paths"] == ["utility"]
    # A viewer reads but does not command.
    line = one_line_error(await gridtwin(logged_in, "control", "charge", "utility"), 5)
    assert "permission denied" in line


# ------------------------------------------------------------------ listings

async def test_listings_print_tables_json_and_csv(logged_in: Platform) -> None:
    p = logged_in
    result = await gridtwin(p, "groups", "list", "utility", "-o", "json")
    assert result.exit_code == 0, result.output
    paths = [g["path"] for g in json.loads(result.stdout)]
    assert "utility" in paths and any(path.count(".") == 2 for path in paths)

    result = await gridtwin(p, "installations", "list", "utility", "-o", "csv")
    ids = [row["installation_id"] for row in csv.DictReader(io.StringIO(result.stdout))]
    mine = sorted(i for i in ids if i.startswith(p.prefix))
    assert len(mine) == 6
    shown = json.loads((await gridtwin(p, "installations", "show", mine[0], "-o", "json")).stdout)
    region = next(g for g in shown["groups"] if g.startswith("utility.") and g in paths)

    result = await gridtwin(p, "installations", "list", region, "--details", "-o", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and all(r["time_zone"] and r["longitude_deg"] is not None for r in rows)

    # Piped (not a terminal): a table as wide as its content, no id cut or folded at 80 columns.
    result = await gridtwin(p, "installations", "show", mine[0])
    assert result.exit_code == 0, result.output
    assert mine[0] in result.stdout and "devices" in result.stdout
    result = await gridtwin(p, "devices", "list", mine[0], "-o", "json")
    (device,) = json.loads(result.stdout)
    assert device["installation_id"] == mine[0]
    result = await gridtwin(p, "devices", "list", mine[0])
    assert device["device_id"] in result.stdout

    lon, lat = shown["longitude_deg"], shown["latitude_deg"]
    result = await gridtwin(p, "installations", "search", "--near", f"{lon},{lat}", "--radius-km", "1", "-o", "json")
    assert json.loads(result.stdout)[0]["installation_id"] == mine[0]
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    result = await gridtwin(p, "installations", "search", "--box", box, "-o", "csv")
    assert mine[0] in result.stdout

    result = await gridtwin(p, "weather", "active", "-o", "json")
    assert result.exit_code == 0 and isinstance(json.loads(result.stdout), list)


async def test_not_found_and_bad_arguments(logged_in: Platform) -> None:
    p = logged_in
    assert "not found" in one_line_error(await gridtwin(p, "control", "progress", "0" * 32), 3)
    assert "fanout_id" in one_line_error(await gridtwin(p, "control", "progress", "bogus"), 2)   # the server's check
    one_line_error(await gridtwin(p, "installations", "show", "nowhere"), 3)
    one_line_error(await gridtwin(p, "weather", "affected", "no-such-alert"), 3)
    one_line_error(await gridtwin(p, "installations", "list", "utility", "-o", "xml"), 2)
    one_line_error(await gridtwin(p, "installations", "search", "--box", "1,2,3"), 2)
    one_line_error(await gridtwin(p, "analytics", "report", "x", "--from", "2026-13-01", "--to", "2026-01-02"), 2)
    one_line_error(await gridtwin(p, "control", "progress"), 2)
    one_line_error(await gridtwin(p, "twins", "alerts", "--state", "sleepy"), 2)
    # A service that does not answer: exit 6, and where it was looked for.
    config.save(config.Config("gone", {"gone": config.Context("gone", server="127.0.0.1",
                                                              servers={"control": "127.0.0.1:9"})}), p.config_file)
    assert "127.0.0.1:9" in one_line_error(await gridtwin(p, "control", "progress", "x", token=p.admin), 6)


# ------------------------------------------------------------------ analytics, control

async def test_analytics_says_no_data_instead_of_zeros(logged_in: Platform) -> None:
    p = logged_in
    result = await gridtwin(p, "installations", "list", "utility", "-o", "json")
    site = next(r["installation_id"] for r in json.loads(result.stdout) if r["installation_id"].startswith(p.prefix))
    result = await gridtwin(p, "analytics", "report", site, "--from", "2024-01-01", "--to", "2024-01-08")
    assert result.exit_code == 0, result.output
    assert "no data in this range" in result.stderr and "0.00" not in result.stdout
    result = await gridtwin(p, "analytics", "report", site, "--from", "2024-01-01", "--to", "2024-01-08", "-o", "json")
    assert json.loads(result.stdout) == []
    result = await gridtwin(p, "analytics", "series", site, "--from", "2024-01-01", "--to", "2024-01-02", "-o", "csv")
    assert result.exit_code == 0 and result.stdout.splitlines() == ["channel,timestamp_unix_ms,value"]
    tariff = p.config_file.parent / "tariff.json"
    tariff.write_text('{"currency": "EUR", "windows": []}')
    line = one_line_error(await gridtwin(p, "analytics", "report", site, "--from", "2024-01-01", "--to", "2024-01-02",
                                         "--tariff", str(tariff)), 2)
    assert "import_price_per_kwh" in line


async def test_control_charge_goes_through_the_control_service(logged_in: Platform) -> None:
    p = logged_in
    result = await gridtwin(p, "control", "charge", "utility", "--target", "90", "--minutes", "30")
    assert result.exit_code == 0, result.output
    fanout_id = result.stdout.strip()
    assert "commands" in result.stderr
    # A read token may look, not command.
    one_line_error(await gridtwin(p, "control", "charge", "utility", token=p.reader), 5)
    result = await gridtwin(p, "control", "progress", fanout_id, "-o", "json", token=p.reader)
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert sum(c["commands"] for c in counts) >= 6
