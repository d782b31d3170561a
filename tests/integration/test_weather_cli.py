"""`gridtwin weather`: load zones (constructed squares, see tests/weather_data.py), ingest the
real feeds, list the active alerts; `services.weather` serves the API with the ingest loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
import shapely
from typer.testing import CliRunner

from gridtwin.api.weather.v1 import weather_pb2 as pb
from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc
from gridtwin.app import wiring as services
from gridtwin.app.cli import app
from services.access.model import Scope
from services.weather.api import WeatherApi
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.access_support import authenticator, authorized_channel, mint
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
    # --now in 2024: the storms are long over. Stored as expired, and the output says so.
    assert "48 already over: stored as expired" in printed
    states = await clean_db.fetch("SELECT state, count(*) FROM weather_alerts GROUP BY state")
    assert {r["state"]: r["count"] for r in states} == {"expired": 48}

    # The service's own feed loop reads the same folder (the 2024 feed again: duplicates) and a live alert.
    live = dt.datetime.now(dt.UTC).replace(microsecond=0)
    (tmp_path / "feeds" / "live.json").write_bytes(wd.feed_doc(wd.alert_feature("cli-live", "Alert", wd.hurricane(),
                                                                                live)))
    settings = platform.model_copy(update={"weather": platform.weather.model_copy(update={
        "port": 0, "metrics_port": 0, "feed_dir": str(tmp_path / "feeds"), "poll_interval_s": 0.05})})
    async with services.weather(settings) as server, \
            authorized_channel(f"127.0.0.1:{server.port}", clean_db) as channel:  # type: ignore[attr-defined]
        stub = pb_grpc.WeatherServiceStub(channel)
        for _ in range(100):
            logged = await stub.ListAlertChanges(pb.ListAlertChangesRequest(limit=5_000))
            if logged.changes:
                break
            await asyncio.sleep(0.05)
        assert [(c.kind, c.alert.alert_id) for c in logged.changes] == [(pb.AlertChange.KIND_ACTIVATED, "cli-live")]
        # `weather active` asks the WeatherService: the live alert, none of the expired ones.
        env = {"GRIDTWIN_WEATHER__PORT": str(server.port), "GRIDTWIN_TOKEN": await mint(clean_db, Scope.READ),  # type: ignore[attr-defined]
               "GRIDTWIN_CONFIG": str(tmp_path / "no-config.toml")}
        result = await asyncio.to_thread(CliRunner(env=env).invoke, app, ["weather", "active", "-o", "json"])
        assert result.exit_code == 0, result.output
        assert [a["alert_id"] for a in json.loads(result.stdout)] == ["cli-live"]


async def test_zone_only_alerts_wait_for_their_zones_then_affect_installations(clean_db, platform, monkeypatch,
                                                                              tmp_path, assets_engine):
    """Before the zones are loaded, Iowa's 14 zone-only alerts are stored and listed as of unknown
    area (matched to nothing); `load-zones` gives the active ones their area and logs them again as
    activated, so StormWatch acts; `weather affected` lists who is under one."""
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    monkeypatch.setenv("GRIDTWIN_POSTGRES__URL", platform.postgres.url)
    runner = CliRunner()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)     # the feed's placeholders as of now: active
    (tmp_path / "iowa.json").write_bytes(wd.IOWA.read_bytes())
    result = await asyncio.to_thread(runner.invoke, app, ["weather", "ingest", str(tmp_path / "iowa.json"),
                                                          "--now", now.isoformat()])
    printed = " ".join(result.output.split())
    assert result.exit_code == 0 and "iowa.json: 48 alerts" in printed, result.output
    assert "14 with unknown area: stored, matched to no installation" in printed and "already over" not in printed
    async with WeatherApi("127.0.0.1", 0, AlertStore(clean_db), authenticator=authenticator(assets_engine)) as api:
        env = {"GRIDTWIN_WEATHER__PORT": str(api.port), "GRIDTWIN_TOKEN": await mint(clean_db, Scope.READ),
               "GRIDTWIN_CONFIG": str(tmp_path / "no-config.toml")}
        result = await asyncio.to_thread(CliRunner(env=env).invoke, app, ["weather", "active"])
        assert result.exit_code == 0 and "48 active alerts" in result.output and "unknown" in result.output
    zone_only = [f["properties"]["id"] for f in wd.load(wd.IOWA)["features"] if f["geometry"] is None]
    unknown = await clean_db.fetch("SELECT alert_id FROM weather_alerts WHERE area IS NULL AND state = 'active'")
    assert sorted(r[0] for r in unknown) == sorted(zone_only) and len(zone_only) == 14

    squares = wd.square_zones(wd.ugc_codes(wd.IOWA))
    (tmp_path / "zones.geojson").write_text(json.dumps(squares))
    result = await asyncio.to_thread(runner.invoke, app, ["weather", "load-zones", str(tmp_path / "zones.geojson")])
    assert result.exit_code == 0 and "14 active alert(s) of unknown area now have one" in result.output
    store = AlertStore(clean_db)
    resolved = [c for c in await store.changes_after(0, 5_000) if c.change.reason == "area resolved"]
    assert sorted(c.change.alert.alert_id for c in resolved) == sorted(zone_only)
    assert all(c.change.alert.area_known for c in resolved)

    # Installations under one of them (its first zone's square), and one outside every alert.
    alert = (await store.get(zone_only[0])).alert   # type: ignore[union-attr]
    x0, y0, _, _ = shapely.get_parts(shapely.from_wkt(alert.area_wkt))[0].bounds   # a square of one of its zones
    sites = [(f"cli-{k}", x0 + 0.01 + k * 0.001, y0 + 0.01) for k in range(3)] + [("cli-far", 10.0, 10.0)]
    for name, lon, lat in sites:
        await clean_db.execute("INSERT INTO installations (installation_id, location, stormwatch_enabled) "
                               "VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326), $4)", name, lon, lat,
                               name != "cli-2")
    async with WeatherApi("127.0.0.1", 0, store, authenticator=authenticator(assets_engine)) as api:
        monkeypatch.setenv("GRIDTWIN_WEATHER__PORT", str(api.port))
        monkeypatch.setenv("GRIDTWIN_TOKEN", await mint(clean_db, Scope.READ))
        monkeypatch.setenv("GRIDTWIN_CONFIG", str(tmp_path / "no-config.toml"))
        result = await asyncio.to_thread(runner.invoke, app, ["weather", "affected", alert.alert_id,
                                                              "--page-size", "2", "--all"])
        assert result.exit_code == 0, result.output
        printed = " ".join(result.output.split())
        assert "3 installations affected (not_watching 2, disabled 1)" in printed
        assert all(f"cli-{k}" in printed for k in range(3)) and "cli-far" not in printed
        result = await asyncio.to_thread(runner.invoke, app, ["weather", "affected", "no-such-alert"])
        assert result.exit_code == 3 and result.output.startswith("error: not found")


async def test_zones_load_from_nws_awips_shapefiles(clean_db, platform, monkeypatch, tmp_path):
    """The NWS publishes its public forecast zones and counties as AWIPS shapefiles (weather.gov/gis:
    `z_*.shp` with STATE + ZONE, `c_*.shp` with STATE + FIPS): `load-zones` reads them, and every
    Iowa zone-only alert then has an area."""
    import shapefile

    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    monkeypatch.setenv("GRIDTWIN_POSTGRES__URL", platform.postgres.url)
    squares = {f["properties"]["id"]: f["geometry"] for f in wd.square_zones(wd.ugc_codes(wd.IOWA))["features"]}
    for name, kind, fields in (("z_test", "Z", ("ZONE", 3)), ("c_test", "C", ("FIPS", 5))):
        with shapefile.Writer(str(tmp_path / name), shapeType=shapefile.POLYGON) as writer:
            writer.field("STATE", "C", 2)
            writer.field(fields[0], "C", fields[1])
            for code, square in squares.items():
                if code[2] == kind:
                    writer.poly([list(reversed(square["coordinates"][0]))])   # shapefile rings run clockwise
                    number = code[3:] if kind == "Z" else f"19{code[3:]}"   # counties by FIPS: Iowa is 19
                    writer.record(code[:2], number)
    runner = CliRunner()
    for name in ("z_test.shp", "c_test.shp"):
        result = await asyncio.to_thread(runner.invoke, app, ["weather", "load-zones", str(tmp_path / name)])
        assert result.exit_code == 0 and "(0 skipped)" in result.output, result.output
    stored = await AlertStore(clean_db).load_zones()
    assert set(stored) == set(squares) and all(stored[c].equals(shapely.geometry.shape(g)) for c, g in squares.items())
    (tmp_path / "iowa.json").write_bytes(wd.IOWA.read_bytes())
    result = await asyncio.to_thread(runner.invoke, app, ["weather", "ingest", str(tmp_path / "iowa.json"),
                                                          "--now", dt.datetime.now(dt.UTC).isoformat()])
    assert result.exit_code == 0 and "unknown area" not in result.output, result.output
    assert await clean_db.fetchval("SELECT count(*) FROM weather_alerts WHERE area IS NULL") == 0
