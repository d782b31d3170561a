"""Hostile alert feeds: the real Iowa capture with one feature mutated at a time (hypothesis), plus
named worst cases — bad JSON, self-intersecting and 100k-vertex polygons, NaN coordinates, unknown
zones, NUL characters. A broken feature is rejected with a bounded reason; every other feature of
the feed parses exactly as it does unmutated; a broken document is one FeedError."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from services.weather import geometry as geo
from services.weather import nws
from services.weather.geometry import MAX_AREA_VERTICES
from tests import weather_data as wd
from tests.hostile.strategies import HOSTILE, HOSTILE_STRINGS

NOW = wd.IOWA_NOW
IOWA: dict[str, Any] = wd.load(wd.IOWA)
ZONES = {f["properties"]["id"]: shapely.geometry.shape(f["geometry"])
         for f in wd.square_zones(wd.ugc_codes(wd.IOWA))["features"]}
BASELINE = nws.parse_feed(IOWA, now=NOW, zones=ZONES)

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                         st.text(max_size=30), st.sampled_from(HOSTILE_STRINGS[:21]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)
PROPERTY_KEYS = st.sampled_from(["id", "sent", "onset", "effective", "expires", "ends", "messageType", "status",
                                 "event", "headline", "severity", "references", "geocode", "areaDesc"])
TIME_TEXT = st.one_of(st.from_regex(r"date:now [+-] ?\d{1,20} (second|minute|hour|day)s?", fullmatch=True),
                      st.from_regex(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", fullmatch=True))
COORD = st.one_of(st.floats(), st.integers(-400, 400), st.text(max_size=3), st.none())
RINGS = st.lists(st.lists(st.lists(COORD, min_size=0, max_size=4), max_size=8), max_size=3)
GEOMETRIES = st.one_of(
    JSON_VALUES,
    st.builds(lambda c: {"type": "Polygon", "coordinates": c}, RINGS),
    st.builds(lambda c: {"type": "MultiPolygon", "coordinates": [c]}, RINGS),
    st.builds(lambda t: {"type": t, "coordinates": [[0, 0]]}, st.sampled_from(["Point", "LineString", "Polygon", "x"])),
)


def mutation() -> st.SearchStrategy[tuple[str, str, Any]]:
    return st.one_of(
        st.tuples(st.just("property"), PROPERTY_KEYS, st.one_of(JSON_VALUES, TIME_TEXT)),
        st.tuples(st.just("geometry"), st.just("geometry"), GEOMETRIES),
        st.tuples(st.just("replace"), st.just(""), JSON_VALUES),
        st.tuples(st.just("geocode"), st.just("UGC"), st.one_of(JSON_VALUES, st.lists(st.text(max_size=8)))),
    )


def mutate(doc: dict[str, Any], index: int, change: tuple[str, str, Any]) -> dict[str, Any]:
    out = copy.copy(doc)
    out["features"] = list(doc["features"])
    feature = copy.deepcopy(doc["features"][index])
    kind, key, value = change
    if kind == "property":
        feature["properties"][key] = value
    elif kind == "geometry":
        feature["geometry"] = value
    elif kind == "geocode":
        feature["properties"]["geocode"] = {key: value}
    else:
        feature = value
    out["features"][index] = feature
    return out


def check_result(result: nws.ParseResult) -> None:
    for alert in result.alerts:
        if not alert.area_known:   # no polygon, no known zone: kept, matched to nothing, nothing to check
            assert alert.area_wkt == "" and alert.bbox is None and alert.unresolved_zones == alert.zones
            assert alert.zones or alert.references
            continue
        area = shapely.from_wkt(alert.area_wkt)
        assert area.is_valid and not area.is_empty and area.area > 0
        assert alert.bbox is not None and all(math.isfinite(v) for v in alert.bbox)
        texts = (alert.alert_id, alert.event, alert.headline, alert.area_desc, *alert.zones, *alert.references)
        assert all(isinstance(t, str) and "\x00" not in t for t in texts), "Postgres text cannot hold NUL"
        assert alert.alert_id
    for rejection in result.rejections:
        assert rejection.reason and len(rejection.reason) <= 500 and len(rejection.alert_id) <= 256


@HOSTILE
@given(st.integers(0, len(IOWA["features"]) - 1), mutation())
def test_one_broken_feature_costs_only_itself(index: int, change: tuple[str, str, Any]) -> None:
    result = nws.parse_feed(mutate(IOWA, index, change), now=NOW, zones=ZONES)
    check_result(result)
    mutated_id = IOWA["features"][index]["properties"]["id"]
    untouched = [a for a in BASELINE.alerts if a.alert_id != mutated_id]
    assert all(alert in result.alerts for alert in untouched)
    assert len(result.alerts) + len(result.rejections) == len(IOWA["features"])


@HOSTILE
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_bytes_that_are_no_feed_raise_only_feed_error(body: bytes) -> None:
    try:
        check_result(nws.parse_feed(body, now=NOW))
    except nws.FeedError as exc:
        assert str(exc)


@pytest.mark.parametrize("body", [
    wd.IOWA.read_bytes()[:5_000],                                       # truncated real feed
    wd.IOWA.read_bytes().replace(b'"features"', b'"features\xff"', 1),  # invalid UTF-8
    b"[" * 100_000,                                                    # nested beyond the parser
    b'{"type": "FeatureCollection", "features": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"type": "FeatureCollection", "features": {}}',
    b"",
], ids=["truncated", "invalid-utf8", "deep-array", "deep-features", "features-object", "empty"])
def test_bad_json_is_one_feed_error(body: bytes) -> None:
    with pytest.raises(nws.FeedError):
        nws.parse_feed(body, now=NOW)


def _feature(geometry: Any, alert_id: str = "hostile") -> dict[str, Any]:
    feature = copy.deepcopy(next(f for f in IOWA["features"] if f["geometry"]))
    feature["properties"]["id"] = alert_id
    feature["geometry"] = geometry
    return feature


def _ring(n: int, lobes_x: int = 1, lobes_y: int = 1) -> list[list[float]]:
    points = [[-93 + 0.5 * math.cos(2 * math.pi * k * lobes_x / n), 42 + 0.5 * math.sin(2 * math.pi * k * lobes_y / n)]
              for k in range(n)]
    return [*points, points[0]]


def test_enormous_and_self_intersecting_polygons() -> None:
    bow_tie = {"type": "Polygon", "coordinates": [[[-93, 41], [-92, 42], [-92, 41], [-93, 42], [-93, 41]]]}
    huge = {"type": "Polygon", "coordinates": [_ring(100_000)]}
    huge_knotted = {"type": "Polygon", "coordinates": [_ring(100_000, 3, 2)]}   # a Lissajous knot
    doc = {"type": "FeatureCollection", "features": [
        *IOWA["features"], _feature(bow_tie, "bow-tie"), _feature(huge, "huge"), _feature(huge_knotted, "knot")]}
    # No timing here (a loaded machine failed a 10 s bound): the vertex bound below is what keeps
    # a hostile polygon from costing without limit; bench.weather measures the parse.
    result = nws.parse_feed(json.dumps(doc).encode(), now=NOW, zones=ZONES)
    check_result(result)
    by_id = {a.alert_id: a for a in result.alerts}
    assert by_id["bow-tie"].repaired.startswith("repaired with make_valid: Self-intersection")
    assert by_id["knot"].repaired.startswith("repaired with make_valid")
    for alert_id, sent in (("huge", huge), ("knot", huge_knotted)):   # bounded, and still covering what was sent
        area = shapely.from_wkt(by_id[alert_id].area_wkt)
        assert shapely.get_num_coordinates(area) <= MAX_AREA_VERTICES
        assert area.covers(shapely.make_valid(shapely.geometry.shape(sent)))
        assert "simplified from 100,0" in by_id[alert_id].repaired
    assert len(result.alerts) == len(BASELINE.alerts) + 3


@pytest.mark.parametrize(("geometry", "reason"), [
    ({"type": "Polygon", "coordinates": [[[math.nan, 41], [-92, 42], [-92, 41], [math.nan, 41]]]}, "malformed"),
    ({"type": "Polygon", "coordinates": [[[-93, 41], [-92, math.inf], [-92, 41], [-93, 41]]]}, "non-finite"),
    ({"type": "Polygon", "coordinates": [[[-93, 41], [-92, 142], [-92, 41], [-93, 41]]]}, "outside longitude"),
    ({"type": "Polygon", "coordinates": [[[-93, 41], [-92, 41], [-93, 41], [-93, 41]]]}, "nothing polygonal is left"),
    ({"type": "LineString", "coordinates": [[-93, 41], [-92, 42]]}, "not an area"),
    ({"type": "Polygon", "coordinates": "POLYGON((0 0))"}, "malformed"),
])
def test_unusable_areas_are_rejected_with_their_reason(geometry: Any, reason: str) -> None:
    result = nws.parse_feed(json.dumps({"type": "FeatureCollection", "features": [
        _feature(geometry, "bad"), *IOWA["features"]]}).encode(), now=NOW, zones=ZONES)
    [rejection] = result.rejections
    assert rejection.alert_id == "bad" and reason in rejection.reason
    assert len(result.alerts) == len(BASELINE.alerts)


@pytest.mark.parametrize(("change", "reason"), [
    ({"id": "bad\x00id"}, "NUL"),
    ({"references": [{"identifier": "x\x00y"}]}, "NUL"),
    ({"id": "https://api.weather.gov/alerts/"}, "no alert id"),
    ({"sent": "date:now +99999999999999 days"}, "outside the calendar"),
    ({"sent": "date:now -99999999999999 days"}, "outside the calendar"),
    ({"geocode": {"UGC": "IAZ001"}}, "not a list"),
])
def test_text_postgres_cannot_store_and_impossible_values(change: dict[str, Any], reason: str) -> None:
    feature = copy.deepcopy(next(f for f in IOWA["features"] if f["geometry"]))
    feature["properties"].update(change)
    result = nws.parse_feed({"type": "FeatureCollection", "features": [feature]}, now=NOW)
    assert not result.alerts
    [rejection] = result.rejections
    assert reason in rejection.reason


def test_nul_in_descriptive_text_is_dropped_not_the_alert() -> None:
    feature = copy.deepcopy(next(f for f in IOWA["features"] if f["geometry"]))
    feature["properties"]["headline"] = "Tornado\x00 Warning"
    [alert] = nws.parse_feed({"type": "FeatureCollection", "features": [feature]}, now=NOW).alerts
    assert alert.headline == "Tornado Warning"


def test_unknown_zones() -> None:
    zone_only = copy.deepcopy(next(f for f in IOWA["features"] if not f["geometry"]))
    known = zone_only["properties"]["geocode"]["UGC"][0]
    unknown = copy.deepcopy(zone_only)
    unknown["properties"]["id"], unknown["properties"]["geocode"]["UGC"] = "nowhere", ["ZZZ999"]
    junk = copy.deepcopy(zone_only)
    junk["properties"]["id"], junk["properties"]["geocode"]["UGC"] = "junk", ["ZZZ999", "'; DROP--"]
    partly = copy.deepcopy(zone_only)
    partly["properties"]["id"], partly["properties"]["geocode"]["UGC"] = "partly", [known, "ZZZ999"]
    result = nws.parse_feed({"type": "FeatureCollection", "features": [unknown, junk, partly]}, now=NOW, zones=ZONES)
    [rejection] = result.rejections
    assert rejection.alert_id == "junk" and "not a UGC zone code" in rejection.reason
    nowhere, alert = result.alerts     # zones nobody loaded: kept with its area unknown, matched to nothing
    assert nowhere.alert_id == "nowhere" and not nowhere.area_known and nowhere.unresolved_zones == ("ZZZ999",)
    assert alert.alert_id == "partly" and alert.unresolved_zones == ("ZZZ999",)


@settings(deadline=None, max_examples=40)   # GEOS on knotted rings of up to 4,000 vertices
@given(st.integers(3, 40), st.integers(1, 5), st.integers(1, 5), st.sampled_from([50, 200, 1_000]))
def test_a_bounded_area_covers_the_area_as_sent(vertices_per_lobe: int, lobes_x: int, lobes_y: int,
                                                max_vertices: int) -> None:
    sent = shapely.make_valid(shapely.Polygon(_ring(vertices_per_lobe * 97, lobes_x, lobes_y)))
    bounded, note = geo.bound_vertices(sent, max_vertices)
    assert shapely.get_num_coordinates(bounded) <= max_vertices
    assert bounded.is_valid and bounded.covers(sent)
    assert (note == "") == (bounded is sent)
