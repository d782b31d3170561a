"""Access: identities at external OpenID Connect providers linked to local users
(services/access/identity.py). One row per (issuer, subject); a user has at most one identity per
issuer, so a second identity claiming the same username is refused, not linked.

Revision ID: 0015_access_identities
"""

from alembic import op

revision = "0015_access_identities"
down_revision = "0014_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE access_identities (
            issuer      text NOT NULL CHECK (length(issuer) <= 500),
            subject     text NOT NULL CHECK (length(subject) <= 255),
            user_id     text NOT NULL REFERENCES access_users ON DELETE CASCADE,
            created_at  timestamptz NOT NULL DEFAULT now(),
            last_login_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (issuer, subject),
            UNIQUE (issuer, user_id)
        )
    """)
    op.execute("CREATE INDEX access_identities_user ON access_identities (user_id)")


def downgrade() -> None:
    op.execute("DROP TABLE access_identities")
