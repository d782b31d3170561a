"""Authentication: the `authorization` metadata of a call → a Principal, or Unauthenticated.

`Bearer <token>`: one lookup by the token's SHA-256 over every kind of bearer credential — a
personal access token or service token (`api_principals`), a session (`access_sessions`, from a
password login or an accepted invitation) or a client access token (`access_client_tokens`, OAuth
2.0 client credentials). A person's session or token authenticates as the person (kind, role,
paths, installations); a disabled person's credentials stop working at once (within the cache).
`Device <device_id> <credential>`: a device, against the devices table.

Valid credentials are cached for `cache_s` (at most `max_entries`) and never past their expiry;
`forget` drops entries at once (revocations on this replica). On asyncpg: one pool per process,
shared with the service that authenticates.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import asyncpg

from gridtwin import unixtime
from gridtwin.errors import Unauthenticated, Unavailable
from services.access import rules
from services.access.audit import AuditLog
from services.access.credentials import CredentialMatch, StoredCredentials, check_credential, hash_credential
from services.access.model import (
    KIND_SCOPES,
    ROLE_SCOPE,
    ApiPrincipal,
    DevicePrincipal,
    Kind,
    Principal,
    Role,
    Scope,
    effective_scopes,
)
from services.assets.model import DeviceId, GroupPath, InstallationId, PrincipalId

# Storage outages become Unavailable at this boundary (the guard answers UNAVAILABLE).
STORAGE_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)

# How often a session's last use is written: idle timeouts are minutes, so a minute's slack is fine
# and most calls write nothing.
SESSION_TOUCH_S = 60

_BEARER = """
    SELECT 'token' AS credential, p.principal_id AS credential_id, p.name, p.scopes, p.allowed_paths::text[] AS paths,
           extract(epoch FROM p.expires_at) * 1000 AS expires_ms, NULL::float8 AS idle_until_ms,
           u.user_id, u.username, u.kind, u.role, u.allowed_paths::text[] AS user_paths, u.installation_ids,
           u.disabled_at IS NOT NULL AS disabled
      FROM api_principals p LEFT JOIN access_users u ON u.user_id = p.owner_user_id
     WHERE p.token_sha256 = $1 AND p.revoked_at IS NULL
    UNION ALL
    SELECT 'session', s.session_id, u.username, NULL, NULL,
           extract(epoch FROM s.expires_at) * 1000,
           extract(epoch FROM s.last_seen_at + make_interval(secs => s.idle_timeout_s)) * 1000,
           u.user_id, u.username, u.kind, u.role, u.allowed_paths::text[], u.installation_ids,
           u.disabled_at IS NOT NULL
      FROM access_sessions s JOIN access_users u USING (user_id)
     WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL
    UNION ALL
    SELECT 'client', c.client_id, c.name, t.scopes, c.allowed_paths::text[],
           extract(epoch FROM t.expires_at) * 1000, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, c.disabled_at IS NOT NULL
      FROM access_client_tokens t JOIN access_clients c USING (client_id)
     WHERE t.token_sha256 = $1
"""


def principal_from_row(row: Any) -> ApiPrincipal:
    """The principal a bearer credential's row stands for (see `_BEARER`)."""
    expires = int(row["expires_ms"]) if row["expires_ms"] is not None else None
    idle_until = int(row["idle_until_ms"]) if row["idle_until_ms"] is not None else None
    if idle_until is not None:
        expires = idle_until if expires is None else min(expires, idle_until)
    token_scopes = frozenset(Scope(s) for s in row["scopes"]) if row["scopes"] is not None else None
    if row["credential"] == "client":
        return ApiPrincipal(PrincipalId(row["credential_id"]), row["name"], token_scopes or frozenset(),
                            tuple(GroupPath(p) for p in row["paths"]), expires, kind=Kind.MACHINE,
                            credential="client", credential_id=row["credential_id"])
    if row["user_id"] is None:   # a standalone token
        return ApiPrincipal(PrincipalId(row["credential_id"]), row["name"], token_scopes or frozenset(),
                            tuple(GroupPath(p) for p in row["paths"]), expires,
                            credential="token", credential_id=row["credential_id"])
    kind = Kind(row["kind"])
    role = Role(row["role"]) if row["role"] else None
    held = (effective_scopes([ROLE_SCOPE[role]]) if kind is Kind.OPERATOR and role is not None
            else KIND_SCOPES.get(kind, frozenset()))
    scopes = held if token_scopes is None else held & effective_scopes(token_scopes)
    return ApiPrincipal(
        PrincipalId(row["user_id"]), row["username"], scopes,
        tuple(GroupPath(p) for p in row["user_paths"] or ()), expires, kind=kind, role=role,
        installation_ids=tuple(InstallationId(i) for i in row["installation_ids"] or ()),
        credential=row["credential"], credential_id=row["credential_id"])


class CredentialStore:
    """The credential lookups on asyncpg. `pool`: the process's pool, or a DSN for tools and tests
    that have none (a small pool of its own is opened on first use; `close` closes it)."""

    def __init__(self, pool: asyncpg.Pool | str) -> None:
        self._pool = pool if isinstance(pool, asyncpg.Pool) else None
        self._dsn = pool if isinstance(pool, str) else None
        self._opening = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    assert self._dsn is not None
                    self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4)
        return self._pool

    async def close(self) -> None:
        """Closes the pool the store opened itself (never a pool it was given)."""
        if self._dsn is not None and self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def principal_by_token(self, token_sha256: bytes) -> ApiPrincipal | None:
        """The principal of an unrevoked bearer credential of an enabled holder (expiry is the
        caller's decision); a session's last use is noted."""
        pool = await self.pool()
        rows = await pool.fetch(_BEARER, token_sha256)
        if not rows or rows[0]["disabled"]:
            return None
        found = principal_from_row(rows[0])
        if found.credential == "session":
            await pool.execute(
                "UPDATE access_sessions SET last_seen_at = now() WHERE session_id = $1 "
                "AND last_seen_at < now() - make_interval(secs => $2)", found.credential_id, SESSION_TOUCH_S)
        return found

    async def device_credential(self, device_id: str) -> StoredCredentials | None:
        """The credentials of an unrevoked device."""
        if "\x00" in device_id:
            return None
        row = await (await self.pool()).fetchrow("""
            SELECT credential_sha256, installation_id, previous_credential_sha256,
                   extract(epoch FROM previous_credential_valid_until) * 1000 AS previous_until_ms
              FROM devices WHERE device_id = $1 AND revoked_at IS NULL
        """, device_id)
        if row is None:
            return None
        return StoredCredentials(
            InstallationId(row["installation_id"]), bytes(row["credential_sha256"]),
            bytes(row["previous_credential_sha256"]) if row["previous_credential_sha256"] is not None else None,
            int(row["previous_until_ms"]) if row["previous_until_ms"] is not None else None)


class CredentialLookup(Protocol):
    async def principal_by_token(self, token_sha256: bytes) -> ApiPrincipal | None: ...
    async def device_credential(self, device_id: str) -> StoredCredentials | None: ...


class Authenticator:
    """Turns the `authorization` metadata into a Principal, or raises Unauthenticated (and
    Unavailable when the credential storage is down).

    `credentials`: the process's asyncpg pool (or a DSN, see CredentialStore), or any lookup with
    the two methods of `CredentialLookup` (unit tests use a dict)."""

    def __init__(self, credentials: asyncpg.Pool | str | CredentialLookup, *, cache_s: float = 10.0,
                 max_entries: int = 10_000, clock_ms: Callable[[], int] = unixtime.now_ms) -> None:
        self.store: CredentialLookup = (CredentialStore(credentials) if isinstance(credentials, asyncpg.Pool | str)
                                        else credentials)
        self._cache_s = cache_s
        self._max_entries = max_entries
        self._clock_ms = clock_ms
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        # The audit log of the calls this authenticator admits (the guard records them).
        self.audit = AuditLog(self.store.pool) if isinstance(self.store, CredentialStore) else None

    async def close(self) -> None:
        """Flushes the audit log and closes a pool the store opened itself."""
        if self.audit is not None:
            await self.audit.close()
        if isinstance(self.store, CredentialStore):
            await self.store.close()

    def forget(self, *, principal_id: str | None = None, device_id: str | None = None,
               credential_id: str | None = None) -> None:
        for key, (_, principal) in list(self._cache.items()):
            if isinstance(principal, ApiPrincipal) and (
                    principal.principal_id == principal_id or principal.credential_id == credential_id) or (
                    isinstance(principal, DevicePrincipal) and principal.device_id == device_id):
                del self._cache[key]

    async def authenticate(self, metadata: Sequence[tuple[str, Any]]) -> Principal:
        values = [v for k, v in metadata if k == "authorization"]
        if len(values) != 1 or not isinstance(values[0], str):
            raise Unauthenticated("send one `authorization` metadata entry: `Bearer <token>` or "
                                  "`Device <device_id> <credential>`")
        return await self.authenticate_header(values[0])

    async def authenticate_header(self, value: str) -> Principal:
        """As `authenticate`, for the value of one `authorization` header (HTTP)."""
        scheme, _, rest = value.strip().partition(" ")
        scheme, rest = scheme.lower(), rest.strip()
        try:
            if scheme == "bearer" and rest:
                principal = await self.bearer(rest)
            elif scheme == "device" and " " in rest:
                device_id, _, credential = rest.partition(" ")
                principal = await self._device(device_id, credential.strip())
            else:
                raise Unauthenticated(
                    "unsupported authorization: use `Bearer <token>` or `Device <device_id> <credential>`")
        except STORAGE_DOWN as exc:
            raise Unavailable("credential storage unavailable") from exc
        if rules.is_expired(principal, self._clock_ms()):
            raise Unauthenticated("token expired")
        return principal

    def _cached(self, key: bytes) -> Principal | None:
        entry = self._cache.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def _remember(self, key: bytes, principal: Principal, *, valid_until_unix_ms: int | None = None) -> None:
        """Caches for `cache_s`, never beyond `valid_until_unix_ms` (a credential in its grace)."""
        if len(self._cache) >= self._max_entries:
            self._cache.clear()  # bounded: a rare full refill beats tracking recency per call
        keep_s = self._cache_s
        if valid_until_unix_ms is not None:
            keep_s = min(keep_s, (valid_until_unix_ms - self._clock_ms()) / 1_000)
        self._cache[key] = (time.monotonic() + keep_s, principal)

    async def bearer(self, token: str) -> Principal:
        """The principal of a bearer token (PAT, session or client token)."""
        key = hashlib.sha256(token.encode()).digest()
        principal = self._cached(key)
        if principal is None:
            found = await self.store.principal_by_token(key)
            if found is None:
                raise Unauthenticated("unknown or revoked token")
            principal = found
            # Never cached past its expiry (authenticate checks it on every call as well).
            self._remember(key, principal, valid_until_unix_ms=found.expires_unix_ms)
        return principal

    async def _device(self, device_id: str, credential: str) -> Principal:
        digest = hash_credential(credential)
        key = b"device:" + device_id.encode() + b":" + digest
        principal = self._cached(key)
        if principal is None:
            stored = await self.store.device_credential(device_id)
            match = None if stored is None else check_credential(stored, digest, self._clock_ms())
            if stored is None or match is None:
                raise Unauthenticated("unknown device or wrong credential")
            principal = DevicePrincipal(DeviceId(device_id), InstallationId(stored.installation_id))
            self._remember(key, principal, valid_until_unix_ms=(
                stored.previous_valid_until_unix_ms if match is CredentialMatch.PREVIOUS else None))
        return principal
