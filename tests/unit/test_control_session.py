"""The device session's part in commands, without sockets: commands reach only an open session and
only before their expiry; acks and state reports go to the control plane with the device's id."""

from gridtwin.api.device.v1 import device_pb2 as pb
from services.telemetry.session import (
    DeviceIdentity,
    DeviceSession,
    ForwardDeviceEvent,
    Rejected,
    SendFrame,
    SessionConfig,
)
from services.telemetry.validation import Limits

NOW = 1_750_000_000_000
CONFIG = SessionConfig("gw-test", max_samples_per_batch=100, max_in_flight_batches=4,
                       rate_limit_batches_per_s=10, rate_limit_burst_batches=3,
                       limits=Limits(max_clock_skew_s=300, max_sample_age_s=86_400))
COMMAND = pb.Command(command_id="c" * 32, expires_unix_ms=NOW + 1_000,
                     set_backup_reserve=pb.SetBackupReserve(backup_reserve_pct=30))


def open_session() -> DeviceSession:
    session = DeviceSession(CONFIG, "s-1")
    session.receive(pb.DeviceFrame(hello=pb.Hello(device_id="dev-1", credential="x")).SerializeToString(), NOW)
    session.authenticated(DeviceIdentity("dev-1", "site-1"), NOW)
    return session


def test_a_command_is_sent_on_an_open_session_before_its_expiry():
    [decision] = open_session().deliver_command(COMMAND, NOW)
    assert isinstance(decision, SendFrame)
    frame = pb.CloudFrame()
    frame.ParseFromString(decision.frame)
    assert frame.command == COMMAND


def test_an_expired_command_or_a_closed_session_sends_nothing():
    assert open_session().deliver_command(COMMAND, NOW + 1_000) == [Rejected("command_expired")]
    assert DeviceSession(CONFIG, "s-2").deliver_command(COMMAND, NOW) == [Rejected("command_session_not_open")]
    closed = open_session()
    closed.replaced()
    assert closed.deliver_command(COMMAND, NOW) == [Rejected("command_session_not_open")]


def test_acks_are_forwarded_with_the_device_id():
    ack = pb.CommandAck(command_id="c" * 32, outcome=pb.COMMAND_OUTCOME_ACCEPTED)
    [event] = open_session().receive(pb.DeviceFrame(command_ack=ack).SerializeToString(), NOW)
    assert event == ForwardDeviceEvent("command_ack", "site-1", ack.SerializeToString(), "dev-1")
