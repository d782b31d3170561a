"""Twins' control intents → commands. The twins store every decision in the outbox
`twin_control_intents`; `IntentRelay.carry_out` turns intents into commands at once (the VPP
dispatcher hands over what the twins just decided), and `sweep` picks up whatever is left open
(StormWatch decisions, a crash between deciding and sending) every `sweep_s`.

Exactly once on the device: the intent id is the command's idempotency key, so carrying an intent
out twice finds the command already stored; devices execute a command id at most once.
Mapping: control_plan → the plan (plan id = intent id: a newer plan supersedes an older pending
one); restore_mode → an empty plan that replaces the running one (the device returns to its
mode); decline_vpp_event → no command, recorded on the event's participant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence

import asyncpg
from prometheus_client import Counter

from actors.twin.model import ControlIntent
from gridtwin.aio import cancel_and_wait
from services.control.model import ChargeTo, CommandSpec, ControlPlan, Discharge, FanOutId, Hold, PlanStep
from services.control.store import CommandStore, NewCommand, Refusal, Submitted

log = logging.getLogger(__name__)

CARRIED = Counter("gridtwin_control_intents_carried_out_total", "Twin intents turned into commands", ["kind"])
RESTORE_TTL_S = 3_600.0
MIN_TTL_S = 60.0

_OPEN = """
SELECT intent_id, installation_id, source, kind, payload::text FROM twin_control_intents
 WHERE carried_out_at IS NULL AND created_at < now() - make_interval(secs => $1)
 ORDER BY created_at LIMIT $2
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


def _action(action: str, target_soc_pct: float | None, power_w: float | None) -> ChargeTo | Discharge | Hold:
    if action == "charge_to":
        return ChargeTo(target_soc_pct if target_soc_pct is not None else 100.0)
    if action == "discharge":
        return Discharge(power_w or 0.0, target_soc_pct or 0.0)
    return Hold()


def command_for(intent: ControlIntent, now_ms: int) -> tuple[CommandSpec, float] | None:
    """The command an intent asks for, with its time to live (None: nothing to send)."""
    if intent.kind == "control_plan":
        raw = intent.payload["plan"]["steps"]
        steps = tuple(PlanStep(int(s[0]), int(s[1]), _action(s[2], s[3], s[4])) for s in raw)
        ttl_s = max((max(s.end_ms for s in steps) - now_ms) / 1_000, MIN_TTL_S)
        return ControlPlan(steps, plan_id=intent.intent_id), ttl_s
    if intent.kind == "restore_mode":
        return ControlPlan((), plan_id=intent.intent_id), RESTORE_TTL_S
    return None


class IntentRelay:
    def __init__(self, pool: asyncpg.Pool, commands: CommandStore, *, sweep_s: float = 2.0,
                 sweep_after_s: float = 2.0, batch: int = 5_000) -> None:
        self._pool = pool
        self._commands = commands
        self._sweep_s, self._sweep_after_s, self._batch = sweep_s, sweep_after_s, batch
        self._task: asyncio.Task[None] | None = None

    async def carry_out(self, intents: Sequence[ControlIntent], *,
                        fanout_id: FanOutId | None = None) -> dict[str, str]:
        """Commands for `intents` (one submission per source); returns intent id → command id for
        those that became commands."""
        now_ms = time.time_ns() // 1_000_000
        outcomes: dict[str, str] = {}
        commands: dict[str, str] = {}
        by_source: dict[str, list[tuple[ControlIntent, NewCommand]]] = {}
        declined = []
        for intent in intents:
            made = command_for(intent, now_ms)
            if made is None:
                if intent.kind == "decline_vpp_event":
                    declined.append((intent.payload["event_id"], intent.installation_id, intent.payload["reason"]))
                outcomes[intent.intent_id] = "recorded"
                continue
            spec, ttl_s = made
            by_source.setdefault(intent.source, []).append(
                (intent, NewCommand(spec, ttl_s, installation_id=intent.installation_id,
                                    idempotency_key=f"intent:{intent.intent_id}")))
        for source, pairs in by_source.items():
            results = await self._commands.submit([c for _, c in pairs], source=source, now_ms=now_ms,
                                                  fanout_id=fanout_id if source == "vpp" else None)
            for (intent, _), result in zip(pairs, results, strict=True):
                if isinstance(result, Submitted):
                    commands[intent.intent_id] = outcomes[intent.intent_id] = result.command.record.command_id
                else:
                    assert isinstance(result, Refusal)
                    outcomes[intent.intent_id] = f"refused: {result.error}"
                    log.warning("intent %s of %s refused: %s", intent.intent_id, intent.installation_id, result.error)
                CARRIED.labels(intent.kind).inc()
        if declined:
            event_ids, installation_ids, reasons = zip(*declined, strict=True)
            await self._pool.execute(_DECLINED, list(event_ids), list(installation_ids), list(reasons))
        if outcomes:
            await self._pool.execute(_DONE, list(outcomes), list(outcomes.values()))
        return commands

    async def sweep(self) -> int:
        intents = [intent_from_row(r) for r in await self._pool.fetch(_OPEN, self._sweep_after_s, self._batch)]
        if intents:
            await self.carry_out(intents)
        return len(intents)

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


def intent_from_row(row: asyncpg.Record) -> ControlIntent:
    return ControlIntent(row[0], row[1], row[2], row[3], json.loads(row[4]))
