"""The device side of one websocket session, sans I/O, and the converters between the agent's
values and the device protocol's messages (proto/gridtwin/device/v1/device.proto) — the one
module of the agent that reads or writes protobuf.

`Session` is fed the cloud's frames (`receive`) and told what was sent (`sent`); it returns events
and keeps the session's numbers: the window of unacknowledged batches and the batch size the
cloud allows (from HelloReply), and the clock skew measured at the hello (the server's time
against the midpoint of the hello's round trip on the agent's clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from edge.model import (
    BATTERY,
    LOAD,
    SITE,
    SOC,
    SOLAR,
    ChargeTo,
    Command,
    CommandAck,
    CommandBody,
    DeviceState,
    Discharge,
    GridStatus,
    Hold,
    OperationMode,
    Outcome,
    PlanStep,
    RunPlan,
    SampleValues,
    SetBackupReserve,
    SetMode,
    Unsupported,
)
from gridtwin.api.device.v1 import device_pb2 as pb

PROTOCOL_VERSION = 1

# Batch refusals after which the samples are sent again under a new sequence number; any other
# reason means the cloud will never take the batch.
_REQUEUE = frozenset({pb.REJECT_REASON_RATE_LIMITED, pb.REJECT_REASON_SEQUENCE_NOT_INCREASING,
                      pb.REJECT_REASON_BATCH_TOO_LARGE})


# ------------------------------------------------------------------ events


@dataclass(frozen=True)
class Welcomed:
    session_id: str
    installation_id: str
    server_time_ms: int
    skew_ms: int                 # server time − agent time (> 0: the agent's clock is behind)
    max_samples_per_batch: int
    max_in_flight_batches: int
    # The highest sequence number the gateway acknowledged in an earlier session (0: none it
    # knows): numbering must go on above it (device.proto, "Sequence numbers").
    last_acknowledged_sequence: int = 0


@dataclass(frozen=True)
class Acked:
    sequence: int
    accepted: int
    refused: tuple[tuple[int, str, str], ...] = ()   # (index in batch, reason, detail)


@dataclass(frozen=True)
class BatchRefused:
    sequence: int
    reason: str
    detail: str
    requeue: bool                # send the samples again (RATE_LIMITED: after a pause)
    rate_limited: bool


@dataclass(frozen=True)
class SamplesNotStored:
    """Acknowledged samples the cloud's store did not take (SampleNotice), e.g. a re-send whose
    values differ from the stored ones. Nothing to resend: the store keeps what it has."""

    timestamps_ms: tuple[int, ...]
    reason: str
    detail: str


@dataclass(frozen=True)
class CommandArrived:
    command: Command


@dataclass(frozen=True)
class Garbled:
    detail: str


Event = Welcomed | Acked | BatchRefused | SamplesNotStored | CommandArrived | Garbled


@dataclass
class Session:
    """One websocket session's state, from the hello on."""

    hello_sent_ms: int
    window: int = 1
    max_batch: int = 1
    welcomed: Welcomed | None = None
    in_flight: set[int] = field(default_factory=set)

    def receive(self, data: bytes | str, now_ms: int) -> Event:
        if isinstance(data, str):
            return Garbled("a text frame")
        frame = pb.CloudFrame()
        try:
            frame.ParseFromString(data)
        except DecodeError:
            return Garbled("not a CloudFrame")
        kind = frame.WhichOneof("body")
        if kind == "hello_reply":
            reply = frame.hello_reply
            midpoint_ms = (self.hello_sent_ms + now_ms) // 2
            self.window = max(1, reply.max_in_flight_batches or 1)
            self.max_batch = max(1, reply.max_samples_per_batch or 1_000)
            self.welcomed = Welcomed(reply.session_id, reply.installation_id, reply.server_time_unix_ms,
                                     reply.server_time_unix_ms - midpoint_ms, self.max_batch, self.window,
                                     reply.last_acknowledged_sequence)
            return self.welcomed
        if kind == "ack":
            self.in_flight.discard(frame.ack.sequence)
            return Acked(frame.ack.sequence, frame.ack.accepted_samples, tuple(
                (r.index, _reason(r.reason), r.detail) for r in frame.ack.rejections))
        if kind == "batch_rejected":
            rejected = frame.batch_rejected
            self.in_flight.discard(rejected.sequence)
            return BatchRefused(rejected.sequence, _reason(rejected.reason), rejected.detail,
                                rejected.reason in _REQUEUE, rejected.reason == pb.REJECT_REASON_RATE_LIMITED)
        if kind == "sample_notice":
            notice = frame.sample_notice
            return SamplesNotStored(tuple(notice.timestamps_unix_ms), _reason(notice.reason), notice.detail)
        if kind == "command":
            return CommandArrived(command_from_pb(frame.command))
        return Garbled(f"unexpected {kind or 'empty'} frame")

    def can_send(self) -> bool:
        return self.welcomed is not None and len(self.in_flight) < self.window

    def sent(self, sequence: int) -> None:
        self.in_flight.add(sequence)


def _reason(reason: int) -> str:
    return pb.RejectReason.Name(reason).removeprefix("REJECT_REASON_").lower()  # type: ignore[arg-type]


# ------------------------------------------------------------------ agent → cloud


def hello_frame(device_id: str, credential: str, firmware_version: str) -> bytes:
    return pb.DeviceFrame(hello=pb.Hello(device_id=device_id, credential=credential, firmware_version=firmware_version,
                                         protocol_version=PROTOCOL_VERSION)).SerializeToString()


_GRID_TO_PB = {GridStatus.CONNECTED: pb.GRID_STATUS_CONNECTED, GridStatus.ISLANDED: pb.GRID_STATUS_ISLANDED,
               GridStatus.TRANSITIONING: pb.GRID_STATUS_TRANSITIONING}


def sample_bytes(sample: SampleValues) -> bytes:
    """The sample as a serialized `Sample`: only the signals it reports are set (proto3 optional)."""
    message = pb.Sample(timestamp_unix_ms=sample.timestamp_ms, extra=dict(sample.extra))
    for name, value in ((SITE, sample.site_power_w), (BATTERY, sample.battery_power_w),
                        (SOLAR, sample.solar_power_w), (LOAD, sample.load_power_w),
                        (SOC, sample.state_of_charge_pct)):
        if value is not None:
            setattr(message, name, value)
    if sample.grid_status is not None:
        message.grid_status = _GRID_TO_PB[sample.grid_status]
    return message.SerializeToString()


def sample_values(payload: bytes) -> SampleValues:
    """The inverse of `sample_bytes` (dry runs and tests print what would be sent)."""
    s = pb.Sample.FromString(payload)
    grid = {v: k for k, v in _GRID_TO_PB.items()}.get(s.grid_status)
    signals = {n: getattr(s, n) for n in (SITE, BATTERY, SOLAR, LOAD, SOC) if s.HasField(n)}
    return SampleValues(s.timestamp_unix_ms, grid_status=grid, extra=tuple(sorted(s.extra.items())), **signals)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def telemetry_frame(sequence: int, samples: Sequence[bytes]) -> bytes:
    """DeviceFrame{telemetry: TelemetryBatch{sequence, samples}} built from stored sample bytes
    without parsing them (fields 1 and 2 of TelemetryBatch, field 2 of DeviceFrame)."""
    body = b"".join([b"\x08", _varint(sequence), *(b"\x12" + _varint(len(s)) + s for s in samples)])
    return b"\x12" + _varint(len(body)) + body


_OUTCOME_TO_PB = {Outcome.ACCEPTED: pb.COMMAND_OUTCOME_ACCEPTED, Outcome.COMPLETED: pb.COMMAND_OUTCOME_COMPLETED,
                  Outcome.REJECTED: pb.COMMAND_OUTCOME_REJECTED, Outcome.EXPIRED: pb.COMMAND_OUTCOME_EXPIRED}
_MODE_TO_PB = {OperationMode.SELF_CONSUMPTION: pb.OPERATION_MODE_SELF_CONSUMPTION,
               OperationMode.BACKUP: pb.OPERATION_MODE_BACKUP, OperationMode.AUTONOMOUS: pb.OPERATION_MODE_AUTONOMOUS}
_MODE_FROM_PB = {v: k for k, v in _MODE_TO_PB.items()}


def ack_frame(ack: CommandAck) -> bytes:
    return pb.DeviceFrame(command_ack=pb.CommandAck(command_id=ack.command_id, outcome=_OUTCOME_TO_PB[ack.outcome],
                                                    detail=ack.detail[:500])).SerializeToString()


def state_frame(state: DeviceState, now_ms: int, *, firmware_version: str, active_plan_id: str) -> bytes:
    report = pb.StateReport(timestamp_unix_ms=now_ms, firmware_version=firmware_version,
                            active_plan_id=active_plan_id, config=state.config)
    if state.mode is not None:
        report.mode = _MODE_TO_PB[state.mode]
    if state.backup_reserve_pct is not None:
        report.backup_reserve_pct = state.backup_reserve_pct
    if state.battery_nominal_energy_wh is not None:
        report.battery_nominal_energy_wh = state.battery_nominal_energy_wh
    if state.battery_max_power_w is not None:
        report.battery_max_power_w = state.battery_max_power_w
    return pb.DeviceFrame(state_report=report).SerializeToString()


# ------------------------------------------------------------------ cloud → agent


def command_from_pb(command: pb.Command) -> Command:
    kind = command.WhichOneof("kind")
    body: CommandBody
    if kind == "set_mode":
        body = SetMode(_MODE_FROM_PB.get(command.set_mode.mode))
    elif kind == "set_backup_reserve":
        body = SetBackupReserve(command.set_backup_reserve.backup_reserve_pct)
    elif kind == "control_plan":
        body = RunPlan(command.control_plan.plan_id, tuple(_step(s) for s in command.control_plan.steps))
    else:
        body = Unsupported(kind or "an empty command")
    return Command(command.command_id, command.expires_unix_ms, command.issued_unix_ms, body)


def _step(step: pb.PlanStep) -> PlanStep:
    action = step.WhichOneof("action")
    if action == "charge_to":
        return PlanStep(step.start_unix_ms, step.end_unix_ms,
                        ChargeTo(step.charge_to.target_state_of_charge_pct, step.charge_to.max_power_w))
    if action == "discharge":
        return PlanStep(step.start_unix_ms, step.end_unix_ms,
                        Discharge(step.discharge.power_w, step.discharge.floor_state_of_charge_pct))
    if action == "hold":
        return PlanStep(step.start_unix_ms, step.end_unix_ms, Hold())
    return PlanStep(step.start_unix_ms, step.end_unix_ms, None)


def plan_to_bytes(command_id: str, plan_id: str, issued_ms: int, steps: Sequence[PlanStep]) -> bytes:
    """An active plan, stored so that a restarted agent goes on running it (as a Command message)."""
    pb_steps = []
    for s in steps:
        step = pb.PlanStep(start_unix_ms=s.start_ms, end_unix_ms=s.end_ms)
        if isinstance(s.action, ChargeTo):
            step.charge_to.CopyFrom(pb.ChargeTo(target_state_of_charge_pct=s.action.target_pct,
                                                max_power_w=s.action.max_power_w))
        elif isinstance(s.action, Discharge):
            step.discharge.CopyFrom(pb.Discharge(power_w=s.action.power_w,
                                                 floor_state_of_charge_pct=s.action.floor_pct))
        elif isinstance(s.action, Hold):
            step.hold.CopyFrom(pb.Hold())
        pb_steps.append(step)
    return pb.Command(command_id=command_id, issued_unix_ms=issued_ms,
                      control_plan=pb.ControlPlan(plan_id=plan_id, steps=pb_steps)).SerializeToString()


def plan_from_bytes(data: bytes) -> Command:
    return command_from_pb(pb.Command.FromString(data))
