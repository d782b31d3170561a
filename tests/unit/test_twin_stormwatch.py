"""StormWatch rules (pure): eligibility, activation, updates (incl. duplicate and out-of-order),
cancel and expiry with the previous mode restored, opt-out, VPP priority, the app's view."""

from __future__ import annotations

import datetime as dt

import pytest

from actors.twin import stormwatch as sw
from actors.twin.commands import HoldReserve, RestoreMode, RunPlan, ScheduleCharge, command_id
from services.assets.model import Priority
from services.weather.model import AlertId, ChangeKind

T0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
PREFS = sw.InstallationPrefs(operation_mode="autonomous")


def alert(alert_id="A", kind=ChangeKind.ACTIVATED, event="Hurricane Warning", sent=T0, onset=T0 + 6 * H,
          end=T0 + 30 * H, replaces=(), reason="") -> sw.StormAlertEvent:
    return sw.StormAlertEvent(kind, AlertId(alert_id), event, sent, onset, end,
                              tuple(AlertId(r) for r in replaces), reason, f"{event} until later")


EMPTY, CONFIG = sw.StormWatchState(), sw.StormWatchConfig()


def run(events, prefs=PREFS, state=EMPTY, now=T0, config=CONFIG):
    intents, notes = [], []
    for event in events:
        when = now
        if isinstance(event, tuple):
            event, when = event
        state, i, n = sw.apply(state, event, prefs, when, config)
        intents += i
        notes += n
    return state, intents, notes


def test_activation_charges_to_full_before_onset_and_holds_until_the_end():
    state, intents, notes = run([alert()])
    [charge] = intents
    assert charge == sw.ScheduleStormCharge((AlertId("A"),), 100.0, T0, T0 + 6 * H, T0 + 30 * H)
    assert [n.kind for n in notes] == [sw.NotificationKind.ACTIVATED]
    assert state.previous_mode == "autonomous"
    assert sw.view(state) == sw.StormWatchView(True, "A", "Hurricane Warning", "Hurricane Warning until later",
                                               T0 + 30 * H, T0 + 6 * H, False, ("A",))


def test_an_imminent_onset_still_leaves_the_minimum_lead_time():
    _, [charge], _ = run([alert(onset=T0)])
    assert charge.complete_by == T0 + dt.timedelta(minutes=15)


@pytest.mark.parametrize(("prefs", "event"), [
    (sw.InstallationPrefs(stormwatch_enabled=False), alert()),
    (PREFS, alert(event="Flood Watch")),
    (PREFS, alert(event="Gale Warning")),
    (PREFS, alert(end=T0 - H)),
])
def test_ineligible_alerts_do_nothing(prefs, event):
    state, intents, notes = run([event], prefs=prefs)
    assert not state.active and intents == [] and notes == []
    assert sw.view(state) == sw.StormWatchView(active=False)


def test_configurable_event_types():
    config = sw.StormWatchConfig(event_types=frozenset({"Flood Warning"}))
    assert run([alert(event="Flood Warning")], config=config)[0].active
    assert not run([alert()], config=config)[0].active


def test_update_moves_the_times_cancel_restores_the_mode():
    update = alert("U", ChangeKind.UPDATED, sent=T0 + H, onset=T0 + 8 * H, end=T0 + 40 * H, replaces=("A",))
    state, intents, notes = run([alert(), (update, T0 + H)])
    assert intents[-1] == sw.ScheduleStormCharge((AlertId("U"),), 100.0, T0, T0 + 8 * H, T0 + 40 * H)
    assert notes[-1].kind is sw.NotificationKind.UPDATED and sw.view(state).until == T0 + 40 * H
    cancel = alert("U", ChangeKind.ENDED, sent=T0 + H, reason="cancelled")
    state, intents, notes = run([(cancel, T0 + 2 * H)], state=state)
    assert intents == [sw.RestoreOperationMode("autonomous", "storm over")]
    assert notes[-1].kind is sw.NotificationKind.ENDED and "cancelled" in notes[-1].body
    assert not state.active and state.previous_mode is None


def test_duplicate_and_out_of_order_updates_change_nothing():
    u1 = alert("U1", ChangeKind.UPDATED, sent=T0 + H, end=T0 + 35 * H, replaces=("A",))
    u2 = alert("U2", ChangeKind.UPDATED, sent=T0 + 2 * H, end=T0 + 40 * H, replaces=("A", "U1"))
    state, _, _ = run([alert(), u2])
    for late in (u2, u1, alert()):   # the same update again, an older one, the original again
        again, intents, notes = run([late], state=state)
        assert (again, intents, notes) == (state, [], [])
    assert sw.view(state).until == T0 + 40 * H and sw.view(state).alert_id == "U2"


def test_redelivery_after_the_end_does_not_reactivate():
    state, _, _ = run([alert(), alert(kind=ChangeKind.ENDED, reason="cancelled")])
    again, intents, _ = run([alert()], state=state)
    assert not again.active and intents == []


def test_expiry_by_tick_restores_the_mode_and_ticks_are_quiet():
    state, _, _ = run([alert()])
    quiet, intents, notes = run([(sw.Tick(), T0 + 10 * H)], state=state)
    assert intents == [] and notes == [] and quiet == state
    ended, intents, notes = run([(sw.Tick(), T0 + 30 * H)], state=state)
    assert intents == [sw.RestoreOperationMode("autonomous", "storm over")] and not ended.active
    assert "expired" in notes[0].body


def test_an_alert_without_end_holds_for_the_default_duration():
    state, [charge], _ = run([alert(end=None)])
    assert charge.hold_until == T0 + 6 * H + 24 * H


def test_opt_out_of_one_event():
    state, intents, notes = run([alert(), sw.OptOut(AlertId("A"))])
    assert not state.active and intents[-1] == sw.RestoreOperationMode("autonomous", "storm over")
    assert notes[-1].kind is sw.NotificationKind.OPTED_OUT
    update = alert("U", ChangeKind.UPDATED, sent=T0 + H, replaces=("A",))
    state, intents, _ = run([update], state=state)
    assert not state.active and intents == [] and "U" in state.opted_out
    other, intents, _ = run([alert("B", event="Tornado Warning")], state=state)
    assert other.active   # another alert still counts


def test_two_storms_are_one_watch():
    state, intents, _ = run([alert(), alert("T", event="Tornado Warning", onset=T0 + H, end=T0 + 3 * H)])
    assert intents[-1] == sw.ScheduleStormCharge((AlertId("A"), AlertId("T")), 100.0, T0, T0 + H, T0 + 30 * H)
    state, intents, _ = run([(sw.Tick(), T0 + 3 * H)], state=state)
    assert state.active and intents[-1].alert_ids == ("A",)   # the tornado ended, the hurricane holds
    assert not any(isinstance(i, sw.RestoreOperationMode) for i in intents)


def test_mode_is_the_one_before_the_first_storm():
    state, _, _ = run([alert()])
    state, _, _ = run([alert("T", event="Tornado Warning")], state=state,
                      prefs=sw.InstallationPrefs(operation_mode="backup"))
    state, intents, _ = run([(sw.Tick(), T0 + 31 * H)], state=state)
    assert intents == [sw.RestoreOperationMode("autonomous", "storm over")]


def test_stormwatch_first_declines_the_vpp_event():
    vpp = sw.VppEventStarted("vpp-1", T0, T0 + 2 * H)
    state, intents, notes = run([vpp, alert()])
    assert sw.DeclineVppEvent("vpp-1", "StormWatch has priority") in intents
    assert intents[0].start_at == T0 and notes[-1].kind is sw.NotificationKind.VPP_DECLINED
    again, intents, _ = run([sw.Tick()], state=state)
    assert intents == []
    state, intents, _ = run([sw.VppEventStarted("vpp-2", T0 + 3 * H, T0 + 4 * H)], state=state)
    assert intents == [sw.DeclineVppEvent("vpp-2", "StormWatch has priority")]


def test_vpp_first_defers_the_storm_charge_until_the_event_ends():
    prefs = sw.InstallationPrefs(priority=Priority.VPP_FIRST, operation_mode="autonomous")
    state, intents, notes = run([sw.VppEventStarted("vpp-1", T0, T0 + 2 * H), alert()], prefs=prefs)
    [charge] = intents
    assert charge.start_at == T0 + 2 * H and charge.complete_by == T0 + 6 * H
    assert sw.view(state).deferred_for_vpp and notes[-1].kind is sw.NotificationKind.DEFERRED
    state, intents, _ = run([(sw.VppEventEnded("vpp-1"), T0 + H)], state=state, prefs=prefs)
    assert intents == [sw.ScheduleStormCharge((AlertId("A"),), 100.0, T0, T0 + 6 * H, T0 + 30 * H)]
    assert not sw.view(state).deferred_for_vpp


def test_vpp_first_with_onset_inside_the_vpp_event_completes_after_it():
    prefs = sw.InstallationPrefs(priority=Priority.VPP_FIRST)
    _, [charge], _ = run([sw.VppEventStarted("v", T0, T0 + 7 * H), alert()], prefs=prefs)
    assert charge.start_at == T0 + 7 * H and charge.complete_by == T0 + 7 * H + dt.timedelta(minutes=15)


def test_from_change_and_remembered_ids_are_bounded():
    from services.weather.model import Alert, AlertChange, MessageType
    a = Alert(AlertId("X"), "Tornado Warning", MessageType.ALERT, "Extreme", "Immediate", "Observed", T0, None,
              T0 + H, None, "POLYGON ((0 0, 1 0, 1 1, 0 0))", (0, 0, 1, 1))
    event = sw.StormAlertEvent.from_change(AlertChange(ChangeKind.ACTIVATED, a, T0))
    assert (event.onset, event.end) == (T0, T0 + H)
    state = sw.StormWatchState()
    for k in range(sw.MAX_REMEMBERED_IDS + 50):
        state, _, _ = sw.apply(state, sw.OptOut(AlertId(f"o{k}")), PREFS, T0)
    assert len(state.opted_out) == sw.MAX_REMEMBERED_IDS


# ------------------------------------------------------------------ inside the twin

def _twin():
    from actors.twin.config import RulesConfig
    from actors.twin.model import InstallationFacts
    from actors.twin.twin import TwinState

    return TwinState("site-1", InstallationFacts(priority="vpp_first"), RulesConfig.defaults())


def test_the_twin_carries_out_stormwatch_and_its_snapshot_keeps_it():
    from actors.twin.twin import TwinState

    twin, intents, notices = _twin(), [], []
    now_ms = int(T0.timestamp() * 1_000)
    twin.storm_alert(alert(), now_ms, intents, notices)
    [plan] = intents
    assert isinstance(plan, RunPlan) and plan.revision == 1 and twin.desired.plan == plan.plan
    assert command_id(plan) == "site-1:r1" == twin.view(now_ms).desired.plan_id
    assert [type(s) for s in twin.desired.plan.steps] == [ScheduleCharge, HoldReserve]
    assert [n.notice_id for n in notices] == ["site-1/stormwatch_activated/A"]
    restored = TwinState.restore("site-1", twin.facts, twin.config, twin.snapshot())
    assert restored.stormwatch == twin.stormwatch and restored.desired.plan == twin.desired.plan
    assert restored.view(now_ms).stormwatch.until == T0 + 30 * H

    # The same message again (a redelivery after a crash) decides nothing; the same decision
    # taken again by the restored twin has the same id (stored once).
    twin.storm_alert(alert(), now_ms, intents, notices)
    assert len(intents) == 1
    again: list = []
    before = {**twin.snapshot(), "stormwatch": None, "plan": None, "desired": [0, 0]}
    TwinState.restore("site-1", twin.facts, twin.config, before).storm_alert(alert(), now_ms, again, [])
    assert again == [plan]

    # Its end passes: the clock ends the watch and restores the mode.
    twin.storm_tick(int((T0 + 31 * H).timestamp() * 1_000), intents, notices)
    assert isinstance(intents[-1], RestoreMode) and intents[-1].revision == 2
    assert intents[-1].issued_ms > plan.issued_ms and intents[-1].mode == "self_consumption"
    assert twin.desired.plan is None and not twin.stormwatch.active


def test_every_change_of_the_desired_plan_is_a_new_revision_even_back_to_an_earlier_plan():
    """A → A+X → A: the second A is revision 3, not the id of the first (which the device no
    longer runs), so the device ends on A again."""
    from actors.twin.twin import Desired, TwinState

    twin, out = _twin(), []
    now_ms = int(T0.timestamp() * 1_000)
    twin.storm_alert(alert("A"), now_ms, out, [])
    twin.storm_alert(alert("X", onset=T0 + 2 * H, end=T0 + 40 * H), now_ms + 1_000, out, [])
    twin.storm_alert(alert("X2", kind=ChangeKind.ENDED, replaces=(AlertId("X"),), reason="cancelled"),
                     now_ms + 2_000, out, [])
    assert [c.revision for c in out] == [1, 2, 3]
    assert [command_id(c) for c in out] == ["site-1:r1", "site-1:r2", "site-1:r3"]
    assert out[2].plan == out[0].plan != out[1].plan
    assert out[0].issued_ms < out[1].issued_ms < out[2].issued_ms
    restored = TwinState.restore("site-1", twin.facts, twin.config, twin.snapshot())
    assert restored.desired == Desired(out[2].plan, 3, out[2].issued_ms)


def test_older_snapshots_without_stormwatch_restore_to_no_watch():
    assert sw.state_from_dict({"active_alert_ids": [], "plan_id": ""}) == sw.StormWatchState()
    assert sw.state_from_dict(None) == sw.StormWatchState()
