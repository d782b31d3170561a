"""Postgres access shared by the services: the asyncpg pool and schema migrations."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from gridtwin.settings import PostgresSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(pg: PostgresSettings, revision: str = "heads") -> None:
    """Brings the schema to `revision` with Alembic (idempotent). The default, every head, lets
    each domain's migrations branch from the revision they need."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", pg.url.replace("postgresql://", "postgresql+asyncpg://", 1))
    command.upgrade(config, revision)


async def create_pool(pg: PostgresSettings, **kwargs: object) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        pg.url, min_size=pg.pool_min_size, max_size=pg.pool_max_size, **kwargs  # type: ignore[arg-type]
    )
    assert pool is not None
    return pool
