"""Weather test data: the real NWS feeds in ../shared/data/nws_alerts, the `now` their time
placeholders are resolved against, constructed zone geometries and a generated hurricane.

There is no zone or county geometry in shared/ (and no shapefile): `square_zones` builds a
square per UGC code that appears in the real feeds, as a stand-in for the NWS zone files, so the
zone-only alerts of those feeds can be resolved and tested. The squares are not real zone shapes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import zlib
from pathlib import Path
from typing import Any

import shapely

from tests.data import SHARED_DATA

NWS = SHARED_DATA / "nws_alerts"
FEEDS = sorted(NWS.glob("*.json"))
IOWA = NWS / "weathergov__CedarRapids_TornadoFlood_alerts_active_area-IA.json"
NATIONWIDE = NWS / "weathergov__northwest-alerts_alerts_active.json"
ZONE_ONLY = NWS / "pynws__alerts_active_zone.json"
PHOENIX = NWS / "finity69x2_nws_alerts__api.json"
# Iowa: 2024-05-21 19:30 UTC, the storms' issue time (the headlines' "2:30PM CDT").
IOWA_NOW = dt.datetime(2024, 5, 21, 19, 35, tzinfo=dt.UTC)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def ugc_codes(*paths: Path) -> list[str]:
    return sorted({c for p in paths for f in load(p)["features"]
                   for c in f["properties"].get("geocode", {}).get("UGC", [])})


def square_zones(codes: list[str], size_deg: float = 0.4) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: one square per code at a position derived from the code (stable)."""
    features = []
    for code in codes:
        h = zlib.crc32(code.encode())
        lon, lat = -125 + (h % 5_000) / 100, 25 + (h // 5_000 % 2_400) / 100
        square = shapely.box(lon, lat, lon + size_deg, lat + size_deg)
        features.append({"type": "Feature", "properties": {"id": code, "name": f"square for {code}"},
                         "geometry": shapely.geometry.mapping(square)})
    return {"type": "FeatureCollection", "features": features}


def hurricane(center: tuple[float, float] = (-80.5, 26.0), radius_deg: float = 2.0, vertices: int = 1_200,
              seed: int = 5) -> shapely.MultiPolygon:
    """A hurricane-like MultiPolygon: a ragged spiral-banded main body of `vertices` vertices with
    an eye (a hole), and an outer rain band as a second polygon."""
    rng = random.Random(seed)
    cx, cy = center

    def ring(r: float, n: int, jitter: float, phase: float = 0.0) -> list[tuple[float, float]]:
        points = []
        for k in range(n):
            a = 2 * math.pi * k / n + phase
            rr = r * (1 + 0.18 * math.sin(5 * a) + rng.uniform(-jitter, jitter))
            points.append((cx + rr * math.cos(a) * 1.2, cy + rr * math.sin(a)))
        return points

    body = shapely.Polygon(ring(radius_deg, vertices, 0.04), [ring(radius_deg * 0.12, 64, 0.02)])
    band = shapely.Polygon([(cx + 2.9 * radius_deg + 0.5 * math.cos(a), cy + 0.8 * math.sin(a))
                            for a in (2 * math.pi * k / 200 for k in range(200))])
    assert body.is_valid and band.is_valid and not body.intersects(band)
    return shapely.MultiPolygon([body, band])


def alert_feature(alert_id: str, message_type: str, area: Any, sent: dt.datetime, *, refs: tuple[str, ...] = (),
                  event: str = "Hurricane Warning", hours: float = 30.0) -> dict[str, Any]:
    """One NWS-style alert feature (as api.weather.gov serves it) for a given area."""
    return {"type": "Feature", "id": f"https://api.weather.gov/alerts/{alert_id}",
            "geometry": None if area is None else shapely.geometry.mapping(area),
            "properties": {
                "id": alert_id, "event": event, "messageType": message_type, "status": "Actual",
                "severity": "Extreme", "urgency": "Expected", "certainty": "Likely",
                "sent": sent.isoformat(), "effective": sent.isoformat(),
                "onset": (sent + dt.timedelta(hours=6)).isoformat(),
                "expires": (sent + dt.timedelta(hours=hours)).isoformat(),
                "ends": (sent + dt.timedelta(hours=hours)).isoformat(),
                "headline": f"{event} {alert_id}", "geocode": {"UGC": []},
                "references": [{"identifier": r, "sender": "w-nws.webmaster@noaa.gov", "sent": sent.isoformat()}
                               for r in refs]}}


def feed_doc(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()
