"""The US National Weather Service alerts feed (api.weather.gov `/alerts`, GeoJSON) → Alerts.

One feed document becomes alerts plus rejections: a feature that cannot be used (no id, an
unknown message type, unusable times, an invalid area nothing can be repaired from, only zones
nobody knows) is rejected with its reason and the rest of the feed goes on. A document that is
not a FeatureCollection at all raises FeedError.

Areas: the feature's polygon when it has one; otherwise the union of its UGC zones
(`geocode.UGC`) from the zone table. Zones the table lacks are listed on the alert
(`unresolved_zones`). An alert none of whose zones are known is kept with its area unknown
(`Alert.area_known` false): stored and listed, matched to no installation until the zones are
loaded. An Update or Cancel without a polygon and without known zones is kept too: it names the
alert it replaces or ends (`references`), and the lifecycle applies it to that alert's area. A zone
code that is not a UGC code (`ORZ004`, `IAC009`) rejects the feature; an Alert with neither a
polygon nor zones is rejected (nothing could ever place it).

Times: RFC 3339 as the API serves them, and the placeholders of recorded test feeds
(`"date:now -252 seconds"`, `"date:now +425 minutes"`), resolved against the `now` given.
Only `status: Actual` messages become alerts: tests, exercises and drafts must never move a battery.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from services.weather import geometry as geo
from services.weather.model import Alert, AlertId, MessageType, ParseResult, Rejection, ZoneCode
from services.weather.zones import UGC

_PLACEHOLDER = re.compile(r"^date:now\s*(?:([+-])\s*(\d+)\s*(second|minute|hour|day)s?)?$", re.IGNORECASE)
_UNITS_S = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class FeedError(ValueError):
    """The document is not an alerts feed at all (bad JSON, not a FeatureCollection)."""


class _Reject(ValueError):
    pass


def parse_time(value: object, now: dt.datetime) -> dt.datetime | None:
    """RFC 3339 or a `date:now ±N unit` placeholder → aware UTC datetime; None for null/empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Reject(f"time {value!r} is not a string")
    match = _PLACEHOLDER.match(value.strip())
    if match:
        sign, amount, unit = match.groups()
        offset_s = 0 if amount is None else int(amount) * _UNITS_S[unit.lower()] * (-1 if sign == "-" else 1)
        try:
            return (now + dt.timedelta(seconds=offset_s)).astimezone(dt.UTC)
        except OverflowError:
            raise _Reject(f"time {value!r} lies outside the calendar") from None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _Reject(f"time {value!r} is neither RFC 3339 nor a date:now placeholder") from None
    if parsed.tzinfo is None:
        raise _Reject(f"time {value!r} has no UTC offset")
    return parsed.astimezone(dt.UTC)


def _text(properties: Mapping[str, Any], key: str, default: str = "") -> str:
    # Postgres text cannot hold NUL; a NUL in a headline must not cost the feed its alerts.
    value = properties.get(key)
    return value.replace("\x00", "") if isinstance(value, str) else default


def _identifier(value: str, what: str) -> str:
    """An id as given, refused when it holds a NUL (Postgres text cannot store it, and a stripped
    id would name a different alert)."""
    if "\x00" in value:
        raise _Reject(f"{what} {value!r} contains a NUL character")
    return value


def zone_area(codes: tuple[ZoneCode, ...], zones: Mapping[ZoneCode, BaseGeometry],
              ) -> tuple[BaseGeometry | None, str, tuple[ZoneCode, ...]]:
    """The union of the known zones among `codes` (None when none is known), the note of its
    normalization, and the codes the table lacks. AreaError when the union is unusable."""
    known = [zones[c] for c in codes if c in zones]
    unknown = tuple(c for c in codes if c not in zones)
    if not known:
        return None, "", unknown
    area, note = geo.normalize_area(shapely.union_all(known))
    return area, note, unknown


def _area(feature: Mapping[str, Any], zones: Mapping[ZoneCode, BaseGeometry], codes: tuple[ZoneCode, ...],
          by_reference: bool) -> tuple[BaseGeometry | None, str, tuple[ZoneCode, ...]]:
    raw = feature.get("geometry")
    if raw is not None:
        try:
            area, note = geo.normalize_area(geo.from_geojson(raw))
        except geo.AreaError as exc:
            raise _Reject(str(exc)) from None
        return area, note, ()
    if not codes and not by_reference:
        raise _Reject("no geometry and no UGC zone codes")
    try:
        return zone_area(codes, zones)
    except geo.AreaError as exc:
        raise _Reject(f"zones {', '.join(codes)}: {exc}") from None


def _zone_code(value: str) -> ZoneCode:
    code = _identifier(value.strip().upper(), "zone code")
    if not UGC.match(code):
        raise _Reject(f"geocode.UGC holds {value!r:.40}, not a UGC zone code (like ORZ004 or IAC009)")
    return ZoneCode(code)


def parse_feature(feature: Mapping[str, Any], *, now: dt.datetime,
                  zones: Mapping[ZoneCode, BaseGeometry]) -> Alert:
    """One GeoJSON feature → Alert; raises ValueError (with the reason) when it cannot be one."""
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        raise _Reject("feature has no properties object")
    alert_id = properties.get("id") or feature.get("id")
    if not isinstance(alert_id, str) or not alert_id.strip():
        raise _Reject("feature has no alert id")
    alert_id = _identifier(alert_id.rsplit("/alerts/", 1)[-1].strip(), "alert id")
    if not alert_id:
        raise _Reject("feature has no alert id")
    status = _text(properties, "status", "Actual")
    if status != "Actual":
        raise _Reject(f"status {status!r} is not Actual (tests and exercises are not acted on)")
    try:
        message_type = MessageType(_text(properties, "messageType"))
    except ValueError:
        raise _Reject(f"unknown messageType {properties.get('messageType')!r}") from None
    event = _text(properties, "event").strip()
    if not event:
        raise _Reject("feature has no event name")
    sent = parse_time(properties.get("sent"), now)
    if sent is None:
        raise _Reject("feature has no sent time")
    references = properties.get("references") or []
    if not isinstance(references, list):
        raise _Reject("references is not a list")
    ref_ids = tuple(AlertId(_identifier(r["identifier"], "reference")) for r in references if isinstance(r, dict)
                    and isinstance(r.get("identifier"), str))
    geocode = properties.get("geocode") or {}
    raw_codes = (geocode.get("UGC") or []) if isinstance(geocode, dict) else []
    if not isinstance(raw_codes, list):   # a bare string would be read as one zone per character
        raise _Reject(f"geocode.UGC is not a list of zone codes: {raw_codes!r:.80}")
    codes = tuple(_zone_code(c) for c in raw_codes if isinstance(c, str))
    by_reference = message_type is not MessageType.ALERT and bool(ref_ids)
    area, note, unresolved = _area(feature, zones, codes, by_reference)
    onset = parse_time(properties.get("onset"), now) or parse_time(properties.get("effective"), now)
    return Alert(
        alert_id=AlertId(alert_id), event=event, message_type=message_type,
        severity=_text(properties, "severity", "Unknown"), urgency=_text(properties, "urgency", "Unknown"),
        certainty=_text(properties, "certainty", "Unknown"),
        sent=sent, onset=onset, expires=parse_time(properties.get("expires"), now),
        ends=parse_time(properties.get("ends"), now),
        area_wkt=geo.to_wkt(area) if area is not None else "", bbox=geo.bbox(area) if area is not None else None,
        references=ref_ids, zones=codes,
        headline=_text(properties, "headline"), sender_name=_text(properties, "senderName"),
        area_desc=_text(properties, "areaDesc"), unresolved_zones=unresolved, repaired=note,
    )


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_feed(data: str | bytes | Mapping[str, Any], *, now: dt.datetime,
               zones: Mapping[ZoneCode, BaseGeometry] | None = None, source: str = "nws") -> ParseResult:
    """A whole `/alerts` document. Raises FeedError when it is not a FeatureCollection."""
    if isinstance(data, str | bytes):
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FeedError(f"{source}: not JSON: {exc}") from None
        except RecursionError:   # arrays or objects nested thousands deep: no feed looks like that
            raise FeedError(f"{source}: not JSON this service reads: nested too deeply") from None
    else:
        doc = data
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise FeedError(f"{source}: not a GeoJSON FeatureCollection of alerts")
    alerts: list[Alert] = []
    rejections: list[Rejection] = []
    for index, feature in enumerate(doc["features"]):
        if not isinstance(feature, dict):
            rejections.append(Rejection(source, f"#{index}", "feature is not an object"))
            continue
        try:
            alerts.append(parse_feature(feature, now=now, zones=zones or {}))
        except ValueError as exc:
            props = feature.get("properties")
            alert_id = (props.get("id") if isinstance(props, dict) else None) or feature.get("id") or f"#{index}"
            # Bounded: a reason quotes the offending value, which a hostile feed makes megabytes long.
            rejections.append(Rejection(source, str(alert_id)[:256], _short(str(exc))))
    return ParseResult(tuple(alerts), tuple(rejections))


def saved_at(data: str | bytes | Mapping[str, Any]) -> dt.datetime | None:
    """The capture time some recorded feeds carry (`@saved`): the natural `now` for their placeholders."""
    doc = json.loads(data) if isinstance(data, str | bytes) else data
    value = doc.get("@saved") if isinstance(doc, dict) else None
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC) if isinstance(value, str) else None
