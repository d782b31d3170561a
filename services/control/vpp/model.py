"""Grid events as plain values, and the rules a new or changed event must pass. Pure: `now` is
passed in, errors are `InvalidEvent` with a reason a grid operator can act on.

An event asks the installations enrolled in a program, inside a target group of the hierarchy,
to discharge together (`target_power_w` for the whole group) between `start` and `end`. Batteries
charge off-peak before it (`precharge_s` ahead of the start) and never discharge below their
backup reserve. Compensation is paid per kWh discharged in the window at `rate_per_kwh`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from enum import StrEnum

from gridtwin.errors import InvalidArgument

MAX_EVENT_S = 24 * 3600.0
MAX_TARGET_POWER_W = 10e9        # 10 GW: more than any fleet; beyond it the request is a unit mistake
MAX_PRECHARGE_S = 12 * 3600.0
DEFAULT_PRECHARGE_S = 4 * 3600.0
LTREE = re.compile(r"[A-Za-z0-9_]{1,256}(\.[A-Za-z0-9_]{1,256}){0,63}")


class InvalidEvent(InvalidArgument, ValueError):
    """The event cannot be accepted; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


class EventState(StrEnum):
    SCHEDULED = "scheduled"      # dispatched, window not started
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Source(StrEnum):
    GRPC = "grpc"
    OPENADR = "openadr"


@dataclass(frozen=True)
class GridEventSpec:
    """What a grid operator asks for (through gRPC or an OpenADR 3 event)."""

    program: str                   # ltree path of the VPP program
    target_group: str              # ltree path; "" = the whole program
    start: dt.datetime             # timezone-aware
    end: dt.datetime
    target_power_w: float          # the whole group's discharge, W (> 0)
    precharge_s: float = DEFAULT_PRECHARGE_S   # charge off-peak during this long before the start (0: no)
    rate_per_kwh: float | None = None  # None: the program's rate
    name: str = ""
    external_id: str = ""          # the OpenADR event id, when it came that way
    source: Source = Source.GRPC


def validate(spec: GridEventSpec, now: dt.datetime) -> GridEventSpec:
    """The spec, if it can be dispatched at `now`; otherwise `InvalidEvent`."""
    if not LTREE.fullmatch(spec.program):
        raise InvalidEvent(f"program {spec.program!r} is not a hierarchy path (labels of [A-Za-z0-9_] joined by '.')")
    if spec.target_group and not LTREE.fullmatch(spec.target_group):
        raise InvalidEvent(f"target group {spec.target_group!r} is not a hierarchy path")
    if spec.start.tzinfo is None or spec.end.tzinfo is None:
        raise InvalidEvent("start and end need a time zone")
    if spec.end <= spec.start:
        raise InvalidEvent("the window must end after it starts")
    if spec.end <= now:
        raise InvalidEvent(f"the window ended in the past ({spec.end.isoformat()})")
    if (spec.end - spec.start).total_seconds() > MAX_EVENT_S:
        raise InvalidEvent(f"the window is longer than {MAX_EVENT_S / 3600:g} h")
    if not math.isfinite(spec.target_power_w) or spec.target_power_w <= 0:
        raise InvalidEvent("target_power_w must be a positive, finite number of watts")
    if spec.target_power_w > MAX_TARGET_POWER_W:
        raise InvalidEvent(f"target_power_w above {MAX_TARGET_POWER_W:g} W: check the unit")
    if not math.isfinite(spec.precharge_s) or not 0 <= spec.precharge_s <= MAX_PRECHARGE_S:
        raise InvalidEvent(f"precharge_s must be within 0..{MAX_PRECHARGE_S:g}")
    if spec.rate_per_kwh is not None and (not math.isfinite(spec.rate_per_kwh) or spec.rate_per_kwh < 0):
        raise InvalidEvent("rate_per_kwh must be a non-negative, finite amount")
    if len(spec.name) > 200 or len(spec.external_id) > 200:
        raise InvalidEvent("name and external id are limited to 200 characters")
    if "\x00" in spec.name or "\x00" in spec.external_id:
        raise InvalidEvent("name and external id cannot contain NUL characters")
    return spec
