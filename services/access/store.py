"""The access tables on asyncpg (migration 0014_access, and api_principals of 0003): SQL only, no
decisions. Storage outages surface as gridtwin.errors.Unavailable (translated here, at the
boundary); duplicates as AlreadyExists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from gridtwin.errors import AlreadyExists, Unavailable
from services.access.model import Kind, Role, Scope
from services.access.throttle import Failures
from services.assets.model import GroupPath, InstallationId

_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


# Times cross as Unix milliseconds, converted in SQL: the pool may carry a codec of its own for
# timestamptz (the telemetry pools decode them as integer microseconds).
def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


def _epoch_ms(column: str, alias: str | None = None) -> str:
    return f"(extract(epoch FROM {column}) * 1000)::float8 AS {alias or column}"



@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    kind: Kind
    role: Role | None
    allowed_paths: tuple[GroupPath, ...]
    installation_ids: tuple[InstallationId, ...]
    email: str
    disabled: bool
    created_unix_ms: int
    password_hash: str = ""


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    name: str
    scopes: frozenset[Scope]
    allowed_paths: tuple[GroupPath, ...]
    expires_unix_ms: int | None
    owner_user_id: str | None
    created_unix_ms: int
    revoked: bool
    created_by: str = ""


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    name: str
    secret_sha256: bytes
    scopes: frozenset[Scope]
    allowed_paths: tuple[GroupPath, ...]
    disabled: bool


@dataclass(frozen=True)
class CodeRecord:
    purpose: str
    user_id: str | None
    installation_id: str | None
    email: str
    expires_unix_ms: int
    used: bool


@dataclass(frozen=True)
class AuditRecord:
    entry_id: int
    time_unix_ms: int
    actor: str
    method: str
    target: str
    code: str


def _user(row: Any) -> User:
    return User(row["user_id"], row["username"], Kind(row["kind"]), Role(row["role"]) if row["role"] else None,
                tuple(GroupPath(p) for p in row["allowed_paths"]),
                tuple(InstallationId(i) for i in row["installation_ids"]), row["email"],
                row["disabled_at"] is not None, _ms(row["created_at"]) or 0, row["password_hash"])


def _token(row: Any) -> TokenRecord:
    return TokenRecord(row["principal_id"], row["name"], frozenset(Scope(s) for s in row["scopes"]),
                       tuple(GroupPath(p) for p in row["allowed_paths"]), _ms(row["expires_at"]),
                       row["owner_user_id"], _ms(row["created_at"]) or 0, row["revoked_at"] is not None,
                       row["created_by"])


_USER_COLUMNS = ("user_id, username, kind, role, allowed_paths::text[] AS allowed_paths, installation_ids, email, "
                 f"{_epoch_ms('disabled_at')}, {_epoch_ms('created_at')}, password_hash")
_TOKEN_COLUMNS = ("principal_id, name, scopes, allowed_paths::text[] AS allowed_paths, "
                  f"{_epoch_ms('expires_at')}, owner_user_id, {_epoch_ms('created_at')}, "
                  f"{_epoch_ms('revoked_at')}, created_by")


class AccessStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.pool.acquire() as con, con.transaction():
                yield con
        except _DOWN as exc:
            raise Unavailable("access storage unavailable") from exc

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        try:
            return list(await self.pool.fetch(query, *args))
        except _DOWN as exc:
            raise Unavailable("access storage unavailable") from exc

    # ---------------------------------------------------------- users

    async def create_user(self, user: User, password_hash: str, created_by: str) -> User:
        try:
            async with self._transaction() as con:
                row = await con.fetchrow(f"""
                    INSERT INTO access_users (user_id, username, kind, role, allowed_paths, installation_ids, email,
                                              password_hash, created_by)
                    VALUES ($1, $2, $3, $4, $5::text[]::ltree[], $6, $7, $8, $9) RETURNING {_USER_COLUMNS}
                """, user.user_id, user.username, user.kind.value, user.role.value if user.role else None,
                    list(user.allowed_paths), list(user.installation_ids), user.email, password_hash, created_by)
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"user {user.username!r} exists") from None
        return _user(row)

    async def user_by_name(self, username: str) -> User | None:
        rows = await self._fetch(f"SELECT {_USER_COLUMNS} FROM access_users WHERE username = $1", username)
        return _user(rows[0]) if rows else None

    async def user(self, user_id: str) -> User | None:
        rows = await self._fetch(f"SELECT {_USER_COLUMNS} FROM access_users WHERE user_id = $1", user_id)
        return _user(rows[0]) if rows else None

    async def list_users(self, after_username: str, limit: int, paths: Sequence[GroupPath] | None) -> list[User]:
        """Users ordered by username after `after_username`; `paths` (None: all) keeps operators
        whose paths all lie within them and homeowners/installers of installations in their groups."""
        if paths is None:
            rows = await self._fetch(f"SELECT {_USER_COLUMNS} FROM access_users WHERE username > $1 "
                                     "ORDER BY username LIMIT $2", after_username, limit)
        else:
            rows = await self._fetch(f"""
                SELECT {_USER_COLUMNS} FROM access_users u WHERE username > $1 AND (
                    (kind = 'operator' AND cardinality(allowed_paths) > 0 AND NOT EXISTS (
                        SELECT 1 FROM unnest(u.allowed_paths) p WHERE NOT p <@ ANY($3::text[]::ltree[])))
                    OR (kind <> 'operator' AND cardinality(installation_ids) > 0 AND NOT EXISTS (
                        SELECT 1 FROM unnest(u.installation_ids) i WHERE NOT EXISTS (
                            SELECT 1 FROM group_memberships m WHERE m.installation_id = i
                               AND m.path <@ ANY($3::text[]::ltree[])))))
                ORDER BY username LIMIT $2
            """, after_username, limit, list(paths))
        return [_user(r) for r in rows]

    async def disable_user(self, user_id: str) -> User | None:
        """Disables the user and ends their sessions and personal tokens (idempotent)."""
        async with self._transaction() as con:
            row = await con.fetchrow(f"""
                UPDATE access_users SET disabled_at = coalesce(disabled_at, now()) WHERE user_id = $1
                RETURNING {_USER_COLUMNS}
            """, user_id)
            await con.execute("UPDATE access_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
                              user_id)
            await con.execute("UPDATE api_principals SET revoked_at = now() "
                              "WHERE owner_user_id = $1 AND revoked_at IS NULL", user_id)
        return None if row is None else _user(row)

    async def add_installation(self, user_id: str, installation_id: str) -> None:
        async with self._transaction() as con:
            await con.execute("UPDATE access_users SET installation_ids = array_append(installation_ids, $2) "
                              "WHERE user_id = $1 AND NOT $2 = ANY(installation_ids)", user_id, installation_id)

    async def set_password(self, con: asyncpg.Connection, user_id: str, password_hash: str) -> None:
        """In the caller's transaction; every session of the user ends."""
        await con.execute("UPDATE access_users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash)
        await con.execute("UPDATE access_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
                          user_id)

    async def rehash(self, user_id: str, password_hash: str) -> None:
        async with self._transaction() as con:
            await con.execute("UPDATE access_users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash)

    # ---------------------------------------------------------- identities at OIDC providers (0015)

    async def identity_user(self, issuer: str, subject: str) -> User | None:
        """The local user linked to (issuer, subject); the link's last login is now."""
        async with self._transaction() as con:
            row = await con.fetchrow(f"""
                WITH seen AS (UPDATE access_identities SET last_login_at = now()
                               WHERE issuer = $1 AND subject = $2 RETURNING user_id)
                SELECT {_USER_COLUMNS} FROM access_users WHERE user_id = (SELECT user_id FROM seen)
            """, issuer, subject)
        return None if row is None else _user(row)

    async def link_identity(self, issuer: str, subject: str, user_id: str) -> None:
        """Links (issuer, subject) to the user unless either is linked already (then nothing
        changes: read back with identity_user)."""
        async with self._transaction() as con:
            await con.execute("INSERT INTO access_identities (issuer, subject, user_id) VALUES ($1, $2, $3) "
                              "ON CONFLICT DO NOTHING", issuer, subject, user_id)

    async def provision_identity(self, issuer: str, subject: str, user: User, created_by: str) -> None:
        """Creates the user, with no password (`!` verifies against none), linked to (issuer,
        subject), in one transaction; AlreadyExists when the username or the identity is taken
        meanwhile (nothing is created then)."""
        async with self._transaction() as con:
            await self.insert_user(con, user, "!", created_by)
            try:
                await con.execute("INSERT INTO access_identities (issuer, subject, user_id) VALUES ($1, $2, $3)",
                                  issuer, subject, user.user_id)
            except asyncpg.UniqueViolationError:   # the same identity's other first login won
                raise AlreadyExists("this identity is linked already") from None

    # ---------------------------------------------------------- sessions

    async def create_session(self, session_id: str, token_sha256: bytes, user_id: str, expires_unix_ms: int,
                             idle_timeout_s: int) -> None:
        async with self._transaction() as con:
            await con.execute("""
                INSERT INTO access_sessions (session_id, token_sha256, user_id, expires_at, idle_timeout_s)
                VALUES ($1, $2, $3, to_timestamp($4::float8 / 1000), $5)
            """, session_id, token_sha256, user_id, expires_unix_ms, idle_timeout_s)

    async def revoke_session(self, session_id: str) -> None:
        async with self._transaction() as con:
            await con.execute("UPDATE access_sessions SET revoked_at = now() "
                              "WHERE session_id = $1 AND revoked_at IS NULL", session_id)

    # ---------------------------------------------------------- throttling

    async def failures(self, keys: Iterable[str]) -> dict[str, Failures]:
        rows = await self._fetch(f"SELECT key, failures, {_epoch_ms('first_at')}, {_epoch_ms('locked_until')} "
                                 "FROM access_login_failures WHERE key = ANY($1::text[])", list(keys))
        return {r["key"]: Failures(r["failures"], _ms(r["first_at"]) or 0, _ms(r["locked_until"]) or 0) for r in rows}

    async def save_failures(self, states: dict[str, Failures]) -> None:
        async with self._transaction() as con:
            await con.executemany("""
                INSERT INTO access_login_failures (key, failures, first_at, locked_until)
                VALUES ($1, $2, to_timestamp($3::float8 / 1000), to_timestamp($4::float8 / 1000))
                ON CONFLICT (key) DO UPDATE SET failures = EXCLUDED.failures, first_at = EXCLUDED.first_at,
                                                locked_until = EXCLUDED.locked_until
            """, [(k, s.count, s.first_unix_ms, s.locked_until_unix_ms or None) for k, s in states.items()])

    async def clear_failures(self, keys: Iterable[str]) -> None:
        async with self._transaction() as con:
            await con.execute("DELETE FROM access_login_failures WHERE key = ANY($1::text[])", list(keys))

    # ---------------------------------------------------------- one-time codes

    async def create_code(self, code_sha256: bytes, purpose: str, expires_unix_ms: int, created_by: str, *,
                          user_id: str | None = None, installation_id: str | None = None, email: str = "") -> None:
        async with self._transaction() as con:
            await con.execute("""
                INSERT INTO access_codes (code_sha256, purpose, user_id, installation_id, email, created_by, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::float8 / 1000))
            """, code_sha256, purpose, user_id, installation_id, email, created_by, expires_unix_ms)

    @asynccontextmanager
    async def redeeming(self, code_sha256: bytes, purpose: str) -> AsyncIterator[tuple[asyncpg.Connection,
                                                                                       CodeRecord | None]]:
        """A transaction holding the code's row locked (None: no such code); the caller marks it
        used with `mark_used` in the same transaction, so a code works once even when raced."""
        async with self._transaction() as con:
            row = await con.fetchrow(f"""
                SELECT purpose, user_id, installation_id, email, {_epoch_ms('expires_at')}, used_at IS NOT NULL AS used
                  FROM access_codes WHERE code_sha256 = $1 AND purpose = $2 FOR UPDATE
            """, code_sha256, purpose)
            record = None if row is None else CodeRecord(row["purpose"], row["user_id"], row["installation_id"],
                                                         row["email"], _ms(row["expires_at"]) or 0, row["used"])
            yield con, record

    @staticmethod
    async def mark_used(con: asyncpg.Connection, code_sha256: bytes) -> None:
        await con.execute("UPDATE access_codes SET used_at = now() WHERE code_sha256 = $1", code_sha256)

    @staticmethod
    async def insert_user(con: asyncpg.Connection, user: User, password_hash: str, created_by: str) -> None:
        try:
            await con.execute("""
                INSERT INTO access_users (user_id, username, kind, role, allowed_paths, installation_ids, email,
                                          password_hash, created_by)
                VALUES ($1, $2, $3, $4, $5::text[]::ltree[], $6, $7, $8, $9)
            """, user.user_id, user.username, user.kind.value, user.role.value if user.role else None,
                list(user.allowed_paths), list(user.installation_ids), user.email, password_hash, created_by)
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"user {user.username!r} exists") from None

    # ---------------------------------------------------------- personal access tokens

    async def create_token(self, record: TokenRecord, token_sha256: bytes, created_by: str) -> TokenRecord:
        async with self._transaction() as con:
            row = await con.fetchrow(f"""
                INSERT INTO api_principals (principal_id, name, token_sha256, scopes, allowed_paths, created_by,
                                            expires_at, owner_user_id)
                VALUES ($1, $2, $3, $4, $5::text[]::ltree[], $6, to_timestamp($7::float8 / 1000), $8)
                RETURNING {_TOKEN_COLUMNS}
            """, record.token_id, record.name, token_sha256, sorted(s.value for s in record.scopes),
                list(record.allowed_paths), created_by, record.expires_unix_ms, record.owner_user_id)
        return _token(row)

    async def token(self, token_id: str) -> TokenRecord | None:
        rows = await self._fetch(f"SELECT {_TOKEN_COLUMNS} FROM api_principals WHERE principal_id = $1", token_id)
        return _token(rows[0]) if rows else None

    async def list_tokens(self, after_id: str, limit: int, *, owner_user_id: str | None, created_by: str,
                          paths: Sequence[GroupPath] | None) -> list[TokenRecord]:
        """Unrevoked tokens ordered by id: a person's own (`owner_user_id`), those the caller made
        (`created_by`), and standalone ones whose paths all lie within `paths` (None: none of those)."""
        rows = await self._fetch(f"""
            SELECT {_TOKEN_COLUMNS} FROM api_principals t WHERE revoked_at IS NULL AND principal_id > $1
               AND (owner_user_id = $3 OR created_by = $5
                    OR ($4::text[] IS NOT NULL AND owner_user_id IS NULL AND NOT EXISTS (
                        SELECT 1 FROM unnest(t.allowed_paths) p WHERE NOT p <@ ANY($4::text[]::ltree[]))))
             ORDER BY principal_id LIMIT $2
        """, after_id, limit, owner_user_id, None if paths is None else list(paths), created_by)
        return [_token(r) for r in rows]

    async def revoke_token(self, token_id: str) -> None:
        async with self._transaction() as con:
            await con.execute("UPDATE api_principals SET revoked_at = now() "
                              "WHERE principal_id = $1 AND revoked_at IS NULL", token_id)

    # ---------------------------------------------------------- machine clients

    async def create_client(self, client: ClientRecord, created_by: str) -> None:
        async with self._transaction() as con:
            await con.execute("""
                INSERT INTO access_clients (client_id, name, secret_sha256, scopes, allowed_paths, created_by)
                VALUES ($1, $2, $3, $4, $5::text[]::ltree[], $6)
            """, client.client_id, client.name, client.secret_sha256, sorted(s.value for s in client.scopes),
                list(client.allowed_paths), created_by)

    async def client(self, client_id: str) -> ClientRecord | None:
        rows = await self._fetch("SELECT client_id, name, secret_sha256, scopes, allowed_paths::text[] AS paths, "
                                 "disabled_at IS NOT NULL AS disabled FROM access_clients WHERE client_id = $1",
                                 client_id)
        if not rows:
            return None
        r = rows[0]
        return ClientRecord(r["client_id"], r["name"], bytes(r["secret_sha256"]),
                            frozenset(Scope(s) for s in r["scopes"]), tuple(GroupPath(p) for p in r["paths"]),
                            r["disabled"])

    async def create_client_token(self, token_sha256: bytes, client_id: str, scopes: frozenset[Scope],
                                  expires_unix_ms: int) -> None:
        async with self._transaction() as con:
            # Expired tokens of any client go as new ones come: the table holds only live ones.
            await con.execute("DELETE FROM access_client_tokens WHERE expires_at < now() - interval '1 hour'")
            await con.execute("INSERT INTO access_client_tokens (token_sha256, client_id, scopes, expires_at) "
                              "VALUES ($1, $2, $3, to_timestamp($4::float8 / 1000))", token_sha256, client_id,
                              sorted(s.value for s in scopes), expires_unix_ms)

    # ---------------------------------------------------------- audit log

    async def audit_entries(self, before_entry_id: int | None, limit: int, *, actor: str, method: str,
                            paths: Sequence[GroupPath] | None) -> list[AuditRecord]:
        """Newest first (by entry id: entries are numbered as they are written), before
        `before_entry_id` when given; `actor`/`method` "" = any. `paths` (None: every entry) keeps
        the entries whose target is an installation in a group within them, or such a group."""
        rows = await self._fetch("""
            SELECT entry_id, (extract(epoch FROM at) * 1000)::float8 AS at, actor, method, target, code
              FROM access_audit
             WHERE ($1::bigint IS NULL OR entry_id < $1) AND ($2 = '' OR actor = $2) AND ($3 = '' OR method = $3)
               AND ($5::text[] IS NULL
                    OR target IN (SELECT installation_id FROM group_memberships
                                   WHERE path <@ ANY($5::text[]::ltree[]))
                    OR CASE WHEN target ~ '^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$'
                            THEN text2ltree(target) <@ ANY($5::text[]::ltree[]) ELSE false END)
             ORDER BY entry_id DESC LIMIT $4
        """, before_entry_id, actor, method, limit, None if paths is None else list(paths))
        return [AuditRecord(r["entry_id"], _ms(r["at"]) or 0, r["actor"], r["method"], r["target"], r["code"])
                for r in rows]
