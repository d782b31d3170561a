"""Battery capacity from charge and discharge cycles, its trend, and when it reaches 80 %. Pure.

Input: per rollup bucket (15 minutes by default, see reader.py) the battery energy in and out,
the state of charge's min and max, the sample count and the seconds covered.

1. **Half-cycles.** Runs of buckets in which the battery moves one way (net energy in, or out,
   above `idle_w`), idle buckets allowed inside a run for up to `max_idle_s`; a bucket without
   full data, or a change of direction, ends the run. Its state-of-charge swing is taken from the
   extremes (a charge runs from the first bucket's minimum to the last one's maximum, idle
   neighbours included: they hold the samples where the run starts and ends), and the capacity
   estimate is |net energy| / swing. Runs with a swing under `min_swing_pct` are left
   out: the swing's rounding and edge errors would dominate.
2. **Cycles.** A charge half-cycle followed (within `max_pair_gap_s`) by a discharge one. The
   energy is measured outside the battery, so a charge overstates the capacity by the charging
   loss and a discharge understates it by the discharging loss; their geometric mean cancels
   losses that split evenly, and their ratio estimates the round-trip efficiency.
3. **Trend.** Least-squares lines of cycle capacity against time (Wh per year) and against
   equivalent full cycles so far (Wh per cycle: discharged energy / nominal capacity), each with
   R², and the date at which the line over time reaches 80 % of nominal (None when the capacity
   is not falling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
YEAR_MS = 365.25 * 86_400_000


class Direction(StrEnum):
    CHARGE = "charge"
    DISCHARGE = "discharge"


@dataclass(frozen=True)
class CapacityOptions:
    min_swing_pct: float = 30.0
    idle_w: float = 50.0            # |mean net battery power| below this is idle
    max_idle_s: float = 2 * 3_600.0
    min_covered_fraction: float = 0.9
    max_pair_gap_s: float = 18 * 3_600.0
    end_of_life_fraction: float = 0.8


DEFAULT_OPTIONS = CapacityOptions()


@dataclass(frozen=True)
class BatteryBuckets:
    bucket_ms: Ints
    resolution_s: int
    charge_wh: Floats
    discharge_wh: Floats
    soc_min_pct: Floats
    soc_max_pct: Floats
    sample_count: Ints
    covered_s: Floats


@dataclass(frozen=True)
class HalfCycle:
    direction: Direction
    start_ms: int
    end_ms: int
    energy_wh: float          # |net energy| in or out
    soc_start_pct: float
    soc_end_pct: float
    capacity_wh: float

    @property
    def swing_pct(self) -> float:
        return abs(self.soc_end_pct - self.soc_start_pct)


@dataclass(frozen=True)
class Cycle:
    charge: HalfCycle
    discharge: HalfCycle
    equivalent_full_cycles: float   # discharged energy from the start of the data to this cycle / nominal

    @property
    def at_ms(self) -> int:
        return self.discharge.end_ms

    @property
    def capacity_wh(self) -> float:
        return math.sqrt(self.charge.capacity_wh * self.discharge.capacity_wh)

    @property
    def round_trip_efficiency(self) -> float:
        return self.discharge.capacity_wh / self.charge.capacity_wh


@dataclass(frozen=True)
class Fit:
    slope: float
    intercept: float
    r_squared: float | None   # None when the estimates do not vary
    points: int


@dataclass(frozen=True)
class CapacityTrend:
    nominal_wh: float | None
    half_cycles: tuple[HalfCycle, ...]
    cycles: tuple[Cycle, ...]
    capacity_wh: float | None             # fitted at the last cycle (else the mean)
    by_time: Fit | None                   # slope: Wh per year; x = years since the first cycle
    by_cycle: Fit | None                  # slope: Wh per equivalent full cycle
    end_of_life_ms: int | None            # the fit over time reaches end_of_life_fraction × nominal
    equivalent_full_cycles: float

    @property
    def fade_pct_per_year(self) -> float | None:
        if self.by_time is None or not self.nominal_wh:
            return None
        return self.by_time.slope / self.nominal_wh * 100


def half_cycles(b: BatteryBuckets, options: CapacityOptions = DEFAULT_OPTIONS) -> list[HalfCycle]:
    hours = b.resolution_s / 3_600
    net = b.charge_wh - b.discharge_wh          # > 0: into the battery
    full = (b.covered_s >= options.min_covered_fraction * b.resolution_s) & (b.sample_count > 0)
    moving = np.abs(net) >= options.idle_w * hours
    direction = np.where(moving, np.sign(net), 0).astype(np.int64)
    max_idle = int(options.max_idle_s // b.resolution_s)
    found: list[HalfCycle] = []
    first = last = -1
    run_sign = idle = 0

    def close() -> None:
        if first >= 0:
            estimate = _estimate(b, net, first, last, run_sign, options)
            if estimate is not None:
                found.append(estimate)

    for i in range(len(net)):
        gap = i > 0 and b.bucket_ms[i] - b.bucket_ms[i - 1] != b.resolution_s * 1_000
        if not full[i] or gap:
            close()
            first, run_sign = -1, 0
            if not full[i]:
                continue
        d = int(direction[i])
        if d == 0:
            if first >= 0:
                idle += 1
                if idle > max_idle:
                    close()
                    first, run_sign = -1, 0
            continue
        if first >= 0 and d == run_sign:
            last, idle = i, 0
            continue
        close()
        first = last = i
        run_sign, idle = d, 0
    close()
    return found


def _estimate(b: BatteryBuckets, net: Floats, first: int, last: int, sign: int,
              options: CapacityOptions) -> HalfCycle | None:
    energy = abs(float(net[first:last + 1].sum()))
    # An idle bucket right before or after the run holds the samples at its very start or end
    # (the sample that closes the last moving interval opens the next bucket): include it.
    lo = first - 1 if first > 0 and _idle_neighbour(b, net, first - 1, first, options) else first
    hi = last + 1 if last + 1 < len(net) and _idle_neighbour(b, net, last + 1, last, options) else last
    if sign > 0:
        start, end = float(b.soc_min_pct[lo:first + 1].min()), float(b.soc_max_pct[last:hi + 1].max())
    else:
        start, end = float(b.soc_max_pct[lo:first + 1].max()), float(b.soc_min_pct[last:hi + 1].min())
    swing = abs(end - start)
    if swing < options.min_swing_pct or (end - start) * sign <= 0:
        return None
    end_ms = int(b.bucket_ms[last]) + b.resolution_s * 1_000
    return HalfCycle(Direction.CHARGE if sign > 0 else Direction.DISCHARGE, int(b.bucket_ms[first]), end_ms,
                     energy, start, end, energy / (swing / 100))


def _idle_neighbour(b: BatteryBuckets, net: Floats, i: int, j: int, options: CapacityOptions) -> bool:
    return (abs(net[i]) < options.idle_w * b.resolution_s / 3_600 and b.sample_count[i] > 0
            and abs(int(b.bucket_ms[i]) - int(b.bucket_ms[j])) == b.resolution_s * 1_000)


def pair_cycles(halves: list[HalfCycle], discharged_before_ms: tuple[Ints, Floats], nominal_wh: float,
                options: CapacityOptions = DEFAULT_OPTIONS) -> list[Cycle]:
    """Charges each followed by the next discharge. `discharged_before_ms` is (instants, energy
    discharged up to each instant), to count equivalent full cycles at each cycle's end."""
    instants, discharged = discharged_before_ms
    cycles = []
    for charge, discharge in zip(halves, halves[1:], strict=False):
        if charge.direction != Direction.CHARGE or discharge.direction != Direction.DISCHARGE:
            continue
        if discharge.start_ms - charge.end_ms > options.max_pair_gap_s * 1_000:
            continue
        k = int(np.searchsorted(instants, discharge.end_ms, side="right")) - 1
        so_far = float(discharged[k]) if k >= 0 else 0.0
        cycles.append(Cycle(charge, discharge, so_far / nominal_wh))
    return cycles


def fit_line(x: Floats, y: Floats) -> Fit | None:
    """Ordinary least squares y = slope·x + intercept with R²; None for fewer than 2 distinct x."""
    if len(x) < 2 or float(np.ptp(x)) == 0.0:
        return None
    x_mean, y_mean = float(x.mean()), float(y.mean())
    sxx = float(((x - x_mean) ** 2).sum())
    slope = float(((x - x_mean) * (y - y_mean)).sum()) / sxx
    intercept = y_mean - slope * x_mean
    ss_tot = float(((y - y_mean) ** 2).sum())
    ss_res = float(((y - (slope * x + intercept)) ** 2).sum())
    return Fit(slope, intercept, 1 - ss_res / ss_tot if ss_tot > 0 else None, len(x))


def capacity_trend(b: BatteryBuckets, nominal_wh: float | None,
                   options: CapacityOptions = DEFAULT_OPTIONS) -> CapacityTrend:
    halves = half_cycles(b, options)
    cumulative = np.cumsum(b.discharge_wh)
    ends = b.bucket_ms + b.resolution_s * 1_000
    provisional = [c for c in pair_cycles(halves, (ends, cumulative), 1.0, options)]
    reference = nominal_wh or (float(np.median([c.capacity_wh for c in provisional])) if provisional else None)
    total_discharged = float(cumulative[-1]) if len(cumulative) else 0.0
    if not provisional or reference is None:
        return CapacityTrend(nominal_wh, tuple(halves), (), None, None, None, None,
                             total_discharged / reference if reference else 0.0)
    cycles = pair_cycles(halves, (ends, cumulative), reference, options)
    t0 = cycles[0].at_ms
    years = np.array([(c.at_ms - t0) / YEAR_MS for c in cycles])
    efc = np.array([c.equivalent_full_cycles for c in cycles])
    capacity = np.array([c.capacity_wh for c in cycles])
    by_time, by_cycle = fit_line(years, capacity), fit_line(efc, capacity)
    now = by_time.slope * years[-1] + by_time.intercept if by_time else float(capacity.mean())
    end_of_life = None
    if by_time is not None and nominal_wh and by_time.slope < 0:
        years_to = (options.end_of_life_fraction * nominal_wh - by_time.intercept) / by_time.slope
        end_of_life = int(t0 + years_to * YEAR_MS)
    return CapacityTrend(nominal_wh, tuple(halves), tuple(cycles), now, by_time, by_cycle, end_of_life,
                         total_discharged / reference)
