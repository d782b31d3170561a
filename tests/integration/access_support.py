"""Credentials for tests that call the guarded gRPC services (services/access/guard.py): tokens
minted straight into the database, and a channel whose calls carry a root token.

Many tests empty `api_principals` (the `clean_db` fixture) between calls, so the root token's row
is put back before each unary call of an `authorized_channel` (one INSERT … ON CONFLICT DO NOTHING)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
import grpc

from services.access.authentication import Authenticator, CredentialStore
from services.access.model import Scope
from services.assets.database import asyncpg_dsn

ROOT_TOKEN = "gta_test_root_token_of_the_integration_tests"
_INSERT = ("INSERT INTO api_principals (principal_id, name, token_sha256, scopes, allowed_paths, created_by, "
           "expires_at) VALUES ($1, $2, $3, $4, $5::text[]::ltree[], 'test', to_timestamp($6::float8 / 1000)) "
           "ON CONFLICT DO NOTHING")


_STORES: dict[str, CredentialStore] = {}


def authenticator(engine: Any) -> Authenticator:
    """The access context's authenticator on the test database (one small asyncpg pool per
    database for the whole session: the tests run on one event loop); no cache, so revocations act
    at once."""
    dsn = asyncpg_dsn(engine)
    return Authenticator(_STORES.setdefault(dsn, CredentialStore(dsn)), cache_s=0.0)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def mint(pool: asyncpg.Pool, *scopes: Scope, paths: Iterable[str] = ("",), expires_unix_ms: int | None = None,
               token: str | None = None, name: str = "test") -> str:
    """A token with `scopes` over `paths`, stored as `gridtwin assets token create` stores it."""
    token = token or f"gta_{uuid.uuid4().hex}"
    digest = hashlib.sha256(token.encode()).digest()
    principal_id = "tok-test-root" if token == ROOT_TOKEN else f"tok-{uuid.uuid4().hex[:16]}"
    await pool.execute(_INSERT, principal_id, name, digest, sorted(s.value for s in scopes), list(paths),
                       expires_unix_ms)
    return token


class _WithRootToken:
    """A multicallable of the channel that adds the root token to calls without `authorization`."""

    def __init__(self, multicallable: Any, pool: asyncpg.Pool, unary: bool) -> None:
        self._multicallable, self._pool, self._unary = multicallable, pool, unary

    def __call__(self, request: Any, *, metadata: Any = None, **kwargs: Any) -> Any:
        given = list(metadata or ())
        if not any(key == "authorization" for key, _ in given):
            given += bearer(ROOT_TOKEN)
        if not self._unary:   # a stream starts at once; its token row must exist already (ensure_root_token)
            return self._multicallable(request, metadata=given, **kwargs)

        async def call() -> Any:
            await ensure_root_token(self._pool)
            return await self._multicallable(request, metadata=given, **kwargs)
        return call()


class AuthorizedChannel:
    """An insecure channel whose calls carry a token with every scope over every group. Unary calls
    put the token's row back first; before a stream, call `ensure_root_token` (a client
    interceptor would do both, but grpc.aio starts an intercepted stream only when it is read)."""

    def __init__(self, target: str, pool: asyncpg.Pool) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._pool = pool

    def unary_unary(self, *args: Any, **kwargs: Any) -> _WithRootToken:
        return _WithRootToken(self._channel.unary_unary(*args, **kwargs), self._pool, unary=True)

    def unary_stream(self, *args: Any, **kwargs: Any) -> _WithRootToken:
        return _WithRootToken(self._channel.unary_stream(*args, **kwargs), self._pool, unary=False)

    def __getattr__(self, name: str) -> Any:   # client streams (reflection) and the rest: as they are
        return getattr(self._channel, name)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AuthorizedChannel:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


async def ensure_root_token(pool: asyncpg.Pool) -> None:
    await mint(pool, Scope.ADMIN, token=ROOT_TOKEN, name="test-root")


def authorized_channel(target: str, pool: asyncpg.Pool) -> Any:
    """See AuthorizedChannel; usable wherever a grpc.aio.Channel is (stubs, `async with`)."""
    return AuthorizedChannel(target, pool)
