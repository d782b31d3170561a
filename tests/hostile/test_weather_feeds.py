"""Hostile alert feeds through the poller into the real Postgres/PostGIS: the real Iowa feed with
hostile features mixed in, beside documents that are no feed at all. Every good alert is stored and
matched, every bad part is one rejection row, one log line and one metric count, and the poll
itself never fails."""

from __future__ import annotations

import copy
import json
import logging
import math
from typing import Any

import pytest
import shapely
from prometheus_client import REGISTRY

from services.weather import nws, zones
from services.weather.geometry import MAX_AREA_VERTICES
from services.weather.poller import PostgisMatcher, WeatherPoller
from services.weather.providers import FileProvider
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.test_weather_store_matching import WEATHER_TABLES
from tests.unit.test_weather_poller import Twins

pytestmark = pytest.mark.integration


def rejected(part: str) -> float:
    return REGISTRY.get_sample_value("gridtwin_weather_feed_rejections_total", {"part": part}) or 0.0


def feature(alert_id: str, geometry: Any = None, **properties: Any) -> dict[str, Any]:
    base = copy.deepcopy(next(f for f in wd.load(wd.IOWA)["features"] if f["geometry"]))
    base["properties"].update(id=alert_id, **properties)
    if geometry is not None:
        base["geometry"] = geometry
    return base


def ring(n: int, lobes_x: int = 1, lobes_y: int = 1) -> list[list[float]]:
    points = [[-93 + 0.5 * math.cos(2 * math.pi * k * lobes_x / n), 42 + 0.5 * math.sin(2 * math.pi * k * lobes_y / n)]
              for k in range(n)]
    return [*points, points[0]]


async def test_the_rest_of_a_hostile_feed_is_ingested(clean_db, tmp_path, caplog):
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    store = AlertStore(clean_db)
    await store.save_zones(zones.load_geojson(wd.square_zones(wd.ugc_codes(wd.IOWA))).zones, "squares")
    iowa = wd.load(wd.IOWA)
    accepted_hostile = [
        feature("bow-tie", {"type": "Polygon",
                            "coordinates": [[[-93, 41], [-92, 42], [-92, 41], [-93, 42], [-93, 41]]]}),
        feature("huge-100k", {"type": "Polygon", "coordinates": [ring(100_000)]}),
        feature("knot-100k", {"type": "Polygon", "coordinates": [ring(100_000, 3, 2)]}),
        feature("nul-in-headline", headline="Tornado\x00 Warning'; DROP TABLE weather_alerts;--"),
        feature("a.b'; DROP TABLE weather_alerts;--"),
        # zones nobody loaded: kept with its area unknown (listed, matched to nothing), no longer refused
        feature("unknown-zones", None, geocode={"UGC": ["ZZZ999"]}) | {"geometry": None},
    ]
    refused_hostile = [
        feature("nul\x00id"),
        feature("nan", {"type": "Polygon", "coordinates": [[[math.nan, 41], [-92, 42], [-92, 41], [math.nan, 41]]]}),
        feature("overflow", sent="date:now +99999999999999 days"),
        feature("junk-zone", None, geocode={"UGC": ["ZZZ999", "'; DROP--"]}) | {"geometry": None},
        feature("ugc-string", geocode={"UGC": "IAZ001"}),
        feature("x" * 100_000, sent="not a time " + "y" * 1_000_000),
    ]
    iowa["features"] = [*accepted_hostile[:2], *iowa["features"], *refused_hostile, *accepted_hostile[2:]]
    (tmp_path / "a_deep.json").write_bytes(b'{"type": "FeatureCollection", "features": ' + b"[" * 100_000)
    (tmp_path / "b_not_utf8.json").write_bytes(b"\xff\xfe" + wd.IOWA.read_bytes())
    (tmp_path / "c_iowa_hostile.json").write_bytes(json.dumps(iowa).encode())
    (tmp_path / "d_truncated.json").write_bytes(wd.IOWA.read_bytes()[:10_000])

    before = {part: rejected(part) for part in ("document", "entry")}
    poller = WeatherPoller(store, PostgisMatcher(clean_db), [FileProvider(tmp_path, wd.IOWA_NOW)],
                           Twins(lambda: wd.IOWA_NOW), clock=lambda: wd.IOWA_NOW)
    with caplog.at_level(logging.WARNING, logger="services.weather.poller"):
        report = await poller.poll_once()

    assert report.documents == 4 and report.alerts == 48 + len(accepted_hostile)
    assert report.rejections == 3 + len(refused_hostile)
    assert rejected("document") - before["document"] == 3
    assert rejected("entry") - before["entry"] == len(refused_hostile)
    assert sum("rejected" in r.getMessage() for r in caplog.records) == 4   # one line per document

    stored = {r["alert_id"]: r for r in await clean_db.fetch(
        "SELECT alert_id, headline, area_wkt = '' AS unknown, ST_IsValid(area) AS valid, ST_NPoints(area) AS points "
        "FROM weather_alerts")}
    expected = {a.alert_id for a in nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW,
                                                   zones=await store.load_zones()).alerts}
    assert expected | {f["properties"]["id"] for f in accepted_hostile} == set(stored)
    assert all(r["valid"] for r in stored.values() if not r["unknown"])
    assert {i for i, r in stored.items() if r["unknown"]} == {"unknown-zones"}
    assert stored["huge-100k"]["points"] <= MAX_AREA_VERTICES < 100_001   # simplified, covering the ring as sent
    assert stored["nul-in-headline"]["headline"].startswith("Tornado Warning'; DROP")

    rows = await clean_db.fetch("SELECT alert_id, reason FROM weather_rejections ORDER BY rejection_id")
    assert len(rows) == report.rejections
    assert all(r["reason"] and len(r["reason"]) <= 500 and len(r["alert_id"]) <= 256 for r in rows)
    reasons = {r["alert_id"]: r["reason"] for r in rows}
    assert "NUL" in reasons["nul\\x00id"]
    assert "not a UGC zone code" in reasons["junk-zone"]
    assert "outside the calendar" in reasons["overflow"]
    # The area of the hostile feed can be matched like any other (PostGIS && + Shapely refinement).
    area = shapely.from_wkt((await store.get("knot-100k")).alert.area_wkt)   # type: ignore[union-attr]
    assert area.is_valid and await PostgisMatcher(clean_db).affected(area, area.wkt) == []
