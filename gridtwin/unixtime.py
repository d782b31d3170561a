"""Unix milliseconds ↔ timezone-aware UTC datetimes: the one conversion every module that stores,
sends or snapshots times in milliseconds uses (standard library only, so pure domain code may too)."""

from __future__ import annotations

import datetime as dt
import time


def to_ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000)


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1_000, dt.UTC)


def now_ms() -> int:
    """The wall clock in Unix milliseconds: what devices, commands and snapshots are stamped with."""
    return time.time_ns() // 1_000_000
