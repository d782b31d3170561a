"""Converters at the edge: protobuf (the device protocol and the ControlService contract) ↔ the
domain values of `model.py`. The only module of the control domain besides the servicer and the
dispatcher that imports `*_pb2`."""

from __future__ import annotations

from gridtwin.api.control.v1 import control_pb2 as cpb
from gridtwin.api.device.v1 import device_pb2 as dpb
from services.control.model import (
    Action,
    ChangeConfiguration,
    ChargeTo,
    ClearPlan,
    Command,
    CommandKind,
    CommandSpec,
    CommandState,
    ControlPlan,
    Discharge,
    FanOutProgress,
    Hold,
    InvalidArgument,
    OperationMode,
    Outcome,
    PlanStep,
    SetBackupReserve,
    SetMode,
    UpdateFirmware,
)

MODES = {OperationMode.SELF_CONSUMPTION: dpb.OPERATION_MODE_SELF_CONSUMPTION,
         OperationMode.BACKUP: dpb.OPERATION_MODE_BACKUP, OperationMode.AUTONOMOUS: dpb.OPERATION_MODE_AUTONOMOUS}
MODES_FROM_PB = {v: k for k, v in MODES.items()}
OUTCOMES = {Outcome.ACCEPTED: dpb.COMMAND_OUTCOME_ACCEPTED, Outcome.COMPLETED: dpb.COMMAND_OUTCOME_COMPLETED,
            Outcome.REJECTED: dpb.COMMAND_OUTCOME_REJECTED, Outcome.EXPIRED: dpb.COMMAND_OUTCOME_EXPIRED}
OUTCOMES_FROM_PB = {v: k for k, v in OUTCOMES.items()}
STATES = {CommandState.QUEUED: cpb.COMMAND_STATE_QUEUED, CommandState.SENT: cpb.COMMAND_STATE_SENT,
          CommandState.ACKNOWLEDGED: cpb.COMMAND_STATE_ACKNOWLEDGED, CommandState.FAILED: cpb.COMMAND_STATE_FAILED,
          CommandState.EXPIRED: cpb.COMMAND_STATE_EXPIRED, CommandState.SUPERSEDED: cpb.COMMAND_STATE_SUPERSEDED,
          CommandState.CANCELLED: cpb.COMMAND_STATE_CANCELLED}
STATES_FROM_PB = {v: k for k, v in STATES.items()}
KINDS = {CommandKind.CONTROL_PLAN: cpb.COMMAND_KIND_CONTROL_PLAN, CommandKind.SET_MODE: cpb.COMMAND_KIND_SET_MODE,
         CommandKind.SET_BACKUP_RESERVE: cpb.COMMAND_KIND_SET_BACKUP_RESERVE,
         CommandKind.CHANGE_CONFIGURATION: cpb.COMMAND_KIND_CHANGE_CONFIGURATION,
         CommandKind.UPDATE_FIRMWARE: cpb.COMMAND_KIND_UPDATE_FIRMWARE}


# ------------------------------------------------------------------ plans


def plan_from_pb(plan: dpb.ControlPlan) -> ControlPlan:
    steps = []
    for i, step in enumerate(plan.steps):
        action: Action
        match step.WhichOneof("action"):
            case "charge_to":
                action = ChargeTo(step.charge_to.target_state_of_charge_pct, step.charge_to.max_power_w)
            case "discharge":
                action = Discharge(step.discharge.power_w, step.discharge.floor_state_of_charge_pct)
            case "hold":
                action = Hold()
            case _:
                raise InvalidArgument(f"spec.control_plan.steps[{i}]", "needs an action: charge_to, discharge or hold")
        steps.append(PlanStep(step.start_unix_ms, step.end_unix_ms, action))
    return ControlPlan(tuple(steps), plan.plan_id)


def plan_to_pb(plan: ControlPlan, plan_id: str = "") -> dpb.ControlPlan:
    out = dpb.ControlPlan(plan_id=plan.plan_id or plan_id)
    for step in plan.steps:
        pb_step = out.steps.add(start_unix_ms=step.start_ms, end_unix_ms=step.end_ms)
        match step.action:
            case ChargeTo(target, max_power):
                pb_step.charge_to.target_state_of_charge_pct = target
                pb_step.charge_to.max_power_w = max_power
            case Discharge(power, floor):
                pb_step.discharge.power_w = power
                pb_step.discharge.floor_state_of_charge_pct = floor
            case Hold():
                pb_step.hold.SetInParent()
    return out


# ------------------------------------------------------------------ specs


def spec_from_pb(spec: cpb.CommandSpec) -> CommandSpec:
    match spec.WhichOneof("kind"):
        case "control_plan":
            if not spec.control_plan.steps:   # the protocol's way to end the active plan
                return ClearPlan(spec.control_plan.plan_id)
            return plan_from_pb(spec.control_plan)
        case "set_mode":
            mode = MODES_FROM_PB.get(spec.set_mode.mode)
            if mode is None:
                raise InvalidArgument("spec.set_mode.mode", "one of self-consumption, backup, autonomous")
            return SetMode(mode)
        case "set_backup_reserve":
            return SetBackupReserve(spec.set_backup_reserve.backup_reserve_pct)
        case "change_configuration":
            return ChangeConfiguration(dict(spec.change_configuration.config))
        case "update_firmware":
            f = spec.update_firmware
            return UpdateFirmware(f.version, f.url, f.sha256)
    raise InvalidArgument("spec", "needs one of control_plan, set_mode, set_backup_reserve, "
                                  "change_configuration, update_firmware")


def spec_to_pb(spec: CommandSpec) -> cpb.CommandSpec:
    match spec:
        case ControlPlan():
            return cpb.CommandSpec(control_plan=plan_to_pb(spec))
        case ClearPlan(plan_id):
            return cpb.CommandSpec(control_plan=dpb.ControlPlan(plan_id=plan_id))
        case SetMode(mode):
            return cpb.CommandSpec(set_mode=dpb.SetMode(mode=MODES[mode]))
        case SetBackupReserve(pct):
            return cpb.CommandSpec(set_backup_reserve=dpb.SetBackupReserve(backup_reserve_pct=pct))
        case ChangeConfiguration(config):
            return cpb.CommandSpec(change_configuration=dpb.ChangeConfiguration(config=dict(config)))
        case UpdateFirmware(version, url, sha256):
            return cpb.CommandSpec(update_firmware=dpb.UpdateFirmware(version=version, url=url, sha256=sha256))
    raise TypeError(f"not a command spec: {spec!r}")


def spec_bytes(spec: CommandSpec) -> bytes:
    """The stored form (deterministic serialization, so equal specs hash equal)."""
    return spec_to_pb(spec).SerializeToString(deterministic=True)


def spec_from_bytes(data: bytes) -> CommandSpec:
    spec = cpb.CommandSpec()
    spec.ParseFromString(data)
    return spec_from_pb(spec)


def device_command(command_id: str, expires_ms: int, issued_ms: int, stored_spec: bytes) -> dpb.Command:
    """The device protocol's Command for a stored spec (a plan without id gets the command id)."""
    spec = cpb.CommandSpec()
    spec.ParseFromString(stored_spec)
    out = dpb.Command(command_id=command_id, expires_unix_ms=expires_ms, issued_unix_ms=issued_ms)
    kind = spec.WhichOneof("kind")
    assert kind is not None
    getattr(out, kind).CopyFrom(getattr(spec, kind))
    if kind == "control_plan" and not out.control_plan.plan_id:
        out.control_plan.plan_id = command_id
    return out


# ------------------------------------------------------------------ API views


def command_to_pb(command: Command) -> cpb.Command:
    r = command.record
    return cpb.Command(
        command_id=r.command_id, device_id=r.device_id, installation_id=r.installation_id, kind=KINDS[r.kind],
        state=STATES[r.state], spec=spec_to_pb(command.spec), source=command.source,
        idempotency_key=command.idempotency_key or "", fanout_id=command.fanout_id or "", attempts=r.attempts,
        outcome=OUTCOMES[r.outcome] if r.outcome else dpb.COMMAND_OUTCOME_UNSPECIFIED, detail=r.detail,
        superseded_by=r.superseded_by or "", created_unix_ms=r.created_ms, expires_unix_ms=r.expires_ms,
        last_sent_unix_ms=r.last_sent_ms, acknowledged_unix_ms=r.acked_ms, completed_unix_ms=r.completed_ms,
        finished_unix_ms=r.finished_ms,
    )


def progress_to_pb(p: FanOutProgress) -> cpb.FanOutProgress:
    return cpb.FanOutProgress(
        fanout_id=p.fanout_id, group_path=p.group_path, source=p.source, total=p.total,
        counts=[cpb.StateCount(state=STATES[s], count=n) for s, n in sorted(p.counts.items()) if n],
        pending=p.pending, acknowledged=p.acknowledged, completed=p.completed, unsuccessful=p.unsuccessful,
        failures=[cpb.FanOutFailure(
            command_id=f.command_id, device_id=f.device_id, installation_id=f.installation_id, state=STATES[f.state],
            outcome=OUTCOMES[f.outcome] if f.outcome else dpb.COMMAND_OUTCOME_UNSPECIFIED, detail=f.detail)
            for f in p.failures],
        done=p.done, created_unix_ms=p.created_ms, last_acknowledged_unix_ms=p.last_acked_ms,
    )
