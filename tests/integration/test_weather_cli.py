"""`gridtwin weather`: load zones (constructed squares, see tests/weather_data.py), ingest the
real feeds, list the active alerts; `services.weather` serves the API with the ingest loop."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from gridtwin import services
from gridtwin.api.weather.v1 import weather_pb2 as pb
from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc
from gridtwin.cli import app
from tests import weather_data as wd
from tests.integration.access_support import authorized_channel
from tests.integration.test_weather_store_matching import WEATHER_TABLES

pytestmark = pytest.mark.integration


async def test_cli_and_service(clean_db, platform, monkeypatch, tmp_path):
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    monkeypatch.setenv("GRIDTWIN_POSTGRES__URL", platform.postgres.url)
    zones_file = tmp_path / "zones.geojson"
    zones_file.write_text(json.dumps(wd.square_zones(wd.ugc_codes(wd.IOWA))))
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, app, ["weather", "load-zones", str(zones_file)])
    assert result.exit_code == 0, result.output
    assert "loaded" in result.output
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "iowa.json").write_bytes(wd.IOWA.read_bytes())
    (tmp_path / "feeds" / "broken.json").write_bytes(b"{")
    result = await asyncio.to_thread(runner.invoke, app, [
        "weather", "ingest", str(tmp_path / "feeds"), "--now", wd.IOWA_NOW.isoformat()])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())   # rich wraps long lines where the temp path's length says
    assert "iowa.json: 48 alerts" in printed and "not JSON" in printed
    result = await asyncio.to_thread(runner.invoke, app, ["weather", "active"])
    assert result.exit_code == 0 and "48 active alerts" in result.output

    settings = platform.model_copy(update={"weather": platform.weather.model_copy(update={
        "port": 0, "metrics_port": 0, "feed_dir": str(tmp_path / "feeds"), "poll_interval_s": 0.05})})
    async with services.weather(settings) as server, \
            authorized_channel(f"127.0.0.1:{server.port}", clean_db) as channel:  # type: ignore[attr-defined]
        # The change log, not the active list: the service's own feed loop ingests the 2024 feed as of
        # now and may already have expired every alert (a race the guarded call's token check loses).
        logged = await pb_grpc.WeatherServiceStub(channel).ListAlertChanges(pb.ListAlertChangesRequest(limit=5_000))
        assert sum(c.kind == pb.AlertChange.KIND_ACTIVATED for c in logged.changes) >= 34
