"""Access (services/access): people's accounts, sessions, one-time codes (invitations, password
resets), login throttling, OAuth 2.0 clients and their tokens, personal access tokens of a person
(`api_principals.owner_user_id`), and the audit log of writes. Secrets are stored only as hashes:
passwords argon2id, tokens and codes SHA-256.

Revision ID: 0014_access
"""

from alembic import op

revision = "0014_access"
down_revision = "0003"      # its own branch: needs api_principals (assets) only
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE access_users (
            user_id          text PRIMARY KEY,
            username         text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9._@-]{3,64}$'),
            kind             text NOT NULL CHECK (kind IN ('operator', 'homeowner', 'installer')),
            role             text CHECK (role IN ('viewer', 'operator', 'admin')),
            allowed_paths    ltree[] NOT NULL DEFAULT '{}',
            installation_ids text[] NOT NULL DEFAULT '{}',
            email            text NOT NULL DEFAULT '' CHECK (length(email) <= 254),
            password_hash    text NOT NULL,
            created_by       text NOT NULL,
            created_at       timestamptz NOT NULL DEFAULT now(),
            disabled_at      timestamptz,
            CHECK ((kind = 'operator') = (role IS NOT NULL))
        )
    """)
    op.execute("CREATE INDEX access_users_installations ON access_users USING gin (installation_ids)")
    op.execute("""
        CREATE TABLE access_sessions (
            session_id     text PRIMARY KEY,
            token_sha256   bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
            user_id        text NOT NULL REFERENCES access_users ON DELETE CASCADE,
            created_at     timestamptz NOT NULL DEFAULT now(),
            expires_at     timestamptz NOT NULL,
            idle_timeout_s integer NOT NULL CHECK (idle_timeout_s > 0),
            last_seen_at   timestamptz NOT NULL DEFAULT now(),
            revoked_at     timestamptz
        )
    """)
    op.execute("CREATE INDEX access_sessions_user ON access_sessions (user_id) WHERE revoked_at IS NULL")
    op.execute("""
        CREATE TABLE access_codes (
            code_sha256     bytea PRIMARY KEY CHECK (length(code_sha256) = 32),
            purpose         text NOT NULL CHECK (purpose IN ('invitation', 'reset')),
            user_id         text REFERENCES access_users ON DELETE CASCADE,   -- a reset's account
            installation_id text,                                              -- an invitation's home
            email           text NOT NULL DEFAULT '',
            created_by      text NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now(),
            expires_at      timestamptz NOT NULL,
            used_at         timestamptz,
            CHECK ((purpose = 'reset') = (user_id IS NOT NULL)),
            CHECK ((purpose = 'invitation') = (installation_id IS NOT NULL))
        )
    """)
    op.execute("""
        CREATE TABLE access_login_failures (
            key             text PRIMARY KEY,          -- 'user:<name>' or 'source:<address>'
            failures        integer NOT NULL,
            first_at        timestamptz NOT NULL,
            locked_until    timestamptz
        )
    """)
    op.execute("""
        CREATE TABLE access_clients (
            client_id      text PRIMARY KEY,
            name           text NOT NULL CHECK (length(name) <= 200),
            secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
            scopes         text[] NOT NULL CHECK (cardinality(scopes) > 0
                                                  AND scopes <@ ARRAY['read', 'command', 'admin']),
            allowed_paths  ltree[] NOT NULL CHECK (cardinality(allowed_paths) > 0),
            created_by     text NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now(),
            disabled_at    timestamptz
        )
    """)
    op.execute("""
        CREATE TABLE access_client_tokens (
            token_sha256   bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
            client_id      text NOT NULL REFERENCES access_clients ON DELETE CASCADE,
            scopes         text[] NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now(),
            expires_at     timestamptz NOT NULL
        )
    """)
    op.execute("CREATE INDEX access_client_tokens_expiry ON access_client_tokens (expires_at)")
    op.execute("ALTER TABLE api_principals ADD COLUMN owner_user_id text")
    # A person's token acts with the person's paths (or installations): it needs none of its own.
    op.execute("ALTER TABLE api_principals DROP CONSTRAINT api_principals_allowed_paths_check")
    op.execute("ALTER TABLE api_principals ADD CONSTRAINT api_principals_allowed_paths_check "
               "CHECK (owner_user_id IS NOT NULL OR cardinality(allowed_paths) > 0)")
    op.execute("CREATE INDEX api_principals_owner ON api_principals (owner_user_id) WHERE owner_user_id IS NOT NULL")
    op.execute("""
        CREATE TABLE access_audit (
            entry_id  bigserial PRIMARY KEY,
            at        timestamptz NOT NULL,
            actor     text NOT NULL,
            method    text NOT NULL,
            target    text NOT NULL,
            code      text NOT NULL
        )
    """)
    op.execute("CREATE INDEX access_audit_actor ON access_audit (actor, entry_id DESC)")
    op.execute("CREATE INDEX access_audit_method ON access_audit (method, entry_id DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE access_audit")
    op.execute("DROP INDEX api_principals_owner")
    op.execute("DELETE FROM api_principals WHERE owner_user_id IS NOT NULL")
    op.execute("ALTER TABLE api_principals DROP CONSTRAINT api_principals_allowed_paths_check")
    op.execute("ALTER TABLE api_principals ADD CONSTRAINT api_principals_allowed_paths_check "
               "CHECK (cardinality(allowed_paths) > 0)")
    op.execute("ALTER TABLE api_principals DROP COLUMN owner_user_id")
    op.execute("DROP TABLE access_client_tokens")
    op.execute("DROP TABLE access_clients")
    op.execute("DROP TABLE access_login_failures")
    op.execute("DROP TABLE access_codes")
    op.execute("DROP TABLE access_sessions")
    op.execute("DROP TABLE access_users")
