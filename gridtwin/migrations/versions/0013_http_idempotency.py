"""Idempotency keys of the HTTP API: a create (POST) sent again with the same Idempotency-Key by
the same principal gets the stored answer instead of a second effect (services/http/idempotency.py).
Rows older than the API's TTL are deleted as they are met and by a sweep.

Revision ID: 0013_http_idempotency
"""

from alembic import op

revision = "0013_http_idempotency"
down_revision = "0012_device_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE http_idempotency (
            principal text NOT NULL,          -- a hash of the credential, never the credential
            key text NOT NULL,
            route text NOT NULL,              -- "POST /api/v1/…" as requested
            request_sha256 bytea NOT NULL,
            status integer,                   -- NULL while the first request is in flight
            content_type text,
            body bytea,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (principal, key)
        )
    """)
    op.execute("CREATE INDEX http_idempotency_created ON http_idempotency (created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE http_idempotency")
