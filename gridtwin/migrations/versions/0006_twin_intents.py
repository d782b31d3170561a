"""What twins decide for the outside world: control intents (an outbox the control service carries
out as commands) and customer notifications (what the app shows: StormWatch activated, updated,
ended, …). Both keyed by ids derived from the decision, so a replayed decision is stored once.

Revision ID: 0006_twin_intents
"""

from alembic import op

revision = "0006_twin_intents"
down_revision = "0004_twins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `carried_out_at` is the outbox flag: NULL until the control service has turned the intent
    # into commands; the partial index keeps finding the open ones cheap.
    op.execute("""
        CREATE TABLE twin_control_intents (
            intent_id        text PRIMARY KEY,
            installation_id  text NOT NULL,
            source           text NOT NULL CHECK (source IN ('stormwatch', 'vpp', 'customer', 'operator')),
            kind             text NOT NULL,
            payload          jsonb NOT NULL,
            created_at       timestamptz NOT NULL DEFAULT now(),
            carried_out_at   timestamptz,
            outcome          text NOT NULL DEFAULT ''
        )
    """)
    op.execute("CREATE INDEX twin_control_intents_open ON twin_control_intents (created_at) "
               "WHERE carried_out_at IS NULL")
    op.execute("CREATE INDEX twin_control_intents_installation ON twin_control_intents (installation_id, created_at)")
    op.execute("""
        CREATE TABLE customer_notifications (
            notification_id  text PRIMARY KEY,
            installation_id  text NOT NULL,
            kind             text NOT NULL,
            alert_id         text NOT NULL DEFAULT '',
            title            text NOT NULL,
            body             text NOT NULL,
            at               timestamptz NOT NULL,
            created_at       timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX customer_notifications_installation ON customer_notifications (installation_id, at)")


def downgrade() -> None:
    op.execute("DROP TABLE customer_notifications")
    op.execute("DROP TABLE twin_control_intents")
