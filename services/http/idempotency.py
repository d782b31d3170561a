"""Idempotency-Key for creates: the same key from the same principal replays the stored answer.

A first request claims the key (a row without a status) before calling the service, so a
concurrent duplicate is told 409 rather than causing a second effect; the answer is stored when
it comes. Answers that say nothing happened (5xx, 429) release the key so that a retry may act.
The same key with a different request (another route or body) is refused with 422. Rows live
for `ttl_s` (IETF draft-ietf-httpapi-idempotency-key-header).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Stored:
    status: int | None        # None: the first request is still in flight
    content_type: str
    body: bytes
    same_request: bool


class IdempotencyStore:
    def __init__(self, pool: asyncpg.Pool, ttl_s: float) -> None:
        self._pool, self._ttl_s = pool, ttl_s

    async def claim(self, principal: str, key: str, route: str, request_sha256: bytes) -> Stored | None:
        """None: the key is this request's now (call the service, then `store` or `release`);
        otherwise what an earlier request with the key left."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "DELETE FROM http_idempotency WHERE principal = $1 AND key = $2 "
                "AND created_at < now() - make_interval(secs => $3)", principal, key, self._ttl_s)
            inserted = await connection.fetchval(
                "INSERT INTO http_idempotency (principal, key, route, request_sha256) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING RETURNING true", principal, key, route, request_sha256)
            if inserted:
                return None
            row = await connection.fetchrow(
                "SELECT route, request_sha256, status, content_type, body FROM http_idempotency "
                "WHERE principal = $1 AND key = $2", principal, key)
        if row is None:   # released in between: try once more
            return await self.claim(principal, key, route, request_sha256)
        return Stored(row["status"], row["content_type"] or "", bytes(row["body"] or b""),
                      row["route"] == route and bytes(row["request_sha256"]) == request_sha256)

    async def store(self, principal: str, key: str, status: int, content_type: str, body: bytes) -> None:
        await self._pool.execute(
            "UPDATE http_idempotency SET status = $3, content_type = $4, body = $5 WHERE principal = $1 AND key = $2",
            principal, key, status, content_type, body)

    async def release(self, principal: str, key: str) -> None:
        await self._pool.execute("DELETE FROM http_idempotency WHERE principal = $1 AND key = $2", principal, key)

    async def sweep(self) -> int:
        result = await self._pool.execute(
            "DELETE FROM http_idempotency WHERE created_at < now() - make_interval(secs => $1)", self._ttl_s)
        return int(result.split()[-1])
