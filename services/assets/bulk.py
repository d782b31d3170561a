"""Bulk loading of a fleet (import, demo seed, benchmark): binary COPY into staging tables, then
one INSERT … SELECT per table, all in one transaction.

Guarantees:
- All or nothing: any error (a serial registered to another device, a customer that does not
  exist, a group inside a program) leaves the database as it was.
- Upserts: installations, customers and devices already present are updated (a device gets
  its new credential and is un-revoked); memberships already present are kept.
- Enrollment goes through the state machine's legal steps only: a new enrollment in state S is
  written with the audit entries of `enrollment.steps_to(S)`; an installation that already has
  a state in the program keeps it (it must change through ChangeEnrollment).
- Inputs are expected validated (importer.py, seed.py build them through validation.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.assets import enrollment, paths
from services.assets.errors import AlreadyExists, FailedPrecondition, NotFound
from services.assets.model import (
    Customer,
    EnrollmentState,
    Group,
    GroupPath,
    Installation,
    InstallationId,
)
from services.assets.repository import STATE_GROUPS
from services.assets.schema import hierarchy_groups, programs


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    installation_id: InstallationId
    serial: str
    kind: str
    firmware: str
    credential_sha256: bytes


@dataclass(frozen=True)
class FleetData:
    customers: Sequence[Customer] = ()
    installations: Sequence[Installation] = ()
    groups: Sequence[Group] = ()              # plain groups; missing ancestors are created too
    programs: Sequence[Group] = ()            # created with their state groups
    memberships: Sequence[tuple[InstallationId, GroupPath]] = ()
    enrollments: Sequence[tuple[InstallationId, GroupPath, EnrollmentState]] = ()
    devices: Sequence[DeviceRecord] = ()


@dataclass
class LoadResult:
    customers: int = 0
    installations: int = 0
    groups: int = 0
    memberships: int = 0
    enrollments: int = 0
    devices: int = 0
    audit_entries: int = 0


_STAGING = (
    "CREATE TEMP TABLE stage_customers (customer_id text, name text, email text) ON COMMIT DROP",
    """CREATE TEMP TABLE stage_installations (
           installation_id text, customer_id text, longitude_deg float8, latitude_deg float8, address text,
           time_zone text, utility text, battery_nominal_energy_wh float8, max_charge_power_w float8,
           max_discharge_power_w float8, backup_reserve_pct float8, stormwatch_enabled bool, priority text
       ) ON COMMIT DROP""",
    "CREATE TEMP TABLE stage_memberships (installation_id text, path text) ON COMMIT DROP",
    "CREATE TEMP TABLE stage_enrollments (installation_id text, program text, state text) ON COMMIT DROP",
    """CREATE TEMP TABLE stage_devices (device_id text, installation_id text, serial text, kind text,
           firmware text, credential_sha256 bytea) ON COMMIT DROP""",
)

_UPSERT_CUSTOMERS = """
INSERT INTO customers (customer_id, name, email) SELECT customer_id, name, email FROM stage_customers
ON CONFLICT (customer_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email
"""
_MISSING_CUSTOMERS = """
SELECT DISTINCT s.customer_id FROM stage_installations s
 WHERE s.customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = s.customer_id)
 ORDER BY 1 LIMIT 10
"""
_UPSERT_INSTALLATIONS = """
INSERT INTO installations (installation_id, customer_id, location, address, time_zone, utility,
                           battery_nominal_energy_wh, max_charge_power_w, max_discharge_power_w,
                           backup_reserve_pct, stormwatch_enabled, priority)
SELECT installation_id, customer_id, ST_SetSRID(ST_MakePoint(longitude_deg, latitude_deg), 4326), address,
       time_zone, utility, battery_nominal_energy_wh, max_charge_power_w, max_discharge_power_w,
       backup_reserve_pct, stormwatch_enabled, priority
  FROM stage_installations
ON CONFLICT (installation_id) DO UPDATE SET
    customer_id = EXCLUDED.customer_id, location = EXCLUDED.location, address = EXCLUDED.address,
    time_zone = EXCLUDED.time_zone, utility = EXCLUDED.utility,
    battery_nominal_energy_wh = EXCLUDED.battery_nominal_energy_wh,
    max_charge_power_w = EXCLUDED.max_charge_power_w, max_discharge_power_w = EXCLUDED.max_discharge_power_w,
    backup_reserve_pct = EXCLUDED.backup_reserve_pct, stormwatch_enabled = EXCLUDED.stormwatch_enabled,
    priority = EXCLUDED.priority, updated_at = now()
"""
_INSERT_MEMBERSHIPS = """
INSERT INTO group_memberships (installation_id, path) SELECT installation_id, text2ltree(path) FROM stage_memberships
ON CONFLICT DO NOTHING
"""
# $3..$6: the legal steps to each final state (final state, step number, from, to).
_INSERT_ENROLLMENTS = """
WITH added AS (
    INSERT INTO group_memberships (installation_id, path, program, enrollment_state)
    SELECT installation_id, text2ltree(program) || text2ltree(state), text2ltree(program), state
      FROM stage_enrollments
    ON CONFLICT DO NOTHING
    RETURNING installation_id, program, enrollment_state
), audit AS (
    INSERT INTO enrollment_audit (installation_id, program, actor, from_state, to_state, reason)
    SELECT a.installation_id, a.program, $1, s.from_state, s.to_state, $2
      FROM added a JOIN unnest($3::text[], $4::int[], $5::text[], $6::text[]) AS s(final, step, from_state, to_state)
        ON s.final = a.enrollment_state
     ORDER BY a.installation_id, a.program, s.step
    RETURNING 1
)
SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM audit)
"""
_UPSERT_DEVICES = """
INSERT INTO devices (device_id, installation_id, serial, kind, firmware, credential_sha256)
SELECT device_id, installation_id, serial, kind, firmware, credential_sha256 FROM stage_devices
ON CONFLICT (device_id) DO UPDATE SET
    installation_id = EXCLUDED.installation_id, serial = EXCLUDED.serial, kind = EXCLUDED.kind,
    firmware = EXCLUDED.firmware, credential_sha256 = EXCLUDED.credential_sha256, revoked_at = NULL,
    previous_credential_sha256 = NULL, previous_credential_valid_until = NULL   -- a new credential, no grace
"""


def _installation_row(i: Installation) -> tuple[object, ...]:
    s, loc = i.settings, i.location
    return (i.installation_id, i.customer_id, loc.longitude_deg if loc else None, loc.latitude_deg if loc else None,
            i.address, i.time_zone, i.utility, i.battery_nominal_energy_wh, i.max_charge_power_w,
            i.max_discharge_power_w, s.backup_reserve_pct, s.stormwatch_enabled, s.priority.value)


def _steps() -> tuple[list[str], list[int], list[str], list[str]]:
    finals, numbers, froms, tos = [], [], [], []
    for final in STATE_GROUPS:
        for number, step in enumerate(enrollment.steps_to(final)):
            finals.append(final.value)
            numbers.append(number)
            froms.append(step.from_state.value)
            tos.append(step.to_state.value)
    return finals, numbers, froms, tos


async def _driver(con: AsyncConnection) -> asyncpg.Connection:
    raw = await con.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    return driver


async def _check_programs(con: AsyncConnection, data: FleetData) -> None:
    """Plain groups and memberships must not lie inside a program, existing or new."""
    plain = sorted({g.path for g in data.groups} | {p for _, p in data.memberships})
    new_programs = [p.path for p in data.programs]
    for path in plain:
        for program in new_programs:
            if paths.is_within(path, program) or paths.is_within(program, path):
                raise FailedPrecondition(f"group {path!r} overlaps program {program!r}")
    if plain:
        row = (await con.execute(select(programs.c.path).where(programs.c.path.ancestor_of(plain)).limit(1))).first()
        if row is not None:
            raise FailedPrecondition(f"groups inside program {row.path!r} change through enrollment only")


async def load(engine: AsyncEngine, data: FleetData, *, actor: str, reason: str = "bulk load") -> LoadResult:
    """Writes `data` in one transaction; raises FailedPrecondition/NotFound/AlreadyExists (and
    writes nothing) when the database refuses any of it."""
    try:
        return await _load(engine, data, actor=actor, reason=reason)
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(f"bulk load refused: {exc.detail or exc}") from None
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise FailedPrecondition(f"bulk load refused: {exc.detail or exc}") from None
    except IntegrityError as exc:
        cause = exc.orig.__cause__ if exc.orig is not None else None
        raise FailedPrecondition(f"bulk load refused: {getattr(cause, 'detail', None) or exc.orig}") from None


async def _load(engine: AsyncEngine, data: FleetData, *, actor: str, reason: str) -> LoadResult:
    result = LoadResult()
    async with engine.begin() as con:
        for statement in _STAGING:  # through SQLAlchemy first, so its transaction has begun
            await con.execute(text(statement))
        await _check_programs(con, data)
        driver = await _driver(con)

        group_rows: dict[str, str] = {}
        for group in [*data.groups, *data.programs]:
            for ancestor in paths.lineage(group.path)[:-1]:
                group_rows.setdefault(ancestor, "")
            group_rows[group.path] = group.display_name
        for _, path in data.memberships:
            for ancestor in paths.lineage(path):
                group_rows.setdefault(ancestor, "")
        for program in data.programs:
            for state in STATE_GROUPS:
                group_rows[paths.join(program.path, state.value)] = state.value
        if group_rows:
            inserted = await con.execute(pg_insert(hierarchy_groups).values(
                [{"path": p, "display_name": n} for p, n in sorted(group_rows.items())]).on_conflict_do_nothing())
            result.groups = inserted.rowcount
        if data.programs:
            await con.execute(pg_insert(programs).values(
                [{"path": p.path, "display_name": p.display_name} for p in data.programs]).on_conflict_do_nothing())

        await driver.copy_records_to_table("stage_customers", records=[
            (c.customer_id, c.name, c.email) for c in data.customers])
        result.customers = _count(await driver.execute(_UPSERT_CUSTOMERS))
        await driver.copy_records_to_table("stage_installations", records=[
            _installation_row(i) for i in data.installations])
        missing = [r[0] for r in await driver.fetch(_MISSING_CUSTOMERS)]
        if missing:
            raise NotFound(f"customers do not exist: {', '.join(missing)}")
        result.installations = _count(await driver.execute(_UPSERT_INSTALLATIONS))

        await driver.copy_records_to_table("stage_memberships", records=list(data.memberships))
        result.memberships = _count(await driver.execute(_INSERT_MEMBERSHIPS))
        await driver.copy_records_to_table("stage_enrollments", records=[
            (i, p, s.value) for i, p, s in data.enrollments if s != EnrollmentState.UNENROLLED])
        added, audited = await driver.fetchrow(_INSERT_ENROLLMENTS, actor, reason, *_steps())
        result.enrollments, result.audit_entries = int(added), int(audited)

        await driver.copy_records_to_table("stage_devices", records=[
            (d.device_id, d.installation_id, d.serial, d.kind, d.firmware, d.credential_sha256) for d in data.devices])
        result.devices = _count(await driver.execute(_UPSERT_DEVICES))
    return result


def _count(status: str) -> int:
    """Rows from a command tag such as 'INSERT 0 42'."""
    return int(status.rsplit(" ", 1)[-1])
