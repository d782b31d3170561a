"""VPP participation and arbitration inside the twin (pure): accept and plan (pre-charge,
discharge to the reserve), duplicates and revisions, opt-out, cancel, the end of the window, and
the conflict with StormWatch by the installation's priority, reverting afterwards."""

from __future__ import annotations

import datetime as dt

from actors.twin import vpp
from actors.twin.commands import DeclineEvent, DischargeForEvent, RestoreMode, RunPlan, ScheduleCharge, Source
from actors.twin.config import RulesConfig
from actors.twin.model import InstallationFacts
from actors.twin.twin import TwinState
from services.weather.model import AlertId, ChangeKind
from tests.unit.test_twin_stormwatch import alert

T0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000)


def twin(priority: str = "stormwatch_first") -> TwinState:
    return TwinState("site-1", InstallationFacts(backup_reserve_pct=30.0, priority=priority), RulesConfig.defaults())


def dispatch(revision: int = 1, power_w: float = 3_000.0, start=T0 + 4 * H, end=T0 + 6 * H) -> vpp.VppDispatch:
    return vpp.VppDispatch("ev-1", revision, start, end, power_w, start - 3 * H, "utility.vpp")


def test_an_accepted_event_precharges_then_discharges_down_to_the_reserve():
    t, intents = twin(), []
    t.handle(dispatch(), ms(T0), intents, [])
    [plan] = intents
    assert isinstance(plan, RunPlan) and plan.source is Source.VPP and plan.event_id == "ev-1"
    assert plan.plan.steps == (ScheduleCharge(ms(T0 + H), ms(T0 + 4 * H), 100.0),
                               DischargeForEvent(ms(T0 + 4 * H), ms(T0 + 6 * H), 3_000.0, 30.0, "ev-1"))
    assert t.view(ms(T0)).vpp.status == "accepted"
    t.handle(dispatch(), ms(T0), intents, [])                 # a duplicate
    assert len(intents) == 1
    t.handle(dispatch(revision=2, power_w=2_000.0), ms(T0), intents, [])   # a newer revision
    assert intents[-1].plan.steps[1].power_w == 2_000.0 and intents[-1].revision == 2
    t.handle(dispatch(revision=1), ms(T0), intents, [])       # an older one, late
    assert len(intents) == 2
    restored = TwinState.restore("site-1", t.facts, t.config, t.snapshot())
    assert restored.vpp == t.vpp and restored.desired.plan == t.desired.plan


def test_opt_out_and_cancel_drop_the_plan_and_the_end_of_the_window_too():
    t, intents = twin(), []
    t.handle(dispatch(), ms(T0), intents, [])
    t.handle(vpp.VppOptOut("ev-1"), ms(T0), intents, [])
    assert isinstance(intents[-1], RestoreMode) and t.desired.plan is None
    t.handle(dispatch(revision=3), ms(T0), intents, [])       # opted out: stays out
    assert len(intents) == 2 and t.vpp.status_of("ev-1") == "opted_out"

    other, out = twin(), []
    other.handle(dispatch(), ms(T0), out, [])
    other.handle(vpp.VppCancel("ev-1"), ms(T0), out, [])
    assert [type(i) for i in out] == [RunPlan, RestoreMode]

    ended, out = twin(), []
    ended.handle(dispatch(), ms(T0), out, [])
    ended.storm_tick(ms(T0 + 7 * H), out, [])
    assert ended.vpp.status_of("ev-1") == "ended" and ended.desired.plan is None


def test_stormwatch_first_declines_the_event_and_keeps_the_storm_plan():
    t, intents = twin("stormwatch_first"), []
    t.storm_alert(alert(), ms(T0), intents, [])
    t.handle(dispatch(), ms(T0), intents, [])
    assert [type(i) for i in intents] == [RunPlan, DeclineEvent]
    assert t.vpp.current is not None and t.vpp.current.status is vpp.Participation.DECLINED
    assert t.desired.plan is not None and t.desired.plan.sources == (Source.STORMWATCH,)


def test_vpp_first_runs_the_event_then_charges_for_the_storm_and_reverts_after_it():
    t, intents = twin("vpp_first"), []
    t.storm_alert(alert(onset=T0 + 10 * H), ms(T0), intents, [])
    t.handle(dispatch(), ms(T0), intents, [])
    plan = intents[-1].plan
    assert plan.sources == (Source.VPP, Source.STORMWATCH)
    actions = [(type(s), s.start_ms) for s in plan.steps]
    assert (DischargeForEvent, ms(T0 + 4 * H)) in actions and (ScheduleCharge, ms(T0 + 6 * H)) in actions
    # The storm is cancelled: the event stays, the storm steps go.
    t.storm_alert(alert("C", kind=ChangeKind.ENDED, replaces=(AlertId("A"),), reason="cancelled"), ms(T0 + H),
                  intents, [])
    assert intents[-1].plan.sources == (Source.VPP,)
