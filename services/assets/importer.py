"""Bulk import of installations from CSV or GeoJSON (`gridtwin assets import FILE`).

CSV: a header row, then one installation per row. GeoJSON: a FeatureCollection of Point
features (coordinates [longitude, latitude]) whose properties carry the same fields.

    installation_id (required)   customer_id, customer_name, customer_email
    longitude, latitude (CSV; degrees, required)   time_zone (IANA, required)
    address, utility, battery_nominal_energy_wh, max_charge_power_w, max_discharge_power_w
    backup_reserve_pct (default 20), stormwatch_enabled (true/false, default true)
    priority (stormwatch_first | vpp_first)   groups (ltree paths separated by ";", or a list)

Every row is validated before anything is written; one bad row rejects the whole file, and
the error lists every bad row (file row number, field, reason). Groups are created when
missing; program groups are refused (enrollment goes through ChangeEnrollment). Rows whose
installation exists update it (upsert).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.assets.bulk import FleetData
from services.assets.errors import InvalidArgument
from services.assets.model import (
    Customer,
    CustomerId,
    GeoPoint,
    GroupPath,
    Installation,
    InstallationId,
    InstallationSettings,
    Priority,
)
from services.assets.paths import parse_path
from services.assets.validation import parse_customer, parse_installation

MAX_REPORTED_ERRORS = 50


@dataclass(frozen=True)
class RowError:
    row: int          # CSV: the file's line-based row number (header = 1); GeoJSON: feature index + 1
    message: str


class ImportRejected(InvalidArgument):
    """The file has bad rows; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        shown = "; ".join(f"row {e.row}: {e.message}" for e in errors[:MAX_REPORTED_ERRORS])
        more = f" (and {len(errors) - MAX_REPORTED_ERRORS} more)" if len(errors) > MAX_REPORTED_ERRORS else ""
        super().__init__("", f"{len(errors)} bad rows, nothing imported: {shown}{more}")
        self.errors = errors


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return "" if value is None else str(value).strip()


def _number(fields: Mapping[str, Any], name: str) -> float | None:
    raw = fields.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise InvalidArgument(name, f"{raw!r} is not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidArgument(name, f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidArgument(name, f"{raw!r} is not a finite number")
    return value


def _required_number(fields: Mapping[str, Any], name: str) -> float:
    value = _number(fields, name)
    if value is None:
        raise InvalidArgument(name, "required")
    return value


def _boolean(fields: Mapping[str, Any], name: str, default: bool) -> bool:
    raw = fields.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise InvalidArgument(name, f"{raw!r} is not true or false")


def _priority(fields: Mapping[str, Any]) -> Priority:
    text = _text(fields, "priority") or Priority.STORMWATCH_FIRST.value
    try:
        return Priority(text)
    except ValueError:
        raise InvalidArgument("priority", f"{text!r}: one of {', '.join(p.value for p in Priority)}") from None


def _groups(fields: Mapping[str, Any]) -> list[GroupPath]:
    raw = fields.get("groups")
    if raw is None or raw == "":
        return []
    items = raw if isinstance(raw, list) else str(raw).split(";")
    return [parse_path(str(item).strip(), "groups") for item in items if str(item).strip()]


@dataclass(frozen=True)
class ParsedRow:
    installation: Installation
    customer: Customer | None
    groups: list[GroupPath]


def parse_row(fields: Mapping[str, Any], location: GeoPoint) -> ParsedRow:
    """One installation from its fields; raises InvalidArgument naming the field."""
    customer_id = _text(fields, "customer_id")
    customer = None
    if customer_id:
        cid, name, email = parse_customer(customer_id, _text(fields, "customer_name") or customer_id,
                                          _text(fields, "customer_email"))
        customer = Customer(cid, name, email)
    time_zone = _text(fields, "time_zone")
    if not time_zone:
        raise InvalidArgument("time_zone", "required")
    reserve = _number(fields, "backup_reserve_pct")
    installation = parse_installation(Installation(
        installation_id=InstallationId(_text(fields, "installation_id")),
        customer_id=CustomerId(customer_id) if customer_id else None,
        location=location, address=_text(fields, "address"), time_zone=time_zone, utility=_text(fields, "utility"),
        battery_nominal_energy_wh=_number(fields, "battery_nominal_energy_wh"),
        max_charge_power_w=_number(fields, "max_charge_power_w"),
        max_discharge_power_w=_number(fields, "max_discharge_power_w"),
        settings=InstallationSettings(
            backup_reserve_pct=reserve if reserve is not None else InstallationSettings().backup_reserve_pct,
            stormwatch_enabled=_boolean(fields, "stormwatch_enabled", True), priority=_priority(fields)),
    ))
    return ParsedRow(installation, customer, _groups(fields))


def _csv_rows(data: str) -> Iterator[tuple[int, Mapping[str, Any], GeoPoint | None, str | None]]:
    reader = csv.DictReader(io.StringIO(data))
    missing = {"installation_id", "longitude", "latitude", "time_zone"} - set(reader.fieldnames or ())
    if missing:
        raise InvalidArgument("header", f"missing columns: {', '.join(sorted(missing))}")
    for fields in reader:
        row = reader.line_num
        try:
            location = GeoPoint(_required_number(fields, "longitude"), _required_number(fields, "latitude"))
            yield row, fields, location, None
        except InvalidArgument as error:
            yield row, fields, None, str(error)


def _geojson_rows(data: str) -> Iterator[tuple[int, Mapping[str, Any], GeoPoint | None, str | None]]:
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidArgument("file", f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise InvalidArgument("file", "not a GeoJSON FeatureCollection")
    for index, feature in enumerate(document.get("features") or []):
        row = index + 1
        if not isinstance(feature, dict):
            yield row, {}, None, "not a Feature"
            continue
        fields = dict(feature.get("properties") or {})
        if "installation_id" not in fields and isinstance(feature.get("id"), str):
            fields["installation_id"] = feature["id"]
        geometry = feature.get("geometry") or {}
        coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if geometry.get("type") != "Point" or not isinstance(coordinates, list) or len(coordinates) < 2:
            yield row, fields, None, "geometry: a Point with [longitude, latitude] is required"
            continue
        try:
            location = GeoPoint(_required_number({"longitude": coordinates[0]}, "longitude"),
                                _required_number({"latitude": coordinates[1]}, "latitude"))
        except InvalidArgument as error:
            yield row, fields, None, str(error)
            continue
        yield row, fields, location, None


def parse(data: str, fmt: str) -> FleetData:
    """The fleet in `data` ("csv" or "geojson"), or ImportRejected listing every bad row."""
    rows = _csv_rows(data) if fmt == "csv" else _geojson_rows(data) if fmt == "geojson" else None
    if rows is None:
        raise InvalidArgument("format", f"{fmt!r}: csv or geojson")
    return _collect(rows)


def _collect(rows: Iterable[tuple[int, Mapping[str, Any], GeoPoint | None, str | None]]) -> FleetData:
    errors: list[RowError] = []
    installations: dict[str, Installation] = {}
    customers: dict[str, Customer] = {}
    memberships: list[tuple[InstallationId, GroupPath]] = []
    for row, fields, location, problem in rows:
        if problem is not None or location is None:
            errors.append(RowError(row, problem or "no location"))
            continue
        try:
            parsed = parse_row(fields, location)
        except InvalidArgument as error:
            errors.append(RowError(row, str(error)))
            continue
        installation_id = parsed.installation.installation_id
        if installation_id in installations:
            errors.append(RowError(row, f"installation_id: {installation_id!r} appears twice"))
            continue
        installations[installation_id] = parsed.installation
        if parsed.customer is not None:
            customers.setdefault(parsed.customer.customer_id, parsed.customer)
        memberships.extend((installation_id, g) for g in dict.fromkeys(parsed.groups))
    if errors:
        raise ImportRejected(errors)
    if not installations:
        raise InvalidArgument("file", "no installations")
    return FleetData(customers=list(customers.values()), installations=list(installations.values()),
                     memberships=memberships)


def read(path: Path, fmt: str | None = None) -> FleetData:
    """Parses a file; the format comes from its suffix (.csv, .geojson, .json) unless given."""
    if fmt is None:
        suffix = path.suffix.lower()
        fmt = "csv" if suffix == ".csv" else "geojson" if suffix in (".geojson", ".json") else suffix.lstrip(".")
    return parse(path.read_text(encoding="utf-8-sig"), fmt)
