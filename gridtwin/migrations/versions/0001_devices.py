"""Devices and their credentials (interim home until the assets service owns installations).

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The credential is a random high-entropy secret, so one SHA-256 is the right hash: a slow
    # password hash would make 10,000 devices reconnecting at once a CPU storm.
    op.execute("""
        CREATE TABLE devices (
            device_id          text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_.:-]{1,128}$'),
            installation_id    text NOT NULL CHECK (installation_id ~ '^[A-Za-z0-9_.:-]{1,128}$'),
            credential_sha256  bytea NOT NULL CHECK (length(credential_sha256) = 32),
            created_at         timestamptz NOT NULL DEFAULT now(),
            revoked_at         timestamptz
        )
    """)
    op.execute("CREATE INDEX devices_installation ON devices (installation_id)")


def downgrade() -> None:
    op.execute("DROP TABLE devices")
