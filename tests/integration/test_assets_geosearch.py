"""Geosearch on real PostGIS against an independent computation: bounding boxes and polygons with
Shapely, distances with the haversine formula; the box search uses the GiST index (EXPLAIN)."""

import json
import math
import random

import grpc
import numpy as np
import pytest
import shapely

from gridtwin.api.assets.v1 import assets_pb2 as pb
from services.access.model import Scope, Visibility
from services.assets import bulk
from services.assets.model import GeoPoint, Installation, InstallationId, InstallationSettings
from services.assets.validation import parse_box

pytestmark = pytest.mark.integration

N = 3_000
EARTH_RADIUS_M = 6_371_008.8


def fleet(seed: int = 11) -> list[Installation]:
    """Points over California and Nevada, plus some exactly on the edges of the test boxes."""
    rng = random.Random(seed)
    points = [(round(rng.uniform(-124.0, -114.0), 6), round(rng.uniform(32.0, 42.0), 6)) for _ in range(N - 6)]
    points += [(-122.0, 37.0), (-121.0, 38.0), (-122.0, 37.5), (-121.5, 38.0), (-118.0, 34.0), (-117.0, 35.0)]
    return [Installation(InstallationId(f"geo-{i:05d}"), location=GeoPoint(lon, lat), time_zone="UTC",
                         settings=InstallationSettings()) for i, (lon, lat) in enumerate(points)]


@pytest.fixture
async def geo(assets, assets_engine):
    installations = fleet()
    north = [(i.installation_id, "utility.north") for i in installations if i.location.latitude_deg >= 37]
    south = [(i.installation_id, "utility.south") for i in installations if i.location.latitude_deg < 37]
    await bulk.load(assets_engine, bulk.FleetData(installations=installations, memberships=north + south),
                    actor="test")
    await assets.pool.execute("ANALYZE installations")
    lon = np.array([i.location.longitude_deg for i in installations])
    lat = np.array([i.location.latitude_deg for i in installations])
    ids = np.array([i.installation_id for i in installations])
    return assets, ids, lon, lat


async def all_pages(assets, method, request, token=None) -> list[str]:
    ids: list[str] = []
    while True:
        answer = await assets.call(method, request, token)
        ids.extend(i.installation_id for i in answer.installations)
        if not answer.next_page_token:
            return ids
        request.page_token = answer.next_page_token


BOXES = [(-122.0, 37.0, -121.0, 38.0), (-124.0, 32.0, -114.0, 42.0), (-118.0, 34.0, -117.0, 35.0),
         (-119.3, 35.2, -119.1, 35.4), (-100.0, 10.0, -90.0, 20.0), (-122.0, 37.5, -122.0, 37.5)]


@pytest.mark.parametrize("box", BOXES)
async def test_bounding_box_matches_shapely(geo, box):
    assets, ids, lon, lat = geo
    expected = sorted(ids[shapely.intersects_xy(shapely.box(*box), lon, lat)])
    request = pb.SearchInstallationsInBoxRequest(min_longitude_deg=box[0], min_latitude_deg=box[1],
                                                 max_longitude_deg=box[2], max_latitude_deg=box[3], page_size=500)
    assert await all_pages(assets, "SearchInstallationsInBox", request) == expected
    if box[0] == -122.0 and box[1] == 37.0:
        assert {"geo-02994", "geo-02995", "geo-02996"} <= set(expected)   # corners and an edge count


def star(cx: float, cy: float, r_outer: float, r_inner: float, spikes: int) -> str:
    ring = []
    for k in range(2 * spikes):
        r = r_outer if k % 2 == 0 else r_inner
        a = math.pi * k / spikes
        ring.append(f"{cx + r * math.cos(a):.7f} {cy + r * math.sin(a):.7f}")
    return f"POLYGON (({', '.join([*ring, ring[0]])}))"


POLYGONS = [
    star(-120.0, 37.0, 2.5, 0.8, 7),                                                     # concave
    "POLYGON ((-123 33, -115 33, -115 41, -123 41, -123 33), (-121 35, -117 35, -117 39, -121 39, -121 35))",  # hole
    "MULTIPOLYGON (((-124 32, -122 32, -122 34, -124 34, -124 32)), ((-118 38, -116 38, -117 41, -118 38)))",
    shapely.to_wkt(shapely.Point(-119, 36).buffer(1.3, quad_segs=64), rounding_precision=-1),  # 257 vertices
    "POLYGON ((-122 37, -121 37, -121 38, -122 38, -122 37))",                          # boundary points count
]


@pytest.mark.parametrize("wkt", POLYGONS)
async def test_polygon_matches_shapely(geo, wkt):
    assets, ids, lon, lat = geo
    expected = sorted(ids[shapely.intersects_xy(shapely.from_wkt(wkt), lon, lat)])
    assert len(expected) > 10
    request = pb.SearchInstallationsInPolygonRequest(polygon_wkt=wkt, page_size=250)
    assert await all_pages(assets, "SearchInstallationsInPolygon", request) == expected


def haversine_m(lon1, lat1, lon2, lat2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


@pytest.mark.parametrize(("center", "radius_m"), [((-121.9, 37.3), 50_000.0), ((-118.2, 34.0), 120_000.0),
                                                  ((-122.0, 37.0), 1.0)])
async def test_near_matches_haversine(geo, center, radius_m):
    assets, ids, lon, lat = geo
    answer = await assets.call("SearchInstallationsNear", pb.SearchInstallationsNearRequest(
        center=pb.GeoPoint(longitude_deg=center[0], latitude_deg=center[1]), radius_m=radius_m, limit=10_000))
    got = {f.installation.installation_id: f.distance_m for f in answer.installations}
    distances = [f.distance_m for f in answer.installations]
    assert distances == sorted(distances)
    sphere = haversine_m(center[0], center[1], lon, lat)
    # The spheroid and the sphere differ by up to 0.5 %: compare outside that band only.
    for i, d in zip(ids, sphere, strict=True):
        if d < radius_m * 0.995:
            assert i in got, (i, d)
        elif d > radius_m * 1.005:
            assert i not in got, (i, d)
        if i in got:
            assert got[i] == pytest.approx(d, rel=0.005, abs=0.01)
    answer = await assets.call("SearchInstallationsNear", pb.SearchInstallationsNearRequest(
        center=pb.GeoPoint(longitude_deg=center[0], latitude_deg=center[1]), radius_m=radius_m, limit=3))
    assert [f.distance_m for f in answer.installations] == distances[:3]


async def test_near_pages_nearest_first_without_gaps_or_repeats(geo):
    assets = geo[0]
    center = pb.GeoPoint(longitude_deg=-118.2, latitude_deg=34.0)
    whole = await assets.call("SearchInstallationsNear", pb.SearchInstallationsNearRequest(
        center=center, radius_m=120_000.0, page_size=10_000))
    assert len(whole.installations) > 20 and whole.next_page_token == ""
    request = pb.SearchInstallationsNearRequest(center=center, radius_m=120_000.0, page_size=7)
    pages, walked = 0, []
    while True:
        answer = await assets.call("SearchInstallationsNear", request)
        assert len(answer.installations) <= 7
        walked.extend((f.installation.installation_id, f.distance_m) for f in answer.installations)
        pages += 1
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    assert walked == [(f.installation.installation_id, f.distance_m) for f in whole.installations]
    assert pages == -(-len(walked) // 7)
    # `limit` still caps a page, now with a token for the rest
    answer = await assets.call("SearchInstallationsNear", pb.SearchInstallationsNearRequest(
        center=center, radius_m=120_000.0, limit=3))
    assert len(answer.installations) == 3 and answer.next_page_token
    token = answer.next_page_token
    other = pb.SearchInstallationsNearRequest(center=center, radius_m=100_000.0, page_token=token)
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    for request in (other, pb.SearchInstallationsNearRequest(center=center, radius_m=120_000.0, page_token=tampered),
                    pb.SearchInstallationsNearRequest(center=center, radius_m=120_000.0, page_token="geo-00001")):
        code, detail = await assets.outcome("SearchInstallationsNear", request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in detail, (code, detail)


async def test_searches_filter_by_the_token_groups(geo):
    assets, ids, lon, lat = geo
    north = await assets.token(Scope.READ, paths=("utility.north",))
    box = (-124.0, 32.0, -114.0, 42.0)
    request = pb.SearchInstallationsInBoxRequest(min_longitude_deg=box[0], min_latitude_deg=box[1],
                                                 max_longitude_deg=box[2], max_latitude_deg=box[3], page_size=700)
    assert await all_pages(assets, "SearchInstallationsInBox", request, north) == sorted(ids[lat >= 37])
    request = pb.SearchInstallationsInPolygonRequest(polygon_wkt=POLYGONS[0])
    expected = sorted(ids[shapely.intersects_xy(shapely.from_wkt(POLYGONS[0]), lon, lat) & (lat >= 37)])
    assert await all_pages(assets, "SearchInstallationsInPolygon", request, north) == expected
    answer = await assets.call("SearchInstallationsNear", pb.SearchInstallationsNearRequest(
        center=pb.GeoPoint(longitude_deg=-118.2, latitude_deg=34.0), radius_m=100_000), north)
    assert list(answer.installations) == []


def plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


@pytest.mark.parametrize("vis", [Visibility(everything=True), Visibility(paths=("utility.north",))],
                         ids=["all groups", "one group"])
async def test_bounding_box_search_uses_the_gist_index(geo, assets_engine, vis):
    assets = geo[0]
    query = assets.repository.box_query(parse_box(-119.3, 35.2, -119.1, 35.4), vis, 1_000)
    compiled = query.compile(dialect=assets_engine.dialect)
    params = [compiled.params[name] for name in compiled.positiontup]
    async with assets_engine.connect() as con:
        raw = await con.get_raw_connection()
        plan = await raw.driver_connection.fetchval("EXPLAIN (FORMAT JSON) " + compiled.string, *params)
    if isinstance(plan, str):  # SQLAlchemy's asyncpg connections decode json themselves
        plan = json.loads(plan)
    nodes = plan_nodes(plan[0]["Plan"])
    scans = [(n["Node Type"], n.get("Index Name")) for n in nodes if n.get("Index Name") == "installations_location"]
    assert scans, [(n["Node Type"], n.get("Index Name")) for n in nodes]
    assert scans[0][0] in ("Index Scan", "Bitmap Index Scan", "Index Only Scan")
    assert "&&" in compiled.string


async def test_bad_geometry_is_refused(geo):
    assets = geo[0]
    cases = [
        ("SearchInstallationsInBox", pb.SearchInstallationsInBoxRequest(
            min_longitude_deg=-200, min_latitude_deg=0, max_longitude_deg=0, max_latitude_deg=1), "min_longitude"),
        ("SearchInstallationsInBox", pb.SearchInstallationsInBoxRequest(
            min_longitude_deg=0, min_latitude_deg=0, max_longitude_deg=1, max_latitude_deg=91), "max_latitude"),
        ("SearchInstallationsInBox", pb.SearchInstallationsInBoxRequest(
            min_longitude_deg=179, min_latitude_deg=0, max_longitude_deg=-179, max_latitude_deg=1), "antimeridian"),
        ("SearchInstallationsInBox", pb.SearchInstallationsInBoxRequest(
            min_longitude_deg=math.nan, min_latitude_deg=0, max_longitude_deg=1, max_latitude_deg=1), "nan"),
        ("SearchInstallationsInPolygon", pb.SearchInstallationsInPolygonRequest(
            polygon_wkt="POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"), "Self-intersection"),
        ("SearchInstallationsInPolygon", pb.SearchInstallationsInPolygonRequest(
            polygon_wkt="LINESTRING (0 0, 1 1)"), "not a Polygon"),
        ("SearchInstallationsInPolygon", pb.SearchInstallationsInPolygonRequest(
            polygon_wkt="POLYGON ((0 0, 1 0, 1 100, 0 0))"), "out of range"),
        ("SearchInstallationsNear", pb.SearchInstallationsNearRequest(
            center=pb.GeoPoint(longitude_deg=0, latitude_deg=-95), radius_m=10), "center.latitude"),
        ("SearchInstallationsNear", pb.SearchInstallationsNearRequest(radius_m=10), "center: required"),
        ("SearchInstallationsNear", pb.SearchInstallationsNearRequest(
            center=pb.GeoPoint(longitude_deg=0, latitude_deg=0), radius_m=-1), "radius_m"),
        ("SearchInstallationsInBox", pb.SearchInstallationsInBoxRequest(
            min_longitude_deg=0, min_latitude_deg=0, max_longitude_deg=1, max_latitude_deg=1, page_size=10_001),
         "page_size"),
        ("SearchInstallationsInBox", pb.SearchInstallationsInBoxRequest(
            min_longitude_deg=0, min_latitude_deg=0, max_longitude_deg=1, max_latitude_deg=1, page_token="a b"),
         "page_token"),
    ]
    for method, request, fragment in cases:
        code, detail = await assets.outcome(method, request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, request)
        assert fragment in detail, detail
