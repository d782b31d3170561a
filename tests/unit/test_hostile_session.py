"""The device session fuzzed: whatever a device sends, in whatever order, the session answers with
decisions only — no exception, every close a code from close_codes.py, every refusal a reason the
device can act on — and keeps no more state than the in-flight bound the gateway enforces."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from gridtwin.api.device.v1 import device_pb2 as pb
from services.telemetry.close_codes import CloseCode
from services.telemetry.session import (
    AuthenticateDevice,
    CloseConnection,
    Decision,
    DeviceIdentity,
    DeviceSession,
    ForwardDeviceEvent,
    ProduceBatch,
    Rejected,
    SendFrame,
    SessionConfig,
    SessionState,
)
from services.telemetry.validation import Limits
from tests.hostile.strategies import HOSTILE, device_frames, telemetry_frames

NOW = 1_750_000_000_000
CONFIG = SessionConfig("gw-hostile", max_samples_per_batch=50, max_in_flight_batches=4,
                       rate_limit_batches_per_s=20, rate_limit_burst_batches=5,
                       limits=Limits(max_clock_skew_s=300, max_sample_age_s=86_400))
# What a device's own misbehaviour may earn it; 1011 (internal error) or 1013 (try again) would
# tell it the gateway broke, and 1009 is the websocket layer's, never the session's.
DEVICE_FAULT_CODES = {CloseCode.MALFORMED_FRAME, CloseCode.PROTOCOL_VIOLATION, CloseCode.AUTHENTICATION_FAILED,
                      CloseCode.UNSUPPORTED_PROTOCOL}


class Driver:
    """Plays the gateway's part: authenticates (or refuses) devices, lets the broker acknowledge
    the oldest batch once the per-device in-flight bound is reached (the gateway stops reading
    there), and checks every decision."""

    def __init__(self, known_device: bool = True) -> None:
        self.session = DeviceSession(CONFIG, "s-hostile")
        self.known_device = known_device
        self.in_flight: list[int] = []
        self.closes: list[CloseConnection] = []
        self.now_ms = NOW

    def feed(self, data: bytes, step_ms: int = 7) -> None:
        self.now_ms += step_ms
        self.check(self.session.receive(data, self.now_ms))

    def check(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            assert not (self.closes and isinstance(decision, SendFrame | ProduceBatch | ForwardDeviceEvent)), \
                f"{decision} after close"
            match decision:
                case CloseConnection(code, reason):
                    assert code in DEVICE_FAULT_CODES and reason, decision
                    assert not self.closes, "closed twice"
                    self.closes.append(decision)
                    self.in_flight.clear()
                case SendFrame(frame):
                    reply = pb.CloudFrame.FromString(frame)
                    if reply.HasField("batch_rejected"):
                        assert reply.batch_rejected.reason != pb.REJECT_REASON_UNSPECIFIED
                        assert reply.batch_rejected.detail
                    for rejection in reply.ack.rejections:
                        assert rejection.reason != pb.REJECT_REASON_UNSPECIFIED and rejection.detail
                case AuthenticateDevice():
                    if self.known_device:
                        self.check(self.session.authenticated(DeviceIdentity("dev-1", "site-1"), self.now_ms))
                    else:
                        self.check(self.session.authentication_failed("unknown_device"))
                case ProduceBatch(sequence):
                    assert sequence not in self.in_flight
                    self.in_flight.append(sequence)
                    if len(self.in_flight) >= CONFIG.max_in_flight_batches:
                        self.check(self.session.produced(self.in_flight.pop(0)))
                case Rejected(reason):
                    assert reason and reason != "unspecified"
                case ForwardDeviceEvent(kind, installation_id):
                    assert kind in ("command_ack", "state_report") and installation_id == "site-1"
        # The session keeps exactly what is in flight, never more (nothing after a close).
        assert self.session.in_flight == len(self.in_flight) <= CONFIG.max_in_flight_batches


def opened() -> Driver:
    driver = Driver()
    driver.feed(pb.DeviceFrame(hello=pb.Hello(device_id="dev-1", credential="c", protocol_version=1))
                .SerializeToString())
    assert driver.session.state is SessionState.OPEN
    return driver


@HOSTILE
@given(st.lists(device_frames(CONFIG.max_samples_per_batch), min_size=1, max_size=12), st.booleans())
def test_any_bytes_in_any_order_from_the_first_frame(frames: list[bytes], known_device: bool) -> None:
    driver = Driver(known_device)
    for data in frames:
        driver.feed(data)
    if driver.session.state is not SessionState.OPEN:
        # A session that is not open after hostile frames was closed with a clear code — or still waits.
        assert driver.closes or driver.session.state in (SessionState.AWAITING_HELLO,)


@HOSTILE
@given(st.lists(device_frames(CONFIG.max_samples_per_batch), min_size=1, max_size=12),
       st.lists(st.integers(0, 5_000), min_size=12, max_size=12))
def test_any_bytes_on_an_open_session(frames: list[bytes], steps_ms: list[int]) -> None:
    driver = opened()
    for data, step in zip(frames, steps_ms, strict=False):
        driver.feed(data, step)


@HOSTILE
@given(st.lists(telemetry_frames(max_samples=8).map(lambda f: f.SerializeToString()), min_size=1, max_size=20))
def test_semantically_hostile_batches_never_close_an_open_session(frames: list[bytes]) -> None:
    """NaN/inf values, wild timestamps, huge, repeated and falling sequence numbers: all refused
    per batch or per sample, and the device stays connected."""
    driver = opened()
    for data in frames:
        driver.feed(data, 100)
    assert not driver.closes and driver.session.state is SessionState.OPEN


def test_wrong_order_gets_protocol_violation() -> None:
    telemetry = pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=1, samples=[pb.Sample()])).SerializeToString()
    before_hello = Driver()
    before_hello.feed(telemetry)
    assert [c.code for c in before_hello.closes] == [CloseCode.PROTOCOL_VIOLATION]

    authenticating = DeviceSession(CONFIG, "s")
    authenticating.receive(pb.DeviceFrame(hello=pb.Hello(device_id="d", credential="c")).SerializeToString(), NOW)
    [close] = authenticating.receive(telemetry, NOW)
    assert isinstance(close, CloseConnection) and close.code is CloseCode.PROTOCOL_VIOLATION
    assert "telemetry" in close.reason   # says what came too early, not "second hello"


def test_retained_memory_is_bounded_under_a_long_hostile_stream() -> None:
    """10,000 frames of accepted, refused and junk batches: what the session holds afterwards does
    not grow with the number of frames (tracemalloc, after a warm-up)."""
    driver = opened()
    good = [pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=s, samples=[
        pb.Sample(timestamp_unix_ms=NOW + s, state_of_charge_pct=50)])).SerializeToString() for s in range(1, 10_001)]
    # Refused without closing: a falling sequence number, and a batch of NaN samples.
    stale = pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=0, samples=[
        pb.Sample(site_power_w=float("nan"))])).SerializeToString()

    def run(lo: int, hi: int) -> None:
        for s in range(lo, hi):
            if s % 3 == 0:
                driver.feed(stale, 60)
            driver.feed(good[s - 1], 60)

    run(1, 1_000)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        run(1_000, 10_001)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename")
                if "services/telemetry" in stat.traceback[0].filename)
    assert not driver.closes and driver.session.last_sequence == 10_000
    assert grown < 16 * 1024, f"session state grew by {grown} bytes over 9,000 frames"
