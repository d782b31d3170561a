"""Alerts in real Postgres (lifecycle, change log, zones) and two-step matching on real PostGIS
against a direct `ST_Intersects`: the real Iowa polygons and a generated 1,000+-vertex hurricane
(a MultiPolygon whose main body has a hole), with installations placed on vertices and edges."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import shapely

from services.assets import bulk
from services.assets.model import GeoPoint, Installation, InstallationId
from services.weather import matching, nws, zones
from services.weather.model import AlertState, ChangeKind, MessageType
from services.weather.store import AlertStore
from tests import weather_data as wd

pytestmark = pytest.mark.integration

WEATHER_TABLES = "weather_alert_changes, weather_alerts, weather_zones, weather_rejections"


@pytest.fixture
async def store(clean_db):
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    return AlertStore(clean_db)


def boundary_points(area: shapely.Geometry, count: int, rng: random.Random) -> list[tuple[float, float]]:
    """Vertices, edge midpoints and points a hair inside/outside: where two engines would disagree."""
    coords = shapely.get_coordinates(area)
    picks = [tuple(coords[rng.randrange(len(coords) - 1)]) for _ in range(count)]
    for _ in range(count):
        k = rng.randrange(len(coords) - 1)
        (x0, y0), (x1, y1) = coords[k], coords[k + 1]
        t = rng.random()
        picks.append((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
        picks.append(((x0 + x1) / 2 + 1e-9, (y0 + y1) / 2 - 1e-9))
    return [(float(x), float(y)) for x, y in picks]


async def seed(assets_engine, areas: list[shapely.Geometry], per_area: int = 1_500) -> int:
    rng = random.Random(3)
    points: list[tuple[float, float]] = []
    for area in areas:
        x0, y0, x1, y1 = area.bounds
        dx, dy = (x1 - x0) * 0.2, (y1 - y0) * 0.2
        points += [(rng.uniform(x0 - dx, x1 + dx), rng.uniform(y0 - dy, y1 + dy)) for _ in range(per_area)]
        points += boundary_points(area, 50, rng)
    installations = [Installation(InstallationId(f"wx-{i:06d}"), location=GeoPoint(lon, lat))
                     for i, (lon, lat) in enumerate(points)]
    await bulk.load(assets_engine, bulk.FleetData(installations=installations), actor="test")
    return len(installations)


async def test_two_steps_equal_st_intersects(clean_db, assets_engine):
    iowa = [shapely.from_wkt(a.area_wkt) for a in nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW).alerts
            if a.area_known]
    storm = wd.hurricane()
    assert shapely.get_num_coordinates(storm) >= 1_000
    assert isinstance(storm, shapely.MultiPolygon) and len(storm.geoms[0].interiors) == 1
    await seed(assets_engine, [shapely.union_all(iowa), storm])
    await clean_db.execute("ANALYZE installations")
    nonempty = 0
    for area in [*iowa, storm, storm.geoms[0]]:
        wkt = nws.geo.to_wkt(area)
        two_step = await matching.affected(clean_db, area)
        direct = await matching.affected_direct(clean_db, wkt)
        assert sorted(two_step) == sorted(direct)
        assert len(set(two_step)) == len(two_step)
        nonempty += bool(direct)
    assert nonempty >= 20
    # Refinement split over workers gives the same set.
    found = await matching.candidates(clean_db, storm)
    chunks = matching.refine_chunks(found, 97)
    parts = [matching.refine_wkt(nws.geo.to_wkt(storm), c.ids, c.longitudes_deg.tolist(), c.latitudes_deg.tolist())
             for c in chunks]
    whole = matching.refine(storm, found)
    assert [i for p in parts for i in p.inside] == list(whole.inside)
    assert [i for p in parts for i in p.boundary] == list(whole.boundary)
    assert whole.boundary   # the points placed on edges
    # Nothing inside the eye.
    eye = shapely.Polygon(storm.geoms[0].interiors[0]).buffer(-1e-6)
    eye_ids = {r[0] for r in await clean_db.fetch(
        "SELECT installation_id FROM installations WHERE ST_Within(location, ST_GeomFromText($1, 4326))",
        eye.wkt)}
    assert eye_ids and not eye_ids & set(await matching.affected(clean_db, storm))


async def test_step_one_uses_the_gist_index_only(clean_db, assets_engine):
    await seed(assets_engine, [wd.hurricane()], per_area=3_000)
    await clean_db.execute("ANALYZE installations")
    plan = "\n".join(r[0] for r in await clean_db.fetch(
        "EXPLAIN " + matching.candidates_sql(2), -81.0, 25.0, -80.0, 26.0, -79.0, 25.0, -78.0, 26.0))
    assert "installations_location" in plan and "ST_Intersects" not in plan


async def test_alert_update_cancel_in_postgres(store):
    t0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
    iowa = nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW).alerts
    first = await store.ingest(iowa, wd.IOWA_NOW, "iowa")
    assert first.received == 48 and first.duplicates == 0
    assert first.area_unknown == 14      # the zone-only ones without zones: stored, matched to nothing
    assert len(first.changes) == len(await store.active()) > 0
    again = await store.ingest(iowa, wd.IOWA_NOW, "iowa")
    assert again.duplicates == 48 and again.changes == ()

    base = iowa[0]
    from dataclasses import replace
    a = replace(base, alert_id="T-A", sent=t0, onset=t0, expires=t0 + dt.timedelta(hours=5), ends=None,
                message_type=MessageType.ALERT, references=())
    u = replace(a, alert_id="T-U", sent=t0 + dt.timedelta(hours=1), message_type=MessageType.UPDATE,
                references=("T-A",), expires=t0 + dt.timedelta(hours=8))
    c = replace(a, alert_id="T-C", sent=t0 + dt.timedelta(hours=2), message_type=MessageType.CANCEL,
                references=("T-A", "T-U"))
    seq = await store.last_seq()
    await store.ingest([a], t0)
    await store.ingest([u], t0 + dt.timedelta(hours=1))
    await store.ingest([u], t0 + dt.timedelta(hours=1))
    await store.ingest([c], t0 + dt.timedelta(hours=2))
    log = await store.changes_after(seq)
    assert [(x.change.kind, x.change.alert.alert_id) for x in log] == [
        (ChangeKind.ACTIVATED, "T-A"), (ChangeKind.UPDATED, "T-U"), (ChangeKind.ENDED, "T-U")]
    assert log[1].change.replaces == ("T-A",) and log[2].change.cancelled_by == "T-C"
    assert log[1].change.alert.expires == t0 + dt.timedelta(hours=8)
    assert log[0].change.alert.area_wkt == base.area_wkt
    stored = await store.get("T-U")
    assert stored is not None and stored.state is AlertState.CANCELLED


async def test_expiry_in_postgres(store):
    alerts = nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW).alerts
    await store.ingest(alerts, wd.IOWA_NOW)
    active = await store.active()
    latest_end = max(a.end for a in active if a.end)
    ended = await store.expire(latest_end)
    assert {x.change.alert.alert_id for x in ended} == {a.alert_id for a in active if a.end and a.end <= latest_end}
    assert all(x.change.reason == "expired" for x in ended)
    assert await store.expire(latest_end) == ()


async def test_zones_round_trip(store):
    loaded = zones.load_geojson(wd.square_zones(wd.ugc_codes(wd.ZONE_ONLY)))
    assert await store.save_zones(loaded.zones, "squares") == 11
    table = await store.load_zones()
    assert set(table) == set(loaded.zones) and all(table[k].equals(v) for k, v in loaded.zones.items())
    [alert] = nws.parse_feed(wd.ZONE_ONLY.read_bytes(), now=wd.IOWA_NOW, zones=table).alerts
    assert alert.unresolved_zones == ()
