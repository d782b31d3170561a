"""Absent signals: a sample's power and state-of-charge columns are NULL where the device did not
report the signal (the device protocol's fields are `optional`), never 0.

The rollups learn, per signal, how many samples reported it (`<signal>_count`: the mean is
`<signal>_sum / <signal>_count`, min/max stay NULL when none did) and, per power signal, how many
seconds lie between two samples that both reported it (`<channel>_covered_s`: the energy channels
are integrated over those intervals only; `covered_s` stays the seconds between any two samples).
Rows written before this revision had every signal in every sample, so they are filled from
`sample_count` and `covered_s`.

Processes must reconnect after this revision: their per-connection COPY staging tables were made
`LIKE` the old NOT NULL columns.

Revision ID: 0010_absent_signals
"""

from alembic import op

revision = "0010_absent_signals"
down_revision = "0004_analytics"
branch_labels = None
depends_on = None

_SIGNALS = ("site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct")
_COVERED = ("site_covered_s", "battery_covered_s", "solar_covered_s", "load_covered_s")


def upgrade() -> None:
    for column in _SIGNALS:
        op.execute(f"ALTER TABLE telemetry_samples ALTER COLUMN {column} DROP NOT NULL")
    additions = [f"ADD COLUMN {s}_count integer NOT NULL DEFAULT 0" for s in _SIGNALS]
    additions += [f"ADD COLUMN {c} double precision NOT NULL DEFAULT 0" for c in _COVERED]
    op.execute(f"ALTER TABLE telemetry_rollups {', '.join(additions)}")
    fill = [f"{s}_count = sample_count" for s in _SIGNALS] + [f"{c} = covered_s" for c in _COVERED]
    op.execute(f"UPDATE telemetry_rollups SET {', '.join(fill)}")


def downgrade() -> None:
    # The old schema cannot say "not reported": absent values become 0 again.
    for column in _SIGNALS:
        op.execute(f"UPDATE telemetry_samples SET {column} = 0 WHERE {column} IS NULL")
        op.execute(f"ALTER TABLE telemetry_samples ALTER COLUMN {column} SET NOT NULL")
    drops = [f"DROP COLUMN {s}_count" for s in _SIGNALS] + [f"DROP COLUMN {c}" for c in _COVERED]
    op.execute(f"ALTER TABLE telemetry_rollups {', '.join(drops)}")
