"""Series for charts: which resolution to read for a range, and LTTB down to a point budget.

The read resolution is the finest of raw samples, 1 minute, 15 minutes, 1 hour and 1 day whose
point count fits `oversample × max_points` (a day of 1-second samples reads the 1-minute rollup;
a year reads the hourly one). The series is then cut to `max_points` with Largest-Triangle-
Three-Buckets (tsdownsample's Rust implementation), which keeps the peaks and troughs that
averaging into coarser buckets would flatten. Rollup points are bucket means at the bucket
start.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from tsdownsample import LTTBDownsampler

RAW = 0
SERIES_RESOLUTIONS_S: tuple[int, ...] = (60, 900, 3_600, 86_400)  # finest first
DEFAULT_OVERSAMPLE = 10

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def bucket_count(start_ms: int, end_ms: int, resolution_s: int) -> int:
    """Aligned buckets of `resolution_s` overlapping [start_ms, end_ms) (end > start)."""
    size = resolution_s * 1_000
    return (end_ms - 1) // size - start_ms // size + 1


def choose_resolution(start_ms: int, end_ms: int, max_points: int, raw_count: int | None,
                      oversample: int = DEFAULT_OVERSAMPLE) -> int:
    """Seconds per point to read (RAW = 0 for the samples). `raw_count` None: raw is not an
    option (a group's series, which only the rollups hold)."""
    budget = max_points * oversample
    if raw_count is not None and raw_count <= budget:
        return RAW
    for seconds in SERIES_RESOLUTIONS_S:
        if bucket_count(start_ms, end_ms, seconds) <= budget:
            return seconds
    return SERIES_RESOLUTIONS_S[-1]


def lttb(ts_ms: Ints, values: Floats, max_points: int) -> Ints:
    """Indices of the points LTTB keeps (all of them when they fit; first and last always).
    NaN values are left out before choosing."""
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) <= max_points:
        return finite.astype(np.int64)
    if max_points < 3:
        return finite[[0, -1]][:max_points].astype(np.int64)
    chosen = LTTBDownsampler().downsample(ts_ms[finite], np.ascontiguousarray(values[finite]), n_out=max_points)
    return finite[chosen.astype(np.int64)].astype(np.int64)
