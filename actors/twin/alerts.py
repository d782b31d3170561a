"""The alert lifecycle: a run of violations becomes one alert (raised → ongoing → cleared).

`Track` is the per-(installation, rule) state machine:

- `raise_after` consecutive violating samples raise an alert whose first_seen is the first
  sample of the run (so the alert id is a function of the telemetry alone);
- while it stays open, further violations move last_seen and count samples; an UPDATED event is
  recorded when the severity rises or at most every `UPDATE_INTERVAL_MS` of sample time (a
  persistent condition is one alert, not one event per sample). In between, `refreshed` says
  that last_seen and samples moved since the alert was last handed out (`take_refresh`): the
  shard writes such refreshes in one batched statement every second or so, so stored alerts
  stay current within seconds without a write per sample;
- `clear_after` consecutive good samples clear it (cleared at the first good sample's time).
"""

from __future__ import annotations

import copy

from actors.twin.config import RuleParams
from actors.twin.model import Alert, AlertEvent, AlertEventKind, AlertState, RuleId, Violation

UPDATE_INTERVAL_MS = 300_000


class Track:
    __slots__ = ("alert", "ok_since_ms", "ok_streak", "refreshed", "streak", "streak_first_ms", "streak_worst",
                 "updated_ms")

    def __init__(self) -> None:
        self.streak = 0
        self.streak_first_ms = 0
        self.streak_worst = 0.0
        self.ok_streak = 0
        self.ok_since_ms = 0
        self.alert: Alert | None = None
        self.updated_ms = 0
        self.refreshed = False

    @property
    def idle(self) -> bool:
        return self.alert is None and self.streak == 0

    def observe(self, installation_id: str, rule: RuleId, ts_ms: int, violation: Violation | None,
                params: RuleParams, out: list[AlertEvent]) -> None:
        alert = self.alert
        if violation is None:
            self.streak = 0
            if alert is None:
                return
            if self.ok_streak == 0:
                self.ok_since_ms = ts_ms
            self.ok_streak += 1
            if self.ok_streak >= params.clear_after:
                alert.state = AlertState.CLEARED
                alert.cleared_ms = self.ok_since_ms
                out.append(AlertEvent(AlertEventKind.CLEARED, copy.deepcopy(alert)))
                self.alert = None
                self.ok_streak = 0
            return
        self.ok_streak = 0
        severity = violation.severity or params.severity
        if alert is not None:
            alert.last_seen_ms = max(alert.last_seen_ms, ts_ms)
            alert.samples += 1
            worst = alert.details.get("worst")
            if isinstance(worst, float) and abs(violation.value) > abs(worst):
                alert.details["worst"] = _finite_or_str(violation.value)
            if severity > alert.severity or ts_ms - self.updated_ms >= UPDATE_INTERVAL_MS:
                alert.severity = max(alert.severity, severity)
                alert.state = AlertState.ONGOING
                alert.details.update(_details(violation))
                self.updated_ms = ts_ms
                self.refreshed = False
                out.append(AlertEvent(AlertEventKind.UPDATED, copy.deepcopy(alert)))
            else:
                self.refreshed = True
            return
        if self.streak == 0:
            self.streak_first_ms = ts_ms
            self.streak_worst = violation.value
        elif abs(violation.value) > abs(self.streak_worst):
            self.streak_worst = violation.value
        self.streak += 1
        if self.streak >= params.raise_after:
            first = self.streak_first_ms
            self.alert = Alert(
                alert_id=Alert.make_id(installation_id, rule, first), installation_id=installation_id,  # type: ignore[arg-type]
                rule=rule, severity=severity, state=AlertState.RAISED, first_seen_ms=first, last_seen_ms=ts_ms,
                samples=self.streak, details={**_details(violation), "worst": _finite_or_str(self.streak_worst)},
            )
            self.streak = 0
            self.updated_ms = ts_ms
            out.append(AlertEvent(AlertEventKind.RAISED, copy.deepcopy(self.alert)))

    def take_refresh(self) -> Alert | None:
        """A copy of the open alert if it moved since it was last handed out, else None."""
        if not self.refreshed or self.alert is None:
            return None
        self.refreshed = False
        return copy.copy(self.alert)

    def adopt(self, alert: Alert) -> None:
        """Takes over an alert that is open in storage (after a restart): it goes on or clears
        instead of a second one being raised."""
        self.alert = alert
        self.streak = 0
        self.updated_ms = alert.last_seen_ms


def _details(v: Violation) -> dict[str, object]:
    details: dict[str, object] = {"value": _finite_or_str(v.value), "limit": _finite_or_str(v.limit)}
    if v.note:
        details["note"] = v.note
    return details


def _finite_or_str(x: float) -> float | str:
    return float(x) if x == x and abs(x) != float("inf") else str(x)
