"""VPP events keep the OpenADR 3 event request they came as, so the REST endpoint can give a VEN
back the event it posted (with the server's id and times).

Revision ID: 0008_vpp_openadr
"""

from alembic import op

revision = "0008_vpp_openadr"
down_revision = "0007_vpp"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE vpp_events ADD COLUMN openadr_request jsonb")
    op.execute("CREATE INDEX vpp_events_program ON vpp_events (program)")


def downgrade() -> None:
    op.execute("DROP INDEX vpp_events_program")
    op.execute("ALTER TABLE vpp_events DROP COLUMN openadr_request")
