"""Alembic environment: migrations are plain SQL (op.execute), run over asyncpg."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None, "gridtwin.db.migrate sets sqlalchemy.url"
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_main())
