"""What every benchmark needs: a database of its own, fresh and migrated, so a running platform
and the other benchmarks are left alone."""

from __future__ import annotations

from gridtwin import db, infra
from gridtwin.settings import PostgresSettings


def fresh_database(pg: PostgresSettings, name: str, *, pool_max_size: int = 4) -> PostgresSettings:
    """`pg` pointed at database `name` in the same cluster, dropped, recreated and migrated."""
    url = pg.url.rsplit("/", 1)[0] + f"/{name}"
    fresh = pg.model_copy(update={"url": url, "pool_max_size": pool_max_size})
    infra.ensure_postgres(fresh)
    infra.drop_database(fresh)
    infra.ensure_database(fresh)
    db.migrate(fresh)
    return fresh
