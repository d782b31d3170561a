"""Totals of a range and per local day, with cost: from per-bucket energy to a report. Pure.

Input is energy per rollup bucket (`BucketEnergy`), read so that no bucket straddles a local
midnight or a tariff window (see localtime.py); each bucket then belongs to exactly one day and
one price, and the day totals are plain sums. For a hierarchy group the buckets of all members
in one zone can be summed first (same instants, same days), and reports of several zones merged
by calendar date (`merge`): each member's day is its own local day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from services.analytics.flows import E, Flows
from services.analytics.localtime import LocalDay, day_of, local_clock
from services.analytics.tariffs import COST_FIELDS, Cost, Tariff, cost_components
from services.telemetry.energy import ENERGY_FIELDS

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BucketEnergy:
    """Energy (ENERGY_FIELDS columns) per bucket start (Unix ms), of any mix of resolutions."""

    bucket_ms: Ints
    energy: Floats

    @staticmethod
    def empty() -> BucketEnergy:
        return BucketEnergy(np.zeros(0, dtype=np.int64), np.zeros((0, len(ENERGY_FIELDS))))

    def __len__(self) -> int:
        return len(self.bucket_ms)


@dataclass(frozen=True)
class DayTotals:
    date: dt.date
    start_ms: int
    end_ms: int
    flows: Flows
    cost: Cost | None


@dataclass(frozen=True)
class Report:
    start_ms: int
    end_ms: int
    total: Flows
    cost: Cost | None
    days: tuple[DayTotals, ...]


@dataclass(frozen=True)
class _Sums:
    """Additive day sums before they become values: energy, span (s) and cost components."""

    date: dt.date
    start_ms: int
    end_ms: int
    energy: Floats
    span_s: float
    cost: Floats


def summarize(buckets: BucketEnergy, start_ms: int, end_ms: int, days: list[LocalDay], tz: ZoneInfo,
              tariff: Tariff | None, *, members: int = 1) -> Report:
    """The report of [start_ms, end_ms) over `days` (the local days overlapping it). `members`
    installations contributed to `buckets` (their spans add up, for coverage)."""
    return _report(start_ms, end_ms, _day_sums(buckets, start_ms, end_ms, days, tz, tariff, members), tariff)


def _day_sums(buckets: BucketEnergy, start_ms: int, end_ms: int, days: list[LocalDay], tz: ZoneInfo,
              tariff: Tariff | None, members: int) -> list[_Sums]:
    inside = (buckets.bucket_ms >= start_ms) & (buckets.bucket_ms < end_ms)
    bucket_ms, energy = buckets.bucket_ms[inside], buckets.energy[inside]
    index = day_of(bucket_ms, days)
    keep = index >= 0
    bucket_ms, energy, index = bucket_ms[keep], energy[keep], index[keep]
    n = len(days)
    energy_by_day = np.zeros((n, len(ENERGY_FIELDS)))
    np.add.at(energy_by_day, index, energy)
    cost_by_day = np.zeros((n, len(COST_FIELDS)))
    if tariff is not None and len(bucket_ms):
        clock = local_clock(bucket_ms, days, tz)
        components = cost_components(tariff, clock, {f: energy[:, E[f]] for f in (
            "grid_import_wh", "grid_export_wh", "load_wh", "solar_wh", "solar_direct_wh")})
        np.add.at(cost_by_day, index, components)
    sums = []
    for i, day in enumerate(days):
        lo, hi = max(day.start_ms, start_ms), min(day.end_ms, end_ms)
        sums.append(_Sums(day.date, lo, hi, energy_by_day[i], max(hi - lo, 0) / 1_000 * members, cost_by_day[i]))
    return sums


def _report(start_ms: int, end_ms: int, sums: list[_Sums], tariff: Tariff | None) -> Report:
    total_energy = np.sum([s.energy for s in sums], axis=0) if sums else np.zeros(len(ENERGY_FIELDS))
    total_cost = np.sum([s.cost for s in sums], axis=0) if sums else np.zeros(len(COST_FIELDS))
    days = tuple(_day_totals(s, tariff) for s in sums)
    total = Flows.from_energy(total_energy, sum(s.span_s for s in sums))
    return Report(start_ms, end_ms, total, _cost(total_cost, total, tariff), days)


def _day_totals(s: _Sums, tariff: Tariff | None) -> DayTotals:
    flows = Flows.from_energy(s.energy, s.span_s)
    return DayTotals(s.date, s.start_ms, s.end_ms, flows, _cost(s.cost, flows, tariff))


def _cost(components: Floats, flows: Flows, tariff: Tariff | None) -> Cost | None:
    """The homes without battery or solar are priced only where load and solar were reported."""
    if tariff is None:
        return None
    return Cost.from_components(components, counterfactual=flows.reported("load", "solar"))


@dataclass(frozen=True)
class ZonePart:
    """What one zone contributes to a group report: its members' summed buckets and days."""

    buckets: BucketEnergy
    start_ms: int
    end_ms: int
    days: list[LocalDay]
    tz: ZoneInfo
    members: int


def merge(parts: list[ZonePart], tariff: Tariff | None) -> Report:
    """One report of several zones: days with the same calendar date add up (each member's day is
    its own local day), spanning from the earliest start to the latest end."""
    by_date: dict[dt.date, _Sums] = {}
    for part in parts:
        for s in _day_sums(part.buckets, part.start_ms, part.end_ms, part.days, part.tz, tariff, part.members):
            known = by_date.get(s.date)
            by_date[s.date] = s if known is None else _Sums(
                s.date, min(known.start_ms, s.start_ms), max(known.end_ms, s.end_ms), known.energy + s.energy,
                known.span_s + s.span_s, known.cost + s.cost)
    sums = [by_date[d] for d in sorted(by_date)]
    start = min((p.start_ms for p in parts), default=0)
    end = max((p.end_ms for p in parts), default=0)
    return _report(start, end, sums, tariff)
