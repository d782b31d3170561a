"""Twins' commands → device commands. The twins store every decision in the outbox
`twin_control_intents` (`actors/twin/commands.py`: RunPlan, RestoreMode, DeclineEvent, one row
per command id); `IntentRelay.carry_out` turns them into commands at once (the VPP dispatcher
hands over what the twins just decided), and `sweep` picks up whatever is left open (StormWatch
decisions, a crash between deciding and sending) every `sweep_s`.

Everything goes through the `Control` facade and its validation (a command the twin got wrong is
refused and recorded as such, never sent). Mapping, at this edge only:
RunPlan → a ControlPlan (ScheduleCharge → charge_to, HoldReserve → hold, DischargeForEvent →
discharge), its plan id the command id; RestoreMode → ClearPlan (the device ends the plan and
returns to its own mode); DeclineEvent → no command, recorded on the event's participant.

Exactly once and in order on the device:
- the command id (installation, revision) is the idempotency key, so carrying a command out
  twice finds it already stored, and devices execute a command id at most once;
- of one installation's revisions only the newest is carried out: older ones in the same batch,
  or older than one already carried out, are recorded `superseded by rN` and not sent (one relay
  at a time per process: `carry_out` is serialized), so the device always ends on the twin's
  newest desired state, whatever order the dispatcher and the sweep see them in.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import asyncpg
from prometheus_client import Counter

from actors.twin.commands import (
    DeclineEvent,
    DischargeForEvent,
    HoldReserve,
    RestoreMode,
    RunPlan,
    ScheduleCharge,
    Step,
    TwinCommand,
    command_id,
    from_record,
)
from gridtwin import unixtime
from gridtwin.aio import cancel_and_wait
from services.control.model import (
    ChargeTo,
    ClearPlan,
    CommandSpec,
    ControlPlan,
    Discharge,
    FanOutId,
    Hold,
    PlanStep,
)
from services.control.service import Control
from services.control.store import CommandStore, NewCommand, Refusal, Submitted

log = logging.getLogger(__name__)

CARRIED = Counter("gridtwin_control_intents_carried_out_total", "Twin commands carried out", ["kind", "outcome"])
RESTORE_TTL_S = 3_600.0
MIN_TTL_S = 60.0

_OPEN = """
SELECT intent_id, installation_id, source, kind, payload::text FROM twin_control_intents
 WHERE carried_out_at IS NULL AND created_at < now() - make_interval(secs => $1)
 ORDER BY created_at LIMIT $2
"""
# The newest revision already carried out per installation (a late older one must not follow it).
_CARRIED_REVISIONS = """
SELECT installation_id, max((payload->>'revision')::bigint) FROM twin_control_intents
 WHERE installation_id = ANY($1::text[]) AND carried_out_at IS NOT NULL AND payload ? 'revision'
   AND outcome NOT LIKE 'superseded%'
 GROUP BY installation_id
"""
_DONE = """
UPDATE twin_control_intents t SET carried_out_at = now(), outcome = x.outcome
  FROM unnest($1::text[], $2::text[]) AS x(id, outcome) WHERE t.intent_id = x.id AND t.carried_out_at IS NULL
"""
_DECLINED = """
UPDATE vpp_participants p SET status = 'declined', reason = x.reason, updated_at = now()
  FROM unnest($1::text[], $2::text[], $3::text[]) AS x(event_id, installation_id, reason)
 WHERE p.event_id = x.event_id AND p.installation_id = x.installation_id
"""


def _action(step: Step) -> ChargeTo | Discharge | Hold:
    match step:
        case ScheduleCharge(_, _, target):
            return ChargeTo(target)
        case DischargeForEvent(_, _, power, floor, _):
            return Discharge(power, floor)
        case HoldReserve():
            return Hold()
    raise TypeError(f"not a plan step: {step!r}")


def command_for(command: RunPlan | RestoreMode, now_ms: int) -> tuple[CommandSpec, float]:
    """The device command a twin's command asks for, with its time to live. A plan is what is
    left of it from `now_ms` (a storm's charge began when the watch did; a later revision of the
    same watch is sent from now); a plan with nothing left ends the active one."""
    if isinstance(command, RunPlan):
        steps = tuple(PlanStep(max(s.start_ms, now_ms), s.end_ms, _action(s))
                      for s in command.plan.steps if s.end_ms > now_ms)
        if steps:
            ttl_s = max((command.plan.ends_ms() - now_ms) / 1_000, MIN_TTL_S)
            return ControlPlan(steps, plan_id=command_id(command)), ttl_s
    return ClearPlan(plan_id=command_id(command)), RESTORE_TTL_S


def newest_revisions(commands: Sequence[RunPlan | RestoreMode], carried: dict[str, int],
                     ) -> tuple[list[RunPlan | RestoreMode], dict[str, int]]:
    """(the commands to send: the newest revision per installation, if newer than the one
    carried out; the others by id → the revision that supersedes them)."""
    newest: dict[str, RunPlan | RestoreMode] = {}
    for c in commands:
        best = newest.get(c.installation_id)
        if best is None or c.revision > best.revision:
            newest[c.installation_id] = c
    send = [c for c in newest.values() if c.revision > carried.get(c.installation_id, 0)]
    sent_ids = {command_id(c) for c in send}
    superseded = {command_id(c): max(newest[c.installation_id].revision, carried.get(c.installation_id, 0))
                  for c in commands if command_id(c) not in sent_ids}
    return send, superseded


class IntentRelay:
    def __init__(self, pool: asyncpg.Pool, commands: CommandStore, *, sweep_s: float = 2.0,
                 sweep_after_s: float = 2.0, batch: int = 5_000) -> None:
        self._pool = pool
        self._control = Control(commands)
        self._lock = asyncio.Lock()
        self._sweep_s, self._sweep_after_s, self._batch = sweep_s, sweep_after_s, batch
        self._task: asyncio.Task[None] | None = None

    async def carry_out(self, commands: Sequence[TwinCommand], *,
                        fanout_id: FanOutId | None = None) -> dict[str, str]:
        """Device commands for the twins' `commands` (one submission per source); returns twin
        command id → device command id for those that became device commands."""
        async with self._lock:
            return await self._carry_out(commands, fanout_id)

    async def _carry_out(self, commands: Sequence[TwinCommand], fanout_id: FanOutId | None) -> dict[str, str]:
        now_ms = unixtime.now_ms()
        outcomes: dict[str, str] = {}
        made: dict[str, str] = {}
        declined = [c for c in commands if isinstance(c, DeclineEvent)]
        for decline in declined:
            outcomes[command_id(decline)] = "recorded"
            CARRIED.labels("decline_event", "recorded").inc()
        revisions = [c for c in commands if isinstance(c, RunPlan | RestoreMode)]
        carried: dict[str, int] = {}
        if revisions:
            carried = dict(await self._pool.fetch(_CARRIED_REVISIONS, list({c.installation_id for c in revisions})))
        send, superseded = newest_revisions(revisions, carried)
        for cid, revision in superseded.items():
            outcomes[cid] = f"superseded by r{revision}"
            CARRIED.labels("revision", "superseded").inc()
        by_source: dict[str, list[tuple[RunPlan | RestoreMode, NewCommand]]] = {}
        for c in send:
            spec, ttl_s = command_for(c, now_ms)
            by_source.setdefault(c.source.value, []).append(
                (c, NewCommand(spec, ttl_s, installation_id=c.installation_id,
                               idempotency_key=f"intent:{command_id(c)}")))
        for source, pairs in by_source.items():
            results = await self._control.submit([n for _, n in pairs], source=source,
                                                 fanout_id=fanout_id if source == "vpp" else None)
            for (c, _), result in zip(pairs, results, strict=True):
                cid = command_id(c)
                if isinstance(result, Submitted):
                    made[cid] = outcomes[cid] = result.command.record.command_id
                    CARRIED.labels(type(c).__name__, "sent").inc()
                else:
                    assert isinstance(result, Refusal)
                    outcomes[cid] = f"refused: {result.error}"
                    CARRIED.labels(type(c).__name__, "refused").inc()
                    log.warning("twin command %s refused: %s", cid, result.error)
        if declined:
            await self._pool.execute(_DECLINED, [c.event_id for c in declined], [c.installation_id for c in declined],
                                     [c.reason for c in declined])
        if outcomes:
            await self._pool.execute(_DONE, list(outcomes), list(outcomes.values()))
        return made

    async def sweep(self) -> int:
        rows = await self._pool.fetch(_OPEN, self._sweep_after_s, self._batch)
        commands: list[TwinCommand] = []
        unreadable: list[str] = []
        for row in rows:
            try:
                commands.append(from_record(row[1], row[2], row[3], json.loads(row[4])))
            except (ValueError, KeyError, TypeError) as exc:   # written by another version: never sent
                log.error("twin command %s unreadable (%s): recorded, not carried out", row[0], exc)
                unreadable.append(row[0])
        if unreadable:
            await self._pool.execute(_DONE, unreadable, ["unreadable"] * len(unreadable))
        if commands:
            await self.carry_out(commands)
        return len(rows)

    async def _run(self) -> None:
        while True:
            try:
                while await self.sweep() >= self._batch:
                    pass
            except Exception:   # keep relaying; the outbox keeps what failed
                log.exception("intent sweep failed")
            await asyncio.sleep(self._sweep_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="intent-relay")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
