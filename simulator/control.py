"""How simulated devices obey commands: control plans, mode, backup reserve, configuration and
firmware, for the whole fleet at once. No I/O and no wall clock: the fleet passes `now_ms`.

A device keeps the acknowledgement of every command id it executed (the last `REMEMBERED_IDS`):
a command delivered again (a retry after a lost ack) is acknowledged again with the same outcome
and never executed twice. A command arriving at or after its expiry is acknowledged EXPIRED and
not executed.

Control plans: ACCEPTED when taken (it replaces the whole of the active plan; a plan issued
before the newest one taken is REJECTED as outdated), COMPLETED when its last step has ended. A
plan with no steps ends the active one (COMPLETED, "plan cleared"): back to the device's mode. While a
step runs, the controller sets the device's entries of the physics model's control arrays
(`FleetModel.battery_setpoint_w`, `soc_floor_pct`, `soc_ceiling_pct`); the model steps every
device at once. Per step:

- ChargeTo(target, max power): charges from the grid at the power that reaches the target by
  the step's end (what is missing over the time left, with a 25 % margin and at least 10 % of the
  limit), never above the limit (the step's max power, else the battery's), stopping at the
  target (ceiling), then holding there;
- Discharge(power, floor): discharges at the power until the step ends or the state of charge
  reaches max(floor, backup reserve);
- Hold: neither charges nor discharges;
- between and after steps: the mode's behaviour.

Modes: self-consumption and autonomous (no plan step running) follow the home (charge from
surplus solar, discharge to cover the load, down to the reserve); backup keeps the battery for
outages: it charges from surplus solar and does not discharge while on the grid. Plans run in
every mode (the cloud arbitrates before it sends them). Only this module touches a device's
Python state per device, and only when a command arrives or a step boundary passes; the per-tick
work is vectorized.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from gridtwin.api.device.v1 import device_pb2 as pb
from simulator.physics import FleetModel

REMEMBERED_IDS = 256
_NONE, _CHARGE, _DISCHARGE, _HOLD = 0, 1, 2, 3
_CHARGE_MARGIN = 1.25
_MIN_CHARGE_FRACTION = 0.10


@dataclass
class _Plan:
    command_id: str
    plan_id: str
    issued_ms: int
    steps: list[pb.PlanStep]


@dataclass
class _Device:
    executed: OrderedDict[str, pb.CommandAck] = field(default_factory=OrderedDict)
    plan: _Plan | None = None
    plan_issued_ms: int = 0      # the newest plan taken (or ended by an empty plan): older ones are refused
    plan_id: str = ""
    mode: int = pb.OPERATION_MODE_SELF_CONSUMPTION
    firmware: str = "sim-1"
    config: dict[str, str] = field(default_factory=dict)


class FleetController:
    """Commands → the physics model's control arrays, for `model.n_devices` devices."""

    def __init__(self, model: FleetModel) -> None:
        self.model = model
        n = model.n_devices
        self._devices = [_Device() for _ in range(n)]
        self._kind = np.zeros(n, dtype=np.int8)
        self._step_end_ms = np.zeros(n)
        self._target_pct = np.zeros(n)
        self._power_w = np.zeros(n)
        self._floor_pct = np.zeros(n)
        self._backup = np.zeros(n, dtype=bool)
        self._next_boundary_ms = np.full(n, np.inf)
        self.executions = np.zeros(n, dtype=np.int64)   # commands executed per device (tests count)

    # ------------------------------------------------------------ commands

    def handle(self, index: int, command: pb.Command, now_ms: int) -> pb.CommandAck:
        """Executes `command` on device `index` (at most once per command id); returns its ack."""
        device = self._devices[index]
        known = device.executed.get(command.command_id)
        if known is not None:
            return known
        ack = self._execute(index, device, command, now_ms)
        device.executed[command.command_id] = ack
        while len(device.executed) > REMEMBERED_IDS:
            device.executed.popitem(last=False)
        return ack

    def _execute(self, index: int, device: _Device, command: pb.Command, now_ms: int) -> pb.CommandAck:
        def ack(outcome: pb.CommandOutcome, detail: str = "") -> pb.CommandAck:
            return pb.CommandAck(command_id=command.command_id, outcome=outcome, detail=detail)

        if command.expires_unix_ms and now_ms >= command.expires_unix_ms:
            return ack(pb.COMMAND_OUTCOME_EXPIRED, f"arrived {now_ms - command.expires_unix_ms} ms after its expiry")
        kind = command.WhichOneof("kind")
        if kind == "control_plan":
            return self._take_plan(index, device, command, now_ms, ack)
        self.executions[index] += 1
        if kind == "set_mode":
            if command.set_mode.mode == pb.OPERATION_MODE_UNSPECIFIED:
                return ack(pb.COMMAND_OUTCOME_REJECTED, "mode unspecified")
            device.mode = command.set_mode.mode
            self._backup[index] = device.mode == pb.OPERATION_MODE_BACKUP
            self._refresh(index, now_ms)
            return ack(pb.COMMAND_OUTCOME_COMPLETED)
        if kind == "set_backup_reserve":
            pct = command.set_backup_reserve.backup_reserve_pct
            if not (math.isfinite(pct) and 0 <= pct <= 100):
                return ack(pb.COMMAND_OUTCOME_REJECTED, f"backup reserve {pct} outside [0, 100] %")
            self.model.backup_reserve_pct[index] = pct
            return ack(pb.COMMAND_OUTCOME_COMPLETED)
        if kind == "change_configuration":
            device.config.update(command.change_configuration.config)
            return ack(pb.COMMAND_OUTCOME_COMPLETED)
        if kind == "update_firmware":
            if not command.update_firmware.version:
                return ack(pb.COMMAND_OUTCOME_REJECTED, "no firmware version")
            device.firmware = command.update_firmware.version
            return ack(pb.COMMAND_OUTCOME_COMPLETED, f"running {device.firmware}")
        return ack(pb.COMMAND_OUTCOME_REJECTED, "unknown command kind")

    def _take_plan(self, index: int, device: _Device, command: pb.Command, now_ms: int, ack) -> pb.CommandAck:  # type: ignore[no-untyped-def]
        plan = command.control_plan
        steps = list(plan.steps)
        if command.issued_unix_ms and command.issued_unix_ms < device.plan_issued_ms:
            return ack(pb.COMMAND_OUTCOME_REJECTED, f"older than the newest plan {device.plan_id}")
        if not steps:   # an empty plan replaces the running one with nothing: back to the device's mode
            device.plan = None
            device.plan_issued_ms, device.plan_id = command.issued_unix_ms, plan.plan_id or command.command_id
            self.executions[index] += 1
            self._refresh(index, now_ms)
            return ack(pb.COMMAND_OUTCOME_COMPLETED, "plan cleared")
        if any(s.start_unix_ms >= s.end_unix_ms or s.WhichOneof("action") is None for s in steps):
            return ack(pb.COMMAND_OUTCOME_REJECTED, "plan steps need an action and start < end")
        if any(b.start_unix_ms < a.end_unix_ms for a, b in zip(steps, steps[1:], strict=False)):
            return ack(pb.COMMAND_OUTCOME_REJECTED, "plan steps overlap or are out of order")
        if steps[-1].end_unix_ms <= now_ms:
            return ack(pb.COMMAND_OUTCOME_REJECTED, "the plan has already ended")
        device.plan = _Plan(command.command_id, plan.plan_id or command.command_id, command.issued_unix_ms, steps)
        device.plan_issued_ms, device.plan_id = command.issued_unix_ms, device.plan.plan_id
        self.executions[index] += 1
        self._refresh(index, now_ms)
        return ack(pb.COMMAND_OUTCOME_ACCEPTED, f"plan {device.plan.plan_id} active")

    # ------------------------------------------------------------ every tick

    def apply(self, now_ms: int) -> list[tuple[int, pb.CommandAck]]:
        """Sets the model's control arrays for `now_ms`; returns the COMPLETED acks of plans
        that ended (device index, ack)."""
        completed = []
        for index in np.flatnonzero(self._next_boundary_ms <= now_ms).tolist():
            done = self._refresh(index, now_ms)
            if done is not None:
                completed.append((index, done))
        model = self.model
        kind = self._kind
        charge, discharge, hold = kind == _CHARGE, kind == _DISCHARGE, kind == _HOLD
        setpoint = np.full(model.n_devices, np.nan)
        cfg = model.config
        if charge.any():
            soc = model.state_of_charge_pct
            remaining_s = np.maximum((self._step_end_ms - now_ms) / 1_000.0, 1.0)
            missing_wh = np.maximum(self._target_pct - soc, 0.0) * (cfg.battery_nominal_energy_wh / 100.0)
            limit_w = np.where(self._power_w > 0, np.minimum(self._power_w, cfg.battery_max_power_w),
                               cfg.battery_max_power_w)
            needed_w = missing_wh * 3_600.0 / remaining_s / math.sqrt(cfg.round_trip_efficiency) * _CHARGE_MARGIN
            power_w = np.clip(np.maximum(needed_w, limit_w * _MIN_CHARGE_FRACTION), 0.0, limit_w)
            setpoint = np.where(charge, np.where(missing_wh > 0, -power_w, 0.0), setpoint)
        setpoint = np.where(discharge, self._power_w, setpoint)
        setpoint = np.where(hold, 0.0, setpoint)
        model.battery_setpoint_w[:] = setpoint
        model.soc_ceiling_pct[:] = np.where(charge, self._target_pct, 100.0)
        # Backup mode without a running step: never discharge on the grid (floor = 100 %).
        backup_idle = self._backup & (kind == _NONE)
        model.soc_floor_pct[:] = np.where(discharge, self._floor_pct, np.where(backup_idle, 100.0, 0.0))
        return completed

    def _refresh(self, index: int, now_ms: int) -> pb.CommandAck | None:
        """Puts device `index`'s current plan step into the arrays; the plan's COMPLETED ack when
        it has ended."""
        device = self._devices[index]
        plan = device.plan
        self._kind[index] = _NONE
        self._next_boundary_ms[index] = np.inf
        if plan is None:
            return None
        for step in plan.steps:
            if now_ms < step.start_unix_ms:
                self._next_boundary_ms[index] = step.start_unix_ms
                return None
            if now_ms < step.end_unix_ms:
                self._next_boundary_ms[index] = step.end_unix_ms
                self._step_end_ms[index] = step.end_unix_ms
                match step.WhichOneof("action"):
                    case "charge_to":
                        self._kind[index] = _CHARGE
                        self._target_pct[index] = step.charge_to.target_state_of_charge_pct
                        self._power_w[index] = step.charge_to.max_power_w
                    case "discharge":
                        self._kind[index] = _DISCHARGE
                        self._power_w[index] = step.discharge.power_w
                        self._floor_pct[index] = step.discharge.floor_state_of_charge_pct
                    case _:
                        self._kind[index] = _HOLD
                return None
        device.plan = None
        done = pb.CommandAck(command_id=plan.command_id, outcome=pb.COMMAND_OUTCOME_COMPLETED,
                             detail=f"plan {plan.plan_id} ran to its end")
        device.executed[plan.command_id] = done   # a late re-delivery now hears COMPLETED
        return done

    # ------------------------------------------------------------ reporting

    def state_report(self, index: int, now_ms: int) -> pb.StateReport:
        device = self._devices[index]
        cfg = self.model.config
        return pb.StateReport(
            timestamp_unix_ms=now_ms, mode=device.mode,  # type: ignore[arg-type]
            backup_reserve_pct=float(self.model.backup_reserve_pct[index]), firmware_version=device.firmware,
            active_plan_id=device.plan.plan_id if device.plan else "",
            battery_nominal_energy_wh=cfg.battery_nominal_energy_wh, battery_max_power_w=cfg.battery_max_power_w,
            config=device.config)

    def active_plan_id(self, index: int) -> str:
        plan = self._devices[index].plan
        return plan.plan_id if plan else ""

    def mode(self, index: int) -> int:
        return self._devices[index].mode

    def firmware(self, index: int) -> str:
        return self._devices[index].firmware
