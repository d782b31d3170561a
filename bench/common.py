"""What every benchmark needs: a database of its own, fresh and migrated, so a running platform
and the other benchmarks are left alone."""

from __future__ import annotations

from gridtwin import db
from gridtwin.app import infra
from gridtwin.settings import KafkaSettings, PostgresSettings


def fresh_database(pg: PostgresSettings, name: str, *, pool_max_size: int = 4) -> PostgresSettings:
    """`pg` pointed at database `name` in the same cluster, dropped, recreated and migrated."""
    url = pg.url.rsplit("/", 1)[0] + f"/{name}"
    fresh = pg.model_copy(update={"url": url, "pool_max_size": pool_max_size})
    infra.ensure_postgres(fresh)
    infra.drop_database(fresh)
    infra.ensure_database(fresh)
    db.migrate(fresh)
    return fresh


def run_topics(kafka: KafkaSettings, run: str, prefix: str = "bench") -> KafkaSettings:
    """`kafka` with topics of this run only (telemetry, device events, alerts, commands)."""
    return kafka.model_copy(update={
        "telemetry_topic": f"{prefix}-telemetry-{run}", "device_events_topic": f"{prefix}-events-{run}",
        "alerts_topic": f"{prefix}-alerts-{run}", "commands_topic": f"{prefix}-commands-{run}"})
