"""The command store: a thin asyncpg layer around the pure lifecycle (`lifecycle.py`).

Everything is batched: a submission of thousands of commands, a claim of due commands, a batch
of acknowledgements each take a constant number of statements (arrays in, `unnest`), never one
round trip per command. Transitions are computed in Python by the lifecycle functions on rows
locked `FOR UPDATE` and written back in one `UPDATE … FROM unnest(…)`, so the rules live in one
place and every write is idempotent (re-applying an acknowledgement changes nothing).

Claims use `FOR UPDATE SKIP LOCKED`, so several dispatchers (control service replicas) share the
work without sending a command twice at the same moment. Times cross the boundary as integer
milliseconds (`control_ts`/`control_ms` in SQL), whatever codecs the pool's connections have.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from gridtwin.unixtime import now_ms
from services.control import lifecycle
from services.control.convert import spec_bytes, spec_from_bytes
from services.control.lifecycle import Finish, RetryPolicy, Send
from services.control.model import (
    UNSUCCESSFUL,
    Command,
    CommandId,
    CommandKind,
    CommandRecord,
    CommandSpec,
    CommandState,
    Conflict,
    DeviceId,
    FanOutFailure,
    FanOutId,
    FanOutProgress,
    InstallationId,
    InvalidArgument,
    NotFound,
    Outcome,
    kind_of,
)

_counter = itertools.count()
_counter_lock = threading.Lock()


def new_id() -> str:
    """32 hex digits: 12 of the creation time in ms, 4 of a process counter, 16 random. Ids sort
    by creation time (ListCommands pages by id), and never collide."""
    with _counter_lock:
        n = next(_counter) & 0xFFFF
    return f"{now_ms():012x}{n:04x}{os.urandom(8).hex()}"


_RECORD = """c.command_id, c.device_id, c.installation_id, c.kind, c.state, control_ms(c.created_at) AS created_ms,
    control_ms(c.expires_at) AS expires_ms, c.attempts, control_ms(c.next_attempt_at) AS next_attempt_ms,
    control_ms(c.last_sent_at) AS last_sent_ms, control_ms(c.acked_at) AS acked_ms,
    control_ms(c.completed_at) AS completed_ms, control_ms(c.finished_at) AS finished_ms, c.outcome, c.detail,
    c.superseded_by, c.sent_session, c.sent_gateway"""
_COMMAND = _RECORD + ", c.body, c.source, c.idempotency_key, c.fanout_id"


def _record(row: asyncpg.Record) -> CommandRecord:
    return CommandRecord(
        command_id=CommandId(row["command_id"]), device_id=DeviceId(row["device_id"]),
        installation_id=InstallationId(row["installation_id"]), kind=CommandKind(row["kind"]),
        state=CommandState(row["state"]), created_ms=row["created_ms"], expires_ms=row["expires_ms"],
        attempts=row["attempts"], next_attempt_ms=row["next_attempt_ms"], last_sent_ms=row["last_sent_ms"],
        acked_ms=row["acked_ms"], completed_ms=row["completed_ms"], finished_ms=row["finished_ms"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None, detail=row["detail"],
        superseded_by=CommandId(row["superseded_by"]) if row["superseded_by"] else None,
        sent_session=row["sent_session"], sent_gateway=row["sent_gateway"],
    )


def _command(row: asyncpg.Record) -> Command:
    return Command(_record(row), spec_from_bytes(row["body"]), row["source"], row["idempotency_key"],
                   FanOutId(row["fanout_id"]) if row["fanout_id"] else None)


async def _write(con: asyncpg.Connection, records: Sequence[CommandRecord]) -> None:
    """Persists the mutable part of changed records in one statement."""
    if not records:
        return
    await con.execute("""
        UPDATE control_commands c SET state = u.state, attempts = u.attempts,
            next_attempt_at = control_ts(u.next_ms), last_sent_at = control_ts(u.sent_ms),
            acked_at = control_ts(u.acked_ms), completed_at = control_ts(u.completed_ms),
            finished_at = control_ts(u.finished_ms), outcome = u.outcome, detail = u.detail,
            superseded_by = u.superseded_by, sent_session = u.sent_session, sent_gateway = u.sent_gateway
        FROM unnest($1::text[], $2::text[], $3::int[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],
                    $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
             AS u(command_id, state, attempts, next_ms, sent_ms, acked_ms, completed_ms, finished_ms, outcome,
                  detail, superseded_by, sent_session, sent_gateway)
        WHERE c.command_id = u.command_id
    """, [r.command_id for r in records], [r.state.value for r in records], [r.attempts for r in records],
        [r.next_attempt_ms for r in records], [r.last_sent_ms for r in records], [r.acked_ms for r in records],
        [r.completed_ms for r in records], [r.finished_ms for r in records],
        [r.outcome.value if r.outcome else None for r in records], [r.detail for r in records],
        [r.superseded_by for r in records], [r.sent_session for r in records], [r.sent_gateway for r in records])


# ------------------------------------------------------------------ submissions


@dataclass(frozen=True)
class NewCommand:
    """One command to submit: to `device_id`, or to the battery device of `installation_id`."""

    spec: CommandSpec
    ttl_s: float
    device_id: str | None = None
    installation_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Submitted:
    command: Command
    deduplicated: bool = False


@dataclass(frozen=True)
class Refusal:
    """An item of a batch that was not stored, and why (the error a single submission raises)."""

    error: InvalidArgument | NotFound | Conflict


SubmitResult = Submitted | Refusal


def request_hash(target: str, spec_body: bytes, ttl_s: float) -> bytes:
    return hashlib.sha256(b"%s\x00%s\x00%r" % (target.encode(), spec_body, ttl_s)).digest()


class CommandStore:
    def __init__(self, pool: asyncpg.Pool, *, retry: RetryPolicy | None = None,
                 rng: random.Random | None = None) -> None:
        self.pool = pool
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()

    # ------------------------------------------------------------ resolving targets

    @staticmethod
    async def _devices_of_installations(con: asyncpg.Connection, ids: Sequence[str]) -> dict[str, str]:
        """installation → its battery device (else its gateway device), not revoked."""
        rows = await con.fetch("""
            SELECT DISTINCT ON (installation_id) installation_id, device_id FROM devices
            WHERE installation_id = ANY($1::text[]) AND revoked_at IS NULL AND kind IN ('battery', 'gateway')
            ORDER BY installation_id, (kind <> 'battery'), device_id
        """, list(set(ids)))
        return {r["installation_id"]: r["device_id"] for r in rows}

    @staticmethod
    async def _installations_of_devices(con: asyncpg.Connection, ids: Sequence[str]) -> dict[str, str]:
        rows = await con.fetch("SELECT device_id, installation_id FROM devices "
                               "WHERE device_id = ANY($1::text[]) AND revoked_at IS NULL", list(set(ids)))
        return {r["device_id"]: r["installation_id"] for r in rows}

    async def group_targets(self, group_path: str) -> list[tuple[str, str]]:
        """(installation, device) for every installation in the group or below it that has a
        battery or gateway device. NotFound for a group that does not exist."""
        async with self.pool.acquire() as con:
            if not await con.fetchval("SELECT 1 FROM hierarchy_groups WHERE path = $1::text::ltree", group_path):
                raise NotFound(f"group {group_path!r} does not exist")
            rows = await con.fetch("""
                SELECT DISTINCT ON (d.installation_id) d.installation_id, d.device_id
                FROM group_memberships gm JOIN devices d ON d.installation_id = gm.installation_id
                WHERE gm.path <@ $1::text::ltree AND d.revoked_at IS NULL AND d.kind IN ('battery', 'gateway')
                ORDER BY d.installation_id, (d.kind <> 'battery'), d.device_id
            """, group_path)
        return [(r["installation_id"], r["device_id"]) for r in rows]

    # ------------------------------------------------------------ submit

    async def create_fanout(self, *, source: str, kind: CommandKind | None, group_path: str | None = None,
                            idempotency_key: str | None = None, request_hash: bytes | None = None,
                            now_ms: int) -> tuple[FanOutId, bool]:
        """A new fan-out (or, for a known idempotency key, the existing one: deduplicated=True)."""
        fanout_id = new_id()
        async with self.pool.acquire() as con:
            inserted = await con.fetchval("""
                INSERT INTO control_fanouts (fanout_id, group_path, kind, source, idempotency_key, request_sha256,
                                             created_at)
                VALUES ($1, $2::text::ltree, $3, $4, $5, $6, control_ts($7))
                ON CONFLICT (idempotency_key) DO NOTHING RETURNING fanout_id
            """, fanout_id, group_path, kind.value if kind else None, source, idempotency_key, request_hash, now_ms)
            if inserted is not None:
                return FanOutId(inserted), False
            row = await con.fetchrow("SELECT fanout_id, request_sha256 FROM control_fanouts WHERE idempotency_key = $1",
                                     idempotency_key)
        assert row is not None
        if request_hash is not None and row["request_sha256"] != request_hash:
            raise Conflict(f"idempotency key {idempotency_key!r} was used for a different request")
        return FanOutId(row["fanout_id"]), True

    async def submit(self, items: Sequence[NewCommand], *, source: str, now_ms: int,
                     fanout_id: FanOutId | None = None) -> list[SubmitResult]:
        """Stores `items` (validated by the caller) in one transaction; results in input order.

        An item naming an unknown device/installation, or reusing an idempotency key for another
        request, is refused (a Refusal) and the others are stored. A known key with the same
        request returns the stored command (deduplicated). Newer control plans supersede the
        device's older pending ones."""
        results: list[SubmitResult | None] = [None] * len(items)
        async with self.pool.acquire() as con, con.transaction():
            by_installation = await self._devices_of_installations(
                con, [i.installation_id for i in items if i.device_id is None and i.installation_id])
            by_device = await self._installations_of_devices(con, [i.device_id for i in items if i.device_id])
            rows: list[tuple[int, CommandRecord, bytes, str | None, bytes]] = []
            for index, item in enumerate(items):
                if item.device_id is not None:
                    device, installation = item.device_id, by_device.get(item.device_id)
                    if installation is None:
                        results[index] = Refusal(NotFound(f"device {item.device_id!r} does not exist"))
                        continue
                else:
                    installation = item.installation_id or ""
                    found = by_installation.get(installation)
                    if found is None:
                        results[index] = Refusal(NotFound(
                            f"installation {installation!r} does not exist or has no battery or gateway device"))
                        continue
                    device = found
                body = spec_bytes(item.spec)
                target = f"device:{item.device_id}" if item.device_id else f"installation:{installation}"
                record = CommandRecord(
                    command_id=CommandId(new_id()), device_id=DeviceId(device),
                    installation_id=InstallationId(installation),
                    kind=kind_of(item.spec), state=CommandState.QUEUED, created_ms=now_ms,
                    expires_ms=now_ms + max(1, int(item.ttl_s * 1_000)))
                rows.append((index, record, body, item.idempotency_key, request_hash(target, body, item.ttl_s)))
            inserted = set(await con.fetchval("""
                WITH ins AS (
                    INSERT INTO control_commands (command_id, device_id, installation_id, kind, state, body, source,
                                                  idempotency_key, request_sha256, fanout_id, created_at, expires_at)
                    SELECT u.command_id, u.device_id, u.installation_id, u.kind, 'queued', u.body, $7, u.key, u.hash,
                           $8, control_ts($9), control_ts(u.expires_ms)
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::int8[],
                                $10::text[], $11::bytea[])
                         AS u(command_id, device_id, installation_id, kind, body, expires_ms, key, hash)
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING command_id)
                SELECT coalesce(array_agg(command_id), '{}') FROM ins
            """, [r[1].command_id for r in rows], [r[1].device_id for r in rows], [r[1].installation_id for r in rows],
                [r[1].kind.value for r in rows], [r[2] for r in rows], [r[1].expires_ms for r in rows], source,
                fanout_id, now_ms, [r[3] for r in rows], [r[4] for r in rows]))
            duplicates = [r for r in rows if r[1].command_id not in inserted]
            existing: dict[str, asyncpg.Record] = {}
            if duplicates:
                found_rows = await con.fetch(f"SELECT {_COMMAND}, c.request_sha256 FROM control_commands c "
                                             "WHERE c.idempotency_key = ANY($1::text[])", [r[3] for r in duplicates])
                existing = {row["idempotency_key"]: row for row in found_rows}
            fresh: list[CommandRecord] = []
            for index, record, _body, key, item_hash in rows:
                if record.command_id in inserted:
                    fresh.append(record)
                    results[index] = Submitted(Command(record, items[index].spec, source, key, fanout_id))
                    continue
                row = existing.get(key or "")
                if row is None or row["request_sha256"] != item_hash:
                    results[index] = Refusal(Conflict(
                        f"idempotency key {key!r} was used for a different request"))
                else:
                    results[index] = Submitted(_command(row), deduplicated=True)
            superseded = await self._supersede(con, [r for r in fresh if r.kind is CommandKind.CONTROL_PLAN], now_ms)
            if fanout_id is not None and fresh:
                await con.execute("UPDATE control_fanouts SET total = total + $2 WHERE fanout_id = $1",
                                  fanout_id, len(fresh))
        if superseded:  # reflect supersessions within this very batch in the results
            for i, res in enumerate(results):
                if isinstance(res, Submitted) and res.command.record.command_id in superseded:
                    cmd = res.command
                    results[i] = Submitted(Command(superseded[cmd.record.command_id], cmd.spec, cmd.source,
                                                   cmd.idempotency_key, cmd.fanout_id), res.deduplicated)
        return [r for r in results if r is not None]

    async def _supersede(self, con: asyncpg.Connection, plans: Sequence[CommandRecord],
                         now_ms: int) -> dict[CommandId, CommandRecord]:
        if not plans:
            return {}
        rows = await con.fetch(f"""
            SELECT {_RECORD} FROM control_commands c
            WHERE c.device_id = ANY($1::text[]) AND c.kind = 'control_plan' AND c.state IN ('queued', 'sent')
            ORDER BY c.command_id FOR UPDATE
        """, list({p.device_id for p in plans}))
        newest: dict[DeviceId, CommandRecord] = {}
        for record in [_record(r) for r in rows]:
            best = newest.get(record.device_id)
            if best is None or lifecycle.supersedes(record, best):
                newest[record.device_id] = record
        changed = {}
        for row in rows:
            older = _record(row)
            newer = newest[older.device_id]
            if lifecycle.supersedes(newer, older):
                changed[older.command_id] = lifecycle.supersede(older, newer.command_id, now_ms)
        await _write(con, list(changed.values()))
        return changed

    # ------------------------------------------------------------ reading

    async def get(self, command_id: str) -> Command:
        row = await self.pool.fetchrow(f"SELECT {_COMMAND} FROM control_commands c WHERE c.command_id = $1",
                                       command_id)
        if row is None:
            raise NotFound(f"command {command_id!r} does not exist")
        return _command(row)

    async def get_many(self, command_ids: Sequence[str]) -> list[Command]:
        rows = await self.pool.fetch(f"SELECT {_COMMAND} FROM control_commands c WHERE c.command_id = ANY($1::text[])",
                                     list(command_ids))
        return [_command(r) for r in rows]

    async def installation_exists(self, installation_id: str) -> bool:
        return bool(await self.pool.fetchval("SELECT 1 FROM installations WHERE installation_id = $1",
                                             installation_id))

    async def list_for_installation(self, installation_id: str, *, limit: int, before_id: str | None = None,
                                    states: Iterable[CommandState] = ()) -> list[Command]:
        """Newest first; `before_id` continues after the last id of the previous page."""
        state_list = [s.value for s in states] or None
        rows = await self.pool.fetch(f"""
            SELECT {_COMMAND} FROM control_commands c
            WHERE c.installation_id = $1 AND ($2::text IS NULL OR c.command_id < $2)
              AND ($3::text[] IS NULL OR c.state = ANY($3::text[]))
            ORDER BY c.command_id DESC LIMIT $4
        """, installation_id, before_id, state_list, limit)
        return [_command(r) for r in rows]

    async def fanout_commands(self, fanout_id: str) -> list[Command]:
        rows = await self.pool.fetch(f"SELECT {_COMMAND} FROM control_commands c WHERE c.fanout_id = $1 "
                                     "ORDER BY c.command_id", fanout_id)
        return [_command(r) for r in rows]

    async def progress(self, fanout_id: str, *, max_failures: int = 100) -> FanOutProgress:
        async with self.pool.acquire() as con:
            fanout = await con.fetchrow("""
                SELECT fanout_id, coalesce(group_path::text, '') AS group_path, source, total,
                       control_ms(created_at) AS created_ms
                FROM control_fanouts WHERE fanout_id = $1
            """, fanout_id)
            if fanout is None:
                raise NotFound(f"fan-out {fanout_id!r} does not exist")
            counts = await con.fetch("""
                SELECT state, count(*) AS n, count(*) FILTER (WHERE outcome = 'completed' AND state = 'acknowledged')
                       AS completed, control_ms(max(acked_at)) AS last_acked_ms
                FROM control_commands WHERE fanout_id = $1 GROUP BY state
            """, fanout_id)
            failures = await con.fetch("""
                SELECT command_id, device_id, installation_id, state, outcome, detail FROM control_commands
                WHERE fanout_id = $1 AND state = ANY($2::text[]) ORDER BY finished_at, command_id LIMIT $3
            """, fanout_id, [s.value for s in UNSUCCESSFUL], max_failures)
        return FanOutProgress(
            fanout_id=FanOutId(fanout["fanout_id"]), group_path=fanout["group_path"], source=fanout["source"],
            total=fanout["total"], counts={CommandState(r["state"]): r["n"] for r in counts},
            completed=sum(r["completed"] for r in counts),
            failures=tuple(FanOutFailure(CommandId(r["command_id"]), DeviceId(r["device_id"]),
                                         InstallationId(r["installation_id"]), CommandState(r["state"]),
                                         Outcome(r["outcome"]) if r["outcome"] else None, r["detail"])
                           for r in failures),
            created_ms=fanout["created_ms"], last_acked_ms=max((r["last_acked_ms"] for r in counts), default=0))

    # ------------------------------------------------------------ transitions

    async def cancel(self, command_id: str, now_ms: int) -> Command:
        async with self.pool.acquire() as con, con.transaction():
            row = await con.fetchrow(f"SELECT {_COMMAND} FROM control_commands c WHERE c.command_id = $1 FOR UPDATE",
                                     command_id)
            if row is None:
                raise NotFound(f"command {command_id!r} does not exist")
            command = _command(row)
            record = lifecycle.cancel(command.record, now_ms)
            if record != command.record:
                await _write(con, [record])
        return Command(record, command.spec, command.source, command.idempotency_key, command.fanout_id)

    async def cancel_fanout(self, fanout_id: str, now_ms: int) -> int:
        async with self.pool.acquire() as con, con.transaction():
            if not await con.fetchval("SELECT 1 FROM control_fanouts WHERE fanout_id = $1", fanout_id):
                raise NotFound(f"fan-out {fanout_id!r} does not exist")
            rows = await con.fetch(f"SELECT {_RECORD} FROM control_commands c WHERE c.fanout_id = $1 "
                                   "AND c.state IN ('queued', 'sent') ORDER BY c.command_id FOR UPDATE", fanout_id)
            changed = [lifecycle.cancel(_record(r), now_ms) for r in rows]
            await _write(con, changed)
        return len(changed)

    async def apply_acks(self, acks: Sequence[tuple[str, Outcome, str]], now_ms: int) -> tuple[int, int]:
        """(command id, outcome, detail) from devices, in arrival order. Returns (changed,
        unknown): commands whose record changed, and acks naming no stored command."""
        if not acks:
            return 0, 0
        async with self.pool.acquire() as con, con.transaction():
            rows = await con.fetch(f"SELECT {_RECORD} FROM control_commands c WHERE c.command_id = ANY($1::text[]) "
                                   "ORDER BY c.command_id FOR UPDATE", list({a[0] for a in acks}))
            records = {r["command_id"]: _record(r) for r in rows}
            before = dict(records)
            unknown = 0
            for command_id, outcome, detail in acks:
                record = records.get(command_id)
                if record is None:
                    unknown += 1
                    continue
                records[command_id] = lifecycle.apply_ack(record, outcome, detail, now_ms)
            changed = [r for k, r in records.items() if r != before[k]]
            await _write(con, changed)
        return len(changed), unknown

    async def claim_due(self, now_ms: int, *, limit: int, gateway_stale_s: float) -> tuple[
            list[tuple[CommandRecord, bytes, str]], int]:
        """Locks up to `limit` pending commands of devices connected to a live gateway that are
        due (see `lifecycle.decide_send`), marks them sent and returns (record, stored spec,
        gateway id) to deliver, plus how many candidates were finished instead (expired, or out
        of attempts). Commits before returning: a crash after it only delays the retry."""
        async with self.pool.acquire() as con, con.transaction():
            rows = await con.fetch(f"""
                SELECT {_RECORD}, c.body, s.session_id AS current_session, s.gateway_id AS current_gateway
                FROM control_commands c
                JOIN control_device_sessions s ON s.device_id = c.device_id
                JOIN control_gateways g ON g.gateway_id = s.gateway_id
                     AND g.heartbeat_at > control_ts($1) - make_interval(secs => $3)
                WHERE c.state IN ('queued', 'sent')
                  AND (c.state = 'queued' OR c.next_attempt_at <= control_ts($1)
                       OR c.sent_session IS DISTINCT FROM s.session_id OR c.expires_at <= control_ts($1))
                LIMIT $2 FOR UPDATE OF c SKIP LOCKED
            """, now_ms, limit, gateway_stale_s)
            out: list[tuple[CommandRecord, bytes, str]] = []
            changed: list[CommandRecord] = []
            finished = 0
            for row in rows:
                decision = lifecycle.decide_send(_record(row), row["current_session"], row["current_gateway"], now_ms,
                                                 self.retry, self._rng)
                match decision:
                    case Send(record):
                        changed.append(record)
                        out.append((record, row["body"], row["current_gateway"]))
                    case Finish(record):
                        changed.append(record)
                        finished += 1
            await _write(con, changed)
        return out, finished

    async def expire_due(self, now_ms: int, *, limit: int) -> int:
        """Expires pending commands past their expiry (also those of offline devices)."""
        async with self.pool.acquire() as con, con.transaction():
            rows = await con.fetch(f"""
                SELECT {_RECORD} FROM control_commands c
                WHERE c.state IN ('queued', 'sent') AND c.expires_at <= control_ts($1)
                LIMIT $2 FOR UPDATE SKIP LOCKED
            """, now_ms, limit)
            changed = [lifecycle.expire(_record(r), now_ms) for r in rows]
            await _write(con, changed)
        return len(changed)

    async def next_wakeup_ms(self) -> int | None:
        """The earliest retry or expiry time among pending commands (for the dispatcher's sleep)."""
        return await self.pool.fetchval("""
            SELECT least((SELECT control_ms(min(next_attempt_at)) FROM control_commands
                          WHERE state = 'sent' AND next_attempt_at IS NOT NULL),
                         (SELECT control_ms(min(expires_at)) FROM control_commands WHERE state IN ('queued', 'sent')))
        """)

    async def record_states(self, reports: Sequence[tuple[str, str, int, str, float, str, str]]) -> None:
        """StateReports: (device, installation, reported ms, mode, reserve %, firmware, active plan id);
        the newest report per device wins."""
        if not reports:
            return
        latest: dict[str, tuple[str, str, int, str, float, str, str]] = {}
        for r in reports:
            if r[0] not in latest or latest[r[0]][2] <= r[2]:
                latest[r[0]] = r
        cols = list(zip(*latest.values(), strict=True))
        await self.pool.execute("""
            INSERT INTO control_device_state AS s (device_id, installation_id, reported_at, mode, backup_reserve_pct,
                                                   firmware_version, active_plan_id)
            SELECT u.d, u.i, control_ts(u.ms), u.m, u.r, u.f, u.p
            FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::float8[], $6::text[], $7::text[])
                 AS u(d, i, ms, m, r, f, p)
            ON CONFLICT (device_id) DO UPDATE SET installation_id = excluded.installation_id,
                reported_at = excluded.reported_at, mode = excluded.mode,
                backup_reserve_pct = excluded.backup_reserve_pct, firmware_version = excluded.firmware_version,
                active_plan_id = excluded.active_plan_id
            WHERE s.reported_at <= excluded.reported_at
        """, *[list(c) for c in cols])

    async def device_state(self, device_id: str) -> dict[str, object] | None:
        row = await self.pool.fetchrow("""
            SELECT device_id, installation_id, control_ms(reported_at) AS reported_ms, mode, backup_reserve_pct,
                   firmware_version, active_plan_id FROM control_device_state WHERE device_id = $1
        """, device_id)
        return dict(row) if row else None
