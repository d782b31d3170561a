"""The analytics use cases over a reader: energy reports, capacity trends and chart series for
an installation or a set of them (a hierarchy group). Callers check access first (api.py); the
CLI calls these directly.

What each figure is read from, and why:

- **Energy, ratios, daily totals, cost**: rollup energy at the coarsest resolution that cuts at
  every local midnight and tariff boundary of the site's zone (1 h for whole-hour offsets, 15
  min for :30/:45 offsets or quarter-hour tariff windows, 1 day only for UTC with flat prices),
  1-minute rollups at range edges off that grid. Every channel is integrated per interval at
  ingest, so these sums are exact, not approximations of a coarser series.
- **Capacity**: 15-minute rollups (energy in/out, state-of-charge min/max): fine enough that a
  charge or discharge run starts and ends within a bucket, coarse enough that a year is 35,040
  rows (capacity.py).
- **Series**: raw samples or the rollup that fits the point budget, then LTTB (series.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import groupby
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gridtwin.errors import InvalidArgument
from services.analytics import series as series_mod
from services.analytics.capacity import DEFAULT_OPTIONS, CapacityOptions, CapacityTrend, capacity_trend
from services.analytics.localtime import (
    LocalDay,
    days_covering,
    local_days,
    offsets_s,
    read_plan,
    read_resolution,
    whole_minutes,
    zone,
)
from services.analytics.reader import AnalyticsReader, Site
from services.analytics.summary import Report, ZonePart, merge, summarize
from services.analytics.tariffs import Tariff
from services.telemetry.energy import POWER_FIELDS

CAPACITY_RESOLUTION_S = 900
MAX_RANGE_DAYS = 3_660      # ten years: bounds the work one request may ask for
MAX_SERIES_POINTS = 10_000


class RangeError(InvalidArgument, ValueError):
    """A range that cannot be answered (empty, reversed, too long)."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


@dataclass(frozen=True)
class Instants:
    """[start_ms, end_ms) in Unix milliseconds, the same for every member of a group."""

    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class LocalDates:
    """Calendar days [first, end) in each installation's own zone."""

    first: dt.date
    end: dt.date


Range = Instants | LocalDates


def resolve(range_: Range, tz: ZoneInfo) -> tuple[int, int, list[LocalDay]]:
    """The range in Unix ms (whole minutes) and the local days overlapping it."""
    if isinstance(range_, LocalDates):
        if range_.end <= range_.first:
            raise RangeError("end date must be after the first date")
        if (range_.end - range_.first).days > MAX_RANGE_DAYS:
            raise RangeError(f"at most {MAX_RANGE_DAYS} days")
        days = local_days(range_.first, range_.end, tz)
        return days[0].start_ms, days[-1].end_ms, days
    start, end = whole_minutes(range_.start_ms, range_.end_ms)
    if end <= start:
        raise RangeError("need start < end")
    if end - start > MAX_RANGE_DAYS * 86_400_000:
        raise RangeError(f"at most {MAX_RANGE_DAYS} days")
    return start, end, days_covering(start, end, tz)


@dataclass(frozen=True)
class EnergyResult:
    report: Report
    time_zone: str            # the zone of the days ("" when members span several zones)
    resolutions_s: tuple[int, ...]  # rollups read for the inside of the range (per zone)
    installations: int


class Analytics:
    def __init__(self, reader: AnalyticsReader) -> None:
        self.reader = reader

    async def energy(self, sites: list[Site], range_: Range, tariff: Tariff | None) -> EnergyResult:
        """Totals, ratios, daily totals and cost of the sites together over the range."""
        parts: list[ZonePart] = []
        resolutions: list[int] = []
        by_zone = groupby(sorted(sites, key=lambda s: s.time_zone), key=lambda s: s.time_zone)
        for zone_name, members in by_zone:
            ids = [s.installation_id for s in members]
            tz = zone(zone_name)
            start, end, days = resolve(range_, tz)
            resolution = read_resolution(offsets_s(days, tz), tariff.boundary_minutes() if tariff else ())
            buckets = await self.reader.bucket_energy(ids, read_plan(start, end, resolution))
            parts.append(ZonePart(buckets, start, end, days, tz, len(ids)))
            resolutions.append(resolution)
        if len(parts) == 1:
            p = parts[0]
            report = summarize(p.buckets, p.start_ms, p.end_ms, p.days, p.tz, tariff, members=p.members)
        else:
            report = merge(parts, tariff)
        zones = {s.time_zone for s in sites}
        return EnergyResult(report, zones.pop() if len(zones) == 1 else "", tuple(resolutions), len(sites))

    async def capacity(self, site: Site, range_: Range, options: CapacityOptions = DEFAULT_OPTIONS) -> CapacityTrend:
        start, end, _ = resolve(range_, zone(site.time_zone))
        buckets = await self.reader.battery_buckets(site.installation_id, start, end, CAPACITY_RESOLUTION_S)
        return capacity_trend(buckets, site.nominal_wh, options)

    async def series(self, sites: list[Site], range_: Range, max_points: int,
                     channels: tuple[str, ...] = POWER_FIELDS, resolution_s: int | None = None,
                     oversample: int = series_mod.DEFAULT_OVERSAMPLE) -> ChartSeries:
        """Per channel, at most `max_points` points (LTTB) from the resolution that fits (or the
        one asked for: RAW = 0 or a rollup's seconds; a group has no raw series)."""
        if not sites:
            return ChartSeries(0, {c: (np.zeros(0, np.int64), np.zeros(0)) for c in channels}, 0)
        start, end, _ = resolve(range_, zone(sites[0].time_zone))
        single = len(sites) == 1
        if resolution_s is None:
            raw_count = None
            if single:
                raw_count = await self.reader.count_raw(sites[0].installation_id, start, end, max_points * oversample)
            resolution_s = series_mod.choose_resolution(start, end, max_points, raw_count, oversample)
        elif resolution_s == series_mod.RAW:
            if not single:
                raise RangeError("a group's series come from the rollups: choose a resolution")
            cap = MAX_SERIES_POINTS * oversample
            if await self.reader.count_raw(sites[0].installation_id, start, end, cap) > cap:
                raise RangeError(f"more than {cap} raw samples in the range: choose a rollup")
        if resolution_s == series_mod.RAW:
            ts, values = await self.reader.raw_series(sites[0].installation_id, start, end,
                                                      MAX_SERIES_POINTS * oversample)
        else:
            ts, values = await self.reader.rollup_series([s.installation_id for s in sites], start, end,
                                                         resolution_s)
        column = {f: i for i, f in enumerate(POWER_FIELDS)}
        out: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        for channel in channels:
            y = values[:, column[channel]]
            keep = series_mod.lttb(ts, y, max_points)
            out[channel] = (ts[keep], y[keep])
        return ChartSeries(resolution_s, out, len(ts))


@dataclass(frozen=True)
class ChartSeries:
    resolution_s: int                    # 0 = raw samples
    channels: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]
    points_read: int
