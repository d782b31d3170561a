"""Commands → what the devices are asked to do, and control plans → battery setpoints. Pure: takes
`now_ms`, returns decisions.

`decide` answers one command with the acknowledgement it earns and the device actions that must
succeed for it (the agent acknowledges REJECTED, with the device's reason, when one fails):

- a command at or after its expiry: EXPIRED, nothing done;
- what the controllable device cannot do (`Capabilities`): REJECTED with a reason that names the
  device and what it can do — a Powerwall's local API takes an operation mode and a backup
  reserve but no power setpoints, a SunSpec storage inverter takes setpoints and a reserve but
  has no operation modes beyond its own control;
- configuration and firmware commands: REJECTED (the agent's configuration is its file; it
  updates no device firmware);
- a control plan: validated as the simulator does (steps ordered, not overlapping, not ended; a
  plan issued before the newest one taken is outdated), then ACCEPTED and run by `plan_setpoint`
  every tick; a plan with no steps ends the active one (COMPLETED, "plan cleared").

At most once per command id is the agent's part (it keeps the acks it sent, buffer.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from edge.model import (
    ChargeTo,
    Command,
    CommandAck,
    Discharge,
    Hold,
    OperationMode,
    Outcome,
    PlanStep,
    RunPlan,
    SetBackupReserve,
    SetMode,
    Unsupported,
)


@dataclass(frozen=True)
class Capabilities:
    device: str                          # names it in reasons: "the Powerwall at 192.168.1.50"
    modes: frozenset[OperationMode] = frozenset()
    backup_reserve: bool = False
    power_setpoints: bool = False

    def summary(self) -> str:
        can = [f"modes {', '.join(sorted(self.modes))}"] if self.modes else []
        can += ["a backup reserve"] if self.backup_reserve else []
        can += ["battery power setpoints"] if self.power_setpoints else []
        return "; ".join(can) or "nothing"


NO_CONTROL = Capabilities("nothing")


# ------------------------------------------------------------------ what the device is asked to do


@dataclass(frozen=True)
class ApplyMode:
    mode: OperationMode


@dataclass(frozen=True)
class ApplyReserve:
    reserve_pct: float


@dataclass(frozen=True)
class ApplyBatteryPower:
    """Battery power to hold: > 0 discharges, < 0 charges, 0 holds; None hands the battery back to
    the device's own control."""

    power_w: float | None


DeviceAction = ApplyMode | ApplyReserve | ApplyBatteryPower


@dataclass(frozen=True)
class ActivePlan:
    command_id: str
    plan_id: str
    issued_ms: int
    steps: tuple[PlanStep, ...]


@dataclass(frozen=True)
class ControlState:
    plan: ActivePlan | None = None
    newest_plan_issued_ms: int = 0       # a plan issued before this one is outdated
    newest_plan_id: str = ""


@dataclass(frozen=True)
class Decision:
    ack: CommandAck                      # sent when every action succeeded (or there are none)
    actions: tuple[DeviceAction, ...] = ()
    state: ControlState | None = None    # the control state after it; None: unchanged


def decide(command: Command, caps: Capabilities, state: ControlState, now_ms: int) -> Decision:
    if command.expires_ms and now_ms >= command.expires_ms:
        return _answer(command, Outcome.EXPIRED, f"arrived {now_ms - command.expires_ms} ms after its expiry")
    body = command.body
    if isinstance(body, Unsupported):
        return _answer(command, Outcome.REJECTED,
                       _UNSUPPORTED.get(body.kind, f"the edge agent does not carry out {body.kind}"))
    if not (caps.modes or caps.backup_reserve or caps.power_setpoints):
        return _answer(command, Outcome.REJECTED, "no device of this installation takes commands through the edge "
                                                  "agent (no source is configured with control = true)")
    if isinstance(body, SetMode):
        if body.mode is None:
            return _answer(command, Outcome.REJECTED, "mode unspecified")
        if body.mode not in caps.modes:
            return _answer(command, Outcome.REJECTED,
                           f"{caps.device} cannot switch to {body.mode} (it takes {caps.summary()})")
        return _answer(command, Outcome.COMPLETED, f"mode {body.mode}", ApplyMode(body.mode))
    if isinstance(body, SetBackupReserve):
        pct = body.reserve_pct
        if not (math.isfinite(pct) and 0.0 <= pct <= 100.0):
            return _answer(command, Outcome.REJECTED, f"backup reserve {pct} outside [0, 100] %")
        if not caps.backup_reserve:
            return _answer(command, Outcome.REJECTED,
                           f"{caps.device} has no backup reserve setting (it takes {caps.summary()})")
        return _answer(command, Outcome.COMPLETED, f"backup reserve {pct:g} %", ApplyReserve(pct))
    return _plan(command, body, caps, state, now_ms)


def _answer(command: Command, outcome: Outcome, detail: str = "", *actions: DeviceAction,
            new_state: ControlState | None = None) -> Decision:
    return Decision(CommandAck(command.command_id, outcome, detail), tuple(actions), new_state)


_UNSUPPORTED = {
    "change_configuration": "configuration is the edge agent's file on the home's computer: change it there",
    "update_firmware": "the edge agent updates no device firmware: update it with the vendor's tools",
}


def _plan(command: Command, body: RunPlan, caps: Capabilities, state: ControlState, now_ms: int) -> Decision:
    if not caps.power_setpoints:
        return _answer(command, Outcome.REJECTED, f"{caps.device} takes no battery power setpoints, so control plans "
                                                  f"cannot run on it (it takes {caps.summary()})")
    plan_id = body.plan_id or command.command_id
    if command.issued_ms and command.issued_ms < state.newest_plan_issued_ms:
        return _answer(command, Outcome.REJECTED, f"older than the newest plan {state.newest_plan_id}")
    steps = body.steps
    if not steps:   # ends the running plan: back to the device's own control
        cleared = ControlState(None, command.issued_ms or state.newest_plan_issued_ms, plan_id)
        return _answer(command, Outcome.COMPLETED, "plan cleared", ApplyBatteryPower(None), new_state=cleared)
    problem = _plan_problem(steps, now_ms)
    if problem is not None:
        return _answer(command, Outcome.REJECTED, problem)
    active = ActivePlan(command.command_id, plan_id, command.issued_ms, steps)
    new_state = ControlState(active, command.issued_ms or state.newest_plan_issued_ms, plan_id)
    return _answer(command, Outcome.ACCEPTED, f"plan {plan_id} active", new_state=new_state)


def _plan_problem(steps: tuple[PlanStep, ...], now_ms: int) -> str | None:
    for i, step in enumerate(steps):
        if step.action is None:
            return f"step {i} has no action this agent knows"
        if step.start_ms >= step.end_ms:
            return f"step {i} ends before it starts"
        action = step.action
        if isinstance(action, ChargeTo) and not (0.0 <= action.target_pct <= 100.0 and action.max_power_w >= 0):
            return f"step {i}: charge to {action.target_pct} % at up to {action.max_power_w} W is not possible"
        if isinstance(action, Discharge) and not (action.power_w > 0 and 0.0 <= action.floor_pct <= 100.0):
            return f"step {i}: discharge at {action.power_w} W down to {action.floor_pct} % is not possible"
    if any(b.start_ms < a.end_ms for a, b in zip(steps, steps[1:], strict=False)):
        return "plan steps overlap or are out of order"
    if steps[-1].end_ms <= now_ms:
        return "the plan has already ended"
    return None


# ------------------------------------------------------------------ running a plan


@dataclass(frozen=True)
class PlanTick:
    """What a plan asks for at one moment: `power_w` as ApplyBatteryPower's; `done` once its last
    step has ended (acknowledge COMPLETED, hand the battery back)."""

    power_w: float | None
    done: bool = False
    step: int | None = None


def plan_setpoint(plan: ActivePlan, now_ms: int, *, soc_pct: float | None, reserve_pct: float | None,
                  max_power_w: float | None) -> PlanTick:
    """The battery power `plan` asks for at `now_ms`:

    - ChargeTo: charge at the step's max power (0: `max_power_w`, the battery's limit) until the
      state of charge reaches the target, then hold;
    - Discharge: discharge at the step's power until the state of charge reaches
      max(floor, backup reserve), then hold;
    - Hold: 0 W; between steps: the device's own control (None).

    An unknown state of charge neither stops a charge nor a discharge early: the device's own
    limits still apply. A charge with no power given and no known battery limit holds (0 W)."""
    if now_ms >= plan.steps[-1].end_ms:
        return PlanTick(None, done=True)
    for index, step in enumerate(plan.steps):
        if not step.start_ms <= now_ms < step.end_ms:
            continue
        action = step.action
        if isinstance(action, ChargeTo):
            if soc_pct is not None and soc_pct >= action.target_pct:
                return PlanTick(0.0, step=index)
            limit = action.max_power_w or max_power_w or 0.0
            if max_power_w:
                limit = min(limit, max_power_w)
            return PlanTick(-limit if limit else 0.0, step=index)
        if isinstance(action, Discharge):
            floor = max(action.floor_pct, reserve_pct or 0.0)
            if soc_pct is not None and soc_pct <= floor:
                return PlanTick(0.0, step=index)
            power = min(action.power_w, max_power_w) if max_power_w else action.power_w
            return PlanTick(power, step=index)
        if isinstance(action, Hold):
            return PlanTick(0.0, step=index)
    return PlanTick(None)


def completed(plan: ActivePlan) -> CommandAck:
    return CommandAck(plan.command_id, Outcome.COMPLETED, f"plan {plan.plan_id} completed")


def without_plan(state: ControlState) -> ControlState:
    return replace(state, plan=None)
