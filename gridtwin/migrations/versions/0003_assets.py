"""Assets: customers, installations (PostGIS points), ltree hierarchies and program enrollment,
API principals; the interim `devices` table becomes the assets service's device registry.

Existing devices keep working: each installation id they name gets a minimal installation row
(no location yet), their serial starts as their device id, their kind as 'gateway'.

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = "'^[A-Za-z0-9_.:-]{1,128}$'"
_STATES = "('eligible', 'pending', 'enrolled')"
_AUDIT_STATES = "('unenrolled', 'eligible', 'pending', 'enrolled')"


def _finite(column: str) -> str:
    # NaN compares greater than every number in Postgres, so range checks alone would admit it.
    return f"{column} <> 'NaN'::float8"


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE customers (
            customer_id  text PRIMARY KEY CHECK (customer_id ~ {_ID}),
            name         text NOT NULL CHECK (length(name) <= 200),
            email        text NOT NULL DEFAULT '' CHECK (length(email) <= 320),
            created_at   timestamptz NOT NULL DEFAULT now()
        )
    """)
    # A NULL location, customer or battery rating means "not known yet": installations that a
    # device registration created before anyone surveyed the site. Geosearch never finds them.
    op.execute(f"""
        CREATE TABLE installations (
            installation_id            text PRIMARY KEY CHECK (installation_id ~ {_ID}),
            customer_id                text REFERENCES customers ON DELETE RESTRICT,
            location                   geometry(Point, 4326) CHECK (
                                           location IS NULL OR (ST_X(location) BETWEEN -180 AND 180
                                                                AND ST_Y(location) BETWEEN -90 AND 90)),
            address                    text NOT NULL DEFAULT '' CHECK (length(address) <= 500),
            time_zone                  text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) <= 64),
            utility                    text NOT NULL DEFAULT '' CHECK (length(utility) <= 128),
            battery_nominal_energy_wh  double precision CHECK (
                                           battery_nominal_energy_wh > 0 AND {_finite('battery_nominal_energy_wh')}),
            max_charge_power_w         double precision CHECK (
                                           max_charge_power_w >= 0 AND {_finite('max_charge_power_w')}),
            max_discharge_power_w      double precision CHECK (
                                           max_discharge_power_w >= 0 AND {_finite('max_discharge_power_w')}),
            backup_reserve_pct         double precision NOT NULL DEFAULT 20 CHECK (
                                           backup_reserve_pct BETWEEN 0 AND 100 AND {_finite('backup_reserve_pct')}),
            stormwatch_enabled         boolean NOT NULL DEFAULT true,
            priority                   text NOT NULL DEFAULT 'stormwatch_first'
                                           CHECK (priority IN ('stormwatch_first', 'vpp_first')),
            created_at                 timestamptz NOT NULL DEFAULT now(),
            updated_at                 timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX installations_location ON installations USING gist (location)")
    # Distances in meters (SearchInstallationsNear) are computed on the geography.
    op.execute("CREATE INDEX installations_location_geography ON installations USING gist ((location::geography))")
    op.execute("CREATE INDEX installations_customer ON installations (customer_id)")

    op.execute("""
        CREATE TABLE hierarchy_groups (
            path          ltree PRIMARY KEY CHECK (nlevel(path) BETWEEN 1 AND 64),
            display_name  text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
            created_at    timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX hierarchy_groups_path ON hierarchy_groups USING gist (path)")
    op.execute("""
        CREATE TABLE programs (
            path          ltree PRIMARY KEY REFERENCES hierarchy_groups ON DELETE CASCADE,
            display_name  text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
            created_at    timestamptz NOT NULL DEFAULT now()
        )
    """)
    # Enrollment *is* membership: an installation's state in a program is its one row under
    # `<program>.<state>`, so the hierarchy queries see program members like any other group.
    op.execute(f"""
        CREATE TABLE group_memberships (
            installation_id   text NOT NULL REFERENCES installations ON DELETE CASCADE,
            path              ltree NOT NULL REFERENCES hierarchy_groups ON DELETE CASCADE,
            program           ltree REFERENCES programs ON DELETE CASCADE,
            enrollment_state  text CHECK (enrollment_state IN {_STATES}),
            added_at          timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (installation_id, path),
            CHECK ((program IS NULL) = (enrollment_state IS NULL)),
            CHECK (program IS NULL OR path = program || text2ltree(enrollment_state))
        )
    """)
    op.execute("CREATE INDEX group_memberships_path ON group_memberships USING gist (path)")
    op.execute("""
        CREATE UNIQUE INDEX group_memberships_one_state_per_program
            ON group_memberships (installation_id, program) WHERE program IS NOT NULL
    """)
    # The audit trail outlives what it describes, so it has no foreign keys.
    op.execute(f"""
        CREATE TABLE enrollment_audit (
            audit_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            installation_id  text NOT NULL,
            program          ltree NOT NULL,
            actor            text NOT NULL,
            at               timestamptz NOT NULL DEFAULT now(),
            from_state       text NOT NULL CHECK (from_state IN {_AUDIT_STATES}),
            to_state         text NOT NULL CHECK (to_state IN {_AUDIT_STATES}),
            reason           text NOT NULL DEFAULT '' CHECK (length(reason) <= 500)
        )
    """)
    op.execute("CREATE INDEX enrollment_audit_installation ON enrollment_audit (installation_id, program, audit_id)")

    # Tokens are random secrets of 256 bits: one SHA-256 is enough, as for device credentials.
    op.execute("""
        CREATE TABLE api_principals (
            principal_id   text PRIMARY KEY,
            name           text NOT NULL CHECK (length(name) <= 200),
            token_sha256   bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
            scopes         text[] NOT NULL CHECK (cardinality(scopes) > 0
                                                  AND scopes <@ ARRAY['read', 'command', 'admin']),
            allowed_paths  ltree[] NOT NULL CHECK (cardinality(allowed_paths) > 0),
            created_by     text NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now(),
            expires_at     timestamptz,
            revoked_at     timestamptz
        )
    """)

    # The interim devices table grows into the registry: serial, kind, firmware, and a foreign
    # key to the installation (created minimal where a device named one that did not exist).
    op.execute("INSERT INTO installations (installation_id) SELECT DISTINCT installation_id FROM devices")
    op.execute("ALTER TABLE devices ADD COLUMN serial text")
    op.execute("""
        ALTER TABLE devices ADD COLUMN kind text NOT NULL DEFAULT 'gateway'
            CHECK (kind IN ('gateway', 'battery', 'solar_inverter', 'meter'))
    """)
    op.execute("ALTER TABLE devices ADD COLUMN firmware text NOT NULL DEFAULT '' CHECK (length(firmware) <= 64)")
    op.execute("UPDATE devices SET serial = device_id")
    op.execute("ALTER TABLE devices ALTER COLUMN serial SET NOT NULL")
    op.execute(f"ALTER TABLE devices ADD CONSTRAINT devices_serial_check CHECK (serial ~ {_ID})")
    op.execute("ALTER TABLE devices ADD CONSTRAINT devices_serial_key UNIQUE (serial)")
    op.execute("""
        ALTER TABLE devices ADD CONSTRAINT devices_installation_fkey
            FOREIGN KEY (installation_id) REFERENCES installations ON DELETE RESTRICT
    """)


def downgrade() -> None:
    op.execute("ALTER TABLE devices DROP CONSTRAINT devices_installation_fkey")
    op.execute("ALTER TABLE devices DROP COLUMN serial")
    op.execute("ALTER TABLE devices DROP COLUMN kind")
    op.execute("ALTER TABLE devices DROP COLUMN firmware")
    op.execute("DROP TABLE api_principals")
    op.execute("DROP TABLE enrollment_audit")
    op.execute("DROP TABLE group_memberships")
    op.execute("DROP TABLE programs")
    op.execute("DROP TABLE hierarchy_groups")
    op.execute("DROP TABLE installations")
    op.execute("DROP TABLE customers")
