"""One installation's twin, in typed parts:

- `reported` (reported.py): the newest sample's signals, each device's newest applied sample
  (idempotency), the newest value of every signal, the run of unchanged readings, the counts;
- `battery` (battery.py): the battery's energy integrated from reported power, and its anchor;
- `tracks`: the alert lifecycle of each rule with a run of violations or an open alert;
- `desired`: what the device should run — a `DesiredPlan` and its revision (commands.py);
- `device`: what the device says it runs (its StateReports: mode, plan);
- `stormwatch` and `vpp`: the installation's storms and grid event.

Pure: takes `now_ms`, records `AlertEvent`s, `TwinCommand`s and `CustomerNotice`s in lists the
caller passes, never does I/O. Messages (weather alert changes, opt-outs, grid events, state
reports) go to one handler per type (`HANDLERS`, `handle`); `view` answers a typed `TwinView`.

Guarantees:
- Idempotent per device: a sample at or before the newest applied timestamp of its device is
  ignored (counted), so a batch delivered again after a crash changes nothing.
- A sample with a non-finite or implausible value, or stamped too far ahead of `now_ms`, is
  rejected (counted, IMPLAUSIBLE_VALUE alert) and changes nothing else: integrals are never
  poisoned, and the device's clock watermark never jumps into the future.
- A signal a sample did not report is None, never 0: it is not checked, not integrated, and the
  rules that need it do not run (rules.py).
- Every change of the desired plan is a new revision, issued at a strictly later time than the
  one before (commands.py); StormWatch × grid events are settled by `arbitration`.
- `snapshot()` → `TwinState.restore()` reproduces the state exactly (JSON-compatible values);
  snapshots of formats 1 and 2 restore too.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from actors.twin import arbitration, vpp
from actors.twin import stormwatch as sw
from actors.twin.alerts import Track
from actors.twin.battery import ANCHOR_NAMES, BatteryEnergy
from actors.twin.commands import (
    DeclineEvent,
    DesiredPlan,
    DischargeForEvent,
    HoldReserve,
    RestoreMode,
    RunPlan,
    ScheduleCharge,
    Source,
    Step,
    TwinCommand,
    plan_from_dict,
    plan_to_dict,
)
from actors.twin.config import RulesConfig
from actors.twin.model import (
    SIGNALS,
    Alert,
    AlertEvent,
    AlertState,
    CustomerNotice,
    DeviceStateReported,
    InstallationFacts,
    RuleId,
    Sample,
    Severity,
    Violation,
)
from actors.twin.reported import Reported
from actors.twin.rules import NOT_RUN, SAMPLE_RULES, Rule, stale_violation
from actors.twin.view import Counts, DesiredView, EnergyView, ReportedValue, ReportedView, TwinView
from gridtwin.unixtime import from_ms, to_ms
from services.control.model import OperationMode

# 3: the device's mode as its name in "device_state" (1 and 2 kept the protocol's number).
SNAPSHOT_FORMAT = 3
_READABLE_FORMATS = (1, 2, 3)
_MODE_NUMBERS = {1: OperationMode.SELF_CONSUMPTION, 2: OperationMode.BACKUP, 3: OperationMode.AUTONOMOUS}


def _active(config: RulesConfig) -> list[tuple[Rule, Any]]:
    """The enabled per-sample rules with their params, cached on the (immutable) config."""
    cached: list[tuple[Rule, Any]] | None = getattr(config, "_active", None)
    if cached is None:
        cached = [(rule, config[rule.rule]) for rule in SAMPLE_RULES if config[rule.rule].enabled]
        object.__setattr__(config, "_active", cached)
    return cached


@dataclass(slots=True)
class Desired:
    """What the device should run: no plan means its own operation mode."""

    plan: DesiredPlan | None = None
    revision: int = 0                  # +1 with every change
    issued_ms: int = 0                 # when the newest revision was decided


@dataclass(slots=True)
class DeviceState:
    """What the device's newest StateReport says."""

    mode: OperationMode | None = None  # None: not said yet
    reported_ms: int = 0
    plan_id: str = ""


class TwinState:
    __slots__ = ("battery", "config", "desired", "device", "facts", "installation_id", "reported", "stormwatch",
                 "tracks", "version", "vpp")

    def __init__(self, installation_id: str, facts: InstallationFacts, config: RulesConfig) -> None:
        self.installation_id = installation_id
        self.facts = facts
        self.config = config
        self.version = 0                       # grows with every change
        self.reported = Reported()
        self.battery = BatteryEnergy()
        self.tracks: dict[RuleId, Track] = {}  # only rules with a run of violations or an open alert
        self.desired = Desired()
        self.device = DeviceState()
        self.stormwatch = sw.StormWatchState()
        self.vpp = vpp.VppState()

    # ------------------------------------------------------------------ samples

    def apply(self, s: Sample, now_ms: int, out: list[AlertEvent]) -> int:
        """Folds one sample in and runs the rules. Returns 1 applied, 0 ignored, -1 rejected."""
        reported = self.reported
        last = reported.devices.get(s.device_id)
        if last is not None and s.ts_ms <= last:
            reported.ignored += 1
            return 0
        config = self.config
        implausible = config[RuleId.IMPLAUSIBLE_VALUE]
        site, battery, solar, load, soc = (s.site_power_w, s.battery_power_w, s.solar_power_w, s.load_power_w,
                                           s.state_of_charge_pct)
        limit = implausible.max_abs_power_w
        complete = site is not None and battery is not None and solar is not None and load is not None \
            and soc is not None
        if complete:
            plausible = (math.isfinite(site + battery + solar + load + soc)  # type: ignore[operator]
                         and -limit <= site <= limit and -limit <= battery <= limit  # type: ignore[operator]
                         and -limit <= solar <= limit and -limit <= load <= limit)  # type: ignore[operator]
        else:
            plausible = _plausible_reported(s, limit)
        if not (plausible and s.ts_ms <= now_ms + implausible.max_clock_skew_s * 1_000):
            reported.rejected += 1
            self.version += 1
            if implausible.enabled:
                self._observe(RuleId.IMPLAUSIBLE_VALUE, now_ms, _implausible(s, limit, now_ms), implausible, out)
            return -1
        if battery is not None:   # the integral runs from one battery reading to the next
            self.battery.fold(s.ts_ms, battery, soc, config[RuleId.BATTERY_ENERGY_BALANCE])
        reported.fold(s, complete)
        self.version += 1
        if implausible.enabled and RuleId.IMPLAUSIBLE_VALUE in self.tracks:
            self._observe(RuleId.IMPLAUSIBLE_VALUE, s.ts_ms, None, implausible, out)
        tracks = self.tracks
        for rule, params in _active(config):
            violation = rule.evaluate(self, s, params, now_ms)
            if violation is None:
                if rule.rule in tracks:
                    self._observe(rule.rule, s.ts_ms, None, params, out)
            elif violation is not NOT_RUN:   # NOT_RUN: the sample lacks a signal the rule needs
                self._observe(rule.rule, s.ts_ms, violation, params, out)
        return 1

    def apply_rows(self, device_id: str, ts: list[int], site: list[float | None], battery: list[float | None],
                   solar: list[float | None], load: list[float | None], soc: list[float | None], grid: list[int],
                   now_ms: int, out: list[AlertEvent]) -> tuple[int, int, int]:
        """`apply` over columns of one device's samples; returns (applied, ignored, rejected)."""
        applied = ignored = rejected = 0
        for i in range(len(ts)):
            r = self.apply(Sample(device_id, ts[i], site[i], battery[i], solar[i], load[i], soc[i], grid[i]),
                           now_ms, out)
            if r == 1:
                applied += 1
            elif r == 0:
                ignored += 1
            else:
                rejected += 1
        return applied, ignored, rejected

    def _observe(self, rule: RuleId, ts_ms: int, violation: Violation | None, params: Any,
                 out: list[AlertEvent]) -> None:
        track = self.tracks.get(rule)
        if track is None:
            track = self.tracks[rule] = Track()
        before = len(out)
        track.observe(self.installation_id, rule, ts_ms, violation, params, out)
        if len(out) != before:
            self.version += 1
        if track.idle:
            del self.tracks[rule]

    # ------------------------------------------------------------------ the clock

    def tick(self, now_ms: int, out: list[AlertEvent]) -> None:
        """Clock-driven rules: telemetry stale / device offline. First seen is the moment the
        newest sample became stale (a function of the telemetry, so replays agree)."""
        params = self.config[RuleId.TELEMETRY_STALE]
        last_ts_ms = self.reported.last_ts_ms
        if not params.enabled or not last_ts_ms:
            return
        violation = stale_violation(last_ts_ms, params, now_ms)
        if violation is None and RuleId.TELEMETRY_STALE not in self.tracks:
            return
        at_ms = last_ts_ms + int(params.stale_after_s * 1_000) if violation is not None else last_ts_ms
        track = self.tracks.get(RuleId.TELEMETRY_STALE)
        if violation is not None and track is not None and track.alert is not None:
            at_ms = max(track.alert.last_seen_ms, now_ms)
        self._observe(RuleId.TELEMETRY_STALE, at_ms, violation, params, out)

    def storm_tick(self, now_ms: int, commands: list[TwinCommand], notices: list[CustomerNotice]) -> None:
        """Ends storms and grid events whose time has passed; nothing to do without them."""
        if self.stormwatch.storms or self.stormwatch.vpp is not None:
            self._stormwatch(sw.Tick(), now_ms, commands, notices, Source.STORMWATCH)
        current = self.vpp.current
        if current is not None and to_ms(current.end) <= now_ms:
            status = vpp.Participation.ENDED if current.status is vpp.Participation.ACCEPTED else current.status
            self.vpp = vpp.finish(self.vpp, status)
            self.version += 1
            self._replan(Source.VPP, self._prefs().operation_mode, now_ms, commands)

    # ------------------------------------------------------------------ alerts and plans as rules see them

    def plan_active(self, now_ms: int) -> bool:
        plan = self.desired.plan
        return plan is not None and plan.active_step(now_ms) is not None

    def adopt_open_alerts(self, alerts: list[Alert]) -> None:
        """Open alerts found in storage become this twin's tracks (one per rule, the newest)."""
        for alert in sorted(alerts, key=lambda a: a.first_seen_ms):
            if alert.state != AlertState.CLEARED:
                track = self.tracks.get(alert.rule)
                if track is None or track.alert is None or track.alert.first_seen_ms <= alert.first_seen_ms:
                    track = self.tracks[alert.rule] = track or Track()
                    track.adopt(alert)

    def open_alerts(self) -> list[Alert]:
        return [t.alert for t in self.tracks.values() if t.alert is not None]

    # ------------------------------------------------------------------ messages: one handler per type

    def handle(self, message: TwinMessage, now_ms: int, commands: list[TwinCommand],
               notices: list[CustomerNotice]) -> None:
        """Hands `message` to its handler (`HANDLERS`); TypeError for a type the twin does not know."""
        handler = HANDLERS.get(type(message))
        if handler is None:
            raise TypeError(f"a twin has no handler for {type(message).__name__}")
        handler(self, message, now_ms, commands, notices)

    def storm_alert(self, event: sw.StormAlertEvent | sw.OptOut, now_ms: int, commands: list[TwinCommand],
                    notices: list[CustomerNotice]) -> None:
        """A weather alert change for this installation, or the owner's opt-out of one."""
        self._stormwatch(event, now_ms, commands, notices, Source.STORMWATCH)

    def vpp_dispatch(self, event: vpp.VppDispatch, now_ms: int, commands: list[TwinCommand],
                     notices: list[CustomerNotice]) -> None:
        """A grid event (or a newer revision of it): accepted unless opted out or over, then
        arbitrated against StormWatch by the installation's priority; the plan is recomposed."""
        state, current = self.vpp, self.vpp.current
        if event.event_id in state.opted_out or state.status_of(event.event_id) in ("cancelled", "ended"):
            return
        if current is not None and current.event_id == event.event_id and current.revision >= event.revision:
            return                                     # a duplicate, or older than what is held
        if current is not None and current.event_id != event.event_id:
            state = vpp.finish(state, vpp.Participation.CANCELLED)   # one event at a time: the newer wins
        self.vpp = replace(state, current=vpp.Commitment(
            event.event_id, event.revision, event.start, event.end, event.power_w, event.precharge_from,
            vpp.Participation.ACCEPTED, program=event.program))
        self.version += 1
        # StormWatch decides its side of the conflict (and may decline: see `_stormwatch`).
        self._stormwatch(sw.VppEventStarted(event.event_id, event.start, event.end), now_ms, commands, notices,
                         Source.VPP)
        self._replan(Source.VPP, self._prefs().operation_mode, now_ms, commands)

    def vpp_cancel(self, event: vpp.VppCancel, now_ms: int, commands: list[TwinCommand],
                   notices: list[CustomerNotice]) -> None:
        """The operator cancelled the grid event: the plan returns to what else holds."""
        current = self.vpp.current
        if current is None or current.event_id != event.event_id:
            return
        self.vpp = vpp.finish(self.vpp, vpp.Participation.CANCELLED)
        self._event_left(event.event_id, now_ms, commands, notices)

    def vpp_opt_out(self, event: vpp.VppOptOut, now_ms: int, commands: list[TwinCommand],
                    notices: list[CustomerNotice]) -> None:
        """The owner leaves one grid event (before it reaches the twin, or during it)."""
        state, current = self.vpp, self.vpp.current
        if current is None or current.event_id != event.event_id:
            if event.event_id not in state.opted_out:
                self.vpp = vpp.opt_out(state, event.event_id)
                self.version += 1
            return
        self.vpp = vpp.finish(vpp.opt_out(state, event.event_id), vpp.Participation.OPTED_OUT)
        self._event_left(event.event_id, now_ms, commands, notices)

    def _event_left(self, event_id: str, now_ms: int, commands: list[TwinCommand],
                    notices: list[CustomerNotice]) -> None:
        self.version += 1
        self._stormwatch(sw.VppEventEnded(event_id), now_ms, commands, notices, Source.VPP)
        self._replan(Source.VPP, self._prefs().operation_mode, now_ms, commands)

    def state_reported(self, report: DeviceStateReported, now_ms: int, commands: list[TwinCommand],
                       notices: list[CustomerNotice]) -> None:
        """What the device says it runs (mode, plan). The newest report wins: an older one arriving
        late changes nothing."""
        if report.ts_ms < self.device.reported_ms:
            return
        self.device = DeviceState(report.mode, report.ts_ms, report.active_plan_id)
        self.version += 1

    # ------------------------------------------------------------------ StormWatch, arbitration, revisions

    def _prefs(self) -> sw.InstallationPrefs:
        return sw.InstallationPrefs(self.facts.stormwatch_enabled, sw.Priority(self.facts.priority),
                                    self.device.mode or OperationMode.SELF_CONSUMPTION)

    def _stormwatch(self, event: sw.Event, now_ms: int, commands: list[TwinCommand],
                    notices: list[CustomerNotice], source: Source) -> None:
        """Runs StormWatch on one event (an alert change, an opt-out, a VPP window, a Tick) and
        carries out its decisions; every command and customer notification is appended for the
        caller to store. `source`: what caused it."""
        now = from_ms(now_ms)
        after, decided, notes = sw.apply(self.stormwatch, event, self._prefs(), now, self.config.stormwatch)
        if after == self.stormwatch and not decided and not notes:
            return
        self.stormwatch = after
        self.version += 1
        restore = OperationMode.SELF_CONSUMPTION.value
        for decision in decided:
            match decision:
                case sw.DeclineVppEvent(event_id, reason):
                    commands.append(DeclineEvent(self.installation_id, event_id, reason))
                    current = self.vpp.current
                    if current is not None and current.event_id == event_id:
                        self.vpp = replace(self.vpp, current=replace(current, status=vpp.Participation.DECLINED,
                                                                     reason=reason))
                case sw.RestoreOperationMode(mode, _):
                    restore = mode
        self._notify(notes, notices)
        self._replan(source, restore, now_ms, commands)

    def _notify(self, notes: tuple[sw.CustomerNotification, ...], notices: list[CustomerNotice]) -> None:
        for note in notes:
            notices.append(CustomerNotice(f"{self.installation_id}/{note.kind.value}/{note.alert_id or ''}",
                                          self.installation_id, note.kind.value, note.alert_id or "", note.title,
                                          note.body, to_ms(note.at)))

    def _replan(self, source: Source, restore_mode: str, now_ms: int, commands: list[TwinCommand]) -> None:
        """Recomposes the desired plan (`arbitration.compose`). Every change is a new revision:
        a plan becomes RunPlan, no plan where there was one RestoreMode (the device drops the
        plan and returns to its mode). Revisions are issued at strictly increasing times."""
        current = self.vpp.current
        event = None
        if current is not None and current.status is vpp.Participation.ACCEPTED:
            event = arbitration.EventShare(current.event_id, current.start, current.end, current.power_w,
                                           current.precharge_from)
        charge = self.stormwatch.charge
        storm = None if charge is None else arbitration.StormCharge(charge.target_soc_pct, charge.start_at,
                                                                     charge.complete_by, charge.hold_until)
        plan = arbitration.compose(storm, event, self.facts.backup_reserve_pct)
        desired = self.desired
        if plan == desired.plan:
            return
        desired.plan = plan
        desired.revision += 1
        desired.issued_ms = max(now_ms, desired.issued_ms + 1)
        self.version += 1
        if plan is not None:
            commands.append(RunPlan(self.installation_id, desired.revision, desired.issued_ms, plan, source,
                                    tuple(s.alert_id for s in self.stormwatch.storms),
                                    current.event_id if current is not None else ""))
        else:
            commands.append(RestoreMode(self.installation_id, desired.revision, desired.issued_ms, restore_mode,
                                        f"{source.value} over", source))

    # ------------------------------------------------------------------ views and snapshots

    def view(self, now_ms: int) -> TwinView:
        """What apps and operators see (actors/twin/view.py)."""
        r, b, desired, device = self.reported, self.battery, self.desired, self.device
        plan = desired.plan
        step = plan.active_step(now_ms) if plan is not None else None
        return TwinView(
            installation_id=self.installation_id, version=self.version,
            reported=ReportedView(
                r.device_id, r.last_ts_ms, r.site_power_w, r.battery_power_w, r.solar_power_w, r.load_power_w,
                r.soc_pct, r.grid_status, device.mode,
                {name: ReportedValue(value, at) for name, (value, at) in sorted(r.last_reported().items())}),
            desired=DesiredView(
                f"{self.installation_id}:r{desired.revision}" if plan is not None else "",
                "+".join(s.value for s in plan.sources) if plan is not None else "",
                _ACTIONS[type(step)] if step is not None else "", _target_soc(step), desired.revision,
                desired.issued_ms, device.plan_id, device.reported_ms),
            energy=EnergyView(ANCHOR_NAMES[b.anchor], b.anchor_ts_ms, b.net_out_wh, b.throughput_wh),
            alerts=tuple(copy.deepcopy(a) for a in self.open_alerts()),
            counts=Counts(r.applied, r.ignored, r.rejected),
            stormwatch=sw.view(self.stormwatch),
            vpp=vpp.view(self.vpp),
        )

    def snapshot(self) -> dict[str, Any]:
        device = self.device
        return {
            "format": SNAPSHOT_FORMAT, "version": self.version,
            **self.reported.to_snapshot(0), **self.battery.to_snapshot(),
            "tracks": {rule.value: [t.streak, t.streak_first_ms, t.ok_streak, t.ok_since_ms, t.updated_ms,
                                    alert_to_dict(t.alert) if t.alert is not None else None]
                       for rule, t in self.tracks.items()},
            "plan": plan_to_dict(self.desired.plan) if self.desired.plan is not None else None,
            "desired": [self.desired.revision, self.desired.issued_ms],
            "device_state": [device.reported_ms, device.plan_id, device.mode.value if device.mode else None],
            "stormwatch": sw.state_to_dict(self.stormwatch),
            "vpp": vpp.state_to_dict(self.vpp),
        }

    @staticmethod
    def restore(installation_id: str, facts: InstallationFacts, config: RulesConfig,
                data: dict[str, Any]) -> TwinState:
        if data.get("format") not in _READABLE_FORMATS:
            raise ValueError(f"unknown twin snapshot format {data.get('format')!r}")
        t = TwinState(installation_id, facts, config)
        t.version = int(data["version"])
        t.reported, mode_number = Reported.from_snapshot(data)
        t.battery = BatteryEnergy.from_snapshot(data)
        for rule_name, (streak, first, ok, ok_since, updated, alert) in data["tracks"].items():
            track = Track()
            track.streak, track.streak_first_ms, track.ok_streak, track.ok_since_ms = streak, first, ok, ok_since
            track.updated_ms = updated
            track.alert = alert_from_dict(alert) if alert is not None else None
            t.tracks[RuleId(rule_name)] = track
        revision, issued_ms = data.get("desired", (0, 0))
        t.desired = Desired(_plan_from_snapshot(data.get("plan")), revision, issued_ms)
        reported_ms, plan_id, *mode_name = data.get("device_state", (0, ""))
        mode = OperationMode(mode_name[0]) if mode_name and mode_name[0] else _MODE_NUMBERS.get(mode_number)
        t.device = DeviceState(mode, reported_ms, plan_id)
        t.stormwatch = sw.state_from_dict(data.get("stormwatch"))
        t.vpp = vpp.state_from_dict(data.get("vpp"))
        return t


TwinMessage = sw.StormAlertEvent | sw.OptOut | vpp.VppEvent | DeviceStateReported
Handler = Callable[[TwinState, Any, int, list[TwinCommand], list[CustomerNotice]], None]
HANDLERS: dict[type, Handler] = {
    sw.StormAlertEvent: TwinState.storm_alert, sw.OptOut: TwinState.storm_alert,
    vpp.VppDispatch: TwinState.vpp_dispatch, vpp.VppCancel: TwinState.vpp_cancel,
    vpp.VppOptOut: TwinState.vpp_opt_out, DeviceStateReported: TwinState.state_reported,
}
"""The twin's message handlers by message type: each takes (twin, message, now_ms, commands out,
notices out). The shard dispatches `tell` messages through this table."""


def _plausible_reported(s: Sample, limit: float) -> bool:
    """The signals `s` reports are finite (powers within ±limit), and it reports at least one."""
    reported = False
    for name in SIGNALS:
        value = getattr(s, name)
        if value is not None:
            if not (math.isfinite(value) and (name == "state_of_charge_pct" or -limit <= value <= limit)):
                return False
            reported = True
    return reported


def _implausible(s: Sample, limit: float, now_ms: int) -> Violation:
    values = [(name, getattr(s, name)) for name in SIGNALS]
    if all(value is None for _, value in values):
        return Violation(0.0, 0.0, note="no signal reported")
    for name, value in values:
        if value is None:
            continue
        if not math.isfinite(value):
            return Violation(0.0, 0.0, note=f"{name} is {value}")
        if name != "state_of_charge_pct" and abs(value) > limit:
            return Violation(value, limit, note=f"{name} beyond ±{limit:g} W")
    return Violation((s.ts_ms - now_ms) / 1_000.0, 0.0, note="timestamp ahead of the clock")


def alert_to_dict(a: Alert) -> dict[str, Any]:
    return {"alert_id": a.alert_id, "installation_id": a.installation_id, "rule": a.rule.value,
            "severity": a.severity.name.lower(), "state": a.state.value, "first_seen_ms": a.first_seen_ms,
            "last_seen_ms": a.last_seen_ms, "cleared_ms": a.cleared_ms, "samples": a.samples,
            "details": dict(a.details)}


def alert_from_dict(d: dict[str, Any]) -> Alert:
    return Alert(alert_id=d["alert_id"], installation_id=d["installation_id"], rule=RuleId(d["rule"]),
                 severity=Severity[d["severity"].upper()], state=AlertState(d["state"]),
                 first_seen_ms=int(d["first_seen_ms"]), last_seen_ms=int(d["last_seen_ms"]),
                 cleared_ms=d.get("cleared_ms"), samples=int(d.get("samples", 1)), details=dict(d.get("details", {})))


_ACTIONS: dict[type, str] = {ScheduleCharge: "charge_to", HoldReserve: "hold", DischargeForEvent: "discharge"}


def _target_soc(step: Step | None) -> float:
    if isinstance(step, ScheduleCharge):
        return step.target_soc_pct
    if isinstance(step, HoldReserve):
        return step.soc_pct
    if isinstance(step, DischargeForEvent):
        return step.floor_soc_pct
    return 0.0


def _plan_from_snapshot(d: dict[str, Any] | None) -> DesiredPlan | None:
    """The desired plan of a snapshot, also of the older form (plan_id, source, positional steps)."""
    if not d:
        return None
    if "plan_id" not in d:
        return plan_from_dict(d)
    steps: list[Step] = []
    for start, end, action, target, power in d["steps"]:
        if action == "charge_to":
            steps.append(ScheduleCharge(start, end, target if target is not None else 100.0))
        elif action == "discharge":
            steps.append(DischargeForEvent(start, end, power or 0.0, target or 0.0))
        else:
            steps.append(HoldReserve(start, end, target if target is not None else 100.0))
    sources = tuple(Source(x) for x in d["source"].split("+") if x in Source.__members__.values())
    return DesiredPlan(tuple(steps), sources)
