"""Energy integration and rollup deltas against numpy on the real household year."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.energy import (
    ENERGY_FIELDS,
    POWER_FIELDS,
    Samples,
    energy_by_bucket,
    rollup_deltas,
    split_by_sign_wh,
)
from tests.data import HOUSEHOLD_CSV

E = {name: i for i, name in enumerate(ENERGY_FIELDS)}


def household_samples(days: int = 365) -> tuple[Samples, pd.DataFrame]:
    """The Ausgrid home as power samples every 30 min: site = load − PV (no battery)."""
    frame = pd.read_csv(HOUSEHOLD_CSV, index_col=0, parse_dates=True).iloc[: days * 48]
    load_w = frame["GC"].to_numpy() * 2_000.0  # kWh per half hour → mean W
    solar_w = frame["GG"].to_numpy() * 2_000.0
    ts_ms = frame.index.tz_localize("UTC").as_unit("ms").asi8.astype(np.int64)
    values = np.column_stack([load_w - solar_w, np.zeros_like(load_w), solar_w, load_w, np.full_like(load_w, 50.0)])
    n = len(ts_ms)
    return Samples(np.zeros(n, np.int64), np.zeros(n, np.int64), ts_ms, values), frame


def test_split_by_sign_matches_trapezoid_on_real_year():
    samples, _ = household_samples()
    t_h = samples.ts_ms / 3.6e6
    site = samples.values[:, 0]
    pos, neg = split_by_sign_wh(site[:-1], site[1:], np.diff(samples.ts_ms) / 1_000.0)
    assert pos.sum() - neg.sum() == pytest.approx(np.trapezoid(site, t_h), rel=1e-9)
    assert (pos >= 0).all() and (neg >= 0).all()
    load = samples.values[:, 3]
    load_pos, load_neg = split_by_sign_wh(load[:-1], load[1:], np.diff(samples.ts_ms) / 1_000.0)
    assert load_pos.sum() == pytest.approx(np.trapezoid(load, t_h), rel=1e-9)
    assert load_neg.sum() == 0


def test_zero_crossing_splits_into_triangles():
    pos, neg = split_by_sign_wh(np.array([1_000.0]), np.array([-3_000.0]), np.array([3_600.0]))
    # crosses zero at a quarter of the hour: +1000 W for 15 min as a triangle, −3000 W for 45 min
    assert pos[0] == pytest.approx(125.0)
    assert neg[0] == pytest.approx(1_125.0)


def test_buckets_cut_at_boundaries_and_sum_to_the_whole():
    samples, _ = household_samples(days=30)
    table = energy_by_bucket(samples, max_gap_s=3_600)
    t_h = samples.ts_ms / 3.6e6
    # 30-min segments are cut into 30 one-minute buckets each
    assert len(table) == (len(samples) - 1) * 30
    assert table.values[:, E["load_wh"]].sum() == pytest.approx(np.trapezoid(samples.values[:, 3], t_h), rel=1e-9)
    assert table.values[:, E["solar_wh"]].sum() == pytest.approx(np.trapezoid(samples.values[:, 2], t_h), rel=1e-9)
    assert table.values[:, E["covered_s"]].sum() == pytest.approx((samples.ts_ms[-1] - samples.ts_ms[0]) / 1_000)


def test_no_energy_across_a_gap_longer_than_the_limit():
    ts = np.array([0, 60_000, 60_000 + 3_600_000, 60_000 + 3_660_000], dtype=np.int64)
    values = np.zeros((4, len(POWER_FIELDS)))
    values[:, 3] = 1_000.0
    s = Samples(np.zeros(4, np.int64), np.zeros(4, np.int64), ts, values)
    table = energy_by_bucket(s, max_gap_s=300)
    assert table.values[:, E["load_wh"]].sum() == pytest.approx(2 * 1_000 / 60)
    assert table.values[:, E["covered_s"]].sum() == pytest.approx(120)


def _apply(totals: dict, deltas) -> None:
    for delta in deltas:
        for i in range(len(delta.bucket_ms)):
            key = (delta.resolution_s, int(delta.group[i]), int(delta.bucket_ms[i]))
            row = totals.setdefault(key, [0, np.zeros(len(POWER_FIELDS)), np.zeros(len(ENERGY_FIELDS))])
            row[0] += delta.count[i]
            row[1] += delta.sums[i]
            row[2] += delta.energy[i]


def _stored_context(stored: Samples, new: Samples) -> Samples:
    """What the store returns as context: neighbours and stored samples inside the new range."""
    keep = np.zeros(len(stored), bool)
    for series in np.unique(new.series):
        mine = stored.series == series
        lo, hi = new.ts_ms[new.series == series].min(), new.ts_ms[new.series == series].max()
        inside = mine & (stored.ts_ms >= lo) & (stored.ts_ms <= hi)
        before = np.flatnonzero(mine & (stored.ts_ms < lo))
        after = np.flatnonzero(mine & (stored.ts_ms > hi))
        keep |= inside
        if len(before):
            keep[before[np.argmax(stored.ts_ms[before])]] = True
        if len(after):
            keep[after[np.argmin(stored.ts_ms[after])]] = True
    return Samples(stored.series[keep], stored.group[keep], stored.ts_ms[keep], stored.values[keep])


def test_deltas_in_any_arrival_order_equal_one_pass():
    """Out-of-order and chunked arrival give exactly the rollups of storing everything at once."""
    rng = np.random.default_rng(7)
    n = 3_000
    series = rng.integers(0, 3, n)
    ts = np.sort(rng.choice(10_000_000, n, replace=False)).astype(np.int64) * 7
    values = rng.normal(0, 2_000, (n, len(POWER_FIELDS)))
    everything = Samples(series.astype(np.int64), series.astype(np.int64) % 2, ts, values)

    expected: dict = {}
    _apply(expected, rollup_deltas(everything, Samples.empty(), max_gap_s=120))

    got: dict = {}
    stored = Samples.empty()
    order = rng.permutation(n)
    for chunk in np.array_split(order, 40):
        e = everything
        new = Samples(e.series[chunk], e.group[chunk], e.ts_ms[chunk], e.values[chunk])
        _apply(got, rollup_deltas(new, _stored_context(stored, new), max_gap_s=120))
        stored = stored.concat(new)

    assert got.keys() >= {k for k, v in expected.items() if v[0] or np.abs(v[2]).max() > 1e-9}
    for key, (count, sums, energy) in got.items():
        want = expected.get(key, [0, np.zeros(len(POWER_FIELDS)), np.zeros(len(ENERGY_FIELDS))])
        assert count == want[0], key
        np.testing.assert_allclose(sums, want[1], atol=1e-6)
        np.testing.assert_allclose(energy, want[2], atol=1e-6)


# ------------------------------------------------------------ the scatter kernels (issue 21)

@given(st.integers(0, 40), st.integers(1, 12), st.integers(1, 6), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_scatter_kernels_equal_the_unbuffered_ufunc_at_they_replace(rows, groups, columns, seed):
    """scatter_sum / scatter_min_max are the bincount and sort+reduceat forms of np.add.at,
    np.minimum.at and np.maximum.at: the same numbers, including empty groups and no rows."""
    from services.telemetry.energy import scatter_min_max, scatter_sum

    rng = np.random.default_rng(seed)
    index = rng.integers(0, groups, rows)
    values = rng.normal(0, 1_000, (rows, columns))
    values[rng.random((rows, columns)) < 0.2] = 0.0
    expected_sum = np.zeros((groups, columns))
    np.add.at(expected_sum, index, values)
    expected_min, expected_max = np.full((groups, columns), np.inf), np.full((groups, columns), -np.inf)
    np.minimum.at(expected_min, index, values)
    np.maximum.at(expected_max, index, values)
    assert np.allclose(scatter_sum(index, values, groups), expected_sum, rtol=1e-12, atol=1e-9)
    mins, maxs = scatter_min_max(index, values, values, groups)
    assert np.array_equal(mins, expected_min) and np.array_equal(maxs, expected_max)
