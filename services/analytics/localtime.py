"""Local days and which rollups can answer for them. Pure (zoneinfo); instants are Unix ms.

Rollup buckets are aligned to UTC. A local day — 23, 24 or 25 hours long around daylight-saving
changes — is a whole number of buckets of resolution r exactly when the zone's UTC offset is a
multiple of r, so a year of daily totals reads 1-hour rollups in zones with whole-hour offsets,
15-minute rollups where the offset has :30 or :45 (India, Nepal, South Australia, Newfoundland),
and the UTC-day rollups only in UTC itself. Tariff windows add their own boundaries in local
time: a window from 16:30 needs 15-minute (or finer) buckets. `read_resolution` picks the
coarsest resolution that cuts at every such boundary, so no bucket straddles a day or a tariff
window and every sum is exact; `read_plan` covers a range whose ends are not on that grid with
1-minute rollups at the edges (1 minute is the finest stored energy: ranges are whole minutes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gridtwin.errors import FailedPrecondition

ROLLUP_RESOLUTIONS_S: tuple[int, ...] = (86_400, 3_600, 900, 60)  # coarsest first
MINUTE_MS = 60_000

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class LocalDay:
    """One calendar day in a zone: [start_ms, end_ms) in Unix ms (23, 24 or 25 hours)."""

    date: dt.date
    start_ms: int
    end_ms: int

    @property
    def hours(self) -> float:
        return (self.end_ms - self.start_ms) / 3_600_000


@dataclass(frozen=True)
class Piece:
    """Read rollups of `resolution_s` with bucket start in [start_ms, end_ms)."""

    resolution_s: int
    start_ms: int
    end_ms: int


class ZoneError(FailedPrecondition, ValueError):
    """A time zone name the zone database does not know (an installation stored with a zone this
    server does not know: the state, not the request, is at fault)."""


def zone(name: str) -> ZoneInfo:
    """The zone named `name`; ZoneError when unknown."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ZoneError(f"unknown time zone {name!r}") from exc


def local_midnight_ms(day: dt.date, tz: ZoneInfo) -> int:
    """The first instant of `day` in `tz`. A zone whose clocks skip midnight starts the day
    at the first local time that exists (zoneinfo resolves the gap forward with fold=0)."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    return int(local.timestamp() * 1_000)


def local_days(first: dt.date, end: dt.date, tz: ZoneInfo) -> list[LocalDay]:
    """The days from `first` up to (not including) `end`."""
    count = (end - first).days
    bounds = [local_midnight_ms(first + dt.timedelta(days=i), tz) for i in range(count + 1)]
    return [LocalDay(first + dt.timedelta(days=i), bounds[i], bounds[i + 1]) for i in range(count)]


def local_date(instant_ms: int, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(instant_ms / 1_000, tz).date()


def days_covering(start_ms: int, end_ms: int, tz: ZoneInfo) -> list[LocalDay]:
    """The local days that overlap [start_ms, end_ms)."""
    first = local_date(start_ms, tz)
    last = local_date(end_ms - 1, tz)
    return local_days(first, last + dt.timedelta(days=1), tz)


def offsets_s(days: Iterable[LocalDay], tz: ZoneInfo) -> set[int]:
    """UTC offsets (seconds) in force during the days: a change takes effect within one day and
    lasts past the next midnight, so the offsets at the days' ends cover them all."""
    found: set[int] = set()
    for day in days:
        for instant in (day.start_ms, day.end_ms - 1):
            offset = dt.datetime.fromtimestamp(instant / 1_000, tz).utcoffset()
            assert offset is not None
            found.add(int(offset.total_seconds()))
    return found


def read_resolution(offsets: set[int], boundary_minutes: Iterable[int] = ()) -> int:
    """The coarsest rollup resolution whose UTC-aligned buckets cut at every local midnight
    (zone offsets in `offsets`) and at every local minute-of-day in `boundary_minutes`."""
    minutes = set(boundary_minutes)
    for r in ROLLUP_RESOLUTIONS_S:
        if all(o % r == 0 for o in offsets) and all((m * 60) % r == 0 for m in minutes):
            return r
    return ROLLUP_RESOLUTIONS_S[-1]  # offsets of seconds: historic zones only; minute buckets


def whole_minutes(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The range on the 1-minute grid (start rounded down, end up)."""
    return start_ms // MINUTE_MS * MINUTE_MS, -(-end_ms // MINUTE_MS) * MINUTE_MS


def read_plan(start_ms: int, end_ms: int, resolution_s: int) -> list[Piece]:
    """Contiguous pieces that cover [start_ms, end_ms) (whole minutes): buckets of
    `resolution_s` inside, 1-minute buckets at the edges off its grid."""
    start_ms, end_ms = whole_minutes(start_ms, end_ms)
    size = resolution_s * 1_000
    inner_lo, inner_hi = -(-start_ms // size) * size, end_ms // size * size
    if resolution_s == 60 or inner_lo >= inner_hi:
        return [Piece(60, start_ms, end_ms)] if end_ms > start_ms else []
    pieces = [Piece(60, start_ms, inner_lo), Piece(resolution_s, inner_lo, inner_hi), Piece(60, inner_hi, end_ms)]
    return [p for p in pieces if p.end_ms > p.start_ms]


def day_of(bucket_ms: Ints, days: list[LocalDay]) -> Ints:
    """Index into `days` of each bucket start, −1 outside them (days are contiguous)."""
    if not days:
        return np.full(len(bucket_ms), -1, dtype=np.int64)
    starts = np.array([d.start_ms for d in days], dtype=np.int64)
    index = np.searchsorted(starts, bucket_ms, side="right") - 1
    index[(bucket_ms < days[0].start_ms) | (bucket_ms >= days[-1].end_ms)] = -1
    return index.astype(np.int64)


@dataclass(frozen=True)
class LocalClock:
    """Local wall-clock fields of bucket starts: minute of day, ISO weekday (1 = Monday), month."""

    minute: Ints
    weekday: Ints
    month: Ints


def local_clock(bucket_ms: Ints, days: list[LocalDay], tz: ZoneInfo) -> LocalClock:
    """Wall-clock fields of instants inside `days` without a datetime per instant: a day's offset
    at its start and end follow from its bounds, and where they differ the change instant is
    found by bisection (at most one change a day)."""
    if len(bucket_ms) == 0 or not days:
        z = np.zeros(len(bucket_ms), dtype=np.int64)
        return LocalClock(z, z, z)
    index = np.clip(day_of(bucket_ms, days), 0, len(days) - 1)
    first_offset = np.empty(len(days), dtype=np.int64)
    last_offset = np.empty(len(days), dtype=np.int64)
    change_ms = np.empty(len(days), dtype=np.int64)
    for i, day in enumerate(days):
        first_offset[i] = _naive_ms(day.date) - day.start_ms
        last_offset[i] = first_offset[i] + 86_400_000 - (day.end_ms - day.start_ms)
        change_ms[i] = day.end_ms if first_offset[i] == last_offset[i] else _change_instant(day, tz)
    offset = np.where(bucket_ms >= change_ms[index], last_offset[index], first_offset[index])
    minute = ((bucket_ms + offset) // MINUTE_MS) % 1_440
    weekday = np.array([d.date.isoweekday() for d in days], dtype=np.int64)[index]
    month = np.array([d.date.month for d in days], dtype=np.int64)[index]
    return LocalClock(minute.astype(np.int64), weekday, month)


def _naive_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1_000)


def _offset_ms(instant_ms: int, tz: ZoneInfo) -> int:
    offset = dt.datetime.fromtimestamp(instant_ms / 1_000, tz).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() * 1_000)


def _change_instant(day: LocalDay, tz: ZoneInfo) -> int:
    """The first whole minute within `day` at which the day's closing offset is in force."""
    lo, hi = day.start_ms, day.end_ms - MINUTE_MS  # offset(lo) = opening, offset(hi) = closing
    opening = _offset_ms(lo, tz)
    while hi - lo > MINUTE_MS:
        mid = (lo + hi) // 2 // MINUTE_MS * MINUTE_MS
        if mid <= lo:
            mid = lo + MINUTE_MS
        if _offset_ms(mid, tz) == opening:
            lo = mid
        else:
            hi = mid
    return hi
