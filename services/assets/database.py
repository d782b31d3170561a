"""Connections for the assets service: a SQLAlchemy AsyncEngine over asyncpg with an ltree codec.

ltree travels in its binary form (a version byte, 1, then the text). asyncpg would otherwise use
text format for this extension type, and its text-array decoder crashes the process (segfault,
asyncpg 0.32) on an `ltree[]` holding the root path "" — which an all-groups token does.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gridtwin.settings import PostgresSettings

_LTREE_VERSION = b"\x01"


def _encode_ltree(path: str) -> bytes:
    return _LTREE_VERSION + path.encode()


def _decode_ltree(data: bytes) -> str:
    if data[:1] != _LTREE_VERSION:
        raise ValueError(f"unsupported ltree binary version {data[:1]!r}")
    return data[1:].decode()


async def register_ltree_codec(con: asyncpg.Connection) -> None:
    """Makes `con` send and return ltree values (and arrays of them) as `str`."""
    schema = await con.fetchval(
        "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'ltree'")
    if schema is None:
        raise RuntimeError("the ltree extension is not installed in this database")
    await con.set_type_codec("ltree", schema=schema, format="binary", encoder=_encode_ltree, decoder=_decode_ltree)


def create_engine(pg: PostgresSettings, **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine on `pg.url` (asyncpg driver) whose connections carry the ltree codec."""
    url = pg.url.replace("postgresql://", "postgresql+asyncpg://", 1)
    options: dict[str, Any] = {"pool_size": pg.pool_max_size, "max_overflow": 0, "pool_pre_ping": True}
    engine = create_async_engine(url, **{**options, **kwargs})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(register_ltree_codec)

    return engine


def asyncpg_dsn(engine: AsyncEngine) -> str:
    """The engine's database as an asyncpg DSN (for a pool beside the engine)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
