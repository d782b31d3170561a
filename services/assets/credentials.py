"""Device credentials: the gateway's source of truth for who may connect.

Only a SHA-256 of each credential is stored. Credentials are random secrets of at least 128
bits, never passwords, so a fast hash is enough and keeps mass reconnects cheap. The assets
service owns the `devices` table (migration 0003: serial, kind, firmware, a foreign key to its
installation); the gateway only reads it through `CredentialDirectory`, and the simulator's
demo fleet is provisioned with `register_devices`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter

from services.assets.validation import ID
from services.telemetry.session import DeviceIdentity

# Every query a hello costs the database: what a mass reconnect (a fleet losing its gateway) asks.
LOOKUPS = Counter("gridtwin_gateway_credential_lookups_total", "Device credential lookups in the database")


def hash_credential(credential: str) -> bytes:
    return hashlib.sha256(credential.encode()).digest()


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
                   revoked_at = NULL
            """,
            [d.device_id for d in regs], [d.installation_id for d in regs],
            [hash_credential(d.credential) for d in regs], [d.serial for d in regs],
            [d.kind for d in regs], [d.firmware for d in regs],
        )
    return len(regs)


class CredentialDirectory:
    """Authenticates devices against the `devices` table, caching found devices for `cache_s`
    (so a revocation takes effect within that time)."""

    def __init__(self, pool: asyncpg.Pool, cache_s: float = 60.0) -> None:
        self._pool = pool
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, bytes, str]] = {}

    async def authenticate(self, device_id: str, credential: str) -> DeviceIdentity | str:
        """The device's identity, or the reason it is refused: "unknown_device" or
        "bad_credential" (for metrics; the device is told only that authentication failed)."""
        if not ID.fullmatch(device_id):
            # No stored device has such an id (the table constrains them), and Postgres would refuse
            # a NUL outright: that error must not read as "directory down, try again" (1013).
            return "unknown_device"
        entry = self._cache.get(device_id)
        if entry is None or entry[0] < time.monotonic():
            LOOKUPS.inc()
            row = await self._pool.fetchrow(
                "SELECT credential_sha256, installation_id FROM devices WHERE device_id = $1 AND revoked_at IS NULL",
                device_id,
            )
            if row is None:
                return "unknown_device"
            entry = (time.monotonic() + self._cache_s, bytes(row["credential_sha256"]), row["installation_id"])
            self._cache[device_id] = entry
        _, expected, installation_id = entry
        if not hmac.compare_digest(expected, hash_credential(credential)):
            return "bad_credential"
        return DeviceIdentity(device_id, installation_id)
