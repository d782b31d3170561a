"""NWS alerts GeoJSON → normalized alerts: the real feeds in ../shared/data/nws_alerts, time
placeholders, polygon repair and rejection, zone resolution (with constructed square zones: there
is no zone geometry in shared/, see tests/weather_data.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import shapely

from services.weather import geometry, nws, zones
from services.weather.model import MessageType
from tests import weather_data as wd

NOW = wd.IOWA_NOW


@pytest.fixture(scope="module")
def zone_table():
    loaded = zones.load_geojson(json.dumps(wd.square_zones(wd.ugc_codes(*wd.FEEDS))))
    assert not loaded.errors
    return loaded.zones


@pytest.mark.parametrize("path", wd.FEEDS, ids=lambda p: p.name)
def test_real_feeds_parse_completely(path, zone_table):
    doc = wd.load(path)
    result = nws.parse_feed(path.read_bytes(), now=NOW, zones=zone_table, source=path.name)
    assert result.rejections == ()
    assert len(result.alerts) == len(doc["features"])
    for alert, feature in zip(result.alerts, doc["features"], strict=True):
        props = feature["properties"]
        assert alert.alert_id == props["id"] and alert.event == props["event"]
        assert alert.message_type == MessageType(props["messageType"])
        assert [r["identifier"] for r in props["references"]] == list(alert.references)
        area = shapely.from_wkt(alert.area_wkt)
        assert area.is_valid and not area.is_empty and area.geom_type in ("Polygon", "MultiPolygon")
        assert alert.bbox == pytest.approx(area.bounds)
        for name in ("sent", "onset", "expires", "ends"):
            value = getattr(alert, name)
            assert value is None or value.tzinfo is not None
        if feature["geometry"] is not None:
            assert area.equals(shapely.geometry.shape(feature["geometry"]))
        else:
            assert set(alert.zones) == set(props["geocode"]["UGC"]) and alert.unresolved_zones == ()


def test_placeholders_resolve_against_now():
    iowa = nws.parse_feed(wd.IOWA.read_bytes(), now=NOW).alerts
    first = next(a for a in iowa if a.alert_id.endswith("25f72948d61d1cc17723389119c7b33eee29f868.001.1"))
    assert first.sent == NOW - dt.timedelta(seconds=252)
    assert first.expires == NOW + dt.timedelta(seconds=2447)
    assert nws.parse_time("date:now +425 minutes", NOW) == NOW + dt.timedelta(minutes=425)
    assert nws.parse_time("date:now", NOW) == NOW
    assert nws.parse_time("2019-12-20T13:34:00-08:00", NOW) == dt.datetime(2019, 12, 20, 21, 34, tzinfo=dt.UTC)
    saved = nws.saved_at(wd.NATIONWIDE.read_bytes())
    assert saved == dt.datetime(2025, 12, 15, 21, 55, tzinfo=dt.UTC)


def test_real_times_and_references_of_the_zone_only_feed(zone_table):
    [alert] = nws.parse_feed(wd.ZONE_ONLY.read_bytes(), now=NOW, zones=zone_table).alerts
    assert alert.message_type is MessageType.UPDATE and len(alert.references) == 4
    assert alert.ends == dt.datetime(2019, 12, 22, 18, 0, tzinfo=dt.UTC)
    assert alert.end == alert.ends
    area = shapely.from_wkt(alert.area_wkt)
    assert area.area == pytest.approx(11 * 0.4 * 0.4)   # 11 disjoint squares, one per zone


def test_without_zones_a_zone_only_alert_is_kept_with_its_area_unknown():
    """Stored and shown, matched to nothing until the zones are loaded (not rejected: a Cancel or
    Update among them must still reach the alert it names)."""
    result = nws.parse_feed(wd.ZONE_ONLY.read_bytes(), now=NOW)
    [alert] = result.alerts
    assert result.rejections == () and not alert.area_known and alert.area_wkt == "" and alert.bbox is None
    assert alert.unresolved_zones == alert.zones and "ORZ001" in alert.zones


def test_iowa_without_zones_keeps_its_14_zone_only_alerts_with_unknown_areas():
    result = nws.parse_feed(wd.IOWA.read_bytes(), now=NOW)
    assert result.rejections == () and len(result.alerts) == 48
    assert sum(not a.area_known for a in result.alerts) == 14


def test_cancel_or_update_without_geometry_or_zones_is_kept_by_reference():
    for message_type in ("Cancel", "Update"):
        [alert] = nws.parse_feed(feed(feature(None, messageType=message_type, references=[
            {"identifier": "A0", "sender": "w-nws.webmaster@noaa.gov", "sent": "2024-09-01T11:00:00Z"}])),
            now=NOW).alerts
        assert not alert.area_known and alert.references == ("A0",) and alert.zones == ()
    [rejection] = nws.parse_feed(feed(feature(None, messageType="Cancel")), now=NOW).rejections
    assert "no geometry and no UGC" in rejection.reason     # names nothing: nothing to apply it to


def feature(geometry=None, **props):
    base = {"id": "A1", "event": "Hurricane Warning", "messageType": "Alert", "status": "Actual",
            "sent": "2024-09-01T12:00:00Z", "onset": "2024-09-02T00:00:00Z", "ends": "2024-09-03T00:00:00Z",
            "severity": "Extreme", "urgency": "Expected", "certainty": "Likely", "references": [],
            "geocode": {"UGC": []}}
    base.update(props)
    return {"type": "Feature", "geometry": geometry, "properties": base}


def feed(*features):
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def test_bow_tie_is_repaired_with_make_valid():
    bow = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    [alert] = nws.parse_feed(feed(feature(bow)), now=NOW).alerts
    area = shapely.from_wkt(alert.area_wkt)
    assert area.is_valid and area.geom_type == "MultiPolygon" and area.area == pytest.approx(2.0)
    assert alert.repaired.startswith("repaired with make_valid: Self-intersection")


@pytest.mark.parametrize(("geometry", "reason"), [
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}, "nothing polygonal"),
    ({"type": "Point", "coordinates": [0, 0]}, "is not an area"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1]]]}, "malformed Polygon"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [400, 0], [400, 1], [0, 0]]]}, "outside longitude"),
    ({"type": "Polygon", "coordinates": []}, "empty"),
])
def test_unusable_areas_are_rejected_with_a_reason(geometry, reason):
    result = nws.parse_feed(feed(feature(geometry, id="bad"), feature(
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, id="good")), now=NOW)
    assert [a.alert_id for a in result.alerts] == ["good"]
    [rejection] = result.rejections
    assert rejection.alert_id == "bad" and reason in rejection.reason


@pytest.mark.parametrize(("props", "reason"), [
    ({"messageType": "Ack"}, "unknown messageType"),
    ({"status": "Test"}, "not Actual"),
    ({"sent": "yesterday"}, "neither RFC 3339"),
    ({"sent": None}, "no sent time"),
    ({"id": None}, "no alert id"),
    ({"event": ""}, "no event"),
    ({"geocode": {"UGC": ["'; DROP--"]}}, "not a UGC zone code"),
    ({}, "no geometry and no UGC"),
])
def test_unusable_features_are_rejected_with_a_reason(props, reason):
    [rejection] = nws.parse_feed(feed(feature(None, **props)), now=NOW).rejections
    assert reason in rejection.reason


def test_partly_known_zones_use_the_known_and_list_the_rest(zone_table):
    [alert] = nws.parse_feed(feed(feature(None, geocode={"UGC": ["ORZ001", "XXZ999"]})), now=NOW,
                             zones=zone_table).alerts
    assert alert.unresolved_zones == ("XXZ999",)


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b"[]", b'{"type": "Feature"}'])
def test_a_broken_document_raises_feed_error(data):
    with pytest.raises(nws.FeedError):
        nws.parse_feed(data, now=NOW)


def test_zone_loader_codes_and_errors():
    assert zones.zone_code({"id": "https://api.weather.gov/zones/forecast/ORZ004"}) == "ORZ004"
    assert zones.zone_code({"STATE": "OR", "ZONE": "4"}) == "ORZ004"
    assert zones.zone_code({"STATE": "IA", "FIPS": "19009"}) == "IAC009"
    assert zones.zone_code({"name": "x"}) is None
    doc = wd.square_zones(["ORZ004"])
    doc["features"] += [{"type": "Feature", "properties": {"name": "no code"}, "geometry": None},
                        {"type": "Feature", "properties": {"id": "ORZ005"}, "geometry": None}]
    loaded = zones.load_geojson(doc)
    assert list(loaded.zones) == ["ORZ004"] and len(loaded.errors) == 2


def test_wkt_keeps_full_precision():
    polygon = shapely.Polygon([(0.123456789012345, 0), (1, 0.987654321098765), (1, 0)])
    assert shapely.from_wkt(geometry.to_wkt(polygon)).equals_exact(polygon, 0)
