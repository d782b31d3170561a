"""After the event: energy each installation discharged in the window, and what it earns.

Energy is the integral of the piecewise-linear battery power through the stored samples (the
trapezoidal rule), split by sign with `services.telemetry.energy.split_by_sign_wh`: positive
power is discharge, negative is charge, and a segment that crosses zero is cut where it does.
Segments are clipped to the window with the power interpolated at its edges, and never taken
across a gap longer than `max_gap_s` (a silent device tells us nothing about that time), as the
rollups do. That makes the figures the rollups would give over the same window, cut at any
instant rather than at minute boundaries.

An installation with several devices reporting battery power sums them, like the rollups; its
coverage is the best device's (the fraction of the window inside segments no longer than
`max_gap_s`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from services.telemetry.energy import split_by_sign_wh

DEFAULT_MAX_GAP_S = 300.0
PAID_STATUS = "accepted"     # the participants a settlement pays (declined, opted out, cancelled: nothing)
CENT = Decimal("0.01")

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EnergyReport:
    installation_id: str
    discharged_wh: float
    charged_wh: float
    samples: int           # samples inside [start, end]
    covered_s: float
    coverage: float        # covered_s / window length, 0..1


@dataclass(frozen=True)
class WindowEnergy:
    discharged_wh: float
    charged_wh: float
    samples: int
    covered_s: float


def integrate_window(ts_s: Floats, power_w: Floats, start_s: float, end_s: float, max_gap_s: float) -> WindowEnergy:
    """Energy of one series (sorted, distinct timestamps in seconds) inside [start_s, end_s].

    Samples outside the window matter only as the far ends of segments that cross its edges."""
    ts_s = np.asarray(ts_s, dtype=np.float64)
    power_w = np.asarray(power_w, dtype=np.float64)
    inside = int(np.count_nonzero((ts_s >= start_s) & (ts_s <= end_s)))
    if len(ts_s) < 2 or end_s <= start_s:
        return WindowEnergy(0.0, 0.0, inside, 0.0)
    t0, t1, p0, p1 = ts_s[:-1], ts_s[1:], power_w[:-1], power_w[1:]
    span = t1 - t0
    a, b = np.maximum(t0, start_s), np.minimum(t1, end_s)
    keep = (span > 0) & (span <= max_gap_s) & (b > a)
    t0, span, p0, p1, a, b = t0[keep], span[keep], p0[keep], p1[keep], a[keep], b[keep]
    slope = (p1 - p0) / span
    pa, pb = p0 + slope * (a - t0), p0 + slope * (b - t0)
    discharged, charged = split_by_sign_wh(pa, pb, b - a)
    return WindowEnergy(float(discharged.sum()), float(charged.sum()), inside, float((b - a).sum()))


def _us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("start and end need a time zone")
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# Timestamps cross as integer microseconds both ways, so the query works whatever timestamptz
# codec the pool's connections carry (the telemetry store installs an integer one).
_SAMPLES_SQL = """
    SELECT installation_id, device_id,
           ((extract(epoch FROM ts) * 1000000)::numeric(20, 0))::bigint AS ts_us,
           battery_power_w
    FROM telemetry_samples
    WHERE installation_id = ANY($1::text[]) AND battery_power_w IS NOT NULL   -- NULL: not reported
      AND ts >= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'
      AND ts <= timestamptz 'epoch' + $3::bigint * interval '1 microsecond'
    ORDER BY installation_id, device_id, ts
"""


async def event_energy(
    pool: asyncpg.Pool | asyncpg.Connection,
    installation_ids: list[str] | tuple[str, ...],
    start: dt.datetime,
    end: dt.datetime,
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> dict[str, EnergyReport]:
    """Energy discharged and charged per installation in [start, end], in one query.

    Reads the window widened by `max_gap_s` on both sides (the neighbours that edge segments
    need; anything further would be a gap). Every requested installation gets a report (zeros
    when it has no samples). Raises ValueError for a naive or empty window."""
    if not math.isfinite(max_gap_s) or max_gap_s <= 0:
        raise ValueError("max_gap_s must be positive")
    if end <= start:
        raise ValueError("the window must end after it starts")
    start_us, end_us = _us(start), _us(end)
    gap_us = int(max_gap_s * 1_000_000)
    ids = sorted(set(installation_ids))
    rows = await pool.fetch(_SAMPLES_SQL, ids, start_us - gap_us, end_us + gap_us)
    return reports_from_rows(rows, ids, start_us / 1e6, end_us / 1e6, max_gap_s)


def reports_from_rows(rows: list[Any], installation_ids: list[str], start_s: float, end_s: float,
                      max_gap_s: float) -> dict[str, EnergyReport]:
    """Reports from (installation_id, device_id, ts_us, battery_power_w) rows sorted that way."""
    window_s = end_s - start_s
    totals: dict[str, list[float]] = {i: [0.0, 0.0, 0, 0.0] for i in installation_ids}
    if rows:
        inst = np.array([r[0] for r in rows], dtype=object)
        dev = np.array([r[1] for r in rows], dtype=object)
        ts_s = np.array([r[2] for r in rows], dtype=np.int64) / 1e6
        power = np.array([r[3] for r in rows], dtype=np.float64)
        cuts = np.flatnonzero((inst[1:] != inst[:-1]) | (dev[1:] != dev[:-1])) + 1
        bounds = np.concatenate([[0], cuts, [len(rows)]])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            e = integrate_window(ts_s[lo:hi], power[lo:hi], start_s, end_s, max_gap_s)
            t = totals.setdefault(str(inst[lo]), [0.0, 0.0, 0, 0.0])
            t[0] += e.discharged_wh
            t[1] += e.charged_wh
            t[2] += e.samples
            t[3] = max(t[3], e.covered_s)
    return {
        i: EnergyReport(i, t[0], t[1], int(t[2]), t[3], min(t[3] / window_s, 1.0) if window_s > 0 else 0.0)
        for i, t in totals.items()
    }


def compensation(energy_wh: float, rate_per_kwh: Decimal | float | str) -> Decimal:
    """energy (Wh) × rate (per kWh), rounded to cents half-up. Raises ValueError for negative or
    non-finite inputs. Floats are taken at their shortest decimal form (0.1 → 0.1, not 0.1000…05)."""
    energy = Decimal(repr(energy_wh)) if isinstance(energy_wh, float) else Decimal(energy_wh)
    rate = Decimal(repr(rate_per_kwh)) if isinstance(rate_per_kwh, float) else Decimal(rate_per_kwh)
    if not energy.is_finite() or not rate.is_finite() or energy < 0 or rate < 0:
        raise ValueError("energy and rate must be non-negative, finite amounts")
    return (energy / 1000 * rate).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ParticipantSettlement:
    installation_id: str
    status: str                 # the participant's status (only "accepted" ones are paid)
    energy: EnergyReport
    compensation: Decimal


@dataclass(frozen=True)
class Settlement:
    """What an event's participants discharged in its window and what they earn."""

    start: dt.datetime
    end: dt.datetime
    rate_per_kwh: Decimal
    complete: bool              # the window is over: the figures are final
    participants: tuple[ParticipantSettlement, ...]

    @property
    def discharged_wh(self) -> float:
        return sum(p.energy.discharged_wh for p in self.participants if p.status == PAID_STATUS)

    @property
    def compensation(self) -> Decimal:
        return sum((p.compensation for p in self.participants), Decimal("0.00"))



def settle(energy: dict[str, EnergyReport], statuses: dict[str, str], rate_per_kwh: Decimal,
           start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Settlement:
    """Each participant's energy with its pay: accepted participants at `rate_per_kwh` per kWh
    discharged; the others (declined, opted out, cancelled) earn nothing for what they did."""
    return Settlement(start, end, rate_per_kwh, now >= end, tuple(
        ParticipantSettlement(i, status, energy[i],
                              compensation(energy[i].discharged_wh, rate_per_kwh) if status == PAID_STATUS
                              else Decimal("0.00"))
        for i, status in sorted(statuses.items())))
