"""StormWatch × grid events × the owner's choices → the one plan a device runs. Pure.

Priority, highest first (the architecture's order; the owner sets rows 3 and 4 by `priority`):

| rank | who                         | what it means for the plan                                          |
|------|-----------------------------|---------------------------------------------------------------------|
| 1    | safety                      | a discharge never goes below the backup reserve (its floor)          |
| 2    | the owner's opt-out         | an opted-out storm or event asks for nothing (never reaches here)    |
| 3    | StormWatch (stormwatch_first)| a watched storm declines a grid event; the plan is the storm charge |
|      | grid event (vpp_first)       | the event runs; the storm charge starts when it ends               |
| 4    | the other of the two        | whatever does not overlap the winner's steps is kept                |
| 5    | economics, self-consumption | no plan: the device follows its own operation mode                  |

`decide` settles rows 3 and 4 (which of the two yields, given the owner's priority); `compose`
builds the plan from what is left: the storm's charge-and-hold steps and the accepted event's
pre-charge and discharge, the storm's steps first wherever the two would overlap. When an
event or storm ends, the twin composes again from what remains, so the battery reverts to the
other's plan or to its own mode.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from actors.twin.commands import DesiredPlan, DischargeForEvent, HoldReserve, ScheduleCharge, Source, Step
from gridtwin.unixtime import to_ms
from services.assets.model import Priority


@dataclass(frozen=True)
class StormCharge:
    """What StormWatch wants: charge to `target_soc_pct` from `start_at`, complete by
    `complete_by`, and hold until `hold_until`."""

    target_soc_pct: float
    start_at: dt.datetime
    complete_by: dt.datetime
    hold_until: dt.datetime


@dataclass(frozen=True)
class EventShare:
    """The grid event the installation takes part in: pre-charge from `precharge_from`, then
    discharge `power_w` over [start, end)."""

    event_id: str
    start: dt.datetime
    end: dt.datetime
    power_w: float
    precharge_from: dt.datetime | None = None


@dataclass(frozen=True)
class Decision:
    """Rows 3 and 4: `decline` — the event yields to the storm; `defer_storm_until` — the storm
    charge waits for the end of the event (None: it does not wait)."""

    decline: bool = False
    defer_storm_until: dt.datetime | None = None


def decide(storm_watched: bool, event_end: dt.datetime | None, priority: Priority, now: dt.datetime) -> Decision:
    """Who yields when a storm is watched and a grid event (ending at `event_end`) runs or is
    coming at the same time."""
    if not storm_watched or event_end is None or event_end <= now:
        return Decision()
    if priority is Priority.VPP_FIRST:
        return Decision(defer_storm_until=event_end)
    return Decision(decline=True)


def compose(storm: StormCharge | None, event: EventShare | None, reserve_pct: float) -> DesiredPlan | None:
    """The one plan for the device (None: none is needed). `event` is an accepted event only."""
    storm_steps: list[Step] = []
    if storm is not None:
        storm_steps = [ScheduleCharge(to_ms(storm.start_at), to_ms(storm.complete_by), storm.target_soc_pct),
                       HoldReserve(to_ms(storm.complete_by), to_ms(storm.hold_until), storm.target_soc_pct)]
    event_steps: list[Step] = []
    if event is not None:
        if event.precharge_from is not None and event.precharge_from < event.start:
            event_steps.append(ScheduleCharge(to_ms(event.precharge_from), to_ms(event.start), 100.0))
        event_steps.append(DischargeForEvent(to_ms(event.start), to_ms(event.end), event.power_w, reserve_pct,
                                             event.event_id))
    busy = [(s.start_ms, s.end_ms) for s in storm_steps if s.start_ms < s.end_ms]
    kept = [s for s in event_steps if not any(s.start_ms < e and b < s.end_ms for b, e in busy)]
    steps = sorted((s for s in [*storm_steps, *kept] if s.start_ms < s.end_ms), key=lambda s: s.start_ms)
    if not steps:
        return None
    sources = tuple(src for src, part in ((Source.VPP, kept), (Source.STORMWATCH, storm_steps)) if part)
    return DesiredPlan(tuple(steps), sources)
