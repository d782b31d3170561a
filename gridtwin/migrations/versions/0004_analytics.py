"""Analytics: the rollups learn `solar_direct_wh`, solar energy the home used as it was produced.

It is integrated per interval from the samples (`services/telemetry/energy.direct_use_wh`);
per-bucket totals of solar and load cannot give it. Rollups written before this revision read 0
(adding a column with a constant default rewrites nothing).

Revision ID: 0004_analytics
"""

from alembic import op

revision = "0004_analytics"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE telemetry_rollups ADD COLUMN solar_direct_wh double precision NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE telemetry_rollups DROP COLUMN solar_direct_wh")
