"""Alert areas: checked, repaired when GEOS can repair them, and written as WKT + bounding box.

Guarantees: `normalize_area` returns a valid, non-empty Polygon or MultiPolygon with finite
coordinates inside [-180, 180] × [-90, 90], or raises AreaError with a reason a human can act on.
An invalid area (self-intersection, a ring that is not closed after parsing, a spike) is repaired
with `shapely.make_valid` and only its polygonal parts are kept; an area with nothing polygonal
left, with no area at all or out of range is refused.
"""

from __future__ import annotations

import math
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from services.weather.model import BBox


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
    return geometry, note


def to_wkt(geometry: BaseGeometry) -> str:
    """Full precision, so that the area matched in Python and the one stored in PostGIS agree."""
    return shapely.to_wkt(geometry, rounding_precision=-1)


def bbox(geometry: BaseGeometry) -> BBox:
    x0, y0, x1, y1 = geometry.bounds
    return (float(x0), float(y0), float(x1), float(y1))
