"""Control: commands and their lifecycle, fan-outs, the device session registry that routes a
command to the gateway holding the device, and the devices' last reported control state.

Revision ID: 0006_control
"""

from alembic import op

revision = "0006_control"
down_revision = "0003"
branch_labels = None
depends_on = None

_STATES = "('queued', 'sent', 'acknowledged', 'failed', 'expired', 'superseded', 'cancelled')"
_KINDS = "('control_plan', 'set_mode', 'set_backup_reserve', 'change_configuration', 'update_firmware')"
_OUTCOMES = "('accepted', 'completed', 'rejected', 'expired')"


def upgrade() -> None:
    # Milliseconds since the epoch ↔ timestamptz, 0 ↔ NULL: the store speaks integer ms whatever
    # codecs a connection has. Inlined by the planner (IMMUTABLE SQL functions).
    op.execute("""
        CREATE FUNCTION control_ts(ms bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT CASE WHEN ms = 0 THEN NULL ELSE to_timestamp(ms / 1000.0) END $$
    """)
    op.execute("""
        CREATE FUNCTION control_ms(ts timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT coalesce(round(extract(epoch FROM ts) * 1000)::bigint, 0) $$
    """)
    op.execute(f"""
        CREATE TABLE control_fanouts (
            fanout_id        text PRIMARY KEY CHECK (fanout_id ~ '^[0-9a-f]{{32}}$'),
            group_path       ltree,
            kind             text CHECK (kind IN {_KINDS}),
            source           text NOT NULL,
            idempotency_key  text UNIQUE CHECK (length(idempotency_key) <= 200),
            request_sha256   bytea,
            total            integer NOT NULL DEFAULT 0,
            created_at       timestamptz NOT NULL DEFAULT now()
        )
    """)
    # One row per command. `body` is the serialized gridtwin.control.v1.CommandSpec. Ids of
    # devices and installations are not foreign keys: the history outlives a device's removal.
    op.execute(f"""
        CREATE TABLE control_commands (
            command_id       text PRIMARY KEY CHECK (command_id ~ '^[0-9a-f]{{32}}$'),
            device_id        text NOT NULL,
            installation_id  text NOT NULL,
            kind             text NOT NULL CHECK (kind IN {_KINDS}),
            state            text NOT NULL CHECK (state IN {_STATES}),
            body             bytea NOT NULL,
            source           text NOT NULL,
            idempotency_key  text UNIQUE CHECK (length(idempotency_key) <= 400),
            request_sha256   bytea NOT NULL,
            fanout_id        text REFERENCES control_fanouts,
            attempts         integer NOT NULL DEFAULT 0,
            outcome          text CHECK (outcome IN {_OUTCOMES}),
            detail           text NOT NULL DEFAULT '',
            superseded_by    text,
            created_at       timestamptz NOT NULL,
            expires_at       timestamptz NOT NULL,
            next_attempt_at  timestamptz,
            last_sent_at     timestamptz,
            acked_at         timestamptz,
            completed_at     timestamptz,
            finished_at      timestamptz,
            sent_session     text,
            sent_gateway     text
        )
    """)
    # The dispatcher's candidates: only unfinished commands, so the index stays small.
    op.execute("CREATE INDEX control_commands_pending ON control_commands (device_id) "
               "WHERE state IN ('queued', 'sent')")
    op.execute("CREATE INDEX control_commands_due ON control_commands (next_attempt_at) "
               "WHERE state IN ('queued', 'sent')")
    op.execute("CREATE INDEX control_commands_expiry ON control_commands (expires_at) "
               "WHERE state IN ('queued', 'sent')")
    # Command ids start with their creation time, so id order is creation order (ListCommands pages).
    op.execute("CREATE INDEX control_commands_installation ON control_commands (installation_id, command_id DESC)")
    op.execute("CREATE INDEX control_commands_fanout ON control_commands (fanout_id, state) "
               "WHERE fanout_id IS NOT NULL")

    # Which gateway holds each connected device (written in batches by the gateways), and the
    # gateways' heartbeats: a command goes only to a gateway that is alive.
    op.execute("""
        CREATE TABLE control_device_sessions (
            device_id     text PRIMARY KEY,
            gateway_id    text NOT NULL,
            session_id    text NOT NULL,
            connected_at  timestamptz NOT NULL
        )
    """)
    op.execute("CREATE INDEX control_device_sessions_gateway ON control_device_sessions (gateway_id)")
    op.execute("""
        CREATE TABLE control_gateways (
            gateway_id    text PRIMARY KEY,
            heartbeat_at  timestamptz NOT NULL
        )
    """)
    # What each device last reported (StateReport): its active plan, mode, reserve, firmware.
    op.execute("""
        CREATE TABLE control_device_state (
            device_id           text PRIMARY KEY,
            installation_id     text NOT NULL,
            reported_at         timestamptz NOT NULL,
            mode                text NOT NULL DEFAULT '',
            backup_reserve_pct  double precision,
            firmware_version    text NOT NULL DEFAULT '',
            active_plan_id      text NOT NULL DEFAULT ''
        )
    """)

    # Wake the dispatchers (LISTEN control_due) when there is something to send: new commands,
    # and devices that (re)connected. One notification per statement, not per row.
    op.execute("""
        CREATE FUNCTION control_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('control_due', TG_TABLE_NAME);
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER control_commands_due AFTER INSERT ON control_commands "
               "FOR EACH STATEMENT EXECUTE FUNCTION control_notify_due()")
    op.execute("CREATE TRIGGER control_device_sessions_due AFTER INSERT OR UPDATE ON control_device_sessions "
               "FOR EACH STATEMENT EXECUTE FUNCTION control_notify_due()")


def downgrade() -> None:
    op.execute("DROP TABLE control_device_state")
    op.execute("DROP TABLE control_gateways")
    op.execute("DROP TABLE control_device_sessions")
    op.execute("DROP TABLE control_commands")
    op.execute("DROP TABLE control_fanouts")
    op.execute("DROP FUNCTION control_notify_due()")
    op.execute("DROP FUNCTION control_ts(bigint)")
    op.execute("DROP FUNCTION control_ms(timestamptz)")
