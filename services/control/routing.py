"""How a command finds the gateway that holds its device (several gateway pods run at once).

    control dispatcher ──claim due commands (SKIP LOCKED), group by gateway──▶ topic `commands`
        key = gateway id, header gateway = id, one GatewayCommandBatch per gateway per claim
    gateway g ──reads the one partition its id hashes to, keeps batches for g──▶ device sockets
    device ──CommandAck──▶ gateway ──▶ topic `device-events` ──▶ control ack consumer (batched)

The **session registry** (`control_device_sessions`: device → gateway id, session id) is written
by each gateway as sessions open and close, in batches (`SessionRegistry`), with a heartbeat per
gateway (`control_gateways`). The dispatcher joins pending commands with it, so it sends only to
devices that are connected, through the gateway that holds them, and only to gateways that are
alive. A device that reconnects (to any gateway) updates its row; the insert wakes the
dispatcher (NOTIFY control_due) and its still-valid commands go out at once, also those sent to
its previous session, whose acknowledgement may have been lost.

Why this shape:
- **Scales with gateways**: a gateway reads only the partition its id hashes to (murmur2, as the
  producer's default partitioner), so with as many partitions as gateways each one reads about
  its own traffic; batches are per gateway, so a fan-out to 10,000 devices is a handful of
  messages, not 10,000. Gateways never need each other's or the control service's addresses.
- **Robust**: Postgres is the source of truth, the topic only a transport. A gateway that dies
  loses nothing: its heartbeat stops, nothing more is routed to it, its devices reconnect
  elsewhere and receive their pending commands again. Unacknowledged sends are retried with
  backoff; devices execute a command id at most once, so duplicates are harmless. A gateway
  drops a command whose expiry has passed, and so does the device.
- Why not every gateway filtering the whole topic: each would read every command (G× the
  traffic). Why not gRPC from the control service to gateway pods: it needs pod addresses and
  per-pod connection management, and a slow pod would stall the dispatcher; the broker buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import asyncpg
from aiokafka.partitioner import DefaultPartitioner

from gridtwin.aio import cancel_and_wait
from gridtwin.unixtime import now_ms

log = logging.getLogger(__name__)


def gateway_partition(gateway_id: str, partitions: int) -> int:
    """The partition of the commands topic that batches for `gateway_id` go to."""
    ids = list(range(partitions))
    return int(DefaultPartitioner()(gateway_id.encode(), ids, ids))


@dataclass(frozen=True)
class _Change:
    device_id: str
    session_id: str
    connected_ms: int
    open: bool


class SessionRegistry:
    """A gateway's writer of the session registry: `opened`/`closed` queue changes (no I/O), an
    owned loop writes them every `flush_interval_s` in one statement each and beats the
    gateway's heartbeat. On start the gateway's stale rows (from a previous run) are removed; on
    stop its rows are removed and its heartbeat dropped, so nothing is routed to it any more."""

    def __init__(self, pool: asyncpg.Pool, gateway_id: str, *, flush_interval_s: float = 0.02,
                 heartbeat_interval_s: float = 5.0) -> None:
        self._pool = pool
        self.gateway_id = gateway_id
        self._flush_interval_s = flush_interval_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._changes: list[_Change] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_beat = 0.0

    def opened(self, device_id: str, session_id: str) -> None:
        self._changes.append(_Change(device_id, session_id, now_ms(), True))
        self._wake.set()

    def closed(self, device_id: str, session_id: str) -> None:
        self._changes.append(_Change(device_id, session_id, 0, False))
        self._wake.set()

    async def start(self) -> None:
        async with self._pool.acquire() as con, con.transaction():
            await con.execute("DELETE FROM control_device_sessions WHERE gateway_id = $1", self.gateway_id)
            await self._beat(con)
        self._task = asyncio.create_task(self._run(), name=f"session-registry-{self.gateway_id}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            async with self._pool.acquire() as con, con.transaction():
                await con.execute("DELETE FROM control_device_sessions WHERE gateway_id = $1", self.gateway_id)
                await con.execute("DELETE FROM control_gateways WHERE gateway_id = $1", self.gateway_id)

    async def _beat(self, con: asyncpg.Connection) -> None:
        await con.execute("""
            INSERT INTO control_gateways (gateway_id, heartbeat_at) VALUES ($1, now())
            ON CONFLICT (gateway_id) DO UPDATE SET heartbeat_at = now()
        """, self.gateway_id)
        self._last_beat = time.monotonic()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._heartbeat_interval_s):
                    await self._wake.wait()
            await asyncio.sleep(self._flush_interval_s)  # gather what else arrives meanwhile
            self._wake.clear()
            changes, self._changes = self._changes, []
            try:
                await self.flush(changes)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("session registry write failed (retrying): %s", exc)
                self._changes[:0] = changes
                await asyncio.sleep(1.0)

    async def flush(self, changes: list[_Change]) -> None:
        # The last change per device wins within a flush; an open replaces any older row (the
        # device moved here from another gateway), a close removes only its own session's row.
        last: dict[str, _Change] = {}
        for change in changes:
            last[change.device_id] = change
        opened = [c for c in last.values() if c.open]
        closed = [c for c in last.values() if not c.open]
        async with self._pool.acquire() as con, con.transaction():
            if closed:
                await con.execute("""
                    DELETE FROM control_device_sessions s USING unnest($1::text[], $2::text[]) AS u(d, sess)
                    WHERE s.device_id = u.d AND s.session_id = u.sess
                """, [c.device_id for c in closed], [c.session_id for c in closed])
            if opened:
                await con.execute("""
                    INSERT INTO control_device_sessions AS s (device_id, gateway_id, session_id, connected_at)
                    SELECT u.d, $1, u.sess, control_ts(u.ms)
                    FROM unnest($2::text[], $3::text[], $4::int8[]) AS u(d, sess, ms)
                    ON CONFLICT (device_id) DO UPDATE SET gateway_id = excluded.gateway_id,
                        session_id = excluded.session_id, connected_at = excluded.connected_at
                    WHERE s.connected_at <= excluded.connected_at
                """, self.gateway_id, [c.device_id for c in opened], [c.session_id for c in opened],
                    [c.connected_ms for c in opened])
            if time.monotonic() - self._last_beat >= self._heartbeat_interval_s / 2:
                await self._beat(con)
