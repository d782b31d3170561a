"""`gridtwin twins show | alerts` and `gridtwin vpp events | report` through the real TwinService
and VppService (the twin runtime on Ray), with a token; refusals as one line and an exit code."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from actors.api import TwinApi
from actors.runtime.store import create_pool
from gridtwin.app import wiring
from gridtwin.app.cli import app
from gridtwin.unixtime import now_ms
from services.access.model import Scope
from services.telemetry.store import TelemetryStore
from tests.integration.access_support import authenticator, mint
from tests.integration.twins_support import Twins, stream

pytestmark = pytest.mark.integration


async def _gridtwin(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner(env=env).invoke, app, list(args))


def _one_line(result: Result, exit_code: int) -> str:
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


async def test_twins_and_vpp_from_the_command_line(twins: Twins, assets_engine: object, tmp_path: Path) -> None:
    store = TelemetryStore(twins.pool, 300.0)
    for records in stream(3, 60, end_ms=now_ms() - 20_000):
        await store.write(records)
        await twins.runtime.router.deliver(records)
    pool = await create_pool(twins.settings.postgres.url, 2)
    api = TwinApi(twins.settings.twins.model_copy(update={"port": 0}), pool, twins.runtime.router,
                  authenticator=authenticator(assets_engine))
    await api.start()
    settings = twins.settings.model_copy(update={"vpp": twins.settings.vpp.model_copy(update={
        "port": 0, "metrics_port": 0, "rest_port": 0})})
    try:
        async with wiring.vpp(settings) as vpp:
            env = {"GRIDTWIN_TWINS__PORT": str(api.port), "GRIDTWIN_VPP__PORT": str(vpp.port),  # type: ignore[attr-defined]
                   "GRIDTWIN_TOKEN": await mint(twins.pool, Scope.READ), "GRIDTWIN_CONFIG": str(tmp_path / "none.toml")}
            result = await _gridtwin(env, "twins", "show", "site-0", "-o", "json")
            assert result.exit_code == 0, result.output
            twin = json.loads(result.stdout)
            assert twin["installation_id"] == "site-0" and twin["device_id"] == "site-dev-0"
            assert twin["samples_applied"] > 0
            result = await _gridtwin(env, "twins", "show", "site-0")
            assert "site-dev-0" in result.stdout

            result = await _gridtwin(env, "twins", "alerts", "--installation", "site-0", "-o", "csv")
            assert result.exit_code == 0, result.output
            rows = list(csv.DictReader(io.StringIO(result.stdout)))
            assert rows and {r["rule"] for r in rows} == {"solar_negative"}
            result = await _gridtwin(env, "twins", "alerts", "--state", "open", "-o", "json")
            assert all(a["state"] in ("raised", "ongoing") for a in json.loads(result.stdout))

            assert "not found" in _one_line(await _gridtwin(env, "twins", "show", "never-reported"), 3)
            _one_line(await _gridtwin(env, "twins", "show", "no spaces please"), 2)

            # Events of other tests may share this session's database: a reader over a group of its
            # own sees none of them.
            elsewhere = {**env, "GRIDTWIN_TOKEN": await mint(twins.pool, Scope.READ, paths=("cli_twins_empty",))}
            result = await _gridtwin(elsewhere, "vpp", "events", "--ended", "-o", "json")
            assert result.exit_code == 0 and json.loads(result.stdout) == []
            result = await _gridtwin(elsewhere, "vpp", "events")
            assert result.exit_code == 0 and "no grid events" in result.stderr
            _one_line(await _gridtwin(env, "vpp", "report", "nonexistent"), 3)
            _one_line(await _gridtwin(env, "vpp", "report", "nonexistent", "--token", "gta_wrong"), 2)  # misplaced
            _one_line(await _gridtwin(env, "--token", "gta_wrong", "vpp", "report", "nonexistent"), 4)
    finally:
        await api.stop(0)
        await pool.close()
