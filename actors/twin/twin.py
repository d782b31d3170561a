"""One installation's twin: the reported state (latest power flows, state of charge, grid status,
mode), the desired state (the active control plan), open alerts and their rules, and room for
StormWatch and VPP participation. Pure: takes `now_ms`, records `AlertEvent`s in a list the
caller passes, never does I/O.

Guarantees:
- Idempotent per device: a sample at or before the newest applied timestamp of its device is
  ignored (counted), so a batch delivered again after a crash changes nothing.
- A sample with a non-finite or implausible value, or stamped too far ahead of `now_ms`, is
  rejected (counted, IMPLAUSIBLE_VALUE alert) and changes nothing else: integrals are never
  poisoned, and the device's clock watermark never jumps into the future.
- Battery energy is integrated with the trapezoidal rule (Wh, discharge positive) between
  consecutive samples that report battery power at most `max_gap_s` apart; a longer gap forgets
  the full/empty anchor and the integral's lowest point, since the energy over it is unknown.
- A signal a sample did not report is None, never 0: it is not checked, not integrated, and the
  rules that need it do not run (rules.py). The reported state is the newest sample's, with
  None for what it did not report; the newest value of every signal, with its time, is kept
  as well (`held` for the signals the newest sample lacks; `view()["reported"]["last_reported"]`).
- `snapshot()` → `TwinState.restore()` reproduces the state exactly (JSON-compatible values).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from actors.twin import arbitration, vpp
from actors.twin import stormwatch as sw
from actors.twin.alerts import Track
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
    GridStatus,
    InstallationFacts,
    OperationMode,
    RuleId,
    Sample,
    Severity,
    Violation,
)
from actors.twin.rules import ANCHOR_EMPTY, ANCHOR_FULL, ANCHOR_NONE, NOT_RUN, SAMPLE_RULES, Rule, stale_violation
from gridtwin.unixtime import from_ms, to_ms

# 2: reported values may be null (not reported), "held", the integral's lowest point in "anchor".
SNAPSHOT_FORMAT = 2
_READABLE_FORMATS = (1, 2)
_MS_PER_H = 3_600_000.0
# Near full (empty), a battery that is not discharging (charging) marks a known energy level.
_ANCHOR_IDLE_W = 50.0
_MODE_NAMES = {OperationMode.SELF_CONSUMPTION: "self_consumption", OperationMode.BACKUP: "backup",
               OperationMode.AUTONOMOUS: "autonomous"}


def _active(config: RulesConfig) -> list[tuple[Rule, Any]]:
    """The enabled per-sample rules with their params, cached on the (immutable) config."""
    cached: list[tuple[Rule, Any]] | None = getattr(config, "_active", None)
    if cached is None:
        cached = [(rule, config[rule.rule]) for rule in SAMPLE_RULES if config[rule.rule].enabled]
        object.__setattr__(config, "_active", cached)
    return cached


class TwinState:
    __slots__ = (
        "anchor", "anchor_soc_pct", "anchor_ts_ms", "applied", "battery_power_w", "config", "device_id",
        "devices", "facts", "grid_status", "held", "ignored", "installation_id", "issued_ms", "last_ts_ms",
        "load_power_w", "min_out_wh", "mode", "mode_ts_ms",
        "net_out_wh", "plan", "prev_battery_w", "prev_ts_ms", "rejected", "reported_plan_id", "revision",
        "site_power_w", "soc_pct",
        "solar_power_w", "stormwatch", "throughput_wh", "tracks", "unchanged_count", "unchanged_since_ms",
        "version", "vpp",
    )

    def __init__(self, installation_id: str, facts: InstallationFacts, config: RulesConfig) -> None:
        self.installation_id = installation_id
        self.facts = facts
        self.config = config
        self.version = 0
        self.devices: dict[str, int] = {}     # device → newest applied sample timestamp
        self.last_ts_ms = 0                    # newest applied sample of any device (0: none)
        self.device_id = ""
        # The newest sample's signals; None: not reported by it.
        self.site_power_w: float | None = None
        self.battery_power_w: float | None = None
        self.solar_power_w: float | None = None
        self.load_power_w: float | None = None
        self.soc_pct: float | None = None
        # Signals the newest sample did not report → their newest value and its time (None: none).
        self.held: dict[str, tuple[float, int]] | None = None
        self.grid_status = int(GridStatus.UNSPECIFIED)
        self.mode = int(OperationMode.UNSPECIFIED)
        self.prev_ts_ms = 0                    # integration: the previous sample with battery power (0: none)
        self.prev_battery_w = 0.0
        self.anchor = ANCHOR_NONE
        self.anchor_soc_pct = 0.0
        self.anchor_ts_ms = 0
        self.net_out_wh = 0.0                  # ∫ battery power since the anchor (discharge > 0)
        self.min_out_wh = 0.0                  # lowest net_out_wh since the anchor or the last gap
        self.throughput_wh = 0.0               # ∫ |battery power| since the anchor
        self.unchanged_since_ms = 0
        self.unchanged_count = 0
        self.applied = 0
        self.ignored = 0
        self.rejected = 0
        self.tracks: dict[RuleId, Track] = {}  # only rules with a run of violations or an open alert
        self.plan: DesiredPlan | None = None    # the desired state: what the device should run
        self.revision = 0                      # of the desired state: +1 with every change
        self.issued_ms = 0                     # when the newest revision was decided
        self.mode_ts_ms = 0                    # the device's newest StateReport
        self.reported_plan_id = ""             # the plan the device said it runs
        self.stormwatch = sw.StormWatchState()
        self.vpp = vpp.VppState()

    # ------------------------------------------------------------------ samples

    def apply(self, s: Sample, now_ms: int, out: list[AlertEvent]) -> int:
        """Folds one sample in and runs the rules. Returns 1 applied, 0 ignored, -1 rejected."""
        last = self.devices.get(s.device_id)
        if last is not None and s.ts_ms <= last:
            self.ignored += 1
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
            self.rejected += 1
            self.version += 1
            if implausible.enabled:
                self._observe(RuleId.IMPLAUSIBLE_VALUE, now_ms, _implausible(s, limit, now_ms), implausible, out)
            return -1
        self._fold(s, complete)
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

    def _fold(self, s: Sample, complete: bool) -> None:
        ts, battery, soc = s.ts_ms, s.battery_power_w, s.state_of_charge_pct
        if battery is not None:   # the integral runs from one battery reading to the next
            balance = self.config[RuleId.BATTERY_ENERGY_BALANCE]
            if self.prev_ts_ms:
                dt_ms = ts - self.prev_ts_ms
                if 0 < dt_ms <= balance.max_gap_s * 1_000:
                    self.net_out_wh += (self.prev_battery_w + battery) * dt_ms / (2 * _MS_PER_H)
                    self.throughput_wh += (abs(self.prev_battery_w) + abs(battery)) * dt_ms / (2 * _MS_PER_H)
                    if self.net_out_wh < self.min_out_wh:
                        self.min_out_wh = self.net_out_wh
                elif dt_ms > 0:
                    self.anchor = ANCHOR_NONE
                    self.min_out_wh = self.net_out_wh
            if ts > self.prev_ts_ms:
                self.prev_ts_ms, self.prev_battery_w = ts, battery
            if soc is not None:
                if soc >= balance.full_soc_pct and battery <= _ANCHOR_IDLE_W:
                    self._anchor(ANCHOR_FULL, soc, ts)
                elif soc <= balance.empty_soc_pct and battery >= -_ANCHOR_IDLE_W:
                    self._anchor(ANCHOR_EMPTY, soc, ts)
        # Unreported signals compare equal (None == None): a stuck meter is stuck on what it reports.
        if (self.applied and s.site_power_w == self.site_power_w and battery == self.battery_power_w
                and s.solar_power_w == self.solar_power_w and s.load_power_w == self.load_power_w
                and soc == self.soc_pct):
            self.unchanged_count += 1
        else:
            self.unchanged_count, self.unchanged_since_ms = 0, ts
        self.devices[s.device_id] = ts
        if ts >= self.last_ts_ms:
            if not complete or self.held is not None:
                self._hold_newest(s)
            self.last_ts_ms = ts
            self.device_id = s.device_id
            self.site_power_w, self.battery_power_w = s.site_power_w, battery
            self.solar_power_w, self.load_power_w = s.solar_power_w, s.load_power_w
            self.soc_pct, self.grid_status = soc, s.grid_status
        elif (self.site_power_w is None or self.battery_power_w is None or self.solar_power_w is None
              or self.load_power_w is None or self.soc_pct is None):
            self._hold_older(s)
        self.applied += 1
        self.version += 1

    def _newest(self) -> tuple[tuple[str, float | None], ...]:
        return (("site_power_w", self.site_power_w), ("battery_power_w", self.battery_power_w),
                ("solar_power_w", self.solar_power_w), ("load_power_w", self.load_power_w),
                ("state_of_charge_pct", self.soc_pct))

    def _hold_newest(self, s: Sample) -> None:
        """`s` becomes the newest sample: a signal it lacks keeps its newest value (the one of the
        sample it replaces, or one held already); a signal it reports needs none held."""
        held = self.held or {}
        for name, before in self._newest():
            if getattr(s, name) is not None:
                held.pop(name, None)
            elif before is not None:
                held[name] = (before, self.last_ts_ms)
        self.held = held or None

    def _hold_older(self, s: Sample) -> None:
        """A sample older than the newest (another device's) may carry a signal the newest lacks."""
        held = self.held or {}
        for name, newest in self._newest():
            value = getattr(s, name)
            if newest is None and value is not None:
                known = held.get(name)
                if known is None or known[1] < s.ts_ms:
                    held[name] = (value, s.ts_ms)
        self.held = held or None

    def last_reported(self) -> dict[str, tuple[float, int]]:
        """Every signal ever reported: its newest value and that sample's time (Unix ms)."""
        newest = {name: (value, self.last_ts_ms) for name, value in self._newest() if value is not None}
        return {**(self.held or {}), **newest}

    def _anchor(self, kind: int, soc: float, ts: int) -> None:
        self.anchor, self.anchor_soc_pct, self.anchor_ts_ms = kind, soc, ts
        self.net_out_wh = self.throughput_wh = self.min_out_wh = 0.0

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
        if not params.enabled or not self.last_ts_ms:
            return
        violation = stale_violation(self.last_ts_ms, params, now_ms)
        if violation is None and RuleId.TELEMETRY_STALE not in self.tracks:
            return
        at_ms = self.last_ts_ms + int(params.stale_after_s * 1_000) if violation is not None else self.last_ts_ms
        track = self.tracks.get(RuleId.TELEMETRY_STALE)
        if violation is not None and track is not None and track.alert is not None:
            at_ms = max(track.alert.last_seen_ms, now_ms)
        self._observe(RuleId.TELEMETRY_STALE, at_ms, violation, params, out)

    def plan_active(self, now_ms: int) -> bool:
        return self.plan is not None and self.plan.active_step(now_ms) is not None

    # ------------------------------------------------------------------ desired state, programs

    def set_plan(self, plan: DesiredPlan | None) -> None:
        """Sets the desired plan without a command (tests of rules that look at it)."""
        self.plan = plan
        self.version += 1

    def state_reported(self, report: DeviceStateReported, now_ms: int, commands: list[TwinCommand],
                       notices: list[CustomerNotice]) -> None:
        """What the device says it runs (mode, plan). The newest report wins: an older one arriving
        late changes nothing."""
        if report.ts_ms < self.mode_ts_ms:
            return
        self.mode, self.mode_ts_ms, self.reported_plan_id = int(report.mode), report.ts_ms, report.active_plan_id
        self.version += 1

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

    # ------------------------------------------------------------------ StormWatch and VPP

    def _prefs(self) -> sw.InstallationPrefs:
        return sw.InstallationPrefs(self.facts.stormwatch_enabled, sw.Priority(self.facts.priority),
                                    _MODE_NAMES.get(OperationMode(self.mode), "self_consumption"))

    def storm_alert(self, event: sw.StormAlertEvent | sw.OptOut, now_ms: int, commands: list[TwinCommand],
                    notices: list[CustomerNotice]) -> None:
        """A weather alert change for this installation, or the owner's opt-out of one."""
        self._stormwatch(event, now_ms, commands, notices, Source.STORMWATCH)

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
        restore = "self_consumption"
        for decision in decided:
            if isinstance(decision, sw.DeclineVppEvent):
                commands.append(DeclineEvent(self.installation_id, decision.event_id, decision.reason))
                current = self.vpp.current
                if current is not None and current.event_id == decision.event_id:
                    self.vpp = replace(self.vpp, current=replace(current, status=vpp.Participation.DECLINED,
                                                                 reason=decision.reason))
            elif isinstance(decision, sw.RestoreOperationMode):
                restore = decision.mode
        self._notify(notes, notices)
        self._replan(source, restore, now_ms, commands)

    def storm_tick(self, now_ms: int, commands: list[TwinCommand], notices: list[CustomerNotice]) -> None:
        """Ends storms and VPP events whose time has passed; nothing to do without them."""
        if self.stormwatch.storms or self.stormwatch.vpp is not None:
            self._stormwatch(sw.Tick(), now_ms, commands, notices, Source.STORMWATCH)
        current = self.vpp.current
        if current is not None and to_ms(current.end) <= now_ms:
            status = vpp.Participation.ENDED if current.status is vpp.Participation.ACCEPTED else current.status
            self.vpp = vpp.finish(self.vpp, status)
            self.version += 1
            self._replan(Source.VPP, self._prefs().operation_mode, now_ms, commands)

    def vpp_event(self, event: vpp.VppEvent, now_ms: int, commands: list[TwinCommand],
                  notices: list[CustomerNotice]) -> None:
        """A grid event for this installation (dispatch, cancel, the customer's opt-out), arbitrated
        against StormWatch by the installation's priority; the plan is recomposed."""
        state, current = self.vpp, self.vpp.current
        if isinstance(event, vpp.VppDispatch):
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
            return
        if current is None or current.event_id != event.event_id:
            if isinstance(event, vpp.VppOptOut) and event.event_id not in state.opted_out:
                self.vpp = vpp.opt_out(state, event.event_id)
                self.version += 1
            return
        if isinstance(event, vpp.VppOptOut):
            self.vpp = vpp.finish(vpp.opt_out(state, event.event_id), vpp.Participation.OPTED_OUT)
        else:
            self.vpp = vpp.finish(state, vpp.Participation.CANCELLED)
        self.version += 1
        self._stormwatch(sw.VppEventEnded(event.event_id), now_ms, commands, notices, Source.VPP)
        self._replan(Source.VPP, self._prefs().operation_mode, now_ms, commands)

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
        if plan == self.plan:
            return
        self.plan = plan
        self.revision += 1
        self.issued_ms = max(now_ms, self.issued_ms + 1)
        self.version += 1
        if plan is not None:
            commands.append(RunPlan(self.installation_id, self.revision, self.issued_ms, plan, source,
                                    tuple(s.alert_id for s in self.stormwatch.storms),
                                    current.event_id if current is not None else ""))
        else:
            commands.append(RestoreMode(self.installation_id, self.revision, self.issued_ms, restore_mode,
                                        f"{source.value} over", source))

    # ------------------------------------------------------------------ views and snapshots

    def view(self, now_ms: int) -> dict[str, Any]:
        """What the mobile app shows: plain values, times in Unix ms."""
        plan = self.plan
        step = plan.active_step(now_ms) if plan is not None else None
        return {
            "installation_id": self.installation_id, "version": self.version,
            "reported": {   # None: not reported by the newest sample
                "device_id": self.device_id, "timestamp_unix_ms": self.last_ts_ms,
                "site_power_w": self.site_power_w, "battery_power_w": self.battery_power_w,
                "solar_power_w": self.solar_power_w, "load_power_w": self.load_power_w,
                "state_of_charge_pct": self.soc_pct, "grid_status": self.grid_status, "mode": self.mode,
                "last_reported": {name: {"value": value, "timestamp_unix_ms": at}
                                  for name, (value, at) in sorted(self.last_reported().items())},
            },
            "desired": {
                "plan_id": f"{self.installation_id}:r{self.revision}" if plan is not None else "",
                "plan_source": "+".join(s.value for s in plan.sources) if plan is not None else "",
                "active_action": _ACTIONS[type(step)] if step is not None else "",
                "target_soc_pct": _target_soc(step),
                "revision": self.revision,
                "issued_unix_ms": self.issued_ms,
                "reported_plan_id": self.reported_plan_id,
                "state_reported_unix_ms": self.mode_ts_ms,
            },
            "energy": {
                "anchor": {ANCHOR_NONE: "none", ANCHOR_FULL: "full", ANCHOR_EMPTY: "empty"}[self.anchor],
                "anchor_unix_ms": self.anchor_ts_ms, "net_out_wh": self.net_out_wh,
                "throughput_wh": self.throughput_wh,
            },
            "alerts": [alert_to_dict(a) for a in self.open_alerts()],
            "counts": {"applied": self.applied, "ignored": self.ignored, "rejected": self.rejected},
            "stormwatch": sw.view_to_dict(sw.view(self.stormwatch)),
            "vpp": vpp.view(self.vpp),
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT, "version": self.version, "devices": dict(self.devices),
            "last_ts_ms": self.last_ts_ms,
            "reported": [self.device_id, self.site_power_w, self.battery_power_w, self.solar_power_w,
                         self.load_power_w, self.soc_pct, self.grid_status, self.mode],   # null: not reported
            "held": {name: list(value_at) for name, value_at in self.held.items()} if self.held else None,
            "prev": [self.prev_ts_ms, self.prev_battery_w],
            "anchor": [self.anchor, self.anchor_soc_pct, self.anchor_ts_ms, self.net_out_wh, self.throughput_wh,
                       self.min_out_wh],
            "unchanged": [self.unchanged_since_ms, self.unchanged_count],
            "counts": [self.applied, self.ignored, self.rejected],
            "tracks": {rule.value: [t.streak, t.streak_first_ms, t.ok_streak, t.ok_since_ms, t.updated_ms,
                                    alert_to_dict(t.alert) if t.alert is not None else None]
                       for rule, t in self.tracks.items()},
            "plan": plan_to_dict(self.plan) if self.plan is not None else None,
            "desired": [self.revision, self.issued_ms],
            "device_state": [self.mode_ts_ms, self.reported_plan_id],
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
        t.devices = {str(k): int(v) for k, v in data["devices"].items()}
        t.last_ts_ms = int(data["last_ts_ms"])
        (t.device_id, t.site_power_w, t.battery_power_w, t.solar_power_w, t.load_power_w, t.soc_pct,
         t.grid_status, t.mode) = data["reported"]
        t.held = {name: (float(v), int(at)) for name, (v, at) in data["held"].items()} if data.get("held") else None
        t.prev_ts_ms, t.prev_battery_w = data["prev"]
        t.anchor, t.anchor_soc_pct, t.anchor_ts_ms, t.net_out_wh, t.throughput_wh = data["anchor"][:5]
        # Format 1 has no lowest point: the window starts at the restore (never a false alert).
        t.min_out_wh = data["anchor"][5] if len(data["anchor"]) > 5 else t.net_out_wh
        t.unchanged_since_ms, t.unchanged_count = data["unchanged"]
        t.applied, t.ignored, t.rejected = data["counts"]
        for rule_name, (streak, first, ok, ok_since, updated, alert) in data["tracks"].items():
            track = Track()
            track.streak, track.streak_first_ms, track.ok_streak, track.ok_since_ms = streak, first, ok, ok_since
            track.updated_ms = updated
            track.alert = alert_from_dict(alert) if alert is not None else None
            t.tracks[RuleId(rule_name)] = track
        t.plan = _plan_from_snapshot(data.get("plan"))
        t.revision, t.issued_ms = data.get("desired", (0, 0))
        t.mode_ts_ms, t.reported_plan_id = data.get("device_state", (0, ""))
        t.stormwatch = sw.state_from_dict(data.get("stormwatch"))
        t.vpp = vpp.state_from_dict(data.get("vpp"))
        return t


TwinMessage = sw.StormAlertEvent | sw.OptOut | vpp.VppEvent | DeviceStateReported
Handler = Callable[[TwinState, Any, int, list[TwinCommand], list[CustomerNotice]], None]
HANDLERS: dict[type, Handler] = {
    sw.StormAlertEvent: TwinState.storm_alert, sw.OptOut: TwinState.storm_alert,
    vpp.VppDispatch: TwinState.vpp_event, vpp.VppCancel: TwinState.vpp_event, vpp.VppOptOut: TwinState.vpp_event,
    DeviceStateReported: TwinState.state_reported,
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
