"""Twins: snapshots of installation twins, their alerts (with an outbox flag for the alerts topic),
per-installation rule overrides and the shard layout of the twin runtime.

Revision ID: 0004_twins
"""

from alembic import op

revision = "0004_twins"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # shard_hash is murmur2(installation id) & 0x7fffffff, as Kafka's default partitioner hashes
    # the record key: a shard of n recovers the twins with shard_hash % n = its index.
    op.execute("""
        CREATE TABLE twin_snapshots (
            installation_id  text PRIMARY KEY,
            shard_hash       integer NOT NULL CHECK (shard_hash >= 0),
            version          bigint NOT NULL,
            last_sample_at   timestamptz,
            state            jsonb NOT NULL,
            updated_at       timestamptz NOT NULL DEFAULT now()
        ) WITH (fillfactor = 80)
    """)
    op.execute("CREATE INDEX twin_snapshots_recent ON twin_snapshots (updated_at)")
    # One row per alert (a persistent condition), updated through its lifecycle. `published` is
    # the outbox flag: false until the current state is on the alerts topic.
    op.execute("""
        CREATE TABLE twin_alerts (
            alert_id         text PRIMARY KEY,
            installation_id  text NOT NULL,
            rule             text NOT NULL,
            severity         smallint NOT NULL CHECK (severity BETWEEN 1 AND 3),
            state            text NOT NULL CHECK (state IN ('raised', 'ongoing', 'cleared')),
            first_seen       timestamptz NOT NULL,
            last_seen        timestamptz NOT NULL,
            cleared_at       timestamptz,
            samples          bigint NOT NULL DEFAULT 1,
            details          jsonb NOT NULL DEFAULT '{}',
            published        boolean NOT NULL DEFAULT false,
            updated_at       timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX twin_alerts_installation ON twin_alerts (installation_id, first_seen)")
    op.execute("CREATE INDEX twin_alerts_first_seen ON twin_alerts (first_seen)")
    op.execute("CREATE INDEX twin_alerts_open ON twin_alerts (installation_id) WHERE state <> 'cleared'")
    op.execute("CREATE INDEX twin_alerts_unpublished ON twin_alerts (updated_at) WHERE NOT published")
    op.execute("""
        CREATE TABLE twin_rule_overrides (
            installation_id  text NOT NULL,
            rule             text NOT NULL,
            params           jsonb NOT NULL CHECK (jsonb_typeof(params) = 'object'),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (installation_id, rule)
        )
    """)
    op.execute("""
        CREATE TABLE twin_layout (
            id           smallint PRIMARY KEY CHECK (id = 1),
            shard_count  integer NOT NULL CHECK (shard_count BETWEEN 1 AND 1024),
            epoch        bigint NOT NULL,
            updated_at   timestamptz NOT NULL DEFAULT now()
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE twin_layout")
    op.execute("DROP TABLE twin_rule_overrides")
    op.execute("DROP TABLE twin_alerts")
    op.execute("DROP TABLE twin_snapshots")
