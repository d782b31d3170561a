"""OpenADR 3.1 events → `GridEventSpec`. Pure except for the two resolver callables.

An incoming body is checked against the spec's `eventRequest` schema (what POST and PUT
/events carry; the spec's `event` is the same plus the server's metadata, so a VEN's read-back
copy passes too), then mapped:

- **program**: `programID` → our program's ltree path through `resolve_program`; None is an
  "unknown program" problem.
- **targets**: an OpenADR 3.1 target is a plain string. Ours name one hierarchy group by its
  ltree path (`utility.pge.north_ca`, `program.ca_vpp.enrolled.feeder_12`), checked through
  `resolve_group(program_path, target)`, which returns the group's path (it may also accept
  aliases) or None ("unknown group"). No targets: the whole program. At most one target, since a
  `GridEventSpec` targets one group; VEN or resource names (`VEN-99`) are not groups.
- **window**: `intervalPeriod` of the event sets the default start and duration; an interval's
  own `intervalPeriod` overrides them; an interval without a start begins where the previous one
  ended (User Guide 7.4). The intervals must be contiguous; the window is first start → last end.
  OpenADR's special values are refused with a reason: start "0001-01-01" ("now": a dispatch needs
  a known start, batteries charge before it), duration "P9999Y" (open-ended), zero durations,
  and years or months (calendar-dependent lengths). `randomizeStart` is ignored.
- **power**: only `DISPATCH_SETPOINT` is a dispatch. The OpenADR 3 definitions make it "the
  absolute amount of consumption by a resource", so the group's discharge is its negation: a
  setpoint of −500 KW asks for 500 kW from the batteries; 0 or a positive setpoint asks for none
  and is refused. Units come from the event's payloadDescriptor for that type (W, KW, MW, GW;
  required: a bare number is no power). Every interval must ask for the same level (one event,
  one target power). Everything else is refused as "not a dispatch": PRICE/EXPORT_PRICE/GHG are
  tariffs and signals, ALERT_* are notices, SIMPLE levels and CONTROL_SETPOINT carry no power of
  ours, DISPATCH_SETPOINT_RELATIVE needs a baseline, IMPORT/EXPORT_CAPACITY_LIMIT are ceilings
  (turning a limit into a discharge target would push power into a constrained feeder),
  capacity subscriptions/reservations are contracts, and events with only reportDescriptors are
  report requests. A dispatch may also carry other payloads (a price, a report request); they
  are ignored.

Errors are `OpenAdrError` values with `problems`: (JSON Pointer into the body, message) pairs
the REST layer renders as an RFC 7807 / OpenADR `problem` body:

    OpenAdrError                the event cannot be accepted (status 400)
     ├── SchemaViolation        the body does not match the OpenADR 3.1 event schema
     ├── NotADispatch           a price, alert, report request, limit … : valid, not ours
     └── UnknownReference       programID or target names nothing we know
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from services.control.vpp.model import GridEventSpec, InvalidEvent, Source, validate

# The OpenADR Alliance's OpenAPI definition (Apache-2.0), copied unchanged from the project's data.
SPEC_PATH = Path(__file__).with_name("openadr3_spec_3.1.0.yaml")
_SPEC_URI = "urn:openadr3.1"

ProgramResolver = Callable[[str], Awaitable[str | None]]        # programID → program ltree path
GroupResolver = Callable[[str, str], Awaitable[str | None]]     # (program path, target) → group path

DISPATCH_TYPE = "DISPATCH_SETPOINT"
POWER_UNITS_W: Mapping[str, float] = {"W": 1.0, "KW": 1e3, "MW": 1e6, "GW": 1e9}
MAX_PROBLEMS = 50

_REFUSED_TYPES: Mapping[str, str] = {
    "PRICE": "a price is a tariff signal, not a dispatch",
    "EXPORT_PRICE": "a price is a tariff signal, not a dispatch",
    "GHG": "a GHG signal informs, it does not dispatch",
    "SIMPLE": "a SIMPLE level carries no power to deliver",
    "CONTROL_SETPOINT": "CONTROL_SETPOINT is device-specific; it carries no group discharge power",
    "DISPATCH_SETPOINT_RELATIVE": "a relative setpoint needs a baseline this VPP does not keep",
    "CHARGE_STATE_SETPOINT": "a state-of-charge setpoint is not a discharge dispatch",
    "IMPORT_CAPACITY_LIMIT": "a capacity limit is a ceiling, not a request to discharge",
    "EXPORT_CAPACITY_LIMIT": "a capacity limit is a ceiling, not a request to discharge",
    "CURVE": "a curve (e.g. volt-var) is an inverter setting, not a dispatch",
    "OLS": "an optimum load shape is not a discharge dispatch",
    "DISPATCH_INSTRUCTION": "dispatch instructions are free text, not a power to deliver",
}


@dataclass(frozen=True)
class Problem:
    pointer: str   # RFC 6901 JSON Pointer into the request body; "" = the event as a whole
    message: str

    def as_json(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class OpenAdrError(ValueError):
    """The event cannot be accepted; `problems` say where and why."""

    status = 400
    title = "The event cannot be dispatched"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(f"{p.pointer or '/'}: {p.message}" for p in self.problems))

    def problem_json(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 7807 / OpenADR `problem` object, with the problems as an extension member."""
        body: dict[str, Any] = {
            "type": "about:blank", "title": self.title, "status": self.status, "detail": str(self),
            "problems": [p.as_json() for p in self.problems],
        }
        if instance:
            body["instance"] = instance
        return body


class SchemaViolation(OpenAdrError):
    title = "The event does not match the OpenADR 3.1 event schema"


class NotADispatch(OpenAdrError):
    title = "The event is not a dispatch"


class UnknownReference(OpenAdrError):
    title = "The event names an unknown program or group"


def _error(pointer: str, message: str, kind: type[OpenAdrError] = OpenAdrError) -> OpenAdrError:
    return kind([Problem(pointer, message)])


# ------------------------------------------------------------------------------ schema


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 marks null-able fields with `nullable: true`; JSON Schema spells it as a type."""
    if isinstance(node, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in node.items()}
        if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


@functools.cache
def _validator(schema_name: str, spec_path: Path = SPEC_PATH) -> Draft4Validator:
    # OpenAPI 3.0 schemas are close to draft 4 (boolean exclusiveMaximum, no $id).
    with spec_path.open(encoding="utf-8") as f:
        document = _openapi_to_jsonschema(yaml.safe_load(f))
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, DRAFT4.create_resource(document))
    return Draft4Validator({"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"}, registry=registry)


def _pointer(parts: Sequence[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_schema(body: Any, schema_name: str = "eventRequest") -> None:
    """`SchemaViolation` listing every violation (up to MAX_PROBLEMS) of the spec's schema."""
    errors = sorted(_validator(schema_name).iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise SchemaViolation([Problem(_pointer(list(e.absolute_path)), _short(e.message))
                               for e in errors[:MAX_PROBLEMS]])


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _with_descriptor_discriminator(body: Mapping[str, Any]) -> dict[str, Any]:
    """The User Guide's examples leave out `objectType: EVENT_PAYLOAD_DESCRIPTOR`, which the
    schema requires of every payloadDescriptor as a discriminator; an event has only the one
    kind, so a missing one is filled in rather than refused."""
    out = dict(body)
    descriptors = body.get("payloadDescriptors")
    if isinstance(descriptors, list):
        out["payloadDescriptors"] = [
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", **d} if isinstance(d, dict) and "objectType" not in d else d
            for d in descriptors
        ]
    return out


# ------------------------------------------------------------------------------ time


_DURATION = re.compile(
    r"(?P<sign>-?)P(?=\d|T\d)(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
INFINITE_DURATION = "P9999Y"   # OpenADR's "until further notice"
NOW_START = "0001-01-01"       # OpenADR's "now"


class TimeError(ValueError):
    """A start or duration this VPP cannot use; the message says why."""


def parse_duration(text: str) -> dt.timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds as a timedelta.

    Years and months (calendar-dependent), negative durations and OpenADR's P9999Y raise
    `TimeError`; a zero duration is returned (the caller decides)."""
    if text.strip().upper() == INFINITE_DURATION:
        raise TimeError(f"{INFINITE_DURATION!r} means 'until further notice'; a dispatch needs a bounded window")
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise TimeError(f"{text!r} is not an ISO 8601 duration (e.g. PT2H, PT30M, P1D)")
    if m["sign"]:
        raise TimeError(f"negative duration {text!r}")
    if int(m["y"] or 0) or int(m["mo"] or 0):
        raise TimeError(f"duration {text!r} in years or months has no fixed length; use days, hours, minutes")
    try:
        return dt.timedelta(weeks=int(m["w"] or 0), days=int(m["d"] or 0), hours=int(m["h"] or 0),
                            minutes=int(m["mi"] or 0), seconds=float(m["s"] or 0))
    except OverflowError as exc:
        raise TimeError(f"duration {text!r} is too long") from exc


def parse_datetime(text: str) -> dt.datetime:
    """An RFC 3339 date-time with an offset (a space for the "T" and a "Z" are accepted)."""
    if text.strip().startswith(NOW_START):
        raise TimeError(f"start {text!r} means 'now' in OpenADR; give the start time (batteries charge before it)")
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise TimeError(f"{text!r} is not an RFC 3339 date-time (e.g. 2025-03-14T17:00:00Z)") from exc
    if value.tzinfo is None:
        raise TimeError(f"{text!r} has no UTC offset (e.g. 'Z' or '-07:00')")
    return value.astimezone(dt.UTC)


# ------------------------------------------------------------------------------ mapping


@dataclass(frozen=True)
class ParsedDispatch:
    """What an OpenADR dispatch asks for, before our names are resolved."""

    program_id: str
    target: str | None        # None: the whole program
    start: dt.datetime        # UTC
    end: dt.datetime
    target_power_w: float     # the group's discharge, W (> 0 once validated)
    name: str
    event_id: str | None


def parse_dispatch(body: Any) -> ParsedDispatch:
    """The dispatch in an OpenADR 3.1 event body, or `OpenAdrError` (any of its kinds)."""
    if not isinstance(body, dict):
        raise _error("", "an event is a JSON object", SchemaViolation)
    body = _with_descriptor_discriminator(body)
    check_schema(body)
    target = _target(body)
    kinds = _payload_types(body)
    if DISPATCH_TYPE not in kinds:
        raise NotADispatch([Problem(ptr, why) for ptr, why in _why_not_dispatch(body, kinds)])
    factor = _unit_factor(body)
    start, end, levels = _intervals(body)
    powers = {ptr: -value * factor for ptr, value in levels}
    distinct = sorted(set(powers.values()))
    if len(distinct) > 1:
        shown = ", ".join(f"{p / 1e3:g} kW" for p in distinct)
        raise _error("/intervals", f"the intervals ask for different discharge levels ({shown}); "
                                   "one event has one target power: send one event per level")
    power_w = distinct[0]
    if power_w <= 0:
        ptr = next(iter(powers))
        raise _error(ptr, f"{DISPATCH_TYPE} is the resources' consumption; {-power_w / 1e3:g} kW asks for no discharge "
                          f"(a discharge of 500 kW is a setpoint of -500 KW)")
    name = body.get("eventName") or ""
    event_id = body.get("id")
    for key, text in (("eventName", name), ("id", event_id)):
        if isinstance(text, str) and "\x00" in text:   # stored as Postgres text, which cannot hold NUL
            raise _error(f"/{key}", "NUL characters are not allowed", SchemaViolation)
    return ParsedDispatch(str(body["programID"]), target, start, end, power_w, str(name),
                          str(event_id) if event_id is not None else None)


def _payload_types(body: Mapping[str, Any]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for i, interval in enumerate(body.get("intervals") or []):
        for j, payload in enumerate(interval.get("payloads") or []):
            kinds.setdefault(str(payload["type"]), f"/intervals/{i}/payloads/{j}/type")
    return kinds


def _why_not_dispatch(body: Mapping[str, Any], kinds: Mapping[str, str]) -> list[tuple[str, str]]:
    if not kinds:
        if body.get("reportDescriptors"):
            return [("/reportDescriptors", "a report request asks for data, it dispatches nothing")]
        return [("/intervals", f"the event has no payloads; a dispatch has a {DISPATCH_TYPE} payload")]
    reasons = []
    for kind, ptr in kinds.items():
        why = _REFUSED_TYPES.get(kind)
        if why is None:
            why = ("an alert is a notice, not a dispatch" if kind.startswith("ALERT_")
                   else "capacity subscriptions, reservations and offers are contracts, not dispatches"
                   if "CAPACITY" in kind else f"payload type {kind!r} is not a dispatch")
        reasons.append((ptr, f"{why}; this VPP accepts {DISPATCH_TYPE} (power, W/KW/MW)"))
    return reasons


def _target(body: Mapping[str, Any]) -> str | None:
    targets = body.get("targets") or []
    if len(targets) > 1:
        raise _error("/targets", "one event targets one hierarchy group; send one event per group")
    return str(targets[0]) if targets else None


def _unit_factor(body: Mapping[str, Any]) -> float:
    for i, d in enumerate(body.get("payloadDescriptors") or []):
        if d.get("payloadType") == DISPATCH_TYPE:
            units = d.get("units")
            if units is None:
                break
            factor = POWER_UNITS_W.get(str(units).upper())
            if factor is None:
                raise _error(f"/payloadDescriptors/{i}/units",
                             f"units {units!r} are not power; use one of {', '.join(POWER_UNITS_W)}")
            return factor
    raise _error("/payloadDescriptors", f"{DISPATCH_TYPE} needs a payloadDescriptor with its power units "
                                        f"({', '.join(POWER_UNITS_W)})")


def _intervals(body: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime, list[tuple[str, float]]]:
    """The window and the DISPATCH_SETPOINT values, with the pointer of each value."""
    problems: list[Problem] = []
    default = body.get("intervalPeriod") or {}
    default_start = _time(default, "start", "/intervalPeriod", problems)
    default_duration = _time(default, "duration", "/intervalPeriod", problems)
    intervals = body.get("intervals") or []
    cursor = default_start
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    levels: list[tuple[str, float]] = []
    for i, interval in enumerate(intervals):
        own = interval.get("intervalPeriod") or {}
        base = f"/intervals/{i}/intervalPeriod"
        start = _time(own, "start", base, problems) if "start" in own else cursor
        duration = _time(own, "duration", base, problems) if "duration" in own else default_duration
        for j, payload in enumerate(interval["payloads"]):
            if payload["type"] != DISPATCH_TYPE:
                continue
            ptr = f"/intervals/{i}/payloads/{j}/values"
            values = payload["values"]
            if len(values) != 1:
                problems.append(Problem(ptr, f"{DISPATCH_TYPE} takes one value per interval, got {len(values)}"))
            elif isinstance(values[0], bool) or not isinstance(values[0], int | float) or not math.isfinite(values[0]):
                problems.append(Problem(ptr + "/0", f"{DISPATCH_TYPE} must be a finite number, got {values[0]!r}"))
            else:
                levels.append((ptr + "/0", float(values[0])))
        if start is None or duration is None:
            if not problems:  # otherwise an earlier problem already explains it
                missing = "start" if start is None else "duration"
                problems.append(Problem(f"/intervals/{i}", f"no {missing}: neither the event's nor the interval's "
                                                           "intervalPeriod gives one"))
            cursor = None
            continue
        if duration <= dt.timedelta(0):
            problems.append(Problem(base if "duration" in own else "/intervalPeriod/duration",
                                    "a zero duration is no window to discharge in"))
            cursor = None
            continue
        try:
            end = start + duration
        except OverflowError:   # e.g. a start in 9999 plus days: no window a battery can serve
            problems.append(Problem(base if "duration" in own else "/intervalPeriod", "the interval ends beyond "
                                    "the last representable date"))
            cursor = None
            continue
        spans.append((start, end))
        cursor = end
    if problems:
        raise OpenAdrError(problems)
    if not spans:
        raise _error("/intervals", "a dispatch needs at least one interval with a start and a duration")
    ordered = sorted(spans)
    for (_, prev_end), (next_start, _) in zip(ordered, ordered[1:], strict=False):
        if next_start != prev_end:
            at = min(prev_end, next_start).isoformat()
            raise _error("/intervals", f"the intervals leave a gap or overlap at {at}; "
                                       "a dispatch is one contiguous window")
    if "duration" in body and body["duration"] is not None:
        try:
            loop = parse_duration(body["duration"])
        except TimeError as exc:
            raise _error("/duration", str(exc)) from exc
        if loop != ordered[-1][1] - ordered[0][0]:
            raise _error("/duration", "looping intervals over an event duration is not supported")
    return ordered[0][0], ordered[-1][1], levels


def _time(period: Mapping[str, Any], key: str, base: str, problems: list[Problem]) -> Any:
    value = period.get(key)
    if value is None:
        return None
    try:
        return parse_datetime(value) if key == "start" else parse_duration(value)
    except TimeError as exc:
        problems.append(Problem(f"{base}/{key}", str(exc)))
        return None


async def to_grid_event(
    body: Any,
    now: dt.datetime,
    *,
    resolve_program: ProgramResolver,
    resolve_group: GroupResolver,
    event_id: str | None = None,
) -> GridEventSpec:
    """The `GridEventSpec` an OpenADR 3.1 event body asks for, validated at `now`.

    `event_id` (the path id of a PUT) wins over the body's `id`; the external id falls back to
    the event's name. Raises `OpenAdrError` (SchemaViolation, NotADispatch, UnknownReference, or
    the model's `InvalidEvent` reason as a problem)."""
    parsed = parse_dispatch(body)
    if parsed.end <= now:
        raise _error("/intervalPeriod", f"the window ended in the past ({parsed.end.isoformat()})")
    program = await resolve_program(parsed.program_id)
    if program is None:
        raise _error("/programID", f"unknown program {parsed.program_id!r}", UnknownReference)
    group = ""
    if parsed.target is not None:
        resolved = await resolve_group(program, parsed.target)
        if resolved is None:
            raise _error("/targets/0", f"target {parsed.target!r} names no hierarchy group (targets are group "
                                       "paths such as 'utility.pge.north_ca')", UnknownReference)
        group = resolved
    spec = GridEventSpec(
        program=program, target_group=group, start=parsed.start, end=parsed.end,
        target_power_w=parsed.target_power_w, name=parsed.name[:200],
        external_id=(event_id or parsed.event_id or parsed.name)[:200], source=Source.OPENADR,
    )
    try:
        return validate(spec, now)
    except InvalidEvent as exc:
        raise _error("", str(exc)) from exc


def to_openadr(event_id: str, request: Mapping[str, Any], created: dt.datetime, modified: dt.datetime
               ) -> dict[str, Any]:
    """The OpenADR `event` a VEN reads back: the request plus the server's metadata."""
    return {
        **request, "id": event_id, "objectType": "EVENT",
        "createdDateTime": _rfc3339(created), "modificationDateTime": _rfc3339(modified),
    }


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
