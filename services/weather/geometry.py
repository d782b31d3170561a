"""Alert areas: checked, repaired when GEOS can repair them, and written as WKT + bounding box.

Guarantees: `normalize_area` returns a valid, non-empty Polygon or MultiPolygon with finite
coordinates inside [-180, 180] × [-90, 90], or raises AreaError with a reason a human can act on.
An invalid area (self-intersection, a ring that is not closed after parsing, a spike) is repaired
with `shapely.make_valid` and only its polygonal parts are kept; an area with nothing polygonal
left, with no area at all or out of range is refused. An area of more than MAX_AREA_VERTICES
vertices is simplified to a slightly larger one that still covers it (`bound_vertices`): an alert
is never dropped for its size, and no home inside the area as sent is missed.
"""

from __future__ import annotations

import math
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from services.weather.model import BBox

# Real warning polygons have tens of vertices and a union of county zones a few thousand; 10,000
# bounds an alert's WKT (~400 KB) and its cost in every match, list and twin message.
MAX_AREA_VERTICES = 10_000
FIRST_TOLERANCE_DEG = 1e-4          # ~10 m
MAX_TOLERANCE_DEG = 0.1             # ~11 km

class AreaError(ValueError):
    """The area cannot be used; the message says why."""


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    if isinstance(geometry, shapely.Polygon | shapely.MultiPolygon):
        return geometry
    if isinstance(geometry, shapely.GeometryCollection):
        parts = [p for g in geometry.geoms for p in shapely.get_parts(_polygonal(g))
                 if isinstance(p, shapely.Polygon) and not p.is_empty]
        return shapely.MultiPolygon(parts) if len(parts) > 1 else (parts[0] if parts else shapely.Polygon())
    return shapely.Polygon()


def from_geojson(geometry: dict[str, Any]) -> BaseGeometry:
    """A GeoJSON geometry object as Shapely; AreaError when it is not one."""
    if not isinstance(geometry, dict):
        raise AreaError("geometry is not a GeoJSON object")
    kind = geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise AreaError(f"geometry type {kind!r} is not an area (need Polygon or MultiPolygon)")
    try:
        return shapely.geometry.shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise AreaError(f"malformed {kind} coordinates: {exc}") from None


def normalize_area(geometry: BaseGeometry) -> tuple[BaseGeometry, str]:
    """(valid polygonal area, repair note — "" when valid as given)."""
    if geometry.is_empty:
        raise AreaError("area is empty")
    coords = shapely.get_coordinates(geometry)
    if not all(math.isfinite(v) for v in coords.ravel()):
        raise AreaError("area has non-finite coordinates")
    if (abs(coords[:, 0]) > 180).any() or (abs(coords[:, 1]) > 90).any():
        raise AreaError("area lies outside longitude [-180, 180] / latitude [-90, 90]")
    note = ""
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        repaired = _polygonal(shapely.make_valid(geometry))
        if repaired.is_empty or repaired.area == 0:
            raise AreaError(f"invalid polygon ({reason}); nothing polygonal is left after make_valid")
        geometry, note = repaired, f"repaired with make_valid: {reason}"
    geometry = _polygonal(geometry)
    if geometry.is_empty or geometry.area == 0:
        raise AreaError("area has no extent (zero area)")
    bounded, simplified = bound_vertices(geometry)
    return bounded, "; ".join(n for n in (note, simplified) if n)


def bound_vertices(geometry: BaseGeometry, max_vertices: int = MAX_AREA_VERTICES) -> tuple[BaseGeometry, str]:
    """(an area of at most `max_vertices` vertices covering `geometry`, note — "" when unchanged).

    The area is grown by 2t (a buffer at two segments per quarter circle, whose chords sag 2 %;
    it also merges slivers that a simplification alone would keep, four vertices each) and then
    simplified with tolerance t, which moves no boundary point more than t: the result covers the
    area as sent. t starts at ~10 m and doubles until the area fits, up to ~11 km; an area that
    does not fit even then is replaced by its bounding box. Homes up to a few t outside the area
    may be matched too (they charge for a storm a few metres away); none inside it is missed."""
    before = shapely.get_num_coordinates(geometry)
    if before <= max_vertices:
        return geometry, ""
    tolerance = FIRST_TOLERANCE_DEG
    while tolerance <= MAX_TOLERANCE_DEG:
        bounded = _polygonal(shapely.simplify(shapely.buffer(geometry, 2 * tolerance, quad_segs=2), tolerance,
                                              preserve_topology=True))
        if shapely.get_num_coordinates(bounded) <= max_vertices:
            return bounded, (f"simplified from {before:,} to {shapely.get_num_coordinates(bounded):,} vertices "
                             f"(tolerance {tolerance:g}°, grown to cover the area as sent)")
        tolerance *= 2
    return shapely.box(*geometry.bounds), f"{before:,} vertices replaced by the area's bounding box"


def to_wkt(geometry: BaseGeometry) -> str:
    """Full precision, so that the area matched in Python and the one stored in PostGIS agree."""
    return shapely.to_wkt(geometry, rounding_precision=-1)


def bbox(geometry: BaseGeometry) -> BBox:
    x0, y0, x1, y1 = geometry.bounds
    return (float(x0), float(y0), float(x1), float(y1))
