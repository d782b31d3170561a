"""Input validation for the assets service: everything is checked here before it reaches SQL.

Each function returns the validated value or raises `InvalidArgument` naming the field and what
is wrong with it. Coordinates are WGS 84 degrees: longitude in [-180, 180], latitude in [-90, 90],
finite. Polygons are parsed with Shapely and must be valid (`is_valid`); the reason GEOS gives
(`explain_validity`) is passed on. Standard library and Shapely only: no SQL, no gRPC.
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from gridtwin import paging
from services.assets.errors import InvalidArgument
from services.assets.model import (
    CustomerId,
    GeoPoint,
    Installation,
    InstallationSettings,
)

ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # as the tables constrain every id
MAX_POLYGON_VERTICES = 100_000
MAX_POLYGON_WKT_BYTES = 4 * 2**20
MAX_RADIUS_M = 20_037_509.0   # half the equator: every point of the Earth is within this
MAX_PAGE_SIZE = 10_000
DEFAULT_PAGE_SIZE = 1_000


def parse_id(text: str, field: str) -> str:
    if not ID.fullmatch(text):
        raise InvalidArgument(field, f"{text[:80]!r} is not an id: 1-128 characters of A-Z, a-z, 0-9, _ . : -")
    return text


def parse_text(text: str, field: str, max_chars: int) -> str:
    if len(text) > max_chars:
        raise InvalidArgument(field, f"longer than {max_chars} characters")
    if "\x00" in text:
        raise InvalidArgument(field, "contains a NUL character")
    return text


def parse_longitude(value: float, field: str = "longitude") -> float:
    if not (math.isfinite(value) and -180.0 <= value <= 180.0):
        raise InvalidArgument(field, f"{value!r} is out of range: longitude is in [-180, 180] degrees")
    return value


def parse_latitude(value: float, field: str = "latitude") -> float:
    if not (math.isfinite(value) and -90.0 <= value <= 90.0):
        raise InvalidArgument(field, f"{value!r} is out of range: latitude is in [-90, 90] degrees")
    return value


def parse_point(longitude_deg: float, latitude_deg: float, field: str = "location") -> GeoPoint:
    return GeoPoint(parse_longitude(longitude_deg, f"{field}.longitude"),
                    parse_latitude(latitude_deg, f"{field}.latitude"))


@dataclass(frozen=True)
class Box:
    min_longitude_deg: float
    min_latitude_deg: float
    max_longitude_deg: float
    max_latitude_deg: float


def parse_box(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> Box:
    """A box with its west edge not east of its east edge: one crossing the antimeridian must be
    asked for as two boxes."""
    box = Box(parse_longitude(min_lon, "min_longitude"), parse_latitude(min_lat, "min_latitude"),
              parse_longitude(max_lon, "max_longitude"), parse_latitude(max_lat, "max_latitude"))
    if box.min_longitude_deg > box.max_longitude_deg:
        raise InvalidArgument("min_longitude", "is east of max_longitude (split a box crossing the antimeridian)")
    if box.min_latitude_deg > box.max_latitude_deg:
        raise InvalidArgument("min_latitude", "is north of max_latitude")
    return box


def parse_polygon(wkt: str, field: str = "polygon_wkt") -> BaseGeometry:
    """A valid, non-empty Polygon or MultiPolygon in range, from WKT."""
    if len(wkt.encode()) > MAX_POLYGON_WKT_BYTES:
        raise InvalidArgument(field, f"longer than {MAX_POLYGON_WKT_BYTES} bytes")
    try:
        geometry = shapely.from_wkt(wkt)
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise InvalidArgument(field, f"not WKT: {exc}") from None
    if geometry is None or geometry.is_empty:
        raise InvalidArgument(field, "empty geometry")
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidArgument(field, f"a {geometry.geom_type}, not a Polygon or MultiPolygon")
    if geometry.has_z:
        raise InvalidArgument(field, "has Z coordinates; give longitude and latitude only")
    vertices = shapely.get_num_coordinates(geometry)
    if vertices > MAX_POLYGON_VERTICES:
        raise InvalidArgument(field, f"{vertices} vertices, at most {MAX_POLYGON_VERTICES}")
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    if not all(math.isfinite(v) for v in geometry.bounds):
        raise InvalidArgument(field, "has coordinates that are not finite numbers")
    if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        raise InvalidArgument(field, "has coordinates out of range: longitude in [-180, 180], latitude in [-90, 90]")
    if not geometry.is_valid:
        raise InvalidArgument(field, f"invalid polygon: {explain_validity(geometry)}")
    return geometry


def parse_radius_m(value: float) -> float:
    if not (math.isfinite(value) and 0.0 < value <= MAX_RADIUS_M):
        raise InvalidArgument("radius_m", f"{value!r} is out of range: (0, {MAX_RADIUS_M:.0f}] meters")
    return value


def parse_page_size(value: int, default: int = DEFAULT_PAGE_SIZE, field: str = "page_size") -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgument(field, f"{value} is out of range: 0 (= {default}) to {MAX_PAGE_SIZE}")
    return value or default


def parse_page_token(token: str) -> str:
    """Page tokens are the last id of the previous page ("" = from the start)."""
    return parse_id(token, "page_token") if token else ""


def parse_query_page_token(token: str, query: str, parts: int) -> tuple[str, ...] | None:
    """The key a `gridtwin.paging.query_page_token` of `query` names (None for "", the start)."""
    if not token:
        return None
    try:
        return paging.parse_query_page_token(token, query, parts)
    except ValueError as exc:
        raise InvalidArgument("page_token", str(exc)) from None


def parse_distance_key(text: str) -> float:
    """The distance (meters) in a SearchInstallationsNear page token."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument("page_token", "malformed page_token") from None
    if not (math.isfinite(value) and value >= 0.0):
        raise InvalidArgument("page_token", "malformed page_token")
    return value


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def parse_time_zone(name: str) -> str:
    if name not in _time_zones():
        raise InvalidArgument("time_zone", f"{name[:64]!r} is not an IANA time zone (e.g. America/Los_Angeles)")
    return name


def _positive(value: float | None, field: str, *, allow_zero: bool) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise InvalidArgument(field, f"{value!r} must be a finite number {'≥' if allow_zero else '>'} 0")
    return value


def parse_settings(settings: InstallationSettings) -> InstallationSettings:
    reserve = settings.backup_reserve_pct
    if not (math.isfinite(reserve) and 0.0 <= reserve <= 100.0):
        raise InvalidArgument("backup_reserve_pct", f"{reserve!r} is out of range: [0, 100] percent")
    return settings


def parse_installation(installation: Installation, *, require_location: bool = True) -> Installation:
    """Checks every field of a new or imported installation; returns it unchanged."""
    parse_id(installation.installation_id, "installation_id")
    if installation.customer_id is not None:
        parse_id(installation.customer_id, "customer_id")
    if installation.location is None:
        if require_location:
            raise InvalidArgument("location", "required")
    else:
        parse_point(installation.location.longitude_deg, installation.location.latitude_deg)
    parse_text(installation.address, "address", 500)
    parse_time_zone(installation.time_zone)
    parse_text(installation.utility, "utility", 128)
    _positive(installation.battery_nominal_energy_wh, "battery_nominal_energy_wh", allow_zero=False)
    _positive(installation.max_charge_power_w, "max_charge_power_w", allow_zero=True)
    _positive(installation.max_discharge_power_w, "max_discharge_power_w", allow_zero=True)
    parse_settings(installation.settings)
    return installation


def parse_customer(customer_id: str, name: str, email: str) -> tuple[CustomerId, str, str]:
    return (CustomerId(parse_id(customer_id, "customer_id")), parse_text(name, "name", 200),
            parse_text(email, "email", 320))
