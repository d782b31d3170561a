"""The twin → control contract as pure values: stored form round trip, the relay's choice of the
newest revision, the edge mapping to device commands, arbitration, and state reports read from
the device-events topic (hostile payloads included)."""

from __future__ import annotations

import datetime as dt

import pytest

from actors.twin import arbitration
from actors.twin.commands import (
    DeclineEvent,
    DesiredPlan,
    DischargeForEvent,
    HoldReserve,
    RestoreMode,
    RunPlan,
    ScheduleCharge,
    Source,
    command_id,
    from_record,
    to_record,
)
from gridtwin.api.device.v1 import device_pb2 as pb
from services.assets.model import Priority
from services.control.model import ChargeTo, ClearPlan, ControlPlan, Discharge, Hold, OperationMode
from services.control.validation import validate_spec
from services.control.vpp.intents import command_for, newest_revisions
from services.telemetry.device_state import parse_state_report

NOW = 1_750_000_000_000
PLAN = DesiredPlan((ScheduleCharge(NOW - 600_000, NOW + 3_600_000, 100.0),
                    HoldReserve(NOW + 3_600_000, NOW + 7_200_000, 100.0),
                    DischargeForEvent(NOW + 7_200_000, NOW + 9_000_000, 3_000.0, 20.0, "ev-1")),
                   (Source.VPP, Source.STORMWATCH))


def run(revision: int, installation: str = "site-1") -> RunPlan:
    return RunPlan(installation, revision, NOW + revision, PLAN, Source.STORMWATCH, ("A",), "ev-1")


def restore(revision: int, installation: str = "site-1") -> RestoreMode:
    return RestoreMode(installation, revision, NOW + revision, "backup", "stormwatch over", Source.STORMWATCH)


@pytest.mark.parametrize("command", [run(3), restore(4), DeclineEvent("site-1", "ev-9", "StormWatch has priority")])
def test_every_command_survives_its_stored_form(command):
    cid, installation, source, kind, payload = to_record(command)
    assert cid == command_id(command) and installation == "site-1"
    assert from_record(installation, source, kind, payload) == command


def test_ids_are_twin_and_revision_and_valid_device_plan_ids():
    assert command_id(run(7)) == "site-1:r7" and command_id(restore(8)) == "site-1:r8"
    assert command_id(DeclineEvent("site-1", "ev-1", "")) == "site-1:decline:ev-1"
    with pytest.raises(ValueError):
        from_record("site-1", "stormwatch", "control_plan", {"plan": {}})   # another version's record


def test_only_the_newest_revision_per_installation_is_sent():
    send, superseded = newest_revisions([run(1), run(2), restore(3), run(1, "site-2")], {"site-2": 4})
    assert send == [restore(3)]
    assert superseded == {"site-1:r1": 3, "site-1:r2": 3, "site-2:r1": 4}
    send, superseded = newest_revisions([run(5)], {"site-1": 4})
    assert send == [run(5)] and superseded == {}


def test_the_edge_maps_steps_from_now_and_a_restore_is_an_explicit_clear_plan():
    spec, ttl_s = command_for(run(2), NOW)
    assert isinstance(spec, ControlPlan) and spec.plan_id == "site-1:r2"
    assert [s.start_ms for s in spec.steps] == [NOW, NOW + 3_600_000, NOW + 7_200_000]  # the charge runs from now
    assert [s.action for s in spec.steps] == [ChargeTo(100.0), Hold(), Discharge(3_000.0, 20.0)]
    assert ttl_s == pytest.approx(9_000.0)
    assert validate_spec(spec, NOW) == spec                                      # the facade's validation
    clear, ttl_s = command_for(restore(3), NOW)
    assert clear == ClearPlan("site-1:r3") and validate_spec(clear, NOW) == clear
    ended, _ = command_for(run(4), NOW + 10_000_000)                             # nothing left of the plan
    assert ended == ClearPlan("site-1:r4")


def test_arbitration_by_priority_and_the_reserve_as_the_discharge_floor():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    h = dt.timedelta(hours=1)
    assert arbitration.decide(True, now + h, Priority.STORMWATCH_FIRST, now) == arbitration.Decision(decline=True)
    assert arbitration.decide(True, now + h, Priority.VPP_FIRST, now).defer_storm_until == now + h
    assert arbitration.decide(False, now + h, Priority.STORMWATCH_FIRST, now) == arbitration.Decision()
    assert arbitration.decide(True, now - h, Priority.STORMWATCH_FIRST, now) == arbitration.Decision()
    storm = arbitration.StormCharge(100.0, now, now + 2 * h, now + 10 * h)
    event = arbitration.EventShare("ev-1", now + h, now + 3 * h, 4_000.0, now)
    both = arbitration.compose(storm, event, 30.0)
    assert both is not None and both.sources == (Source.STORMWATCH,)          # the storm's steps win overlaps
    alone = arbitration.compose(None, event, 30.0)
    assert alone is not None and alone.steps[-1].floor_soc_pct == 30.0         # never below the reserve
    assert arbitration.compose(None, None, 30.0) is None


def _report(**fields) -> bytes:
    return pb.StateReport(**fields).SerializeToString()


def test_state_reports_from_the_topic_and_hostile_ones():
    headers = {"installation_id": b"site-1", "device_id": b"dev-1"}
    installation, message = parse_state_report(
        b"state_report", _report(timestamp_unix_ms=NOW, mode=pb.OPERATION_MODE_BACKUP, active_plan_id="site-1:r2"),
        headers)
    assert installation == "site-1" and message.mode is OperationMode.BACKUP
    assert (message.device_id, message.ts_ms, message.active_plan_id) == ("dev-1", NOW, "site-1:r2")
    assert parse_state_report(b"command_ack", b"\xff", headers) is None           # not ours
    with pytest.raises(ValueError):
        parse_state_report(b"state_report", b"\xff\xff\xff", headers)             # does not parse
    with pytest.raises(ValueError):
        parse_state_report(b"state_report", _report(), {"device_id": b"dev-1"})  # no installation
    unknown = pb.StateReport()
    unknown.ParseFromString(b"\x10\x63")                                          # mode 99: unknown enum value
    _, odd = parse_state_report(b"state_report", unknown.SerializeToString(), headers)
    assert odd.mode is None                                                      # not a mode we know
