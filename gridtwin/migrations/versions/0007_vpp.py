"""VPP: program terms (compensation rate, the OpenADR program id), grid events and their
participants (what each installation was asked and decided, and the command that carries it).

Revision ID: 0007_vpp
"""

from alembic import op

revision = "0007_vpp"
down_revision = "0006_twin_intents"
branch_labels = None
depends_on = "0006_control"   # control_ts / control_ms


def upgrade() -> None:
    op.execute("""
        CREATE TABLE vpp_program_terms (
            program             ltree PRIMARY KEY REFERENCES programs ON DELETE CASCADE,
            rate_per_kwh        numeric(12, 4) NOT NULL DEFAULT 0 CHECK (rate_per_kwh >= 0),
            currency            text NOT NULL DEFAULT 'USD' CHECK (length(currency) = 3),
            openadr_program_id  text UNIQUE CHECK (length(openadr_program_id) <= 128)
        )
    """)
    op.execute("""
        CREATE TABLE vpp_events (
            event_id        text PRIMARY KEY,
            program         ltree NOT NULL,
            target_group    ltree,
            name            text NOT NULL DEFAULT '',
            source          text NOT NULL CHECK (source IN ('grpc', 'openadr')),
            external_id     text NOT NULL DEFAULT '',
            start_at        timestamptz NOT NULL,
            end_at          timestamptz NOT NULL CHECK (end_at > start_at),
            precharge_s     double precision NOT NULL CHECK (precharge_s >= 0),
            target_power_w  double precision NOT NULL CHECK (target_power_w > 0),
            rate_per_kwh    numeric(12, 4) NOT NULL CHECK (rate_per_kwh >= 0),
            state           text NOT NULL CHECK (state IN ('scheduled', 'active', 'completed', 'cancelled')),
            revision        integer NOT NULL DEFAULT 1,
            fanout_id       text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE UNIQUE INDEX vpp_events_external ON vpp_events (source, external_id) WHERE external_id <> ''")
    op.execute("CREATE INDEX vpp_events_window ON vpp_events (end_at)")
    op.execute("""
        CREATE TABLE vpp_participants (
            event_id         text NOT NULL REFERENCES vpp_events ON DELETE CASCADE,
            installation_id  text NOT NULL,
            power_w          double precision NOT NULL,
            status           text NOT NULL CHECK (status IN ('dispatched', 'accepted', 'declined', 'opted_out',
                                                             'cancelled')),
            reason           text NOT NULL DEFAULT '',
            command_id       text,
            updated_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (event_id, installation_id)
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE vpp_participants")
    op.execute("DROP TABLE vpp_events")
    op.execute("DROP TABLE vpp_program_terms")
