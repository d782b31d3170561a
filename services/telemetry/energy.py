"""Energy from power, and the per-bucket rollups the store keeps as data arrives. Pure numpy.

Energy is the integral of the piecewise-linear power curve through the samples (the trapezoidal
rule), split by sign into two channels (battery discharge/charge, grid import/export), cut exactly
at bucket boundaries, and never taken across a gap longer than `max_gap_s`: a device that was
silent for an hour tells us nothing about that hour, and `covered_s` reports how much of each
bucket had data.

Rollups are *deltas*: the store adds them to what it has. A late sample that lands between two
stored ones replaces one segment by two, so the delta is energy(after) − energy(before) over the
neighbourhood that changed (`rollup_deltas`). That keeps every rollup exact under replays and
out-of-order arrival without recomputing from raw rows.

`solar_direct_wh` is solar energy the home used as it was produced: ∫ max(min(solar, load), 0) dt
over the same linear pieces (`direct_use_wh`). It cannot be recovered from per-bucket totals of
the solar and load channels (a sunny morning and a dark evening in one bucket would look like
direct use), so it is integrated per interval here, like the sign split of the grid channel.

A signal a sample did not report is NaN in `Samples.values` (NULL in the store), never 0. Sample
statistics count only the samples that reported the signal (`RollupDelta.counts`: the mean is
sum / count, min/max are NaN when none did). An energy channel counts only the intervals whose
two samples both reported its signal — battery, solar, load and grid from battery, solar, load
and site power, `solar_direct_wh` from solar and load — and `<channel>_covered_s` says how many
seconds those were, so a report can tell "0 Wh" from "not reported". A sample without a signal
cuts that channel for the intervals on both sides of it: the channel is not interpolated across
it (that would need the previous reporting sample, which may lie outside the stored context).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RESOLUTIONS_S: tuple[int, ...] = (60, 900, 3_600, 86_400)
FINEST_S = RESOLUTIONS_S[0]

POWER_FIELDS: tuple[str, ...] = (
    "site_power_w",
    "battery_power_w",
    "solar_power_w",
    "load_power_w",
    "state_of_charge_pct",
)
ENERGY_FIELDS: tuple[str, ...] = (
    "battery_charge_wh",
    "battery_discharge_wh",
    "solar_wh",
    "load_wh",
    "grid_import_wh",
    "grid_export_wh",
    "covered_s",
    "solar_direct_wh",  # appended (migration 0004_analytics): older rows read 0
    # Seconds with the channel's signal at both ends of the interval (migration 0010_absent_signals).
    "site_covered_s",
    "battery_covered_s",
    "solar_covered_s",
    "load_covered_s",
)
# Each energy channel and the coverage field(s) that say its signal(s) were reported: a channel
# with no covered second in a bucket or period is "not reported" there, not 0 Wh.
CHANNEL_COVERAGE: dict[str, tuple[str, ...]] = {
    "battery_charge_wh": ("battery_covered_s",), "battery_discharge_wh": ("battery_covered_s",),
    "solar_wh": ("solar_covered_s",), "load_wh": ("load_covered_s",),
    "grid_import_wh": ("site_covered_s",), "grid_export_wh": ("site_covered_s",),
    "solar_direct_wh": ("solar_covered_s", "load_covered_s"),
}

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Samples:
    """Columnar samples. `series` identifies one device's time line (an integer code), `group`
    the installation its energy counts towards; `ts_ms` are Unix milliseconds."""

    series: Ints
    group: Ints
    ts_ms: Ints
    values: Floats  # shape (n, len(POWER_FIELDS)), columns in POWER_FIELDS order; NaN: not reported

    def __len__(self) -> int:
        return len(self.ts_ms)

    @staticmethod
    def empty() -> Samples:
        z = np.zeros(0, dtype=np.int64)
        return Samples(z, z, z, np.zeros((0, len(POWER_FIELDS))))

    def concat(self, other: Samples) -> Samples:
        return Samples(
            np.concatenate([self.series, other.series]),
            np.concatenate([self.group, other.group]),
            np.concatenate([self.ts_ms, other.ts_ms]),
            np.concatenate([self.values, other.values]),
        )

    def sorted(self) -> Samples:
        order = np.lexsort((self.ts_ms, self.series))
        return Samples(self.series[order], self.group[order], self.ts_ms[order], self.values[order])


@dataclass(frozen=True)
class BucketTable:
    """Values per (group, bucket start); keys unique and sorted."""

    group: Ints
    bucket_ms: Ints
    values: Floats

    def __len__(self) -> int:
        return len(self.bucket_ms)


def split_by_sign_wh(p0_w: Floats, p1_w: Floats, dt_s: Floats) -> tuple[Floats, Floats]:
    """Positive and negative (as a positive number) energy of linear segments from p0 to p1.

    Where the segment crosses zero the two triangles are integrated separately, so a battery that
    swings from charging to discharging within one interval is counted in both directions.
    """
    dt_h = dt_s / 3_600.0
    area = (p0_w + p1_w) / 2.0 * dt_h
    both_pos = (p0_w >= 0) & (p1_w >= 0)
    both_neg = (p0_w <= 0) & (p1_w <= 0)
    crossing = ~(both_pos | both_neg)
    span = np.where(crossing, np.abs(p0_w) + np.abs(p1_w), 1.0)
    pos_cross = dt_h / 2.0 * (np.maximum(p0_w, 0) ** 2 + np.maximum(p1_w, 0) ** 2) / span
    neg_cross = dt_h / 2.0 * (np.minimum(p0_w, 0) ** 2 + np.minimum(p1_w, 0) ** 2) / span
    positive = np.where(both_pos, area, np.where(crossing, pos_cross, 0.0))
    negative = np.where(both_neg, -area, np.where(crossing, neg_cross, 0.0))
    return positive, negative


def direct_use_wh(s0_w: Floats, s1_w: Floats, l0_w: Floats, l1_w: Floats, dt_s: Floats) -> Floats:
    """∫ max(min(s, l), 0) dt over linear segments of solar s and load l: the solar power the
    load takes as it is produced. Where s − l changes sign inside a segment the minimum has a
    kink, so the segment is cut there and each part is integrated exactly."""
    d0, d1 = s0_w - l0_w, s1_w - l1_w
    m0, m1 = np.minimum(s0_w, l0_w), np.minimum(s1_w, l1_w)
    crossing = (d0 * d1) < 0
    f = np.where(crossing, d0 / np.where(crossing, d0 - d1, 1.0), 1.0)  # where s = l, as a fraction
    at_cross = s0_w + f * (s1_w - s0_w)
    first, _ = split_by_sign_wh(m0, np.where(crossing, at_cross, m1), dt_s * f)
    second, _ = split_by_sign_wh(at_cross, m1, dt_s * (1.0 - f))
    return first + np.where(crossing, second, 0.0)


def _pieces(s: Samples, max_gap_s: float) -> tuple[Ints, Ints, Ints, Floats, Floats, Floats]:
    """Segments between consecutive samples of a series, cut at every FINEST_S boundary.

    Returns group, piece start, piece end (ms) and the power at both ends (n, fields) plus dt_s.
    """
    if len(s) < 2:
        z = np.zeros(0, dtype=np.int64)
        zf = np.zeros((0, len(POWER_FIELDS)))
        return z, z, z, zf, zf, np.zeros(0)
    same = s.series[1:] == s.series[:-1]
    dt_ms = s.ts_ms[1:] - s.ts_ms[:-1]
    keep = same & (dt_ms > 0) & (dt_ms <= max_gap_s * 1_000)
    t0, t1 = s.ts_ms[:-1][keep], s.ts_ms[1:][keep]
    v0, v1 = s.values[:-1][keep], s.values[1:][keep]
    group = s.group[1:][keep]
    step = FINEST_S * 1_000
    cuts = (t1 - 1) // step - t0 // step  # bucket boundaries strictly inside (t0, t1)
    if not cuts.any():
        return group, t0, t1, v0, v1, (t1 - t0) / 1_000.0
    # Replace each crossing segment by its pieces, interpolating power at the boundaries.
    reps = cuts + 1
    idx = np.repeat(np.arange(len(t0)), reps)
    k = np.arange(len(idx)) - np.repeat(np.cumsum(reps) - reps, reps)  # piece number in segment
    first_boundary = (t0 // step + 1) * step
    start = np.where(k == 0, t0[idx], first_boundary[idx] + (k - 1) * step)
    end = np.where(k == reps[idx] - 1, t1[idx], first_boundary[idx] + k * step)
    span = (t1 - t0)[idx].astype(np.float64)[:, None]
    a = (start - t0[idx])[:, None] / span
    b = (end - t0[idx])[:, None] / span
    dv = (v1 - v0)[idx]
    return group[idx], start, end, v0[idx] + a * dv, v0[idx] + b * dv, (end - start) / 1_000.0


def energy_by_bucket(samples: Samples, max_gap_s: float) -> BucketTable:
    """Energy (ENERGY_FIELDS) per group and FINEST_S bucket of the series in `samples`."""
    s = samples.sorted()
    group, start, _end, v0, v1, dt_s = _pieces(s, max_gap_s)
    col = {name: i for i, name in enumerate(POWER_FIELDS)}
    reported = ~(np.isnan(v0) | np.isnan(v1))          # the signal at both ends of the piece
    v0, v1 = np.where(reported, v0, 0.0), np.where(reported, v1, 0.0)
    site, battery, solar, load = (col[f] for f in ("site_power_w", "battery_power_w", "solar_power_w",
                                                   "load_power_w"))
    battery_out, battery_in = split_by_sign_wh(v0[:, battery], v1[:, battery], dt_s)
    solar_wh, _standby = split_by_sign_wh(v0[:, solar], v1[:, solar], dt_s)
    load_wh, _ = split_by_sign_wh(v0[:, load], v1[:, load], dt_s)
    grid_in, grid_out = split_by_sign_wh(v0[:, site], v1[:, site], dt_s)
    direct = direct_use_wh(v0[:, solar], v1[:, solar], v0[:, load], v1[:, load], dt_s)
    direct = np.where(reported[:, solar] & reported[:, load], direct, 0.0)
    covered = [np.where(reported[:, k], dt_s, 0.0) for k in (site, battery, solar, load)]
    per_piece = np.column_stack([battery_in, battery_out, solar_wh, load_wh, grid_in, grid_out, dt_s, direct,
                                 *covered])
    bucket = start // (FINEST_S * 1_000) * (FINEST_S * 1_000)
    return _sum_by_key(group, bucket, per_piece)


def _key(group: Ints, bucket_ms: Ints) -> Ints:
    """One sortable int64 per (group, FINEST_S bucket): 1-D np.unique is far faster than axis=0."""
    return group.astype(np.int64) << 32 | bucket_ms // (FINEST_S * 1_000)


def _unkey(key: Ints) -> tuple[Ints, Ints]:
    return key >> 32, (key & 0xFFFF_FFFF) * (FINEST_S * 1_000)


def scatter_sum(index: Ints, values: Floats, n: int) -> Floats:
    """(n, columns) sums of the rows of `values` by `index` (as `np.add.at` into zeros, which is
    an unbuffered per-element loop: bincount per column is many times faster)."""
    columns = values.shape[1]
    out = np.empty((n, columns))
    for j in range(columns):
        out[:, j] = np.bincount(index, weights=values[:, j], minlength=n)
    return out


def scatter_min_max(index: Ints, low: Floats, high: Floats, n: int) -> tuple[Floats, Floats]:
    """(n, columns) minima of `low` and maxima of `high` by `index`; +inf / −inf where no row
    falls (as `np.minimum.at` / `np.maximum.at`, by one sort and `reduceat` instead)."""
    mins = np.full((n, low.shape[1]), np.inf)
    maxs = np.full((n, high.shape[1]), -np.inf)
    if len(index):
        order = np.argsort(index, kind="stable")
        ordered = index[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        mins[ordered[starts]] = np.minimum.reduceat(low[order], starts, axis=0)
        maxs[ordered[starts]] = np.maximum.reduceat(high[order], starts, axis=0)
    return mins, maxs


def _sum_by_key(group: Ints, bucket_ms: Ints, values: Floats) -> BucketTable:
    if len(group) == 0:
        return BucketTable(group.astype(np.int64), bucket_ms.astype(np.int64), values.reshape(0, values.shape[1]))
    unique, inverse = np.unique(_key(group, bucket_ms), return_inverse=True)
    totals = scatter_sum(inverse, values, len(unique))
    groups, buckets = _unkey(unique)
    return BucketTable(groups, buckets, totals)


@dataclass(frozen=True)
class RollupDelta:
    """What to add to the rollup rows of one resolution. Sample statistics (count, and per
    POWER_FIELDS the samples that reported it, sums, min, max) come from the new samples only;
    energy is the change of the integral."""

    resolution_s: int
    group: Ints
    bucket_ms: Ints
    count: Ints
    counts: Ints   # (n, len(POWER_FIELDS)): new samples that reported the signal
    sums: Floats   # of the reported values
    mins: Floats   # NaN where the bucket got no new sample reporting the signal
    maxs: Floats
    energy: Floats  # (n, len(ENERGY_FIELDS))


def rollup_deltas(new: Samples, context: Samples, max_gap_s: float) -> list[RollupDelta]:
    """Rollup changes, for every resolution, caused by storing `new` next to `context`.

    `context` must hold, for each series in `new`, every stored sample from the last one before
    the first new sample to the first one after the last new sample (either may be absent).
    Samples already stored must not be in `new`.
    """
    energy = _subtract(
        energy_by_bucket(new.concat(context), max_gap_s),
        energy_by_bucket(context, max_gap_s),
    )
    return [_at_resolution(new, energy, r) for r in RESOLUTIONS_S]


def _subtract(after: BucketTable, before: BucketTable) -> BucketTable:
    return _sum_by_key(
        np.concatenate([after.group, before.group]),
        np.concatenate([after.bucket_ms, before.bucket_ms]),
        np.concatenate([after.values, -before.values]),
    )


def _at_resolution(new: Samples, energy: BucketTable, resolution_s: int) -> RollupDelta:
    step = resolution_s * 1_000
    sample_bucket = new.ts_ms // step * step
    energy_bucket = energy.bucket_ms // step * step
    keys = np.concatenate([_key(new.group, sample_bucket), _key(energy.group, energy_bucket)])
    unique, inverse = np.unique(keys, return_inverse=True)
    n = len(unique)
    from_samples, from_energy = inverse[: len(new)], inverse[len(new):]
    count = np.bincount(from_samples, minlength=n).astype(np.int64)
    reported = ~np.isnan(new.values)
    counts = scatter_sum(from_samples, reported.astype(np.float64), n).astype(np.int64)
    sums = scatter_sum(from_samples, np.where(reported, new.values, 0.0), n)
    mins, maxs = scatter_min_max(from_samples, np.where(reported, new.values, np.inf),
                                 np.where(reported, new.values, -np.inf), n)
    energy_sum = scatter_sum(from_energy, energy.values.reshape(len(from_energy), len(ENERGY_FIELDS)), n)
    mins[counts == 0] = np.nan
    maxs[counts == 0] = np.nan
    groups, buckets = _unkey(unique)
    return RollupDelta(resolution_s, groups, buckets, count, counts, sums, mins, maxs, energy_sum)
