"""Weather: alerts (every message received, with what became of it), the change log that the
WeatherService streams and the StormWatch poller follows, zone geometries, rejected feed entries.

Revision ID: 0005_weather
"""

from alembic import op

revision = "0005_weather"
down_revision = "0003"
branch_labels = None
depends_on = None

_STATES = "('active', 'superseded', 'cancelled', 'expired', 'cancel')"


def upgrade() -> None:
    # Every message is kept, also superseded and ignored ones, so a duplicate or a late original is
    # recognised by id. `area_wkt` is the normalized area at full precision; `area` the same in PostGIS.
    op.execute(f"""
        CREATE TABLE weather_alerts (
            alert_id          text PRIMARY KEY CHECK (length(alert_id) BETWEEN 1 AND 256),
            event             text NOT NULL,
            message_type      text NOT NULL CHECK (message_type IN ('Alert', 'Update', 'Cancel')),
            severity          text NOT NULL,
            urgency           text NOT NULL,
            certainty         text NOT NULL,
            sent              timestamptz NOT NULL,
            onset             timestamptz,
            expires           timestamptz,
            ends              timestamptz,
            refs              text[] NOT NULL DEFAULT '{{}}',
            zones             text[] NOT NULL DEFAULT '{{}}',
            unresolved_zones  text[] NOT NULL DEFAULT '{{}}',
            headline          text NOT NULL DEFAULT '',
            sender_name       text NOT NULL DEFAULT '',
            area_desc         text NOT NULL DEFAULT '',
            repaired          text NOT NULL DEFAULT '',
            area_wkt          text NOT NULL,
            area              geometry(Geometry, 4326) NOT NULL CHECK (ST_IsValid(area)),
            min_longitude_deg double precision NOT NULL,
            min_latitude_deg  double precision NOT NULL,
            max_longitude_deg double precision NOT NULL,
            max_latitude_deg  double precision NOT NULL,
            state             text NOT NULL CHECK (state IN {_STATES}),
            ended_at          timestamptz,
            superseded_by     text,
            source            text NOT NULL DEFAULT '',
            received_at       timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX weather_alerts_refs ON weather_alerts USING gin (refs)")
    op.execute("CREATE INDEX weather_alerts_active ON weather_alerts (alert_id) WHERE state = 'active'")
    op.execute("CREATE INDEX weather_alerts_area ON weather_alerts USING gist (area)")
    op.execute("""
        CREATE TABLE weather_alert_changes (
            seq           bigserial PRIMARY KEY,
            at            timestamptz NOT NULL,
            kind          text NOT NULL CHECK (kind IN ('activated', 'updated', 'ended')),
            alert_id      text NOT NULL REFERENCES weather_alerts ON DELETE CASCADE,
            replaces      text[] NOT NULL DEFAULT '{}',
            reason        text NOT NULL DEFAULT '',
            cancelled_by  text
        )
    """)
    op.execute("""
        CREATE TABLE weather_zones (
            ugc        text PRIMARY KEY CHECK (ugc ~ '^[A-Z]{2}[CZ][0-9]{3}$'),
            area_wkt   text NOT NULL,
            area       geometry(Geometry, 4326) NOT NULL CHECK (ST_IsValid(area)),
            source     text NOT NULL DEFAULT '',
            loaded_at  timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("""
        CREATE TABLE weather_rejections (
            rejection_id  bigserial PRIMARY KEY,
            at            timestamptz NOT NULL DEFAULT now(),
            source        text NOT NULL,
            alert_id      text NOT NULL,
            reason        text NOT NULL
        )
    """)
    op.execute("CREATE INDEX weather_rejections_at ON weather_rejections (at)")
    # How far a follower of the change log (the StormWatch poller) has delivered.
    op.execute("""
        CREATE TABLE weather_cursors (
            name        text PRIMARY KEY,
            seq         bigint NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE weather_cursors")
    op.execute("DROP TABLE weather_rejections")
    op.execute("DROP TABLE weather_zones")
    op.execute("DROP TABLE weather_alert_changes")
    op.execute("DROP TABLE weather_alerts")
