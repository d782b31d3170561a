"""The gateway's columnar fast path (issue 21) accepts, refuses and forwards exactly what the
per-sample path does, on the hostile-input corpus and on canonical batches with one fault each."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from services.telemetry import columnar
from services.telemetry import session as session_module
from services.telemetry.session import DeviceIdentity, DeviceSession, ProduceBatch, SendFrame, SessionConfig
from services.telemetry.signals import SIGNALS
from services.telemetry.validation import Limits, all_valid
from tests.hostile.strategies import HOSTILE, telemetry_frames

NOW = 1_750_000_000_000
CONFIG = SessionConfig("gw-col", max_samples_per_batch=2_000, max_in_flight_batches=4,
                       rate_limit_batches_per_s=1e9, rate_limit_burst_batches=10**9,
                       limits=Limits(max_clock_skew_s=300, max_sample_age_s=86_400))


def canonical(n: int, *, sequence: int = 7, drop: tuple[str, ...] = (), grid: int = 1) -> pb.DeviceFrame:
    samples = []
    for i in range(n):
        values = {name: float(100 * k + i) - 250.0 for k, name in enumerate(SIGNALS) if name not in drop}
        if "state_of_charge_pct" in values:
            values["state_of_charge_pct"] = 50.0 + (i % 40)
        samples.append(pb.Sample(timestamp_unix_ms=NOW - 1_000 * (n - i), grid_status=grid, **values))
    return pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=sequence, samples=samples))


FAULTS = {
    "nan": lambda s: setattr(s, "site_power_w", math.nan),
    "inf": lambda s: setattr(s, "load_power_w", -math.inf),
    "power range": lambda s: setattr(s, "solar_power_w", 1e6 + 1),
    "soc range": lambda s: setattr(s, "state_of_charge_pct", 100.5),
    "future": lambda s: setattr(s, "timestamp_unix_ms", NOW + 300_001),
    "old": lambda s: setattr(s, "timestamp_unix_ms", NOW - 86_400_001),
    "extra": lambda s: s.extra.__setitem__("battery_temperature_c", 20.0),
    "zero ts": lambda s: setattr(s, "timestamp_unix_ms", 0),
    "negative ts": lambda s: setattr(s, "timestamp_unix_ms", -5),
    "no signal": lambda s: [s.ClearField(name) for name in SIGNALS],
    "unset one": lambda s: s.ClearField("battery_power_w"),
    "grid 200": lambda s: setattr(s, "grid_status", 200),
}


def run(data: bytes, columnar_min: int) -> list:
    """A fresh open session's decisions for `data`, with the columnar path from `columnar_min`."""
    saved = session_module.COLUMNAR_MIN_SAMPLES
    session_module.COLUMNAR_MIN_SAMPLES = columnar_min
    try:
        return _run(data)
    finally:
        session_module.COLUMNAR_MIN_SAMPLES = saved


def _run(data: bytes) -> list:
    session = DeviceSession(CONFIG, "s")
    session.receive(pb.DeviceFrame(hello=pb.Hello(device_id="d", credential="c")).SerializeToString(), NOW)
    session.authenticated(DeviceIdentity("d", "site"), NOW)
    out = []
    for decision in session.receive(data, NOW):
        if isinstance(decision, ProduceBatch):
            record = TelemetryRecord.FromString(decision.record)
            out.append(("produce", decision.sequence, decision.sample_count, record))
            out.extend(("ack", d.frame) for d in session.produced(decision.sequence) if isinstance(d, SendFrame))
        else:
            out.append(decision)
    return out


def assert_same_decisions(data: bytes) -> None:
    fast = run(data, 1)
    slow = run(data, 10**9)
    assert fast == slow


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("where", [0, 17, 31])
def test_a_canonical_batch_with_one_fault_is_treated_alike(fault, where):
    frame = canonical(32)
    FAULTS[fault](frame.telemetry.samples[where])
    assert_same_decisions(frame.SerializeToString())


def test_duplicate_timestamps_and_unreported_signals_are_treated_alike():
    frame = canonical(40)
    frame.telemetry.samples[5].timestamp_unix_ms = frame.telemetry.samples[4].timestamp_unix_ms
    assert_same_decisions(frame.SerializeToString())
    assert_same_decisions(canonical(40, drop=("load_power_w", "battery_power_w"), grid=0).SerializeToString())
    assert_same_decisions(canonical(40, sequence=0).SerializeToString())


def test_a_valid_canonical_batch_takes_the_columnar_path():
    data = canonical(100, drop=("load_power_w",)).SerializeToString()
    columns = columnar.decode(data, 100)
    assert columns is not None and columns.reported == (True, True, True, False, True)
    parsed = pb.DeviceFrame.FromString(data).telemetry.samples
    assert columns.ts_ms.tolist() == [s.timestamp_unix_ms for s in parsed]
    assert np.array_equal(columns.values[:, 0], [s.site_power_w for s in parsed])
    assert np.isnan(columns.values[:, 3]).all()
    assert all_valid(columns, NOW, CONFIG.limits)
    assert_same_decisions(data)


@HOSTILE
@given(telemetry_frames(max_samples=60))
def test_hostile_frames_are_treated_alike(frame):
    assert_same_decisions(frame.SerializeToString())


@HOSTILE
@given(st.integers(0, 2**32 - 1), st.integers(16, 80), st.integers(1, 4))
def test_flipped_bytes_of_a_canonical_frame_are_read_alike_or_not_at_all(seed, n, flips):
    """Any byte changed anywhere: columnar.decode either gives what protobuf gives or None."""
    rng = np.random.default_rng(seed)
    data = bytearray(canonical(n).SerializeToString())
    for _ in range(flips):
        data[rng.integers(0, len(data))] = rng.integers(0, 256)
    try:
        parsed = pb.DeviceFrame.FromString(bytes(data))
    except Exception:
        return   # the session closes on an undecodable frame before any batch logic
    if parsed.WhichOneof("body") != "telemetry":
        return
    columns = columnar.decode(bytes(data), len(parsed.telemetry.samples))
    if columns is not None:
        samples = parsed.telemetry.samples
        assert columns.ts_ms.tolist() == [s.timestamp_unix_ms for s in samples]
        for k, name in enumerate(SIGNALS):
            expected = [getattr(s, name) if s.HasField(name) else math.nan for s in samples]
            assert np.array_equal(columns.values[:, k], expected, equal_nan=True)
            assert not s.extra if (s := samples[0]) else True
    assert_same_decisions(bytes(data))
