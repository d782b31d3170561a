"""Weather: alerts whose area is unknown (no polygon, none of their zones loaded) are stored, not
rejected: `area_wkt` '' with no `area` and no bounding box. Such an alert is listed and matched to
no installation until its zones are loaded (services/weather/store.py `resolve_zones`).

Revision ID: 0010_weather_area_unknown
"""

from alembic import op

revision = "0010_weather_area_unknown"
down_revision = "0005_weather"
branch_labels = None
depends_on = None

_BOX = ("min_longitude_deg", "min_latitude_deg", "max_longitude_deg", "max_latitude_deg")


def upgrade() -> None:
    op.execute("ALTER TABLE weather_alerts ALTER COLUMN area DROP NOT NULL")
    for column in _BOX:
        op.execute(f"ALTER TABLE weather_alerts ALTER COLUMN {column} DROP NOT NULL")
    op.execute("""
        ALTER TABLE weather_alerts ADD CONSTRAINT weather_alerts_area_known
            CHECK ((area_wkt = '') = (area IS NULL) AND (area IS NULL) = (min_longitude_deg IS NULL))
    """)


def downgrade() -> None:
    op.execute("DELETE FROM weather_alerts WHERE area IS NULL")
    op.execute("ALTER TABLE weather_alerts DROP CONSTRAINT weather_alerts_area_known")
    for column in (*_BOX, "area"):
        op.execute(f"ALTER TABLE weather_alerts ALTER COLUMN {column} SET NOT NULL")
