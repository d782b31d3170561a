"""Input validation of the assets service, without a database."""

import dataclasses
import math

import pytest

from services.assets.errors import InvalidArgument
from services.assets.model import GeoPoint, Installation, InstallationId, InstallationSettings
from services.assets.validation import (
    MAX_RADIUS_M,
    parse_box,
    parse_id,
    parse_installation,
    parse_page_size,
    parse_point,
    parse_polygon,
    parse_radius_m,
    parse_time_zone,
)

GOOD = Installation(InstallationId("site-1"), location=GeoPoint(-122.0, 37.5), time_zone="America/Los_Angeles",
                    battery_nominal_energy_wh=13_500.0, max_charge_power_w=5_000.0, max_discharge_power_w=5_000.0)


@pytest.mark.parametrize(("lon", "lat", "field"), [
    (180.0001, 0, "location.longitude"), (-181, 0, "location.longitude"), (0, 90.5, "location.latitude"),
    (0, -91, "location.latitude"), (math.nan, 0, "location.longitude"), (0, math.inf, "location.latitude"),
])
def test_coordinates_out_of_range(lon, lat, field):
    with pytest.raises(InvalidArgument) as error:
        parse_point(lon, lat)
    assert error.value.field == field
    assert "out of range" in str(error.value)


def test_coordinates_at_the_edges():
    assert parse_point(180, 90) == GeoPoint(180, 90)
    assert parse_point(-180, -90) == GeoPoint(-180, -90)


def test_boxes():
    assert parse_box(-123, 37, -121, 38).max_latitude_deg == 38
    assert parse_box(1, 1, 1, 1).min_longitude_deg == 1        # a point is a box
    with pytest.raises(InvalidArgument, match="antimeridian"):
        parse_box(179, 0, -179, 1)
    with pytest.raises(InvalidArgument, match="north of"):
        parse_box(0, 2, 1, 1)
    with pytest.raises(InvalidArgument, match="max_latitude"):
        parse_box(0, 0, 1, 91)


def test_polygons():
    square = parse_polygon("POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))")
    assert square.area == 1
    assert parse_polygon("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((2 2, 3 2, 3 3, 2 2)))").geom_type == "MultiPolygon"
    cases = {
        "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))": "invalid polygon: Self-intersection",   # a bow tie
        "POINT (1 2)": "a Point, not a Polygon",
        "POLYGON EMPTY": "empty geometry",
        "POLYGON ((0 0, 1 0, 1": "not WKT",
        "hello": "not WKT",
        "POLYGON ((0 0 1, 1 0 1, 1 1 1, 0 0 1))": "Z coordinates",
        "POLYGON ((0 0, 200 0, 200 1, 0 0))": "out of range",
        "POLYGON ((0 0, 1 0, 1 95, 0 0))": "out of range",
    }
    for wkt, message in cases.items():
        with pytest.raises(InvalidArgument, match=message):
            parse_polygon(wkt)


def test_radius_page_size_and_time_zone():
    assert parse_radius_m(1.0) == 1.0
    for bad in (0.0, -1.0, math.nan, math.inf, MAX_RADIUS_M * 1.01):
        with pytest.raises(InvalidArgument, match="radius_m"):
            parse_radius_m(bad)
    assert parse_page_size(0) == 1_000
    assert parse_page_size(10_000) == 10_000
    with pytest.raises(InvalidArgument, match="page_size"):
        parse_page_size(10_001)
    assert parse_time_zone("America/Chicago") == "America/Chicago"
    with pytest.raises(InvalidArgument, match="time_zone"):
        parse_time_zone("Mars/Olympus_Mons")


def test_ids():
    assert parse_id("demo-site-00001", "installation_id") == "demo-site-00001"
    for bad in ("", "x" * 129, "no spaces", "semi;colon", "ümlaut"):
        with pytest.raises(InvalidArgument, match="installation_id"):
            parse_id(bad, "installation_id")


def test_installations():
    assert parse_installation(GOOD) is GOOD
    bad = {
        "location": dataclasses.replace(GOOD, location=None),
        "location.latitude": dataclasses.replace(GOOD, location=GeoPoint(0, 100)),
        "time_zone": dataclasses.replace(GOOD, time_zone="PST"),
        "battery_nominal_energy_wh": dataclasses.replace(GOOD, battery_nominal_energy_wh=0.0),
        "max_charge_power_w": dataclasses.replace(GOOD, max_charge_power_w=-1.0),
        "max_discharge_power_w": dataclasses.replace(GOOD, max_discharge_power_w=math.nan),
        "backup_reserve_pct": dataclasses.replace(GOOD, settings=InstallationSettings(backup_reserve_pct=100.5)),
        "address": dataclasses.replace(GOOD, address="x" * 501),
        "installation_id": dataclasses.replace(GOOD, installation_id=InstallationId("a b")),
    }
    for field, installation in bad.items():
        with pytest.raises(InvalidArgument) as error:
            parse_installation(installation)
        assert error.value.field == field
    assert parse_installation(dataclasses.replace(GOOD, location=None), require_location=False).location is None
