"""The device session protocol driven without sockets."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from services.telemetry.close_codes import CloseCode
from services.telemetry.session import (
    AuthenticateDevice,
    CloseConnection,
    DeviceIdentity,
    DeviceSession,
    ForwardDeviceEvent,
    ProduceBatch,
    Rejected,
    SendFrame,
    SessionConfig,
    SessionState,
)
from services.telemetry.signals import values as signal_values
from services.telemetry.validation import Limits
from tests.hostile.strategies import telemetry_frames

NOW = 1_750_000_000_000
CONFIG = SessionConfig("gw-test", max_samples_per_batch=100, max_in_flight_batches=4,
                       rate_limit_batches_per_s=10, rate_limit_burst_batches=3,
                       limits=Limits(max_clock_skew_s=300, max_sample_age_s=86_400))


def frame(**body) -> bytes:
    return pb.DeviceFrame(**body).SerializeToString()


def hello(device_id="dev-1", credential="secret") -> bytes:
    return frame(hello=pb.Hello(device_id=device_id, credential=credential, protocol_version=1))


def batch(sequence: int, *timestamps: int, **values) -> bytes:
    samples = [pb.Sample(timestamp_unix_ms=t, state_of_charge_pct=50, **values) for t in timestamps]
    return frame(telemetry=pb.TelemetryBatch(sequence=sequence, samples=samples))


def cloud(decision: SendFrame) -> pb.CloudFrame:
    out = pb.CloudFrame()
    out.ParseFromString(decision.frame)
    return out


def open_session() -> DeviceSession:
    session = DeviceSession(CONFIG, "s-1")
    assert session.receive(hello(), NOW) == [AuthenticateDevice("dev-1", "secret")]
    [reply] = session.authenticated(DeviceIdentity("dev-1", "site-1"), NOW)
    assert cloud(reply).hello_reply.installation_id == "site-1"
    return session


def test_batch_is_acknowledged_only_after_the_broker_acknowledged_it():
    session = open_session()
    [produce] = session.receive(batch(1, NOW - 2_000, NOW - 1_000), NOW)
    assert isinstance(produce, ProduceBatch) and produce.installation_id == "site-1"
    record = TelemetryRecord()
    record.ParseFromString(produce.record)
    assert (record.device_id, record.sequence, len(record.samples)) == ("dev-1", 1, 2)
    assert session.in_flight == 1
    [ack] = session.produced(1)
    assert cloud(ack).ack.sequence == 1 and cloud(ack).ack.accepted_samples == 2
    assert session.in_flight == 0
    assert session.produced(1) == []  # a second broker callback acknowledges nothing twice


def test_failed_produce_closes_try_again_later_without_ack():
    session = open_session()
    session.receive(batch(1, NOW), NOW)
    assert session.produce_failed(1, "KafkaTimeoutError") == [
        CloseConnection(CloseCode.TRY_AGAIN_LATER, "broker unavailable: KafkaTimeoutError")]
    assert session.produced(1) == []


@pytest.mark.parametrize("sequence", [1, 5])
def test_repeated_or_lower_sequence_is_refused(sequence):
    session = open_session()
    session.receive(batch(5, NOW), NOW)
    rejected, sent = session.receive(batch(sequence, NOW - 500), NOW)
    assert rejected == Rejected("sequence_not_increasing", 1)
    assert cloud(sent).batch_rejected.reason == pb.REJECT_REASON_SEQUENCE_NOT_INCREASING


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"site_power_w": math.nan}, pb.REJECT_REASON_NOT_FINITE),
        ({"battery_power_w": math.inf}, pb.REJECT_REASON_NOT_FINITE),
        ({"solar_power_w": 5e7}, pb.REJECT_REASON_OUT_OF_RANGE),
    ],
)
def test_invalid_values_are_dropped_and_reported_in_the_ack(values, reason):
    session = open_session()
    good = pb.Sample(timestamp_unix_ms=NOW - 1_000, state_of_charge_pct=40)
    bad = pb.Sample(timestamp_unix_ms=NOW, state_of_charge_pct=40, **values)
    decisions = session.receive(frame(telemetry=pb.TelemetryBatch(sequence=1, samples=[good, bad])), NOW)
    produce = next(d for d in decisions if isinstance(d, ProduceBatch))
    assert produce.sample_count == 1
    ack = cloud(session.produced(1)[0]).ack
    assert ack.accepted_samples == 1
    assert [(r.index, r.reason) for r in ack.rejections] == [(1, reason)]


def test_nan_in_extra_signals_and_soc_out_of_range_are_refused():
    session = open_session()
    samples = [
        pb.Sample(timestamp_unix_ms=NOW, state_of_charge_pct=101),
        pb.Sample(timestamp_unix_ms=NOW - 1, state_of_charge_pct=50, extra={"battery_temperature_c": math.nan}),
    ]
    decisions = session.receive(frame(telemetry=pb.TelemetryBatch(sequence=1, samples=samples)), NOW)
    assert [d for d in decisions if isinstance(d, Rejected)] == [Rejected("out_of_range", 1), Rejected("not_finite", 1)]
    [ack] = [d for d in decisions if isinstance(d, SendFrame)]
    assert cloud(ack).ack.accepted_samples == 0  # nothing valid: acknowledged without producing


def test_timestamps_far_in_future_or_past_and_repeats_are_refused():
    session = open_session()
    decisions = session.receive(batch(1, NOW + 3_600_000, NOW - 2 * 86_400_000, NOW, NOW), NOW)
    reasons = [d.reason for d in decisions if isinstance(d, Rejected)]
    assert reasons == ["timestamp_in_future", "timestamp_too_old", "duplicate_timestamp"]
    assert next(d for d in decisions if isinstance(d, ProduceBatch)).sample_count == 1


def test_oversized_and_empty_batches_are_refused_whole():
    session = open_session()
    too_many = batch(1, *range(NOW - 200, NOW - 99))
    assert cloud(session.receive(too_many, NOW)[1]).batch_rejected.reason == pb.REJECT_REASON_BATCH_TOO_LARGE
    assert cloud(session.receive(batch(2), NOW)[1]).batch_rejected.reason == pb.REJECT_REASON_EMPTY_BATCH


def test_rate_limit_refuses_beyond_the_burst_and_recovers():
    session = open_session()
    for seq in range(1, 4):
        assert isinstance(session.receive(batch(seq, NOW - seq), NOW)[-1], ProduceBatch)
    limited = session.receive(batch(4, NOW - 4), NOW)
    assert cloud(limited[1]).batch_rejected.reason == pb.REJECT_REASON_RATE_LIMITED
    # the same sequence is accepted once tokens refilled (10/s → 100 ms per batch)
    assert isinstance(session.receive(batch(4, NOW - 4), NOW + 150)[-1], ProduceBatch)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xff\xff\xff", CloseCode.MALFORMED_FRAME),
        ("hello as text", CloseCode.MALFORMED_FRAME),
        (b"", CloseCode.PROTOCOL_VIOLATION),
        (batch(1, NOW), CloseCode.PROTOCOL_VIOLATION),
        (frame(hello=pb.Hello(device_id="d", credential="c", protocol_version=9)), CloseCode.UNSUPPORTED_PROTOCOL),
        (frame(hello=pb.Hello(device_id="d")), CloseCode.AUTHENTICATION_FAILED),
    ],
)
def test_bad_first_frames_close_with_a_clear_code(data, code):
    session = DeviceSession(CONFIG, "s")
    decisions = session.receive(data, NOW)
    assert decisions[-1].code == code
    assert session.state is SessionState.CLOSED
    assert session.receive(hello(), NOW) == []


def test_failed_authentication_closes_4001_and_counts_the_reason():
    session = DeviceSession(CONFIG, "s")
    session.receive(hello(), NOW)
    assert session.authentication_failed("bad_credential") == [
        Rejected("auth_bad_credential"), CloseConnection(CloseCode.AUTHENTICATION_FAILED, "authentication failed")]


def test_second_hello_and_garbage_after_open_close_the_session():
    session = open_session()
    assert session.receive(hello(), NOW)[-1].code == CloseCode.PROTOCOL_VIOLATION
    session = open_session()
    assert session.receive(b"\x08\x96\x01garbage", NOW)[-1].code in (CloseCode.MALFORMED_FRAME,
                                                                      CloseCode.PROTOCOL_VIOLATION)


def test_command_acks_and_state_reports_are_forwarded():
    session = open_session()
    [event] = session.receive(frame(state_report=pb.StateReport(backup_reserve_pct=20)), NOW)
    assert isinstance(event, ForwardDeviceEvent) and event.kind == "state_report"
    assert event.installation_id == "site-1"


def test_a_flood_of_device_events_closes_4005_and_telemetry_keeps_its_own_budget():
    session = open_session()
    report = frame(state_report=pb.StateReport(backup_reserve_pct=20))
    for _ in range(CONFIG.rate_limit_burst_batches):
        assert isinstance(session.receive(report, NOW)[0], ForwardDeviceEvent)
    assert isinstance(session.receive(batch(1, NOW - 1), NOW)[-1], ProduceBatch)   # telemetry unaffected
    assert session.receive(report, NOW) == [
        Rejected("device_events_rate_limited"),
        CloseConnection(CloseCode.EVENTS_RATE_LIMITED, "too many device events per second")]
    assert session.state is SessionState.CLOSED
    # At the steady rate (10/s) events never run out.
    paced = open_session()
    for k in range(50):
        assert isinstance(paced.receive(report, NOW + 100 * k)[0], ForwardDeviceEvent)


@given(st.lists(st.one_of(st.binary(max_size=300),
                          telemetry_frames(max_samples=6).map(lambda f: f.SerializeToString())), max_size=8))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_only_ever_lead_to_decisions_the_gateway_can_carry_out(frames):
    """Garbage and hostile telemetry on an open session: every frame sent parses and answers a
    batch, every record produced is this device's with only valid samples (each reporting a
    signal, every reported value finite) and the count it claims, sequences only increase, an
    open session never asks to authenticate again, and after a close nothing follows."""
    session = open_session()
    produced, closes = [], 0
    for data in frames:
        decisions = session.receive(data, NOW)
        if closes:
            assert decisions == []
        for decision in decisions:
            match decision:
                case SendFrame():
                    assert cloud(decision).WhichOneof("body") in ("ack", "batch_rejected")
                case ProduceBatch(sequence=sequence, installation_id=installation, record=data, sample_count=n):
                    record = TelemetryRecord()
                    record.ParseFromString(data)
                    assert (record.device_id, record.installation_id, installation) == ("dev-1", "site-1", "site-1")
                    assert record.sequence == sequence and len(record.samples) == n >= 1
                    for sample in record.samples:
                        reported = [v for v in signal_values(sample) if v is not None]
                        assert reported and all(math.isfinite(v) for v in reported)
                    produced.append(sequence)
                case ForwardDeviceEvent(kind=kind, installation_id=installation):
                    assert kind in ("command_ack", "state_report") and installation == "site-1"
                case CloseConnection():
                    closes += 1
                case Rejected(reason=reason):
                    assert reason
                case _:
                    pytest.fail(f"an open session decided {decision!r}")
    assert produced == sorted(set(produced))
    assert closes <= 1 and (session.state is SessionState.CLOSED) == (closes == 1)


# ------------------------------------------------------------------ absent signals


def test_unset_signals_are_not_reported_and_stay_unset_in_the_record():
    """The Powerwall monitor's three signals: site, battery, solar; no load, no state of charge."""
    session = open_session()
    three = pb.Sample(timestamp_unix_ms=NOW - 1_000, site_power_w=27, battery_power_w=-990, solar_power_w=1840)
    zero = pb.Sample(timestamp_unix_ms=NOW - 500, site_power_w=0.0, state_of_charge_pct=0.0)   # set: reported 0
    [produce] = session.receive(frame(telemetry=pb.TelemetryBatch(sequence=1, samples=[three, zero])), NOW)
    record = TelemetryRecord()
    record.ParseFromString(produce.record)
    assert [signal_values(s) for s in record.samples] == [(27.0, -990.0, 1840.0, None, None),
                                                           (0.0, None, None, None, 0.0)]
    assert cloud(session.produced(1)[0]).ack.accepted_samples == 2


def test_reported_values_are_checked_and_a_sample_without_any_signal_is_refused():
    session = open_session()
    samples = [
        pb.Sample(timestamp_unix_ms=NOW - 3, solar_power_w=math.nan),                   # reported NaN
        pb.Sample(timestamp_unix_ms=NOW - 2, grid_status=pb.GRID_STATUS_CONNECTED),     # nothing measured
        pb.Sample(timestamp_unix_ms=NOW - 1, load_power_w=800, state_of_charge_pct=101),
        pb.Sample(timestamp_unix_ms=NOW, battery_power_w=-2e6),
        pb.Sample(timestamp_unix_ms=NOW - 4, load_power_w=800),                         # fine
    ]
    decisions = session.receive(frame(telemetry=pb.TelemetryBatch(sequence=1, samples=samples)), NOW)
    assert [d.reason for d in decisions if isinstance(d, Rejected)] == [
        "not_finite", "no_signal", "out_of_range", "out_of_range"]
    assert next(d for d in decisions if isinstance(d, ProduceBatch)).sample_count == 1
    rejections = cloud(session.produced(1)[0]).ack.rejections
    assert rejections[1].reason == pb.REJECT_REASON_NO_SIGNAL and "no signal" in rejections[1].detail


def test_hello_reply_states_the_limits_in_force():
    session = DeviceSession(SessionConfig("gw-test", max_samples_per_batch=100, max_in_flight_batches=4,
                                          rate_limit_batches_per_s=10, rate_limit_burst_batches=3,
                                          limits=Limits(max_clock_skew_s=300, max_sample_age_s=30 * 86_400),
                                          max_frame_bytes=2**20), "s-1")
    session.receive(hello(), NOW)
    [reply] = session.authenticated(DeviceIdentity("dev-1", "site-1"), NOW)
    r = cloud(reply).hello_reply
    assert (r.max_clock_skew_s, r.max_sample_age_s, r.rate_limit_batches_per_s, r.rate_limit_burst_batches,
            r.max_frame_bytes, r.max_samples_per_batch, r.max_in_flight_batches) == (
        300, 2_592_000, 10.0, 3, 1_048_576, 100, 4)
    assert r.last_acknowledged_sequence == 0


def test_sequence_numbers_are_checked_across_sessions():
    """device.proto: numbers are kept across reconnects. A new session refuses what the gateway
    acknowledged before, and takes unacknowledged batches replayed with their original numbers."""
    session = DeviceSession(CONFIG, "s-2")
    session.receive(hello(), NOW)
    [reply] = session.authenticated(DeviceIdentity("dev-1", "site-1"), NOW, last_acknowledged_sequence=7)
    assert cloud(reply).hello_reply.last_acknowledged_sequence == 7
    rejected, sent = session.receive(batch(7, NOW - 500), NOW)       # its ack was lost with the connection
    assert rejected == Rejected("sequence_not_increasing", 1)
    assert cloud(sent).batch_rejected.reason == pb.REJECT_REASON_SEQUENCE_NOT_INCREASING
    [produce] = session.receive(batch(8, NOW - 400), NOW)            # received before, never acknowledged
    assert isinstance(produce, ProduceBatch) and produce.sequence == 8


def test_a_sample_notice_reaches_an_open_session_only():
    notice = pb.SampleNotice(timestamps_unix_ms=[NOW - 1_000], reason=pb.REJECT_REASON_CONFLICTING_RESEND,
                             detail="conflicting re-send: the stored values differ")
    assert DeviceSession(CONFIG, "s-0").deliver_notice(notice) == [Rejected("notice_session_not_open")]
    session = open_session()
    [sent] = session.deliver_notice(notice)
    assert isinstance(sent, SendFrame) and cloud(sent).sample_notice == notice
    session.replaced()
    assert session.deliver_notice(notice) == [Rejected("notice_session_not_open")]
