"""Device claim codes: an operator creates a device and a one-time code; the device's edge agent
exchanges the code for its credential (services/assets/claims.py). Only the code's SHA-256 is
stored; a code is redeemed once, before it expires.

Revision ID: 0012_device_claims
"""

from alembic import op

revision = "0012_device_claims"
down_revision = "0010_weather_area_unknown"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE device_claims (
            code_sha256 bytea PRIMARY KEY,
            device_id text NOT NULL,   -- no foreign key: tests and tools TRUNCATE devices alone
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            redeemed_at timestamptz
        )
    """)
    op.execute("CREATE INDEX device_claims_device ON device_claims (device_id)")


def downgrade() -> None:
    op.execute("DROP TABLE device_claims")
