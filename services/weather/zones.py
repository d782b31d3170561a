"""The zone-geometry table: UGC code → area, for alerts that name zones instead of a polygon.

NWS alerts without geometry list their areas as UGC codes (`ORZ004` forecast zone, `IAC009`
county, `PZZ135` marine zone). Their shapes come from the NWS zone and county files (GeoJSON
from /zones, or the AWIPS shapefiles); this table is loaded from either and kept in Postgres
(`weather_zones`, see store.py).

Codes are read from a feature's properties: `id`, `UGC`/`ugc`, `code`; shapefile attributes
`STATE`+`ZONE` (forecast and fire zones: `OR` + `004` → `ORZ004`), `STATE`+`FIPS` (counties:
`IA` + `19009` → `IAC009`) or `ID` (marine zones). A feature without a code or with an unusable
geometry is reported, not loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from services.weather.geometry import AreaError, from_geojson, normalize_area
from services.weather.model import ZoneCode

UGC = re.compile(r"^[A-Z]{2}[CZ]\d{3}$")


@dataclass(frozen=True)
class ZoneLoad:
    zones: dict[ZoneCode, BaseGeometry]
    errors: tuple[str, ...]


def zone_code(properties: Mapping[str, Any]) -> ZoneCode | None:
    for key in ("id", "UGC", "ugc", "code", "ID"):
        value = properties.get(key)
        if isinstance(value, str):
            value = value.rsplit("/", 1)[-1].strip().upper()   # "https://api.weather.gov/zones/forecast/ORZ004"
            if UGC.match(value):
                return ZoneCode(value)
    state = properties.get("STATE") or properties.get("state")
    if isinstance(state, str) and len(state) == 2:
        zone, fips = properties.get("ZONE"), properties.get("FIPS")
        if isinstance(zone, str | int) and str(zone).isdigit():
            return ZoneCode(f"{state.upper()}Z{int(zone):03d}")
        if isinstance(fips, str | int) and str(fips).isdigit():
            return ZoneCode(f"{state.upper()}C{int(fips) % 1000:03d}")
    return None


def _collect(features: Iterable[tuple[Mapping[str, Any], BaseGeometry | dict[str, Any] | None]]) -> ZoneLoad:
    zones: dict[ZoneCode, BaseGeometry] = {}
    errors: list[str] = []
    for index, (properties, raw) in enumerate(features):
        code = zone_code(properties)
        if code is None:
            errors.append(f"feature {index}: no UGC code in its properties")
            continue
        try:
            if raw is None:
                raise AreaError("no geometry")
            geometry = raw if isinstance(raw, BaseGeometry) else from_geojson(raw)
            area, _ = normalize_area(geometry)
        except AreaError as exc:
            errors.append(f"zone {code}: {exc}")
            continue
        # One code may come in several features (zones split across files): their union.
        zones[code] = shapely.union(zones[code], area) if code in zones else area
    return ZoneLoad(zones, tuple(errors))


def load_geojson(data: str | bytes | Mapping[str, Any]) -> ZoneLoad:
    """A GeoJSON FeatureCollection (or a single Feature) of zones."""
    doc = json.loads(data) if isinstance(data, str | bytes) else data
    features = doc.get("features", [doc]) if isinstance(doc, Mapping) else None
    if not isinstance(features, list):
        raise ValueError("zone GeoJSON must be a FeatureCollection or a Feature")
    return _collect(((f.get("properties") or {}), f.get("geometry")) for f in features if isinstance(f, dict))


def load_shapefile(path: Path) -> ZoneLoad:
    """An ESRI shapefile of zones (needs the `pyshp` package)."""
    try:
        import shapefile  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("loading shapefiles needs the `pyshp` package (pip install pyshp)") from exc

    def features() -> Iterator[tuple[Mapping[str, Any], dict[str, Any] | None]]:
        with shapefile.Reader(str(path)) as reader:
            for record in reader.iterShapeRecords():
                yield record.record.as_dict(), record.shape.__geo_interface__

    return _collect(features())


def load_file(path: Path) -> ZoneLoad:
    if path.suffix.lower() == ".shp":
        return load_shapefile(path)
    return load_geojson(path.read_bytes())
