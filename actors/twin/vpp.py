"""VPP participation of one installation. Pure: times are passed in, decisions returned as values.
The arbitration that turns StormWatch and VPP into the one plan a device runs is
`arbitration.py`; in short:

Priority (fixed, as the architecture says; the customer adjusts StormWatch vs VPP):
  safety (never below the backup reserve) > customer opt-out > StormWatch > VPP > economics.
- An opted-out event is declined, whatever else holds.
- A storm watched with `stormwatch_first` declines the event (StormWatch emits DeclineVppEvent);
  with `vpp_first` the event runs and StormWatch charges after it (StormWatch moves its start).
- Otherwise the event is accepted: charge toward full off-peak before it (from `precharge_from`),
  discharge at this installation's share of the power during it, down to the backup reserve.
- When an event ends (window over, cancelled, opted out) the plan is recomposed from what is left,
  so the battery reverts to the storm plan or to its usual mode.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from gridtwin.unixtime import from_ms, to_ms

MAX_REMEMBERED = 64


class Participation(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"        # StormWatch has priority, or the installation cannot take part
    OPTED_OUT = "opted_out"
    CANCELLED = "cancelled"
    ENDED = "ended"


@dataclass(frozen=True)
class VppDispatch:
    """A grid event for this installation (a new one, or a newer revision of it)."""

    event_id: str
    revision: int
    start: dt.datetime
    end: dt.datetime
    power_w: float                       # this installation's share of the discharge
    precharge_from: dt.datetime | None = None
    program: str = ""


@dataclass(frozen=True)
class VppCancel:
    event_id: str


@dataclass(frozen=True)
class VppOptOut:
    event_id: str


VppEvent = VppDispatch | VppCancel | VppOptOut


@dataclass(frozen=True)
class Commitment:
    event_id: str
    revision: int
    start: dt.datetime
    end: dt.datetime
    power_w: float
    precharge_from: dt.datetime | None
    status: Participation
    reason: str = ""
    program: str = ""


@dataclass(frozen=True)
class VppState:
    current: Commitment | None = None
    opted_out: tuple[str, ...] = ()
    finished: tuple[tuple[str, str], ...] = ()     # (event id, final status), newest last, bounded

    def status_of(self, event_id: str) -> str:
        if self.current is not None and self.current.event_id == event_id:
            return self.current.status.value
        return next((s for e, s in reversed(self.finished) if e == event_id), "")


def opt_out(state: VppState, event_id: str) -> VppState:
    """The customer will not take part in `event_id` (remembered, bounded)."""
    return replace(state, opted_out=(*state.opted_out, event_id)[-MAX_REMEMBERED:])


def finish(state: VppState, status: Participation) -> VppState:
    """The current event leaves with `status`."""
    if state.current is None:
        return state
    done = (*state.finished, (state.current.event_id, status.value))[-MAX_REMEMBERED:]
    return replace(state, current=None, finished=done)



# ------------------------------------------------------------------ snapshots and the app's view


def state_to_dict(s: VppState) -> dict[str, Any]:
    c = s.current
    return {"current": None if c is None else [
                c.event_id, c.revision, to_ms(c.start), to_ms(c.end), c.power_w,
                to_ms(c.precharge_from) if c.precharge_from is not None else None, c.status.value, c.reason, c.program],
            "opted_out": list(s.opted_out), "finished": [list(f) for f in s.finished]}


def state_from_dict(d: dict[str, Any] | None) -> VppState:
    if not d or "current" not in d:      # absent, or the placeholder of older snapshots
        return VppState()
    c = d["current"]
    current = None if c is None else Commitment(
        c[0], int(c[1]), from_ms(c[2]), from_ms(c[3]), float(c[4]), from_ms(c[5]) if c[5] is not None else None,
        Participation(c[6]), c[7], c[8])
    return VppState(current, tuple(d.get("opted_out", ())), tuple((e, st) for e, st in d.get("finished", ())))


@dataclass(frozen=True)
class VppView:
    """The grid event as the app shows it (times in Unix ms; event_id "" when none)."""

    event_id: str = ""
    status: str = ""                    # accepted, declined, opted_out, cancelled, ended
    start_unix_ms: int = 0
    end_unix_ms: int = 0
    power_w: float = 0.0
    program: str = ""
    reason: str = ""


def view(s: VppState) -> VppView:
    c = s.current
    if c is None:
        return VppView()
    return VppView(c.event_id, c.status.value, to_ms(c.start), to_ms(c.end), c.power_w, c.program, c.reason)
