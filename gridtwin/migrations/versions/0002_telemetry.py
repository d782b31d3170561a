"""Telemetry samples (daily partitions, idempotent on device and time) and rollups.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STATS = ", ".join(
    f"{f}_sum double precision NOT NULL DEFAULT 0, {f}_min double precision, {f}_max double precision"
    for f in ("site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct")
)
_ENERGY = ", ".join(
    f"{f} double precision NOT NULL DEFAULT 0"
    for f in ("battery_charge_wh", "battery_discharge_wh", "solar_wh", "load_wh",
              "grid_import_wh", "grid_export_wh", "covered_s")
)


def upgrade() -> None:
    op.execute("""
        CREATE TABLE telemetry_samples (
            device_id            text NOT NULL,
            ts                   timestamptz NOT NULL,
            installation_id      text NOT NULL,
            site_power_w         double precision NOT NULL,
            battery_power_w      double precision NOT NULL,
            solar_power_w        double precision NOT NULL,
            load_power_w         double precision NOT NULL,
            state_of_charge_pct  double precision NOT NULL,
            grid_status          smallint NOT NULL,
            extra                jsonb,
            received_at          timestamptz NOT NULL,
            PRIMARY KEY (device_id, ts)
        ) PARTITION BY RANGE (ts)
    """)
    op.execute("CREATE INDEX telemetry_samples_installation_ts ON telemetry_samples (installation_id, ts)")
    op.execute("""
        -- Creates the daily partition holding `day` if it is missing; safe to call concurrently.
        CREATE FUNCTION telemetry_ensure_partition(day date) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            name text := format('telemetry_samples_%s', to_char(day, 'YYYYMMDD'));
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext(name));
            IF to_regclass(name) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF telemetry_samples FOR VALUES FROM (%L) TO (%L)',
                    name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            END IF;
        END $$
    """)
    op.execute(f"""
        CREATE TABLE telemetry_rollups (
            installation_id  text NOT NULL,
            resolution_s     integer NOT NULL CHECK (resolution_s IN (60, 900, 3600, 86400)),
            bucket           timestamptz NOT NULL,
            sample_count     integer NOT NULL DEFAULT 0,
            {_STATS},
            {_ENERGY},
            PRIMARY KEY (installation_id, resolution_s, bucket)
        ) WITH (
            -- Every sample updates four rows here; free space on each page lets those be HOT
            -- updates (no index writes), and eager vacuum keeps up with the dead versions.
            fillfactor = 70,
            autovacuum_vacuum_scale_factor = 0.01,
            autovacuum_vacuum_cost_delay = 0
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE telemetry_rollups")
    op.execute("DROP TABLE telemetry_samples")
    op.execute("DROP FUNCTION telemetry_ensure_partition(date)")
