"""The store's row builders (issue 21 made them columnar): the same rows as a row-by-row loop."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.energy import ENERGY_FIELDS, POWER_FIELDS, RollupDelta
from services.telemetry.store import _ROLLUP_COLUMNS, _rollup_rows


def reference_rows(delta: RollupDelta, installation_ids: list[str]) -> list[tuple]:
    """The row-by-row builder the columnar one replaced."""
    rows = []
    for i in range(len(delta.group)):
        per_field = []
        for k in range(len(POWER_FIELDS)):
            low = delta.mins[i, k]
            high = delta.maxs[i, k]
            per_field += [int(delta.counts[i, k]), float(delta.sums[i, k]),
                          float(np.inf if np.isnan(low) else low), float(-np.inf if np.isnan(high) else high)]
        rows.append((installation_ids[delta.group[i]], delta.resolution_s, int(delta.bucket_ms[i]) * 1_000,
                     int(delta.count[i]), *per_field, *(float(e) for e in delta.energy[i])))
    return rows


@given(st.integers(0, 30), st.sampled_from([60, 900, 3_600, 86_400]), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_columnar_rollup_rows_equal_the_row_by_row_ones(n, resolution_s, seed):
    rng = np.random.default_rng(seed)
    m, e = len(POWER_FIELDS), len(ENERGY_FIELDS)
    counts = rng.integers(0, 5, (n, m))
    mins = np.where(counts > 0, rng.normal(0, 500, (n, m)), np.nan)
    delta = RollupDelta(
        resolution_s, rng.integers(0, 3, n), rng.integers(0, 1_000, n) * resolution_s * 1_000,
        counts.sum(axis=1), counts, rng.normal(0, 1e4, (n, m)), mins, mins + 10, rng.normal(0, 100, (n, e)))
    ids = ["site-a", "site-b", "site-c"]
    rows = _rollup_rows(delta, ids)
    assert rows == reference_rows(delta, ids)
    assert all(len(row) == len(_ROLLUP_COLUMNS) for row in rows)
    assert all(type(row[4]) is int for row in rows)   # f_count goes to an integer column in COPY
