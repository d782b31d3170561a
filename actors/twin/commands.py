"""The twin → control contract: the imperative commands a twin issues. Standard library only.

A twin's desired state is a sequence of *revisions*: every change of what the device should run
(a plan, or no plan: back to the device's own mode) is a new revision, numbered 1, 2, 3, … per
installation and never reused. A command's id is (installation, revision), so

- a decision replayed after a crash is stored and sent once (idempotent by twin and revision);
- the same plan desired again later (A → A+X → A) is a new revision, sent again, so the device
  always ends on the twin's newest desired state;
- revisions order the commands: carrying out an older revision after a newer one is refused
  (`services/control/vpp/intents.py`), and the device rejects a plan issued before its active one.

Plan steps are what the twin wants of the battery, each with its reason:

    ScheduleCharge      charge to a target by the step's end (a storm ahead, or before a grid event)
    HoldReserve         keep the charge: neither charge nor discharge (a storm is on its way)
    DischargeForEvent   discharge at the installation's share of a grid event, down to a floor

Commands:

    RunPlan       run these steps (replaces whatever the device ran before)
    RestoreMode   run no plan: the device returns to its own operation mode
    DeclineEvent  no device command: the twin will not take part in a grid event (recorded on
                  the event's participant)

`to_record` / `from_record` are the one place where commands become stored JSON and back.
Times are integer Unix milliseconds, powers W, charge in percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Source(StrEnum):
    """What made the twin change its desired state."""

    STORMWATCH = "stormwatch"
    VPP = "vpp"


@dataclass(frozen=True)
class ScheduleCharge:
    start_ms: int
    end_ms: int
    target_soc_pct: float


@dataclass(frozen=True)
class HoldReserve:
    start_ms: int
    end_ms: int
    soc_pct: float


@dataclass(frozen=True)
class DischargeForEvent:
    start_ms: int
    end_ms: int
    power_w: float
    floor_soc_pct: float
    event_id: str = ""


Step = ScheduleCharge | HoldReserve | DischargeForEvent


@dataclass(frozen=True)
class DesiredPlan:
    """The steps a twin wants its device to run, in time order, and who asked for them."""

    steps: tuple[Step, ...]
    sources: tuple[Source, ...] = ()

    def active_step(self, now_ms: int) -> Step | None:
        return next((s for s in self.steps if s.start_ms <= now_ms < s.end_ms), None)

    def ends_ms(self) -> int:
        return max((s.end_ms for s in self.steps), default=0)


@dataclass(frozen=True)
class RunPlan:
    installation_id: str
    revision: int
    issued_ms: int
    plan: DesiredPlan
    source: Source
    alert_ids: tuple[str, ...] = ()
    event_id: str = ""


@dataclass(frozen=True)
class RestoreMode:
    installation_id: str
    revision: int
    issued_ms: int
    mode: str                       # "self_consumption" | "backup" | "autonomous"
    reason: str
    source: Source


@dataclass(frozen=True)
class DeclineEvent:
    installation_id: str
    event_id: str
    reason: str
    source: Source = Source.STORMWATCH


TwinCommand = RunPlan | RestoreMode | DeclineEvent


def command_id(command: TwinCommand) -> str:
    """Stable id: a function of (installation, revision), or of the declined event. Also the plan id
    the device reports back (ids are made of A-Z a-z 0-9 _ . : -, as installation ids are)."""
    if isinstance(command, DeclineEvent):
        return f"{command.installation_id}:decline:{command.event_id}"
    return f"{command.installation_id}:r{command.revision}"


# ------------------------------------------------------------------ stored form (JSON values)


def plan_to_dict(plan: DesiredPlan) -> dict[str, Any]:
    return {"sources": [s.value for s in plan.sources], "steps": [_step_to_list(s) for s in plan.steps]}


def plan_from_dict(d: dict[str, Any]) -> DesiredPlan:
    return DesiredPlan(tuple(_step_from_list(s) for s in d["steps"]), tuple(Source(s) for s in d.get("sources", ())))


def _step_to_list(step: Step) -> list[Any]:
    match step:
        case ScheduleCharge(start, end, target):
            return ["charge", start, end, target]
        case HoldReserve(start, end, soc):
            return ["hold", start, end, soc]
        case DischargeForEvent(start, end, power, floor, event_id):
            return ["discharge", start, end, power, floor, event_id]
    raise TypeError(f"not a plan step: {step!r}")


def _step_from_list(raw: list[Any]) -> Step:
    kind, start, end = raw[0], int(raw[1]), int(raw[2])
    if kind == "charge":
        return ScheduleCharge(start, end, float(raw[3]))
    if kind == "hold":
        return HoldReserve(start, end, float(raw[3]))
    if kind == "discharge":
        return DischargeForEvent(start, end, float(raw[3]), float(raw[4]), str(raw[5]))
    raise ValueError(f"unknown plan step {kind!r}")


def to_record(command: TwinCommand) -> tuple[str, str, str, str, dict[str, Any]]:
    """(command id, installation, source, kind, payload) as `twin_control_intents` stores them."""
    match command:
        case RunPlan():
            payload: dict[str, Any] = {"revision": command.revision, "issued_ms": command.issued_ms,
                                       "plan": plan_to_dict(command.plan), "alert_ids": list(command.alert_ids),
                                       "event_id": command.event_id}
            kind = "run_plan"
        case RestoreMode():
            payload = {"revision": command.revision, "issued_ms": command.issued_ms, "mode": command.mode,
                       "reason": command.reason}
            kind = "restore_mode"
        case DeclineEvent():
            payload = {"event_id": command.event_id, "reason": command.reason}
            kind = "decline_event"
    return command_id(command), command.installation_id, command.source.value, kind, payload


def from_record(installation_id: str, source: str, kind: str, payload: dict[str, Any]) -> TwinCommand:
    """The command a stored record holds; ValueError for a record this version cannot read."""
    src = Source(source)
    if kind == "run_plan":
        return RunPlan(installation_id, int(payload["revision"]), int(payload["issued_ms"]),
                       plan_from_dict(payload["plan"]), src, tuple(payload.get("alert_ids", ())),
                       str(payload.get("event_id", "")))
    if kind == "restore_mode":
        return RestoreMode(installation_id, int(payload["revision"]), int(payload["issued_ms"]), str(payload["mode"]),
                           str(payload.get("reason", "")), src)
    if kind == "decline_event":
        return DeclineEvent(installation_id, str(payload["event_id"]), str(payload.get("reason", "")), src)
    raise ValueError(f"unknown twin command kind {kind!r}")
