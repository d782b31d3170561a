"""Tokens for the platform's own processes that call its gRPC services, e.g. the StormWatch poller
reading the Weather API. Such a process holds the database already, so it issues its token
itself instead of being handed one (GRIDTWIN_TWINS__STORMWATCH_WEATHER_TOKEN overrides that)."""

from __future__ import annotations

import asyncpg

from services.access import codes
from services.access.model import ApiPrincipal, Scope
from services.assets.model import GroupPath, PrincipalId
from services.assets.paths import ROOT

CREATED_BY = "service"


async def mint_service_token(pool: asyncpg.Pool, name: str, scopes: frozenset[Scope],
                             paths: tuple[GroupPath, ...] = (ROOT,)) -> str:
    """A new token for the service `name`, stored like any other (only its SHA-256). The tokens
    `name` held before are revoked: one holder of the name runs at a time (a cluster singleton),
    and a restarted one mints anew, so old tokens would only pile up."""
    token, token_id = codes.new_secret(codes.PERSONAL_TOKEN), codes.new_id("tok")
    async with pool.acquire() as con, con.transaction():
        await con.execute("UPDATE api_principals SET revoked_at = now() "
                          "WHERE name = $1 AND created_by = $2 AND revoked_at IS NULL", name, CREATED_BY)
        await con.execute(
            "INSERT INTO api_principals (principal_id, name, token_sha256, scopes, allowed_paths, created_by) "
            "VALUES ($1, $2, $3, $4, $5::text[]::ltree[], $6)",
            token_id, name, codes.sha256(token),
            sorted(s.value for s in scopes), list(paths), CREATED_BY)
    return token


def issue_token(name: str, scopes: frozenset[Scope], allowed_paths: tuple[GroupPath, ...],
                expires_unix_ms: int | None) -> tuple[str, ApiPrincipal]:
    """A new random standalone token (256 bits) and its principal, for tools that store it
    themselves (`gridtwin assets token create`, benches); store only the token's SHA-256."""
    principal = ApiPrincipal(PrincipalId(codes.new_id("tok")), name, scopes, allowed_paths, expires_unix_ms)
    return codes.new_secret(codes.PERSONAL_TOKEN), principal
