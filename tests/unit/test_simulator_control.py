"""Simulated devices execute commands faithfully: control plans show in the physics, commands run
at most once, expired ones never."""

import datetime as dt

import numpy as np
import pytest

from gridtwin.api.device.v1 import device_pb2 as pb
from simulator.control import FleetController
from simulator.physics import FleetConfig, FleetModel

START = dt.datetime(2024, 6, 1, 7, 0, tzinfo=dt.UTC)   # night in California: no solar
T0 = int(START.timestamp() * 1000)
MIN = 60_000


def fleet(n: int = 3, soc: float = 50.0) -> tuple[FleetModel, FleetController]:
    model = FleetModel(FleetConfig(n_devices=n, seed=3, load_source="bdew", initial_soc_pct_range=(soc, soc),
                                   cloud_factor_range=(1.0, 1.0)), START)
    return model, FleetController(model)


def run(model: FleetModel, controller: FleetController, minutes: int, step_s: float = 10.0,
        start_ms: int = T0) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[int, pb.CommandAck]]]:
    socs, batteries, completed = [], [], []
    for k in range(1, int(minutes * 60 / step_s) + 1):
        now_ms = start_ms + int(k * step_s * 1000)
        completed += controller.apply(now_ms)
        snap = model.step(dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC), step_s)
        socs.append(snap.state_of_charge_pct.copy())
        batteries.append(snap.battery_power_w.copy())
    return socs, batteries, completed


def plan(command_id: str, *steps: pb.PlanStep, issued_ms: int = T0, expires_ms: int = T0 + 3_600_000) -> pb.Command:
    return pb.Command(command_id=command_id, expires_unix_ms=expires_ms, issued_unix_ms=issued_ms,
                      control_plan=pb.ControlPlan(plan_id=f"plan-{command_id}", steps=list(steps)))


def charge(a: int, b: int, target: float, max_power_w: float = 0) -> pb.PlanStep:
    return pb.PlanStep(start_unix_ms=T0 + a * MIN, end_unix_ms=T0 + b * MIN,
                       charge_to=pb.ChargeTo(target_state_of_charge_pct=target, max_power_w=max_power_w))


def discharge(a: int, b: int, power_w: float, floor: float = 0) -> pb.PlanStep:
    return pb.PlanStep(start_unix_ms=T0 + a * MIN, end_unix_ms=T0 + b * MIN,
                       discharge=pb.Discharge(power_w=power_w, floor_state_of_charge_pct=floor))


def test_charge_to_target_by_the_step_end_within_limits_then_hold():
    model, controller = fleet(soc=40)
    ack = controller.handle(0, plan("c1", charge(0, 90, 80)), T0)
    assert ack.outcome == pb.COMMAND_OUTCOME_ACCEPTED
    socs, batteries, completed = run(model, controller, 100)
    soc0 = np.array([s[0] for s in socs])
    by_end = soc0[int(90 * 6) - 1]
    assert 79.5 <= by_end <= 80.0 + 1e-9           # reached by T, never above the target
    assert soc0.max() <= 80.0 + 1e-9
    charging = np.array([b[0] for b in batteries[: 90 * 6]])
    assert charging.min() >= -model.config.battery_max_power_w - 1e-9   # within the battery's limit
    assert charging[:60].max() < -100   # it spreads the charge, not a burst at the end
    # the other devices, without a plan, did not charge from the grid at night
    assert socs[-1][1] < 50 and socs[-1][2] < 50
    assert [(i, a.command_id, a.outcome) for i, a in completed] == [(0, "c1", pb.COMMAND_OUTCOME_COMPLETED)]


def test_charge_respects_the_steps_max_power():
    model, controller = fleet(soc=20)
    controller.handle(0, plan("c2", charge(0, 60, 100, max_power_w=1_500)), T0)
    _, batteries, _ = run(model, controller, 30)
    assert min(b[0] for b in batteries) >= -1_500 - 1e-9


def test_discharge_at_power_stops_at_the_backup_reserve_and_at_step_end():
    model, controller = fleet(soc=45)
    assert controller.handle(0, pb.Command(command_id="r1", set_backup_reserve=pb.SetBackupReserve(
        backup_reserve_pct=30)), T0).outcome == pb.COMMAND_OUTCOME_COMPLETED
    controller.handle(0, plan("d1", discharge(10, 120, 4_000, floor=10)), T0)
    socs, batteries, _ = run(model, controller, 130)
    b0 = np.array([b[0] for b in batteries])
    s0 = np.array([s[0] for s in socs])
    assert np.all(np.abs(b0[6:55][s0[6:55] > 31]) - 4_000 < 1e-6)   # at the commanded power while above
    assert s0.min() >= 30 - 1e-6 and s0[-1] == pytest.approx(30, abs=0.05)   # not below max(floor, reserve)
    assert b0[-1] <= 0 + 1e-9   # after the step: back to self-consumption at the reserve: no discharge


def test_hold_keeps_the_charge_and_a_newer_plan_replaces_the_older():
    model, controller = fleet(soc=60)
    controller.handle(0, plan("old", discharge(0, 60, 5_000), issued_ms=T0), T0)
    newer = plan("new", pb.PlanStep(start_unix_ms=T0, end_unix_ms=T0 + 60 * MIN, hold=pb.Hold()), issued_ms=T0 + 1)
    assert controller.handle(0, newer, T0 + 1).outcome == pb.COMMAND_OUTCOME_ACCEPTED
    assert controller.active_plan_id(0) == "plan-new"
    socs, batteries, _ = run(model, controller, 30)
    assert all(b[0] == 0 for b in batteries) and socs[-1][0] == pytest.approx(60)
    # a late retry of a plan issued before the active one is refused, not run
    stale = plan("older", discharge(0, 60, 5_000), issued_ms=T0 - 10)
    ack = controller.handle(0, stale, T0 + 2)
    assert ack.outcome == pb.COMMAND_OUTCOME_REJECTED and "older than the newest plan" in ack.detail
    assert controller.active_plan_id(0) == "plan-new"
    assert controller.state_report(0, T0).active_plan_id == "plan-new"


def test_an_empty_plan_ends_the_active_one_and_a_late_older_plan_stays_refused():
    _, controller = fleet(soc=60)
    controller.handle(0, plan("a", discharge(0, 60, 5_000), issued_ms=T0), T0)
    clear = pb.Command(command_id="clear", issued_unix_ms=T0 + 5, control_plan=pb.ControlPlan(plan_id="site:r2"))
    ack = controller.handle(0, clear, T0 + 10)
    assert ack.outcome == pb.COMMAND_OUTCOME_COMPLETED and controller.active_plan_id(0) == ""
    # revision 1 retried late, after the clear was taken: refused, the device stays on its mode
    late = controller.handle(0, plan("a-retry", discharge(0, 60, 5_000), issued_ms=T0 + 1), T0 + 20)
    assert late.outcome == pb.COMMAND_OUTCOME_REJECTED and controller.active_plan_id(0) == ""
    stale_clear = pb.Command(command_id="c0", issued_unix_ms=T0 - 1, control_plan=pb.ControlPlan())
    assert controller.handle(0, stale_clear, T0 + 30).outcome == pb.COMMAND_OUTCOME_REJECTED


def test_a_redelivered_command_is_acknowledged_again_but_executed_once():
    _, controller = fleet()
    command = plan("dup", charge(0, 60, 90))
    first = controller.handle(1, command, T0)
    again = controller.handle(1, command, T0 + 5_000)
    assert first == again and controller.executions[1] == 1


def test_an_expired_command_is_acknowledged_expired_and_not_executed():
    _, controller = fleet()
    ack = controller.handle(2, plan("late", charge(0, 60, 90), expires_ms=T0 - 1), T0)
    assert ack.outcome == pb.COMMAND_OUTCOME_EXPIRED and controller.executions[2] == 0
    assert controller.active_plan_id(2) == ""


def test_mode_reserve_configuration_firmware():
    model, controller = fleet(soc=70)
    cmd = pb.Command(command_id="m", set_mode=pb.SetMode(mode=pb.OPERATION_MODE_BACKUP))
    assert controller.handle(0, cmd, T0).outcome == pb.COMMAND_OUTCOME_COMPLETED
    socs, _, _ = run(model, controller, 20)
    assert socs[-1][0] == pytest.approx(70)       # backup mode: no discharge at night on the grid
    assert socs[-1][1] < 70                       # self-consumption covers the load
    cfg = pb.Command(command_id="c", change_configuration=pb.ChangeConfiguration(config={"export_limit_w": "5000"}))
    fw = pb.Command(command_id="f", update_firmware=pb.UpdateFirmware(version="2.1.0"))
    assert controller.handle(0, cfg, T0).outcome == pb.COMMAND_OUTCOME_COMPLETED
    assert controller.handle(0, fw, T0).outcome == pb.COMMAND_OUTCOME_COMPLETED
    report = controller.state_report(0, T0)
    assert (report.mode, report.firmware_version, dict(report.config)) == (
        pb.OPERATION_MODE_BACKUP, "2.1.0", {"export_limit_w": "5000"})
    bad = pb.Command(command_id="b", set_backup_reserve=pb.SetBackupReserve(backup_reserve_pct=150))
    assert controller.handle(0, bad, T0).outcome == pb.COMMAND_OUTCOME_REJECTED
