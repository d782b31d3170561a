"""Which samples of a device batch the platform accepts. Pure: takes `now_ms`, returns values.

A sample is refused, with a reason a device (and an operator reading metrics) can act on, when a
value is not finite, out of physical range, too far in the future or past, or repeats a
timestamp of the same batch. Accepted samples are stored; refused ones are reported in the Ack.

Only the signals a sample sets are checked: an unset one is "not reported" and stays unset all
the way to the store and the twins (services/telemetry/signals.py). A sample that sets none of
the five measured signals (site, battery, solar, load power, state of charge) is refused with
NO_SIGNAL: it would be a row of nothing, and no rule, rollup or report could use it (a heartbeat
is not what telemetry is for; the websocket keepalive is).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from gridtwin.api.device.v1 import device_pb2 as pb
from services.telemetry.columnar import Columns
from services.telemetry.signals import SIGNALS, reports_any, values

MAX_ABS_POWER_W = 1_000_000.0  # far beyond any home; a larger value is a unit or encoding bug


@dataclass(frozen=True)
class Limits:
    max_clock_skew_s: float
    max_sample_age_s: float


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: pb.RejectReason
    detail: str


def validate_samples(samples: Sequence[pb.Sample], now_ms: int, limits: Limits) -> list[Rejection]:
    """Rejections for the samples that must not be stored, in index order."""
    latest_ms = now_ms + int(limits.max_clock_skew_s * 1_000)
    earliest_ms = now_ms - int(limits.max_sample_age_s * 1_000)
    seen: set[int] = set()
    rejections: list[Rejection] = []
    for index, sample in enumerate(samples):
        problem = _problem(sample, earliest_ms, latest_ms, seen)
        if problem is not None:
            rejections.append(Rejection(index, *problem))
        else:
            seen.add(sample.timestamp_unix_ms)
    return rejections


def all_valid(columns: Columns, now_ms: int, limits: Limits) -> bool:
    """True only when `validate_samples` would refuse none of the samples: the same checks as its
    fast path, as array operations. False says nothing more (the caller then runs
    `validate_samples` for the reasons), so this may be stricter but never laxer."""
    if not any(columns.reported):
        return False                                   # NO_SIGNAL for every sample
    latest_ms = now_ms + int(limits.max_clock_skew_s * 1_000)
    earliest_ms = now_ms - int(limits.max_sample_age_s * 1_000)
    # Unreported signals read 0.0 in the per-sample code, which passes every check.
    values = np.where(np.array(columns.reported), columns.values, 0.0)
    powers, soc, ts = values[:, :4], values[:, 4], columns.ts_ms
    ok = (
        np.isfinite(values).all(axis=1)
        & (powers >= -MAX_ABS_POWER_W).all(axis=1) & (powers <= MAX_ABS_POWER_W).all(axis=1)
        & (soc >= 0.0) & (soc <= 100.0)
        & (ts >= earliest_ms) & (ts <= latest_ms)
    )
    return bool(ok.all()) and len(np.unique(ts)) == len(ts)


def _problem(s: pb.Sample, earliest_ms: int, latest_ms: int, seen: set[int]) -> tuple[pb.RejectReason, str] | None:
    # Fast path for the common valid sample: no allocation. Powers beyond ±MAX_ABS_POWER_W are
    # refused anyway, so a sum of valid values can neither overflow nor hide a NaN or infinity.
    # An unset signal reads 0.0, which passes every check: absent signals are never refused.
    site, battery, solar, load, soc = (s.site_power_w, s.battery_power_w, s.solar_power_w,
                                       s.load_power_w, s.state_of_charge_pct)
    ts = s.timestamp_unix_ms
    if (
        math.isfinite(site + battery + solar + load + soc)
        and min(site, battery, solar, load) >= -MAX_ABS_POWER_W
        and max(site, battery, solar, load) <= MAX_ABS_POWER_W
        and 0.0 <= soc <= 100.0
        and earliest_ms <= ts <= latest_ms
        and ts not in seen
        and not s.extra
        and (site or battery or solar or load or soc or reports_any(s))
    ):
        return None
    return _explain(s, earliest_ms, latest_ms, seen)


def _explain(s: pb.Sample, earliest_ms: int, latest_ms: int, seen: set[int]) -> tuple[pb.RejectReason, str] | None:
    reported = {name: value for name, value in zip(SIGNALS, values(s), strict=True) if value is not None}
    if not reported:
        return pb.REJECT_REASON_NO_SIGNAL, "no signal set (site, battery, solar, load power or state of charge)"
    soc = reported.pop("state_of_charge_pct", None)
    extra: Iterable[tuple[str, float]] = s.extra.items()
    for name, value in [*reported.items(), ("state_of_charge_pct", soc), *extra]:
        if value is not None and not math.isfinite(value):
            return pb.REJECT_REASON_NOT_FINITE, f"{name} is {value}"
    for name, value in reported.items():
        if abs(value) > MAX_ABS_POWER_W:
            return pb.REJECT_REASON_OUT_OF_RANGE, f"{name} {value:g} beyond ±{MAX_ABS_POWER_W:g}"
    if soc is not None and not 0.0 <= soc <= 100.0:
        return pb.REJECT_REASON_OUT_OF_RANGE, f"state_of_charge_pct {soc:g} outside 0..100"
    if s.timestamp_unix_ms > latest_ms:
        return pb.REJECT_REASON_TIMESTAMP_IN_FUTURE, f"timestamp {s.timestamp_unix_ms} ahead of the clock"
    if s.timestamp_unix_ms < earliest_ms:
        return pb.REJECT_REASON_TIMESTAMP_TOO_OLD, f"timestamp {s.timestamp_unix_ms} older than allowed"
    if s.timestamp_unix_ms in seen:
        return pb.REJECT_REASON_DUPLICATE_TIMESTAMP, f"timestamp {s.timestamp_unix_ms} repeated"
    return None
