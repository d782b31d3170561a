"""Parsing of import files and the demo fleet generator, without a database."""

import json

import pytest

from services.assets.errors import InvalidArgument
from services.assets.importer import ImportRejected, parse
from services.assets.model import EnrollmentState, Priority
from services.assets.seed import REGIONS, FleetPlan, demo_fleet
from services.assets.validation import parse_installation

CSV = """installation_id,customer_id,customer_name,longitude,latitude,address,time_zone,utility,\
battery_nominal_energy_wh,max_charge_power_w,max_discharge_power_w,backup_reserve_pct,stormwatch_enabled,priority,groups
site-a,cust-1,Ana Garcia,-122.27,37.80,1 Main St,America/Los_Angeles,PG&E,13500,5000,5000,30,true,vpp_first,\
utility.pge.bay_area;region.us.ca
site-b,cust-1,,-118.24,34.05,,America/Los_Angeles,,,,,,,,
"""


def test_csv():
    data = parse(CSV, "csv")
    a, b = data.installations
    assert a.installation_id == "site-a"
    assert (a.location.longitude_deg, a.location.latitude_deg) == (-122.27, 37.80)
    assert a.settings.priority == Priority.VPP_FIRST
    assert a.settings.backup_reserve_pct == 30
    assert a.battery_nominal_energy_wh == 13_500
    assert b.settings.backup_reserve_pct == 20 and b.settings.stormwatch_enabled
    assert b.battery_nominal_energy_wh is None
    assert [c.customer_id for c in data.customers] == ["cust-1"]
    assert data.customers[0].name == "Ana Garcia"
    assert data.memberships == [("site-a", "utility.pge.bay_area"), ("site-a", "region.us.ca")]


def test_csv_bad_rows_are_all_reported():
    lines = CSV.splitlines()
    bad = "\n".join([
        lines[0], lines[1],
        "site-c,,,-190,10,,UTC,,,,,,,,",               # longitude out of range
        "site-d,,,10,10,,UTC,,,,,,,,utility.pg-e",       # hyphen in a label
        "site-a,,,10,10,,UTC,,,,,,,,",                   # duplicate id
        "site-e,,,ten,10,,UTC,,,,,,,,",                  # not a number
        "site-f,,,10,10,,Nowhere/Land,,,,,,,,",          # time zone
    ])
    with pytest.raises(ImportRejected) as error:
        parse(bad, "csv")
    assert [(e.row, e.message.split(":")[0]) for e in error.value.errors] == [
        (3, "location.longitude"), (4, "groups"), (5, "installation_id"), (6, "longitude"), (7, "time_zone")]
    assert "'pg-e'" in error.value.errors[1].message
    assert str(error.value).startswith("5 bad rows, nothing imported")


def test_csv_header():
    with pytest.raises(InvalidArgument, match="missing columns: latitude, time_zone"):
        parse("installation_id,longitude\nx,1\n", "csv")


def feature(properties, coordinates=(-122.0, 37.0), geometry_type="Point"):
    return {"type": "Feature", "geometry": {"type": geometry_type, "coordinates": list(coordinates)},
            "properties": properties}


def test_geojson():
    document = {"type": "FeatureCollection", "features": [
        feature({"installation_id": "g-1", "time_zone": "UTC", "groups": ["utility.a", "utility.b"]}),
        {**feature({"time_zone": "UTC", "stormwatch_enabled": False}), "id": "g-2"},
    ]}
    data = parse(json.dumps(document), "geojson")
    assert [i.installation_id for i in data.installations] == ["g-1", "g-2"]
    assert data.installations[1].settings.stormwatch_enabled is False
    assert data.memberships == [("g-1", "utility.a"), ("g-1", "utility.b")]


def test_geojson_bad_features():
    document = {"type": "FeatureCollection", "features": [
        feature({"installation_id": "g-1", "time_zone": "UTC"}, geometry_type="Polygon"),
        feature({"installation_id": "g-2", "time_zone": "UTC"}, coordinates=(0, 91)),
        feature({"installation_id": "g-3"}),
    ]}
    with pytest.raises(ImportRejected) as error:
        parse(json.dumps(document), "geojson")
    assert [e.row for e in error.value.errors] == [1, 2, 3]
    with pytest.raises(InvalidArgument, match="FeatureCollection"):
        parse('{"type": "Feature"}', "geojson")


def test_demo_fleet_is_deterministic_valid_and_spread():
    plan = FleetPlan(installations=2_000, seed=7)
    fleet, again = demo_fleet(plan), demo_fleet(plan)
    assert fleet.installations == again.installations
    for installation in fleet.installations:
        parse_installation(installation)
    assert len({d.serial for d in fleet.devices}) == len(fleet.devices) == 2_000
    utilities = {path.split(".")[1] for _, path in fleet.memberships if path.startswith("utility.")}
    assert utilities == {r.utility for r in REGIONS}
    states = {s for _, _, s in fleet.enrollments}
    assert states == {EnrollmentState.ELIGIBLE, EnrollmentState.PENDING, EnrollmentState.ENROLLED}
    in_california = {i.installation_id for i in fleet.installations if i.time_zone == "America/Los_Angeles"}
    enrolled = {i for i, _, _ in fleet.enrollments}
    assert enrolled <= in_california
    assert 0.7 < len(enrolled) / len(in_california) < 0.9
