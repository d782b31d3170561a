"""The device session protocol, sans I/O: bytes in, decisions out.

`DeviceSession` never touches a socket, the broker or the database. The gateway feeds it what
arrives (`receive`) and what its I/O finished (`authenticated`, `produced`, ...), and carries out
the decisions it returns, in order. Tests drive it directly.

States: AWAITING_HELLO → AUTHENTICATING → OPEN → CLOSED. Guarantees:
- a batch is acknowledged only after `produced(sequence)`, i.e. after the broker acknowledged it;
- within a session, sequence numbers must strictly increase; a repeated or lower one is refused
  with SEQUENCE_NOT_INCREASING and produces nothing. Across sessions (device.proto: a device's
  numbers are kept across reconnects) a batch numbered at or below the highest one acknowledged
  in an earlier session (`authenticated(..., last_acknowledged_sequence=)`, which the gateway
  remembers per device) is refused the same way; unacknowledged batches replayed with their
  original numbers are above it and are taken;
- invalid samples are dropped and listed in the Ack; a batch with none valid is acknowledged
  without producing anything;
- after a Close decision the session answers nothing but further Closes are not repeated;
- a command from the control plane reaches the device only on an open session and only before
  its expiry (`deliver_command`); CommandAck and StateReport frames go to the control plane as
  `ForwardDeviceEvent`s (topic device-events), with the device's id;
- a SampleNotice from ingest (samples acknowledged but not stored) reaches the device only on an
  open session (`deliver_notice`), never queued.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.api.telemetry.v1 import records_pb2
from services.telemetry import columnar
from services.telemetry.close_codes import CloseCode
from services.telemetry.validation import Limits, Rejection, all_valid, validate_samples

PROTOCOL_VERSION = 1

# From this many samples a batch is read as numpy columns straight from its bytes when its layout
# is canonical (services/telemetry/columnar.py): the per-sample path's protobuf reads cost ~10 µs a
# sample, the columns' fixed cost ~50 µs a batch.
COLUMNAR_MIN_SAMPLES = 16


class SessionState(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    AUTHENTICATING = "authenticating"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    installation_id: str
    # Admitted with a credential that ends then (the previous one, in a rotation's grace): the
    # session ends with it (`credential_expired`). None: the device's current credential.
    credential_valid_until_unix_ms: int | None = None


# ------------------------------------------------------------------ decisions


@dataclass(frozen=True)
class SendFrame:
    frame: bytes


@dataclass(frozen=True)
class CloseConnection:
    code: CloseCode
    reason: str


@dataclass(frozen=True)
class AuthenticateDevice:
    device_id: str
    credential: str


@dataclass(frozen=True)
class ProduceBatch:
    """Produce `record` (a serialized TelemetryRecord) keyed by the installation id."""

    sequence: int
    installation_id: str
    record: bytes
    sample_count: int


@dataclass(frozen=True)
class ForwardDeviceEvent:
    """A command acknowledgement or state report for the control plane."""

    kind: str
    installation_id: str
    payload: bytes
    device_id: str = ""


@dataclass(frozen=True)
class Rejected:
    """Something was refused; for metrics and logs."""

    reason: str
    samples: int = 0


Decision = SendFrame | CloseConnection | AuthenticateDevice | ProduceBatch | ForwardDeviceEvent | Rejected


@dataclass(frozen=True)
class SessionConfig:
    gateway_id: str
    max_samples_per_batch: int
    max_in_flight_batches: int
    rate_limit_batches_per_s: float
    rate_limit_burst_batches: int
    limits: Limits
    max_frame_bytes: int = 2**20   # enforced by the websocket server; told to the device


@dataclass
class _TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float
    updated_ms: int | None = None

    def take(self, now_ms: int) -> bool:
        if self.updated_ms is not None:
            elapsed_s = max(0, now_ms - self.updated_ms) / 1_000
            self.tokens = min(self.burst, self.tokens + elapsed_s * self.rate_per_s)
        self.updated_ms = now_ms
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _reason_name(reason: pb.RejectReason) -> str:
    return pb.RejectReason.Name(reason).removeprefix("REJECT_REASON_").lower()


@dataclass
class DeviceSession:
    config: SessionConfig
    session_id: str
    state: SessionState = SessionState.AWAITING_HELLO
    identity: DeviceIdentity | None = None
    last_sequence: int | None = None
    _pending_acks: dict[int, bytes] = field(default_factory=dict)
    _bucket: _TokenBucket = field(init=False)
    _events_bucket: _TokenBucket = field(init=False)   # command acks and state reports, apart

    def __post_init__(self) -> None:
        burst = float(self.config.rate_limit_burst_batches)
        self._bucket = _TokenBucket(self.config.rate_limit_batches_per_s, burst, burst)
        self._events_bucket = _TokenBucket(self.config.rate_limit_batches_per_s, burst, burst)

    @property
    def in_flight(self) -> int:
        """Batches handed to the broker and not yet acknowledged by it."""
        return len(self._pending_acks)

    # ------------------------------------------------------------ inputs

    def receive(self, data: bytes | str, now_ms: int) -> list[Decision]:
        if self.state is SessionState.CLOSED:
            return []
        if isinstance(data, str):
            return self._close(CloseCode.MALFORMED_FRAME, "text frames are not part of the protocol")
        frame = pb.DeviceFrame()
        try:
            frame.ParseFromString(data)
        except DecodeError:
            return self._close(CloseCode.MALFORMED_FRAME, "frame is not a DeviceFrame")
        kind = frame.WhichOneof("body")
        if kind is None:
            return self._close(CloseCode.PROTOCOL_VIOLATION, "empty frame")
        if self.state is SessionState.AWAITING_HELLO:
            if kind != "hello":
                return self._close(CloseCode.PROTOCOL_VIOLATION, f"{kind} before hello")
            return self._hello(frame.hello)
        if kind == "hello":
            return self._close(CloseCode.PROTOCOL_VIOLATION, "second hello")
        if self.state is SessionState.AUTHENTICATING:
            # The gateway reads nothing while it authenticates; a frame here is a protocol breach.
            return self._close(CloseCode.PROTOCOL_VIOLATION, f"{kind} before the hello was answered")
        if kind == "telemetry":
            return self._telemetry(frame.telemetry, now_ms, data)
        assert self.identity is not None
        if not self._events_bucket.take(now_ms):
            # A device acknowledges the commands it is sent and reports its state now and then;
            # an event flood has no ack to refuse it with, and would fill the events topic.
            return [Rejected("device_events_rate_limited"),
                    *self._close(CloseCode.EVENTS_RATE_LIMITED, "too many device events per second")]
        payload = getattr(frame, kind).SerializeToString()
        return [ForwardDeviceEvent(kind, self.identity.installation_id, payload, self.identity.device_id)]

    def authenticated(self, identity: DeviceIdentity, now_ms: int, *,
                      last_acknowledged_sequence: int = 0) -> list[Decision]:
        """`last_acknowledged_sequence`: the highest sequence number acknowledged to this device
        in an earlier session (0: none known); batches at or below it are refused."""
        if self.state is not SessionState.AUTHENTICATING:
            return []
        self.state = SessionState.OPEN
        self.identity = identity
        if last_acknowledged_sequence > 0:
            self.last_sequence = last_acknowledged_sequence
        config, limits = self.config, self.config.limits
        reply = pb.HelloReply(
            session_id=self.session_id,
            installation_id=identity.installation_id,
            server_time_unix_ms=now_ms,
            max_samples_per_batch=config.max_samples_per_batch,
            max_in_flight_batches=config.max_in_flight_batches,
            max_clock_skew_s=int(limits.max_clock_skew_s),
            max_sample_age_s=int(limits.max_sample_age_s),
            rate_limit_batches_per_s=config.rate_limit_batches_per_s,
            rate_limit_burst_batches=config.rate_limit_burst_batches,
            max_frame_bytes=config.max_frame_bytes,
            last_acknowledged_sequence=last_acknowledged_sequence,
        )
        return [SendFrame(pb.CloudFrame(hello_reply=reply).SerializeToString())]

    def authentication_failed(self, reason: str) -> list[Decision]:
        if self.state is not SessionState.AUTHENTICATING:
            return []
        return [Rejected(f"auth_{reason}"), *self._close(CloseCode.AUTHENTICATION_FAILED, "authentication failed")]

    def produced(self, sequence: int) -> list[Decision]:
        ack = self._pending_acks.pop(sequence, None)
        if ack is None or self.state is SessionState.CLOSED:
            return []
        return [SendFrame(ack)]

    def produce_failed(self, sequence: int, error: str) -> list[Decision]:
        self._pending_acks.pop(sequence, None)
        return self._close(CloseCode.TRY_AGAIN_LATER, f"broker unavailable: {error}"[:120])

    def deliver_command(self, command: pb.Command, now_ms: int) -> list[Decision]:
        """A command from the control plane for this device: sent only on an open session and only
        before its expiry (an expired command is never sent; the control store expires it)."""
        if self.state is not SessionState.OPEN:
            return [Rejected("command_session_not_open")]
        if command.expires_unix_ms and now_ms >= command.expires_unix_ms:
            return [Rejected("command_expired")]
        return [SendFrame(pb.CloudFrame(command=command).SerializeToString())]

    def deliver_notice(self, notice: pb.SampleNotice) -> list[Decision]:
        """Samples of this device that the store did not take (from ingest): sent only on an
        open session; a closed one drops it (best effort, device.proto SampleNotice)."""
        if self.state is not SessionState.OPEN:
            return [Rejected("notice_session_not_open")]
        return [SendFrame(pb.CloudFrame(sample_notice=notice).SerializeToString())]

    def hello_timed_out(self) -> list[Decision]:
        if self.state is SessionState.AWAITING_HELLO:
            return self._close(CloseCode.HELLO_TIMEOUT, "no hello in time")
        return []

    def credential_expired(self) -> list[Decision]:
        """The credential this session was admitted with has ended (a rotation's grace is over):
        the device must come back with its new one."""
        if self.state is not SessionState.OPEN:
            return []
        return [Rejected("auth_credential_expired"),
                *self._close(CloseCode.AUTHENTICATION_FAILED, "credential expired")]

    def credential_refused(self) -> list[Decision]:
        """Checked again while open, the session's credential is refused (the device was revoked,
        or rotated and its old credential is over): it ends as a Hello with it would."""
        if self.state is not SessionState.OPEN:
            return []
        return [Rejected("auth_credential_refused"),
                *self._close(CloseCode.AUTHENTICATION_FAILED, "credential no longer valid")]

    def replaced(self) -> list[Decision]:
        return self._close(CloseCode.SESSION_REPLACED, "a newer session of this device opened")

    # ------------------------------------------------------------ internals

    def _hello(self, hello: pb.Hello) -> list[Decision]:
        if hello.protocol_version not in (0, PROTOCOL_VERSION):
            return self._close(CloseCode.UNSUPPORTED_PROTOCOL, f"protocol {hello.protocol_version} unsupported")
        if not hello.device_id or not hello.credential:
            return [Rejected("auth_missing_credential"),
                    *self._close(CloseCode.AUTHENTICATION_FAILED, "authentication failed")]
        self.state = SessionState.AUTHENTICATING
        return [AuthenticateDevice(hello.device_id, hello.credential)]

    def _telemetry(self, batch: pb.TelemetryBatch, now_ms: int, data: bytes = b"") -> list[Decision]:
        assert self.identity is not None
        seq, n = batch.sequence, len(batch.samples)
        if self.last_sequence is not None and seq <= self.last_sequence:
            return self._refuse(seq, pb.REJECT_REASON_SEQUENCE_NOT_INCREASING,
                                f"sequence {seq} not above {self.last_sequence}", n)
        if n == 0:
            return self._refuse(seq, pb.REJECT_REASON_EMPTY_BATCH, "batch has no samples", 0)
        if n > self.config.max_samples_per_batch:
            return self._refuse(seq, pb.REJECT_REASON_BATCH_TOO_LARGE,
                                f"{n} samples, limit {self.config.max_samples_per_batch}", n)
        if not self._bucket.take(now_ms):
            # Not recorded as last_sequence: the device sends this very batch again later.
            return self._refuse(seq, pb.REJECT_REASON_RATE_LIMITED, "too many batches per second", n)
        self.last_sequence = seq
        if n >= COLUMNAR_MIN_SAMPLES and (fast := self._all_valid_columns(seq, data, n, now_ms)) is not None:
            return fast
        rejections = validate_samples(batch.samples, now_ms, self.config.limits)
        accepted = self._accepted(batch.samples, rejections)
        ack = pb.CloudFrame(ack=pb.Ack(
            sequence=seq,
            accepted_samples=len(accepted),
            rejections=[pb.SampleRejection(index=r.index, reason=r.reason, detail=r.detail) for r in rejections],
        )).SerializeToString()
        decisions: list[Decision] = [Rejected(_reason_name(r.reason), 1) for r in rejections]
        if not accepted:
            return [*decisions, SendFrame(ack)]
        record = records_pb2.TelemetryRecord(
            device_id=self.identity.device_id,
            installation_id=self.identity.installation_id,
            sequence=seq,
            received_unix_ms=now_ms,
            gateway_id=self.config.gateway_id,
            samples=accepted,
        )
        self._pending_acks[seq] = ack
        decisions.append(ProduceBatch(seq, self.identity.installation_id, record.SerializeToString(), len(accepted)))
        return decisions

    def _all_valid_columns(self, seq: int, data: bytes, n: int, now_ms: int) -> list[Decision] | None:
        """The decisions for a batch whose every sample is valid, found and forwarded as columns
        and bytes without reading a sample through protobuf; None to take the per-sample path
        (a layout that is not canonical, or any sample that might be refused)."""
        assert self.identity is not None
        columns = columnar.decode(data, n)
        if columns is None or not all_valid(columns, now_ms, self.config.limits):
            return None
        ack = pb.CloudFrame(ack=pb.Ack(sequence=seq, accepted_samples=n)).SerializeToString()
        header = records_pb2.TelemetryRecord(
            device_id=self.identity.device_id,
            installation_id=self.identity.installation_id,
            sequence=seq,
            received_unix_ms=now_ms,
            gateway_id=self.config.gateway_id,
        ).SerializeToString()
        self._pending_acks[seq] = ack
        return [ProduceBatch(seq, self.identity.installation_id, header + columnar.record_samples(columns), n)]

    @staticmethod
    def _accepted(samples: Sequence[pb.Sample], rejections: list[Rejection]) -> list[pb.Sample]:
        if not rejections:
            return list(samples)
        refused = {r.index for r in rejections}
        return [s for i, s in enumerate(samples) if i not in refused]

    def _refuse(self, sequence: int, reason: pb.RejectReason, detail: str, samples: int) -> list[Decision]:
        rejected = pb.BatchRejected(sequence=sequence, reason=reason, detail=detail)
        frame = pb.CloudFrame(batch_rejected=rejected)
        return [Rejected(_reason_name(reason), samples), SendFrame(frame.SerializeToString())]

    def _close(self, code: CloseCode, reason: str) -> list[Decision]:
        if self.state is SessionState.CLOSED:
            return []
        self.state = SessionState.CLOSED
        self._pending_acks.clear()
        return [CloseConnection(code, reason)]
