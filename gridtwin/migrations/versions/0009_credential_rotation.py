"""Device credential rotation: the credential a device had before its last rotation stays valid
until `previous_credential_valid_until` (a grace period for the switch-over), then never again.

Revision ID: 0009_credential_rotation
"""

from alembic import op

revision = "0009_credential_rotation"
down_revision = "0008_vpp_openadr"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE devices ADD COLUMN previous_credential_sha256 bytea, "
               "ADD COLUMN previous_credential_valid_until timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE devices DROP COLUMN previous_credential_sha256, "
               "DROP COLUMN previous_credential_valid_until")
