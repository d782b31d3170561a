"""StormWatch for one installation, as pure logic: `apply(state, event, prefs, now)` →
`(new_state, intents, notifications)`. No I/O, no clock: the twin runtime hosts it (one
immutable `StormWatchState` per installation twin) and carries out what it returns.

Rules:
- **Eligibility**: the customer has StormWatch on, the alert's event is one of the configured
  types (hurricane, tropical storm, winter storm, high wind, tornado, severe thunderstorm
  warnings by default), the alert has not ended, and the customer has not opted out of it.
- **Activation**: `ScheduleStormCharge` — charge to full, complete by the onset (at least
  `min_lead_s` from now), hold full until the alert ends — and a customer notification. The
  operation mode in force is remembered, to return to it afterwards.
- Several storms at once are one watch: charge by the earliest onset, hold until the latest end.
  Intents are emitted only when the plan changes (a Tick with nothing new emits nothing).
- **Update** (an alert whose `replaces` names one this installation watches) moves the times;
  a repeated or older message of the same thread changes nothing (duplicates and out-of-order
  deliveries are harmless).
- **Cancel, expiry** (an ENDED event, or `Tick` once the end has passed) ends that storm; when
  none is left, `RestoreOperationMode` returns to the remembered mode.
- **Opt-out** of one event ends that storm for this installation and ignores its later updates.
- **VPP conflicts** are settled by `arbitration.decide` (its docstring has the priority table):
  `stormwatch_first` declines VPP events while a storm is watched (`DeclineVppEvent`);
  `vpp_first` lets a running VPP event finish and starts the storm charge when it ends. The one
  plan the device runs is composed by `arbitration.compose`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from actors.twin import arbitration
from gridtwin.unixtime import from_ms, to_ms
from services.assets.model import Priority
from services.weather.model import AlertChange, AlertId, ChangeKind

DEFAULT_EVENT_TYPES = frozenset({
    "Hurricane Warning", "Hurricane Watch", "Tropical Storm Warning", "Tropical Storm Watch",
    "Winter Storm Warning", "Blizzard Warning", "Ice Storm Warning", "High Wind Warning", "Extreme Wind Warning",
    "Tornado Warning", "Severe Thunderstorm Warning", "Storm Surge Warning",
})
MAX_REMEMBERED_IDS = 256   # ended/opted-out alert ids a twin remembers (bounded state)


@dataclass(frozen=True)
class StormWatchConfig:
    event_types: frozenset[str] = DEFAULT_EVENT_TYPES
    target_soc_pct: float = 100.0
    min_lead_s: float = 15 * 60          # charge completes no sooner than this from activation
    default_duration_s: float = 24 * 3600  # hold time for an alert without an end


@dataclass(frozen=True)
class InstallationPrefs:
    """What StormWatch needs of the installation (from the assets service, kept by the twin)."""

    stormwatch_enabled: bool = True
    priority: Priority = Priority.STORMWATCH_FIRST
    operation_mode: str = "self_consumption"   # the mode in force now; restored afterwards


# ------------------------------------------------------------------ events in

@dataclass(frozen=True)
class StormAlertEvent:
    """An alert change for this installation (the poller sends it; `from_change` builds it)."""

    kind: ChangeKind
    alert_id: AlertId
    event: str
    sent: dt.datetime
    onset: dt.datetime
    end: dt.datetime | None
    replaces: tuple[AlertId, ...] = ()
    reason: str = ""
    headline: str = ""

    @staticmethod
    def from_change(change: AlertChange, reason: str | None = None) -> StormAlertEvent:
        a = change.alert
        return StormAlertEvent(change.kind, a.alert_id, a.event, a.sent, a.start, a.end, change.replaces,
                               change.reason if reason is None else reason, a.headline)


@dataclass(frozen=True)
class OptOut:
    alert_id: AlertId


@dataclass(frozen=True)
class VppEventStarted:
    event_id: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class VppEventEnded:
    event_id: str


@dataclass(frozen=True)
class Tick:
    """Time passed: ends storms whose end is at or before `now`."""


Event = StormAlertEvent | OptOut | VppEventStarted | VppEventEnded | Tick


# ------------------------------------------------------------------ decisions out

@dataclass(frozen=True)
class ScheduleStormCharge:
    """Charge to `target_soc_pct`, starting at `start_at`, complete by `complete_by`, and hold
    (no discharge below it for VPP or self-consumption) until `hold_until`. Replaces any earlier one."""

    alert_ids: tuple[AlertId, ...]
    target_soc_pct: float
    start_at: dt.datetime
    complete_by: dt.datetime
    hold_until: dt.datetime


@dataclass(frozen=True)
class RestoreOperationMode:
    mode: str
    reason: str


@dataclass(frozen=True)
class DeclineVppEvent:
    event_id: str
    reason: str


Intent = ScheduleStormCharge | RestoreOperationMode | DeclineVppEvent


class NotificationKind(StrEnum):
    ACTIVATED = "stormwatch_activated"
    UPDATED = "stormwatch_updated"
    ENDED = "stormwatch_ended"
    OPTED_OUT = "stormwatch_opted_out"
    DEFERRED = "stormwatch_deferred_for_vpp"
    VPP_DECLINED = "vpp_event_declined_for_storm"


@dataclass(frozen=True)
class CustomerNotification:
    kind: NotificationKind
    alert_id: AlertId | None
    title: str
    body: str
    at: dt.datetime


# ------------------------------------------------------------------ state

@dataclass(frozen=True)
class WatchedStorm:
    thread: tuple[AlertId, ...]       # every message id of this alert, oldest first; last = current
    event: str
    sent: dt.datetime                 # of the current message
    onset: dt.datetime
    end: dt.datetime
    headline: str = ""

    @property
    def alert_id(self) -> AlertId:
        return self.thread[-1]


@dataclass(frozen=True)
class VppWindow:
    event_id: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class StormWatchState:
    storms: tuple[WatchedStorm, ...] = ()
    previous_mode: str | None = None
    vpp: VppWindow | None = None
    deferred_for_vpp: bool = False
    opted_out: tuple[AlertId, ...] = ()
    ended: tuple[AlertId, ...] = ()
    charge: ScheduleStormCharge | None = None     # the intent in force
    since: dt.datetime | None = None              # when the watch began (the charge starts then)

    @property
    def active(self) -> bool:
        return bool(self.storms)


@dataclass(frozen=True)
class StormWatchView:
    """StormWatch as the mobile app shows it."""

    active: bool
    alert_id: str = ""
    event: str = ""
    headline: str = ""
    until: dt.datetime | None = None
    charge_complete_by: dt.datetime | None = None
    deferred_for_vpp: bool = False
    alert_ids: tuple[str, ...] = ()


def view(state: StormWatchState) -> StormWatchView:
    if not state.storms:
        return StormWatchView(active=False)
    main = max(state.storms, key=lambda s: s.end)
    return StormWatchView(True, main.alert_id, main.event, main.headline, main.end,
                          state.charge.complete_by if state.charge else None, state.deferred_for_vpp,
                          tuple(s.alert_id for s in state.storms))


@dataclass
class _Out:
    intents: list[Intent] = field(default_factory=list)
    notes: list[CustomerNotification] = field(default_factory=list)


def _remember(ids: tuple[AlertId, ...], *more: AlertId) -> tuple[AlertId, ...]:
    return (*ids, *(m for m in more if m not in ids))[-MAX_REMEMBERED_IDS:]


def _until(end: dt.datetime) -> str:
    return end.strftime("%Y-%m-%d %H:%M UTC")


def _plan(state: StormWatchState, prefs: InstallationPrefs, config: StormWatchConfig, now: dt.datetime,
          out: _Out, previous: StormWatchState) -> StormWatchState:
    """Derives the charge intent (and VPP decisions) from the storms; emits only what changed."""
    if not state.storms:
        state = replace(state, charge=None, deferred_for_vpp=False, since=None)
        if previous.storms:
            out.intents.append(RestoreOperationMode(state.previous_mode or prefs.operation_mode, "storm over"))
            state = replace(state, previous_mode=None)
        return state
    ids = tuple(s.alert_id for s in state.storms)
    since = state.since or now
    lead = dt.timedelta(seconds=config.min_lead_s)
    complete_by = max(min(s.onset for s in state.storms), since + lead)
    hold_until = max(s.end for s in state.storms)
    start_at, deferred = since, False
    vpp = state.vpp if state.vpp is not None and state.vpp.end > now else None
    decision = arbitration.decide(True, vpp.end if vpp is not None else None, prefs.priority, now)
    if decision.defer_storm_until is not None:
        start_at, deferred = max(since, decision.defer_storm_until), True
        complete_by = max(complete_by, start_at + lead)
    charge = ScheduleStormCharge(ids, config.target_soc_pct, start_at, complete_by, hold_until)
    if charge != previous.charge:
        out.intents.append(charge)
    if deferred and vpp is not None and not previous.deferred_for_vpp:
        out.notes.append(CustomerNotification(
            NotificationKind.DEFERRED, ids[-1], "Storm charge after the grid event",
            f"Your battery helps the grid until {_until(vpp.end)} (your priority), then charges for the storm.",
            now))
    if vpp is not None and decision.decline and not (previous.storms and previous.vpp == vpp):
        out.intents.append(DeclineVppEvent(vpp.event_id, "StormWatch has priority"))
        out.notes.append(CustomerNotification(
            NotificationKind.VPP_DECLINED, ids[-1], "Grid event skipped",
            "Your battery stays full for the storm instead of joining the grid event (your priority).", now))
    return replace(state, charge=charge, deferred_for_vpp=deferred, since=since)


def _end_storm(state: StormWatchState, storm: WatchedStorm, reason: str, now: dt.datetime,
               out: _Out) -> StormWatchState:
    out.notes.append(CustomerNotification(
        NotificationKind.ENDED, storm.alert_id, f"StormWatch ended: {storm.event}",
        f"The {storm.event} is over ({reason}); your battery returns to its usual mode.", now))
    return replace(state, storms=tuple(s for s in state.storms if s is not storm),
                   ended=_remember(state.ended, *storm.thread))


def _on_alert(state: StormWatchState, e: StormAlertEvent, prefs: InstallationPrefs, config: StormWatchConfig,
              now: dt.datetime, out: _Out) -> StormWatchState:
    ids = {e.alert_id, *e.replaces}
    storm = next((s for s in state.storms if ids & set(s.thread)), None)
    if e.kind is ChangeKind.ENDED:
        if storm is None:
            return state
        return _end_storm(state, storm, e.reason or "ended", now, out)
    if ids & set(state.opted_out):
        return replace(state, opted_out=_remember(state.opted_out, *ids))
    if e.alert_id in state.ended:
        return state                               # redelivered after it ended
    if storm is not None and (e.alert_id in storm.thread or e.sent < storm.sent):
        return state                               # duplicate, or older than what is watched
    end = e.end or e.onset + dt.timedelta(seconds=config.default_duration_s)
    if not prefs.stormwatch_enabled or e.event not in config.event_types or end <= now:
        return state
    if storm is None:
        watched = WatchedStorm((*e.replaces, e.alert_id), e.event, e.sent, e.onset, end, e.headline)
        out.notes.append(CustomerNotification(
            NotificationKind.ACTIVATED, e.alert_id, f"StormWatch active: {e.event}",
            f"Your battery charges to full before the storm and stays ready until {_until(end)}.", now))
        previous_mode = state.previous_mode if state.storms else prefs.operation_mode
        return replace(state, storms=(*state.storms, watched), previous_mode=previous_mode)
    moved = replace(storm, thread=(*storm.thread, e.alert_id), event=e.event, sent=e.sent, onset=e.onset, end=end,
                    headline=e.headline)
    out.notes.append(CustomerNotification(
        NotificationKind.UPDATED, e.alert_id, f"StormWatch updated: {e.event}",
        f"The alert was updated; your battery stays ready until {_until(end)}.", now))
    return replace(state, storms=tuple(moved if s is storm else s for s in state.storms))


def apply(state: StormWatchState, event: Event, prefs: InstallationPrefs, now: dt.datetime,
          config: StormWatchConfig = StormWatchConfig(),
          ) -> tuple[StormWatchState, tuple[Intent, ...], tuple[CustomerNotification, ...]]:
    out = _Out()
    new = state
    if isinstance(event, StormAlertEvent):
        new = _on_alert(state, event, prefs, config, now, out)
    elif isinstance(event, OptOut):
        storm = next((s for s in state.storms if event.alert_id in s.thread), None)
        new = replace(state, opted_out=_remember(state.opted_out, event.alert_id, *(storm.thread if storm else ())))
        if storm is not None:
            new = replace(new, storms=tuple(s for s in new.storms if s is not storm))
            out.notes.append(CustomerNotification(
                NotificationKind.OPTED_OUT, storm.alert_id, f"StormWatch off for this {storm.event}",
                "You opted out of StormWatch for this alert; your battery returns to its usual mode.", now))
    elif isinstance(event, VppEventStarted):
        new = replace(state, vpp=VppWindow(event.event_id, event.start, event.end))
    elif isinstance(event, VppEventEnded) and state.vpp is not None and state.vpp.event_id == event.event_id:
        new = replace(state, vpp=None)
    if new.vpp is not None and new.vpp.end <= now:
        new = replace(new, vpp=None)
    for storm in [s for s in new.storms if s.end <= now]:
        new = _end_storm(new, storm, "expired", now, out)
    new = _plan(new, prefs, config, now, out, state)
    return new, tuple(out.intents), tuple(out.notes)


# ------------------------------------------------------------------ snapshots (JSON values, times in Unix ms)



def _charge_to_dict(c: ScheduleStormCharge) -> list[Any]:
    return [list(c.alert_ids), c.target_soc_pct, to_ms(c.start_at), to_ms(c.complete_by), to_ms(c.hold_until)]


def state_to_dict(s: StormWatchState) -> dict[str, Any]:
    return {
        "storms": [[list(w.thread), w.event, to_ms(w.sent), to_ms(w.onset), to_ms(w.end), w.headline]
                   for w in s.storms],
        "previous_mode": s.previous_mode,
        "vpp": [s.vpp.event_id, to_ms(s.vpp.start), to_ms(s.vpp.end)] if s.vpp is not None else None,
        "deferred_for_vpp": s.deferred_for_vpp, "opted_out": list(s.opted_out), "ended": list(s.ended),
        "charge": _charge_to_dict(s.charge) if s.charge is not None else None,
        "since": to_ms(s.since) if s.since is not None else None,
    }


def state_from_dict(d: dict[str, Any] | None) -> StormWatchState:
    if not d or "storms" not in d:      # absent, or the placeholder of older snapshots
        return StormWatchState()
    charge = d.get("charge")
    vpp = d.get("vpp")
    return StormWatchState(
        storms=tuple(WatchedStorm(tuple(AlertId(a) for a in thread), event, from_ms(sent), from_ms(onset), from_ms(end),
                                  headline) for thread, event, sent, onset, end, headline in d["storms"]),
        previous_mode=d.get("previous_mode"),
        vpp=VppWindow(vpp[0], from_ms(vpp[1]), from_ms(vpp[2])) if vpp else None,
        deferred_for_vpp=bool(d.get("deferred_for_vpp")),
        opted_out=tuple(AlertId(a) for a in d.get("opted_out", ())),
        ended=tuple(AlertId(a) for a in d.get("ended", ())),
        charge=ScheduleStormCharge(tuple(AlertId(a) for a in charge[0]), charge[1], from_ms(charge[2]),
                                   from_ms(charge[3]), from_ms(charge[4])) if charge else None,
        since=from_ms(d["since"]) if d.get("since") is not None else None,
    )


def view_to_dict(v: StormWatchView) -> dict[str, Any]:
    """The app's view as plain values (times in Unix ms, 0 = none)."""
    return {"active": v.active, "alert_id": v.alert_id, "event": v.event, "headline": v.headline,
            "until_unix_ms": to_ms(v.until) if v.until else 0,
            "charge_complete_by_unix_ms": to_ms(v.charge_complete_by) if v.charge_complete_by else 0,
            "deferred_for_vpp": v.deferred_for_vpp, "alert_ids": list(v.alert_ids)}
