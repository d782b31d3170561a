"""Choosing the resolution of a QueryRange: the finest that fits the point budget."""

import pytest

from gridtwin.api.telemetry.v1 import telemetry_service_pb2 as pb
from services.telemetry.api import MAX_POINTS, bucket_count, choose_resolution

DAY_MS = 86_400_000
T0 = 1_750_000_000_000 // DAY_MS * DAY_MS  # a UTC midnight
HOUR_MS = 3_600_000


def auto(start_ms: int, end_ms: int, max_points: int, raw_count: int) -> int:
    return choose_resolution(pb.RESOLUTION_AUTO, start_ms, end_ms, max_points, raw_count)


def test_bucket_count_counts_aligned_buckets_overlapping_the_range():
    assert bucket_count(T0, T0 + HOUR_MS, 60) == 60
    assert bucket_count(T0 + 30_000, T0 + 90_000, 60) == 2     # two partial minutes
    assert bucket_count(T0 + 1, T0 + 2, 86_400) == 1
    assert bucket_count(T0 - 1, T0 + 1, 86_400) == 2          # straddles midnight
    assert bucket_count(T0, T0 + 7 * DAY_MS, 86_400) == 7


def test_auto_is_raw_while_the_samples_fit():
    assert auto(T0, T0 + DAY_MS, 1_000, 0) == pb.RESOLUTION_RAW
    assert auto(T0, T0 + DAY_MS, 1_000, 1_000) == pb.RESOLUTION_RAW
    assert auto(T0, T0 + DAY_MS, 1_000, 1_001) != pb.RESOLUTION_RAW


@pytest.mark.parametrize(("range_ms", "max_points", "expected"), [
    (HOUR_MS, 60, pb.RESOLUTION_ONE_MINUTE),
    (HOUR_MS, 59, pb.RESOLUTION_FIFTEEN_MINUTES),
    (DAY_MS, 1_440, pb.RESOLUTION_ONE_MINUTE),
    (DAY_MS, 96, pb.RESOLUTION_FIFTEEN_MINUTES),
    (DAY_MS, 95, pb.RESOLUTION_ONE_HOUR),
    (7 * DAY_MS, 168, pb.RESOLUTION_ONE_HOUR),
    (7 * DAY_MS, 167, pb.RESOLUTION_ONE_DAY),
    (365 * DAY_MS, 10, pb.RESOLUTION_ONE_DAY),  # nothing fits: days, truncated by the caller
])
def test_auto_picks_the_finest_rollup_that_fits(range_ms, max_points, expected):
    assert auto(T0, T0 + range_ms, max_points, raw_count=10**9) == expected


def test_an_unaligned_range_needs_one_more_bucket():
    assert auto(T0 + 1, T0 + HOUR_MS + 1, 60, raw_count=10**9) == pb.RESOLUTION_FIFTEEN_MINUTES


def test_explicit_resolutions_are_kept_within_the_hard_limit():
    assert choose_resolution(pb.RESOLUTION_ONE_HOUR, T0, T0 + DAY_MS, 5, None) == pb.RESOLUTION_ONE_HOUR
    assert choose_resolution(pb.RESOLUTION_RAW, T0, T0 + DAY_MS, 5, MAX_POINTS) == pb.RESOLUTION_RAW
    with pytest.raises(ValueError):
        choose_resolution(pb.RESOLUTION_RAW, T0, T0 + DAY_MS, 5, MAX_POINTS + 1)
    with pytest.raises(ValueError):  # 8 days of minutes: 11,520 buckets
        choose_resolution(pb.RESOLUTION_ONE_MINUTE, T0, T0 + 8 * DAY_MS, 5, None)
    assert choose_resolution(pb.RESOLUTION_ONE_MINUTE, T0, T0 + 6 * DAY_MS, 5, None) == pb.RESOLUTION_ONE_MINUTE


def test_an_unknown_resolution_is_refused():
    with pytest.raises(ValueError):
        choose_resolution(99, T0, T0 + 1, 5, 0)  # type: ignore[arg-type]
