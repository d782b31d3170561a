"""Device credentials: the gateway's source of truth for who may connect.

Only a SHA-256 of each credential is stored. Credentials are random secrets of at least 128
bits, never passwords, so a fast hash is enough and keeps mass reconnects cheap. The assets
service owns the `devices` table (migration 0003: serial, kind, firmware, a foreign key to its
installation); the gateway only reads it through `CredentialDirectory`, and the simulator's
demo fleet is provisioned with `register_devices`.

Rotation: a device has its current credential and, for a grace period after a rotation, the one
before it (`StoredCredentials`); `check_credential` decides which one a presented credential is,
if any, at a given time. Registering a device again replaces its credential without grace.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

import asyncpg
from prometheus_client import Counter

from gridtwin.unixtime import now_ms
from services.assets.validation import ID
from services.telemetry.session import DeviceIdentity

# What hellos cost the database: what a mass reconnect (a fleet losing its gateway) asks of it.
LOOKUPS = Counter("gridtwin_gateway_credential_lookups_total", "Device credential lookups in the database")
QUERIES = Counter("gridtwin_gateway_credential_queries_total",
                  "Database queries that carried the credential lookups (many lookups per query in a storm)")


def hash_credential(credential: str) -> bytes:
    return hashlib.sha256(credential.encode()).digest()


@dataclass(frozen=True)
class StoredCredentials:
    """What the devices table holds about an unrevoked device's credentials."""

    installation_id: str
    current_sha256: bytes
    previous_sha256: bytes | None = None              # the credential before the last rotation
    previous_valid_until_unix_ms: int | None = None   # …accepted until then (exclusive)


class CredentialMatch(Enum):
    CURRENT = "current"
    PREVIOUS = "previous"   # within its grace: accepted, but only until previous_valid_until_unix_ms


def check_credential(stored: StoredCredentials, presented_sha256: bytes, now_unix_ms: int) -> CredentialMatch | None:
    """Which of the device's credentials `presented_sha256` is, or None when it is neither (or the
    previous one after its grace). Both comparisons always run, in constant time."""
    current = hmac.compare_digest(stored.current_sha256, presented_sha256)
    previous = (stored.previous_sha256 is not None and stored.previous_valid_until_unix_ms is not None
                and hmac.compare_digest(stored.previous_sha256, presented_sha256))
    if current:
        return CredentialMatch.CURRENT
    if previous and now_unix_ms < (stored.previous_valid_until_unix_ms or 0):
        return CredentialMatch.PREVIOUS
    return None


def fleet_credential(fleet_secret: str, device_id: str) -> str:
    """The demo fleet's credential for a device, derived so simulator and provisioning agree
    without sharing a file. Real devices get random credentials at manufacturing."""
    return hmac.new(fleet_secret.encode(), device_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DeviceRegistration:
    device_id: str
    installation_id: str
    credential: str
    serial: str | None = None     # None: the device id
    kind: str = "gateway"         # model.DeviceKind values
    firmware: str = ""


async def register_devices(pool: asyncpg.Pool, devices: Iterable[DeviceRegistration]) -> int:
    """Creates devices or replaces their credential and installation (rotation, un-revoking);
    returns how many were written. An existing device keeps its serial, kind and firmware.

    An installation that a device names and that does not exist yet is created with nothing but
    its id (no location, customer or ratings: `gridtwin assets seed` or `import` fill them in).
    All or nothing: one transaction."""
    regs = list(devices)
    async with pool.acquire() as con, con.transaction():
        await con.execute(
            "INSERT INTO installations (installation_id) SELECT DISTINCT unnest($1::text[]) ON CONFLICT DO NOTHING",
            [d.installation_id for d in regs],
        )
        await con.execute(
            """
            INSERT INTO devices (device_id, installation_id, credential_sha256, serial, kind, firmware)
            SELECT d, i, c, coalesce(s, d), k, f
              FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[])
                   AS t(d, i, c, s, k, f)
            ON CONFLICT (device_id) DO UPDATE
               SET installation_id = EXCLUDED.installation_id,
                   credential_sha256 = EXCLUDED.credential_sha256,
                   previous_credential_sha256 = NULL, previous_credential_valid_until = NULL,
                   revoked_at = NULL
            """,
            [d.device_id for d in regs], [d.installation_id for d in regs],
            [hash_credential(d.credential) for d in regs], [d.serial for d in regs],
            [d.kind for d in regs], [d.firmware for d in regs],
        )
    return len(regs)


_STORED_QUERY = """
SELECT device_id, installation_id, credential_sha256, previous_credential_sha256,
       (extract(epoch FROM previous_credential_valid_until) * 1000)::bigint AS previous_valid_until_unix_ms
  FROM devices WHERE device_id = ANY($1::text[]) AND revoked_at IS NULL
"""


class _CoalescedReads:
    """Device rows read in batches: lookups asked for while a query runs ride on the next one.

    When a gateway dies, its thousands of devices say hello to another within seconds; one query
    per hello would be a herd of single-row queries on the database that the ingest shares. Here
    at most one query is running, and it carries every lookup that arrived meanwhile (up to
    `max_batch`), so a storm costs tens of queries, and a quiet gateway still one per hello."""

    def __init__(self, pool: asyncpg.Pool, max_batch: int = 1_000) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._waiting: dict[str, list[asyncio.Future[asyncpg.Record | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def read(self, device_id: str) -> asyncpg.Record | None:
        future: asyncio.Future[asyncpg.Record | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(device_id, []).append(future)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_all())
        return await future

    async def _read_all(self) -> None:
        await asyncio.sleep(0)   # hellos handled in this turn of the loop join the first query
        while self._waiting:
            batch = {d: self._waiting.pop(d) for d in list(itertools.islice(self._waiting, self._max_batch))}
            try:
                QUERIES.inc()
                rows = {r["device_id"]: r for r in await self._pool.fetch(_STORED_QUERY, list(batch))}
            except BaseException as exc:
                for futures in batch.values():
                    for f in futures:
                        if not f.done():
                            f.set_exception(exc if isinstance(exc, Exception) else ConnectionError("shut down"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for device_id, futures in batch.items():
                for f in futures:
                    if not f.done():
                        f.set_result(rows.get(device_id))


class CredentialDirectory:
    """Authenticates devices against the `devices` table, caching what it read for `cache_s`.

    A revocation or rotation made elsewhere takes effect within `cache_s`; the end of a rotation's
    grace is exact, since the cache keeps its deadline. A credential that does not match what is
    cached is looked up again (at most once per `recheck_s` per device), so a device that was
    just given a new credential is admitted at once, not after the cache expires."""

    def __init__(self, pool: asyncpg.Pool, cache_s: float = 60.0, *, recheck_s: float = 1.0,
                 clock_ms: Callable[[], int] = now_ms) -> None:
        self._pool = pool
        self._cache_s = cache_s
        self._recheck_s = recheck_s
        self._clock_ms = clock_ms
        self._cache: dict[str, tuple[float, StoredCredentials]] = {}   # device id → (read at, monotonic)
        self._reads = _CoalescedReads(pool)

    async def authenticate(self, device_id: str, credential: str) -> DeviceIdentity | str:
        """The device's identity, or the reason it is refused: "unknown_device" or
        "bad_credential" (for metrics; the device is told only that authentication failed).
        An identity admitted with the previous credential carries when that credential ends."""
        if not ID.fullmatch(device_id):
            # No stored device has such an id (the table constrains them), and Postgres would refuse
            # a NUL outright: that error must not read as "directory down, try again" (1013).
            return "unknown_device"
        presented = hash_credential(credential)
        entry = self._cache.get(device_id)
        now = time.monotonic()
        if entry is None or entry[0] + self._cache_s < now:
            entry = await self._read(device_id)
        match = None if entry is None else check_credential(entry[1], presented, self._clock_ms())
        if match is None and entry is not None and entry[0] + self._recheck_s < now:
            entry = await self._read(device_id)    # rotated since we read it?
            match = None if entry is None else check_credential(entry[1], presented, self._clock_ms())
        if entry is None:
            return "unknown_device"
        if match is None:
            return "bad_credential"
        stored = entry[1]
        valid_until = stored.previous_valid_until_unix_ms if match is CredentialMatch.PREVIOUS else None
        return DeviceIdentity(device_id, stored.installation_id, credential_valid_until_unix_ms=valid_until)

    async def _read(self, device_id: str) -> tuple[float, StoredCredentials] | None:
        LOOKUPS.inc()
        row = await self._reads.read(device_id)
        if row is None:
            self._cache.pop(device_id, None)
            return None
        entry = (time.monotonic(), StoredCredentials(
            row["installation_id"], bytes(row["credential_sha256"]),
            bytes(row["previous_credential_sha256"]) if row["previous_credential_sha256"] is not None else None,
            row["previous_valid_until_unix_ms"]))
        self._cache[device_id] = entry
        return entry
