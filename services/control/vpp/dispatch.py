"""Grid events from creation to the devices: store the event, resolve its participants (enrolled
in the program, inside the target group, with a battery that can discharge, not opted out),
share the target power among them by their discharge capability, send each twin the event (the
twin arbitrates against StormWatch and the customer's settings and decides its plan), and carry
the twins' decisions out as commands in one fan-out whose progress is the event's delivery.

All steps are batched: one SQL statement resolves every participant, one twin call per shard
per chunk, one command submission per chunk."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from prometheus_client import Histogram

from actors.runtime.router import TwinRouter
from actors.twin import vpp as twin_vpp
from actors.twin.commands import RunPlan, TwinCommand, command_id
from gridtwin.errors import NotFound
from gridtwin.unixtime import from_ms, now_ms, to_ms
from services.control.model import CommandKind, FanOutId, FanOutProgress
from services.control.store import CommandStore
from services.control.vpp.intents import IntentRelay
from services.control.vpp.model import EventState, GridEventSpec, InvalidEvent, Source, validate
from services.control.vpp.report import DEFAULT_MAX_GAP_S, EnergyReport, Settlement, event_energy, settle

CHUNK = 2_000      # twins decided per shard call; small enough that the first plans leave early
STAGE = Histogram("gridtwin_vpp_dispatch_stage_seconds", "One chunk of an event's dispatch, by stage",
                  ["stage"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class UnknownTarget(NotFound, LookupError):
    """The program, group or event does not exist."""


@dataclass(frozen=True)
class GridEvent:
    event_id: str
    spec: GridEventSpec
    state: EventState
    revision: int
    rate_per_kwh: Decimal
    fanout_id: str
    participants: int
    created: dt.datetime
    updated: dt.datetime
    currency: str = "USD"
    openadr_request: Mapping[str, Any] | None = None   # the OpenADR event body it came as


_RESOLVE = """
SELECT m.installation_id, coalesce(i.max_discharge_power_w, 0) AS max_w
  FROM group_memberships m JOIN installations i USING (installation_id)
 WHERE m.program = $1::text::ltree AND m.enrollment_state = 'enrolled'
   AND coalesce(i.battery_nominal_energy_wh, 0) > 0 AND coalesce(i.max_discharge_power_w, 0) > 0
   AND ($2 = '' OR EXISTS (SELECT 1 FROM group_memberships g
                            WHERE g.installation_id = m.installation_id AND g.path <@ $2::text::ltree))
 ORDER BY m.installation_id
"""
# The stored state says what was decided (scheduled or cancelled); the clock says how far a
# scheduled event has got, so nothing has to flip states when a window opens or closes.
_EVENT_COLUMNS = ("event_id, program::text, coalesce(target_group::text, '') AS target_group, name, source, "
                  "external_id, control_ms(start_at) AS start_ms, control_ms(end_at) AS end_ms, precharge_s, "
                  "target_power_w, rate_per_kwh, revision, coalesce(fanout_id, '') AS fanout_id, "
                  "CASE WHEN state IN ('scheduled', 'active') AND end_at <= now() THEN 'completed' "
                  "     WHEN state = 'scheduled' AND start_at <= now() THEN 'active' ELSE state END AS state, "
                  "control_ms(created_at) AS created_ms, control_ms(updated_at) AS updated_ms, "
                  "openadr_request::text AS openadr_request, "
                  "coalesce((SELECT t.currency FROM vpp_program_terms t WHERE t.program = e.program), 'USD') "
                  "AS currency, "
                  "(SELECT count(*) FROM vpp_participants p WHERE p.event_id = e.event_id) AS participants")


def share(target_w: float, capabilities: Sequence[float]) -> list[float]:
    """The target split in proportion to each battery's discharge limit, none above its limit."""
    total = sum(capabilities)
    if total <= 0:
        return [0.0] * len(capabilities)
    factor = min(1.0, target_w / total)
    return [c * factor for c in capabilities]




def _event(row: asyncpg.Record) -> GridEvent:
    spec = GridEventSpec(row["program"], row["target_group"], from_ms(row["start_ms"]), from_ms(row["end_ms"]),
                         row["target_power_w"], row["precharge_s"], float(row["rate_per_kwh"]), row["name"],
                         row["external_id"], Source(row["source"]))
    request = json.loads(row["openadr_request"]) if row["openadr_request"] is not None else None
    return GridEvent(row["event_id"], spec, EventState(row["state"]), row["revision"], row["rate_per_kwh"],
                     row["fanout_id"], row["participants"], from_ms(row["created_ms"]), from_ms(row["updated_ms"]),
                     row["currency"], request)


class VppDispatcher:
    def __init__(self, pool: asyncpg.Pool, router: TwinRouter, commands: CommandStore, relay: IntentRelay) -> None:
        self._pool = pool     # any timestamp codec: times cross as ms (control_ts / control_ms)
        self._router = router
        self._commands = commands
        self._relay = relay

    # ------------------------------------------------------------------ reads

    async def get(self, event_id: str) -> GridEvent:
        if "\x00" in event_id:      # no stored id has one (and Postgres text cannot hold it)
            raise UnknownTarget(f"no event {event_id!r}")
        row = await self._pool.fetchrow(f"SELECT {_EVENT_COLUMNS} FROM vpp_events e WHERE event_id = $1", event_id)
        if row is None:
            raise UnknownTarget(f"no event {event_id!r}")
        return _event(row)

    async def list_events(self, *, include_ended: bool = False, limit: int = 100, offset: int = 0,
                          program: str | None = None, source: Source | None = None,
                          after: tuple[int, str] | None = None) -> list[GridEvent]:
        """Newest window first, ties by event id; only scheduled and active events unless
        `include_ended`. `after` (start in unix ms, event id) is a keyset: the events after that
        one in this order (starts are stored in whole ms, so the comparison is exact)."""
        where = ["($3::text IS NULL OR program = $3::text::ltree)", "($4::text IS NULL OR source = $4)"]
        if not include_ended:
            where.append("state IN ('scheduled', 'active') AND end_at > now()")
        if after is not None:
            where.append("(start_at < control_ts($5) OR (start_at = control_ts($5) AND event_id > $6))")
        rows = await self._pool.fetch(f"SELECT {_EVENT_COLUMNS} FROM vpp_events e WHERE {' AND '.join(where)} "
                                      "ORDER BY start_at DESC, event_id LIMIT $1 OFFSET $2", limit, offset,
                                      program, source.value if source else None,
                                      *(after if after is not None else ()))
        return [_event(r) for r in rows]

    async def participants(self, event_id: str, *, limit: int | None = None,
                           after: str = "") -> list[asyncpg.Record]:
        """The event's participants by installation id: all, or `limit` after the id `after`."""
        return await self._pool.fetch(  # type: ignore[no-any-return]
            "SELECT installation_id, power_w, status, reason, coalesce(command_id, '') AS command_id "
            "FROM vpp_participants WHERE event_id = $1 AND installation_id > $2 ORDER BY installation_id "
            "LIMIT $3", event_id, after, limit)

    async def progress(self, event_id: str) -> FanOutProgress | None:
        event = await self.get(event_id)
        return await self._commands.progress(event.fanout_id) if event.fanout_id else None

    async def report(self, event_id: str, *, max_gap_s: float = DEFAULT_MAX_GAP_S,
                     now: dt.datetime | None = None) -> tuple[GridEvent, Settlement]:
        """The event and its settlement: energy per participant over the window so far (all of
        it once the window is over) and what each earns."""
        now = now or dt.datetime.now(dt.UTC)
        event = await self.get(event_id)
        statuses = {r["installation_id"]: r["status"] for r in await self.participants(event_id)}
        start, end = event.spec.start, min(event.spec.end, now)
        energy = (await event_energy(self._pool, list(statuses), start, end, max_gap_s=max_gap_s) if end > start
                  else {i: EnergyReport(i, 0.0, 0.0, 0, 0.0, 0.0) for i in statuses})
        return event, settle(energy, statuses, event.rate_per_kwh, start, event.spec.end, now)

    # ------------------------------------------------------------------ changes

    async def create(self, spec: GridEventSpec, *, event_id: str = "", now: dt.datetime | None = None,
                     openadr_request: Mapping[str, Any] | None = None) -> GridEvent:
        """Stores, resolves and dispatches a new event (an existing external id: that event)."""
        now = now or dt.datetime.now(dt.UTC)
        validate(spec, now)
        if spec.external_id:
            existing = await self._pool.fetchval("SELECT event_id FROM vpp_events WHERE source = $1 AND "
                                                 "external_id = $2", spec.source.value, spec.external_id)
            if existing is not None:
                return await self.get(existing)
        async with self._pool.acquire() as con:
            rate = await con.fetchval(
                "SELECT coalesce(t.rate_per_kwh, 0) FROM programs p LEFT JOIN vpp_program_terms t "
                "ON t.program = p.path WHERE p.path = $1::text::ltree", spec.program)
            if rate is None:
                raise UnknownTarget(f"no program {spec.program!r}")
            if spec.target_group and not await con.fetchval(
                    "SELECT true FROM hierarchy_groups WHERE path = $1::text::ltree", spec.target_group):
                raise UnknownTarget(f"no group {spec.target_group!r}")
        event_id = event_id or f"ev-{uuid.uuid4().hex[:16]}"
        fanout_id, _ = await self._commands.create_fanout(
            source="vpp", kind=CommandKind.CONTROL_PLAN, group_path=spec.target_group or spec.program,
            idempotency_key=f"vpp:{event_id}", now_ms=now_ms())
        rate = Decimal(str(spec.rate_per_kwh)) if spec.rate_per_kwh is not None else rate
        async with self._pool.acquire() as con, con.transaction():
            await con.execute(
                "INSERT INTO vpp_events (event_id, program, target_group, name, source, external_id, start_at, end_at, "
                "precharge_s, target_power_w, rate_per_kwh, state, fanout_id, openadr_request) VALUES ($1, "
                "$2::text::ltree, nullif($3, '')::ltree, $4, $5, $6, control_ts($7), control_ts($8), $9, $10, $11, "
                "'scheduled', $12, $13::text::jsonb)",
                event_id, spec.program, spec.target_group, spec.name, spec.source.value, spec.external_id,
                to_ms(spec.start), to_ms(spec.end), spec.precharge_s, spec.target_power_w, rate, fanout_id,
                json.dumps(openadr_request) if openadr_request is not None else None)
            rows = await con.fetch(_RESOLVE, spec.program, spec.target_group)
            shares = share(spec.target_power_w, [r["max_w"] for r in rows])
            await con.execute(
                "INSERT INTO vpp_participants (event_id, installation_id, power_w, status) "
                "SELECT $1, i, w, 'dispatched' FROM unnest($2::text[], $3::float8[]) AS x(i, w)",
                event_id, [r["installation_id"] for r in rows], shares)
        await self._send(event_id, 1, spec, list(zip((r["installation_id"] for r in rows), shares, strict=True)),
                         FanOutId(fanout_id))
        return await self.get(event_id)

    async def update(self, event_id: str, spec: GridEventSpec, now: dt.datetime | None = None, *,
                     openadr_request: Mapping[str, Any] | None = None) -> GridEvent:
        """A new window or power for a scheduled or active event: every participant is sent the new revision."""
        now = now or dt.datetime.now(dt.UTC)
        event = await self.get(event_id)
        if event.state in (EventState.CANCELLED, EventState.COMPLETED):
            raise InvalidEvent(f"event {event_id} is {event.state.value}")
        if (spec.program, spec.target_group) != (event.spec.program, event.spec.target_group):
            raise InvalidEvent("an update cannot move an event to another program or group; cancel and create")
        validate(spec, now)
        rows = await self._pool.fetch("SELECT installation_id, power_w FROM vpp_participants WHERE event_id = $1 "
                                      "AND status NOT IN ('opted_out', 'cancelled') ORDER BY installation_id", event_id)
        factor = spec.target_power_w / event.spec.target_power_w
        pairs = [(r["installation_id"], r["power_w"] * factor) for r in rows]
        revision = event.revision + 1
        await self._pool.execute(
            "UPDATE vpp_events SET start_at = control_ts($2), end_at = control_ts($3), precharge_s = $4, "
            "target_power_w = $5, revision = $6, name = $7, openadr_request = coalesce($8::text::jsonb, "
            "openadr_request), updated_at = now() WHERE event_id = $1",
            event_id, to_ms(spec.start), to_ms(spec.end), spec.precharge_s, spec.target_power_w, revision,
            spec.name or event.spec.name, json.dumps(openadr_request) if openadr_request is not None else None)
        await self._pool.execute(
            "UPDATE vpp_participants p SET power_w = x.w, updated_at = now() FROM unnest($2::text[], $3::float8[]) "
            "AS x(i, w) WHERE p.event_id = $1 AND p.installation_id = x.i", event_id, [p[0] for p in pairs],
            [p[1] for p in pairs])
        await self._send(event_id, revision, spec, pairs, FanOutId(event.fanout_id) if event.fanout_id else None)
        return await self.get(event_id)

    async def cancel(self, event_id: str) -> GridEvent:
        event = await self.get(event_id)
        if event.state is EventState.CANCELLED:
            return event
        if event.state is EventState.COMPLETED:
            raise InvalidEvent(f"event {event_id} is over; there is nothing left to cancel")
        ids = [r["installation_id"] for r in await self.participants(event_id)]
        await self._pool.execute("UPDATE vpp_events SET state = 'cancelled', updated_at = now() WHERE event_id = $1",
                                 event_id)
        await self._pool.execute("UPDATE vpp_participants SET status = 'cancelled', updated_at = now() "
                                 "WHERE event_id = $1 AND status NOT IN ('opted_out', 'declined')", event_id)
        await self._to_twins([(i, twin_vpp.VppCancel(event_id)) for i in ids], None)
        return await self.get(event_id)

    async def opt_out(self, event_id: str, installation_id: str) -> None:
        """The customer leaves one event (before or during it): the twin drops its part."""
        await self.get(event_id)
        if "\x00" in installation_id:
            raise UnknownTarget(f"installation {installation_id!r} does not take part in {event_id}")
        updated = await self._pool.fetchval(
            "UPDATE vpp_participants SET status = 'opted_out', reason = 'customer opted out', updated_at = now() "
            "WHERE event_id = $1 AND installation_id = $2 RETURNING true", event_id, installation_id)
        if not updated:
            raise UnknownTarget(f"installation {installation_id!r} does not take part in {event_id}")
        await self._to_twins([(installation_id, twin_vpp.VppOptOut(event_id))], None)

    # ------------------------------------------------------------------ to the twins and devices

    async def _send(self, event_id: str, revision: int, spec: GridEventSpec, pairs: list[tuple[str, float]],
                    fanout_id: FanOutId | None) -> None:
        precharge = spec.start - dt.timedelta(seconds=spec.precharge_s) if spec.precharge_s else None
        await self._to_twins([(i, twin_vpp.VppDispatch(event_id, revision, spec.start, spec.end, w, precharge,
                                                       spec.program)) for i, w in pairs], fanout_id)

    async def _to_twins(self, items: list[tuple[str, Any]], fanout_id: FanOutId | None) -> None:
        """Events to the twins a chunk at a time, their decisions to commands as a pipeline: while
        the shards decide chunk k + 1, the commands of chunk k are stored (and the dispatcher,
        woken by their NOTIFY, sends them), so the first devices get their plans long before the
        last twin has decided."""
        decided: asyncio.Queue[list[TwinCommand] | None] = asyncio.Queue(maxsize=2)

        async def decide() -> None:
            for k in range(0, len(items), CHUNK):
                started = time.perf_counter()
                await decided.put(await self._router.tell(items[k:k + CHUNK]))
                STAGE.labels("twins").observe(time.perf_counter() - started)
            await decided.put(None)

        async def carry_out() -> None:
            while (intents := await decided.get()) is not None:
                started = time.perf_counter()
                await self._carry_out(intents, fanout_id)
                STAGE.labels("commands").observe(time.perf_counter() - started)

        async with asyncio.TaskGroup() as group:
            group.create_task(decide())
            group.create_task(carry_out())

    async def _carry_out(self, decided: list[TwinCommand], fanout_id: FanOutId | None) -> None:
        commands = await self._relay.carry_out(decided, fanout_id=fanout_id)
        accepted = [(c.event_id, c.installation_id, commands[command_id(c)])
                    for c in decided if isinstance(c, RunPlan) and command_id(c) in commands]
        if accepted:
            await self._pool.execute(
                "UPDATE vpp_participants p SET status = 'accepted', command_id = x.c, updated_at = now() "
                "FROM unnest($1::text[], $2::text[], $3::text[]) AS x(e, i, c) "
                "WHERE p.event_id = x.e AND p.installation_id = x.i AND p.status = 'dispatched'",
                *map(list, zip(*accepted, strict=True)))
