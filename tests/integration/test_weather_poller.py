"""The poller on real Postgres/PostGIS: files → store → two-step matching → twins (StormWatch
rules), Alert → Update → Cancel with the hurricane polygon, and the real Iowa feed (zone-only
alerts resolved through constructed square zones) with a broken file beside it."""

from __future__ import annotations

import datetime as dt
import os

import pytest
import shapely

from actors.twin import stormwatch as sw
from services.weather import matching, zones
from services.weather.poller import PollerSettings, PostgisMatcher, WeatherPoller
from services.weather.providers import FileProvider
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.test_weather_store_matching import WEATHER_TABLES, seed
from tests.unit.test_weather_poller import Twins

pytestmark = pytest.mark.integration

T0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def write(path, body: bytes, at: float) -> None:
    path.write_bytes(body)
    os.utime(path, (at, at))


async def test_alert_update_cancel_from_files_to_twin_state(clean_db, assets_engine, tmp_path):
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    storm = wd.hurricane()
    moved = shapely.affinity.translate(storm, 1.0, 0.5)
    await seed(assets_engine, [storm, moved], per_area=1_000)
    now = [T0]
    store = AlertStore(clean_db)
    twins = Twins(lambda: now[0])
    feed = tmp_path / "feed.json"
    poller = WeatherPoller(store, PostgisMatcher(clean_db), [FileProvider(tmp_path)], twins,
                           PollerSettings(deliver_batch=500), clock=lambda: now[0])

    write(feed, wd.feed_doc(wd.alert_feature("H-A", "Alert", storm, T0)), 1)
    report = await poller.poll_once()
    first = set(await matching.affected_direct(clean_db, shapely.to_wkt(storm, rounding_precision=-1)))
    assert report.changes == 1 and report.deliveries == len(first) > 100
    assert {i for i, s in twins.states.items() if s.active} == first
    some = sorted(first)[0]
    assert sw.view(twins.states[some]).alert_id == "H-A"
    assert twins.intents[some][0] == sw.ScheduleStormCharge(("H-A",), 100.0, T0, T0 + 6 * H, T0 + 30 * H)

    now[0] = T0 + H
    write(feed, wd.feed_doc(wd.alert_feature("H-A", "Alert", storm, T0),
                            wd.alert_feature("H-U", "Update", moved, T0 + H, refs=("H-A",), hours=40)), 2)
    await poller.poll_once()
    second = set(await matching.affected_direct(clean_db, shapely.to_wkt(moved, rounding_precision=-1)))
    assert {i for i, s in twins.states.items() if s.active} == second
    kept = sorted(first & second)[0]
    assert sw.view(twins.states[kept]).until == T0 + 41 * H and sw.view(twins.states[kept]).alert_id == "H-U"
    left = sorted(first - second)[0]
    assert isinstance(twins.intents[left][-1], sw.RestoreOperationMode)

    now[0] = T0 + 2 * H
    write(feed, wd.feed_doc(wd.alert_feature("H-C", "Cancel", moved, T0 + 2 * H, refs=("H-A", "H-U"))), 3)
    await poller.poll_once()
    assert not any(s.active for s in twins.states.values())
    assert twins.intents[kept][-1] == sw.RestoreOperationMode("self_consumption", "storm over")
    assert await store.load_cursor("stormwatch") == await store.last_seq()


async def test_real_feed_with_zones_and_a_broken_file(clean_db, tmp_path):
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    store = AlertStore(clean_db)
    loaded = zones.load_geojson(wd.square_zones(wd.ugc_codes(wd.IOWA)))
    await store.save_zones(loaded.zones, "squares (test stand-in)")
    (tmp_path / "a_broken.json").write_bytes(b'{"type": "FeatureCollection", "features": [')
    (tmp_path / "b_iowa.json").write_bytes(wd.IOWA.read_bytes())
    twins = Twins(lambda: wd.IOWA_NOW)
    poller = WeatherPoller(store, PostgisMatcher(clean_db), [FileProvider(tmp_path, wd.IOWA_NOW)], twins,
                           clock=lambda: wd.IOWA_NOW)
    report = await poller.poll_once()
    assert report.alerts == 48 and report.rejections == 1
    reasons = [r[0] for r in await clean_db.fetch("SELECT reason FROM weather_rejections")]
    assert len(reasons) == 1 and "not JSON" in reasons[0]
    active = await store.active()
    assert len(active) == report.changes == 48 - sum(1 for a in active if a.end and a.end <= wd.IOWA_NOW)


async def test_zones_loaded_while_the_service_runs_apply_to_the_next_poll(clean_db, tmp_path):
    """The weather service's ingest caches the zone table; zones loaded meanwhile (another process:
    `gridtwin weather load-zones`) are used from its next poll, and the alerts stored before them
    get their area from `resolve_zones` (what load-zones runs)."""
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    store = AlertStore(clean_db)
    feed = wd.load(wd.IOWA)
    zone_only = [f for f in feed["features"] if f["geometry"] is None]
    write(tmp_path / "a.json", wd.feed_doc(zone_only[0]), 1)
    poller = WeatherPoller(store, None, [FileProvider(tmp_path, wd.IOWA_NOW)], None, clock=lambda: wd.IOWA_NOW)
    await poller.poll_once()
    first = await store.get(zone_only[0]["properties"]["id"])
    assert first is not None and not first.alert.area_known and first.state.value == "active"

    await store.save_zones(zones.load_geojson(wd.square_zones(wd.ugc_codes(wd.IOWA))).zones, "squares")
    write(tmp_path / "b.json", wd.feed_doc(zone_only[1]), 2)
    await poller.poll_once()
    second = await store.get(zone_only[1]["properties"]["id"])
    assert second is not None and second.alert.area_known and second.alert.unresolved_zones == ()
    [resolved] = await store.resolve_zones(await store.load_zones(), wd.IOWA_NOW)
    assert resolved.change.alert.alert_id == first.alert.alert_id and resolved.change.alert.area_known
    assert (await store.get(first.alert.alert_id)).alert.area_known   # type: ignore[union-attr]
