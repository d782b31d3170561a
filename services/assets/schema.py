"""The assets tables for SQLAlchemy 2 (GeoAlchemy2 geometry, sqlalchemy-utils ltree).

The migrations (gridtwin/migrations/versions/0003_assets.py) create these tables; this module
describes them for queries, and a test compares both so they cannot drift apart. Constraints
live in the migration; here only what queries need: columns, types, keys and the GiST indexes.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.sql import expression
from sqlalchemy_utils import LtreeType

metadata = MetaData()


class PathType(LtreeType):
    """sqlalchemy-utils' ltree type, binding and returning plain `str` paths (model.GroupPath).

    Its own value class (`Ltree`) refuses the root path "" (which an all-groups token holds) and
    accepts hyphens (which PostgreSQL 15 refuses); paths are validated by `paths.parse_path`
    before they get here instead. `descendant_of(list)` is ltree's `path <@ ltree[]`: a
    descendant of any of them."""

    cache_ok = True

    class comparator_factory(LtreeType.comparator_factory):
        def ancestor_of(self, other):  # type: ignore[no-untyped-def]
            return self.op("@>")(_path_array(other) if isinstance(other, list | tuple) else other)

        def descendant_of(self, other):  # type: ignore[no-untyped-def]
            return self.op("<@")(_path_array(other) if isinstance(other, list | tuple) else other)

    def bind_processor(self, dialect):  # type: ignore[no-untyped-def]
        return lambda value: None if value is None else str(value)

    def result_processor(self, dialect, coltype):  # type: ignore[no-untyped-def]
        return None  # asyncpg hands ltree over as text already


def _path_array(paths):  # type: ignore[no-untyped-def]
    return expression.cast(list(paths), ARRAY(PathType))

customers = Table(
    "customers", metadata,
    Column("customer_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

installations = Table(
    "installations", metadata,
    Column("installation_id", Text, primary_key=True),
    Column("customer_id", Text, ForeignKey("customers.customer_id")),
    Column("location", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("address", Text, nullable=False, server_default=""),
    Column("time_zone", Text, nullable=False, server_default="UTC"),
    Column("utility", Text, nullable=False, server_default=""),
    Column("battery_nominal_energy_wh", Double),
    Column("max_charge_power_w", Double),
    Column("max_discharge_power_w", Double),
    Column("backup_reserve_pct", Double, nullable=False, server_default="20"),
    Column("stormwatch_enabled", Boolean, nullable=False, server_default="true"),
    Column("priority", Text, nullable=False, server_default="stormwatch_first"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("installations_location", "location", postgresql_using="gist"),
    Index("installations_customer", "customer_id"),
)

devices = Table(
    "devices", metadata,
    Column("device_id", Text, primary_key=True),
    Column("installation_id", Text, ForeignKey("installations.installation_id"), nullable=False),
    Column("credential_sha256", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    # the credential before the last rotation, accepted until its grace ends (migration 0009)
    Column("previous_credential_sha256", LargeBinary),
    Column("previous_credential_valid_until", DateTime(timezone=True)),
    Column("serial", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False, server_default="gateway"),
    Column("firmware", Text, nullable=False, server_default=""),
    Index("devices_installation", "installation_id"),
)

# One-time claim codes (migration 0012): the SHA-256 of a code an edge agent exchanges once,
# before it expires, for its device's credential (services/assets/claims.py).
device_claims = Table(
    "device_claims", metadata,
    Column("code_sha256", LargeBinary, primary_key=True),
    Column("device_id", Text, nullable=False),   # no foreign key: devices may be truncated alone
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("redeemed_at", DateTime(timezone=True)),
    Index("device_claims_device", "device_id"),
)

hierarchy_groups = Table(
    "hierarchy_groups", metadata,
    Column("path", PathType, primary_key=True),
    Column("display_name", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("hierarchy_groups_path", "path", postgresql_using="gist"),
)

programs = Table(
    "programs", metadata,
    Column("path", PathType, ForeignKey("hierarchy_groups.path"), primary_key=True),
    Column("display_name", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

group_memberships = Table(
    "group_memberships", metadata,
    Column("installation_id", Text, ForeignKey("installations.installation_id"), primary_key=True),
    Column("path", PathType, ForeignKey("hierarchy_groups.path"), primary_key=True),
    Column("program", PathType, ForeignKey("programs.path")),
    Column("enrollment_state", Text),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("group_memberships_path", "path", postgresql_using="gist"),
)

enrollment_audit = Table(
    "enrollment_audit", metadata,
    Column("audit_id", BigInteger, primary_key=True),
    Column("installation_id", Text, nullable=False),
    Column("program", PathType, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("from_state", Text, nullable=False),
    Column("to_state", Text, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Index("enrollment_audit_installation", "installation_id", "program", "audit_id"),
)

api_principals = Table(
    "api_principals", metadata,
    Column("principal_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("token_sha256", LargeBinary, nullable=False, unique=True),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("allowed_paths", ARRAY(PathType), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    # The person a personal access token acts as (services/access: migration 0014_access).
    Column("owner_user_id", Text),
)

# The tables a test session empties between tests (children before parents).
ALL_TABLES = ("enrollment_audit", "group_memberships", "programs", "hierarchy_groups", "devices",
              "installations", "customers", "api_principals")
