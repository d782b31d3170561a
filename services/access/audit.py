"""The audit log of every write: who (actor), which method, what it named (target), the outcome
(gRPC status code name) and when. Recorded by the access guard for every call whose rule is a
write (`rules.AUDITED`), in one place for every service.

Recording never blocks nor fails a call: entries go to a bounded queue, a background task writes
them in batches (one INSERT … SELECT FROM unnest per batch). When the queue is full or the
database refuses a batch, the entries are dropped with a log line and counted in
`gridtwin_audit_dropped_total` — an alert on that metric is the guarantee, not the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter

from gridtwin import unixtime

log = logging.getLogger(__name__)

WRITTEN = Counter("gridtwin_audit_written_total", "Audit entries written")
DROPPED = Counter("gridtwin_audit_dropped_total", "Audit entries dropped (queue full or database refused)")

# A request field that names the call's target, in order of preference.
TARGET_FIELDS = ("installation_id", "device_id", "command_id", "fanout_id", "event_id", "group_path", "path",
                 "program", "user_id", "token_id", "principal_id", "client_id", "username", "alert_id")


@dataclass(frozen=True)
class AuditEntry:
    time_unix_ms: int
    actor: str
    method: str
    target: str
    code: str


def target_of(request: object) -> str:
    """What a request names, for the log: the first of TARGET_FIELDS it sets ("" for none)."""
    for name in TARGET_FIELDS:
        value = getattr(request, name, None)
        if isinstance(value, str) and value:
            return value[:200].replace("\x00", "")
    spec = getattr(request, "spec", None)      # a grid event names its program and group inside
    if spec is not None:
        return target_of(spec)
    return ""


class AuditLog:
    """Batches entries to Postgres. `pool`: an asyncpg pool or a coroutine function returning one.
    The writer task starts with the first entry and is owned: `close()` flushes and stops it."""

    def __init__(self, pool: asyncpg.Pool | Callable[[], Awaitable[asyncpg.Pool]], *, max_queued: int = 10_000,
                 batch: int = 500, interval_s: float = 0.5) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[AuditEntry] = asyncio.Queue(max_queued)
        self._batch = batch
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def record(self, actor: str, method: str, target: str, code: str) -> None:
        entry = AuditEntry(unixtime.now_ms(), actor, method, target, code)
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            DROPPED.inc()
            log.warning("audit queue full: dropped %s %s by %s", method, code, actor)
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")

    async def flush(self) -> None:
        """Writes what is queued now (tests, shutdown)."""
        while not self._queue.empty():
            await self._write(self._take())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()

    def _take(self) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        while len(entries) < self._batch and not self._queue.empty():
            entries.append(self._queue.get_nowait())
        return entries

    async def _run(self) -> None:
        while True:
            entries = [await self._queue.get()]
            await asyncio.sleep(self._interval_s)   # gather a batch
            entries += self._take()
            await self._write(entries)

    async def _write(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        try:
            pool = self._pool if isinstance(self._pool, asyncpg.Pool) else await self._pool()
            await pool.execute("""
                INSERT INTO access_audit (at, actor, method, target, code)
                SELECT to_timestamp(t / 1000.0), a, m, g, c
                  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(t, a, m, g, c)
            """, [e.time_unix_ms for e in entries], [e.actor for e in entries], [e.method for e in entries],
                [e.target for e in entries], [e.code for e in entries])
            WRITTEN.inc(len(entries))
        except Exception as exc:   # never the caller's problem: counted and logged
            DROPPED.inc(len(entries))
            log.warning("audit: dropped %d entries: %s", len(entries), exc)
