"""The assets tables behind a narrow async interface (SQLAlchemy Core over asyncpg).

Guarantees:
- Every mutation runs in one transaction: it is fully written or, on any error, not at all.
- Every read that names an installation, device or customer checks it against the caller's
  `Visibility` in SQL: NotFound when it does not exist, PermissionDenied when it exists but is
  not visible. Searches and listings filter by visibility in SQL (`path <@ ANY(allowed)`), never
  by fetching and filtering in Python.
- Inputs are validated before they get here (validation.py, paths.py); values are always bound
  parameters.
- Enrollment changes of one installation are serialized (its row is locked), so concurrent
  requests cannot both leave the same state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from geoalchemy2 import Geography
from sqlalchemy import (
    ColumnElement,
    Select,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.access.credentials import StoredCredentials
from services.access.model import ApiPrincipal, Scope, Visibility
from services.assets import enrollment, paths
from services.assets.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied, Unauthenticated
from services.assets.model import (
    Customer,
    CustomerId,
    Device,
    DeviceId,
    DeviceKind,
    EnrollmentChange,
    EnrollmentState,
    GeoPoint,
    Group,
    GroupPath,
    Installation,
    InstallationDistance,
    InstallationId,
    InstallationSettings,
    Page,
    PrincipalId,
    Priority,
)
from services.assets.schema import (
    api_principals,
    customers,
    device_claims,
    devices,
    enrollment_audit,
    group_memberships,
    hierarchy_groups,
    installations,
    programs,
)
from services.assets.validation import Box

Inst, Memb, Grp, Prog, Dev = installations, group_memberships, hierarchy_groups, programs, devices

_INSTALLATION_COLUMNS = (
    Inst.c.installation_id, Inst.c.customer_id,
    func.ST_X(Inst.c.location).label("longitude_deg"), func.ST_Y(Inst.c.location).label("latitude_deg"),
    Inst.c.address, Inst.c.time_zone, Inst.c.utility, Inst.c.battery_nominal_energy_wh, Inst.c.max_charge_power_w,
    Inst.c.max_discharge_power_w, Inst.c.backup_reserve_pct, Inst.c.stormwatch_enabled, Inst.c.priority,
)
_DEVICE_COLUMNS = (Dev.c.device_id, Dev.c.serial, Dev.c.kind, Dev.c.firmware, Dev.c.installation_id,
                   Dev.c.revoked_at, Dev.c.created_at)


def _unix_ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1_000)


def _point(longitude_deg: float, latitude_deg: float) -> Any:
    return func.ST_SetSRID(func.ST_MakePoint(longitude_deg, latitude_deg), 4326)


def visible(vis: Visibility, installation_id: Any) -> ColumnElement[bool]:
    """SQL: is the installation named by `installation_id` (a column or value) visible?"""
    if vis.everything:
        return true()
    if vis.installation_ids is not None:   # a device, a homeowner, an installer: exactly these
        if not vis.installation_ids:
            return false()
        column = installation_id if hasattr(installation_id, "in_") else literal(installation_id)
        return column.in_(list(vis.installation_ids))  # type: ignore[no-any-return]
    if not vis.paths:
        return false()
    return exists().where(Memb.c.installation_id == installation_id, Memb.c.path.descendant_of(list(vis.paths)))


def _customer_visible(vis: Visibility, customer_id: Any) -> ColumnElement[bool]:
    """A customer is visible with one of its installations, or while it has none."""
    if vis.everything:
        return true()
    own = Inst.c.customer_id == customer_id
    return or_(exists().where(own, visible(vis, Inst.c.installation_id)), ~exists().where(own))


def _program_of(path: Any) -> Any:
    """SQL: the program a group is or lies in (NULL for none)."""
    return select(Prog.c.path).where(Prog.c.path.ancestor_of(path)).limit(1).scalar_subquery()


def _installation(row: Any) -> Installation:
    location = None
    if row.longitude_deg is not None:
        location = GeoPoint(row.longitude_deg, row.latitude_deg)
    return Installation(
        installation_id=InstallationId(row.installation_id),
        customer_id=CustomerId(row.customer_id) if row.customer_id is not None else None,
        location=location, address=row.address, time_zone=row.time_zone, utility=row.utility,
        battery_nominal_energy_wh=row.battery_nominal_energy_wh, max_charge_power_w=row.max_charge_power_w,
        max_discharge_power_w=row.max_discharge_power_w,
        settings=InstallationSettings(row.backup_reserve_pct, row.stormwatch_enabled, Priority(row.priority)),
    )


def _device(row: Any) -> Device:
    return Device(DeviceId(row.device_id), row.serial, DeviceKind(row.kind), row.firmware,
                  InstallationId(row.installation_id), row.revoked_at is not None, _unix_ms(row.created_at))


def _group(row: Any) -> Group:
    return Group(GroupPath(row.path), row.display_name, GroupPath(row.program) if row.program is not None else None)


def _page(items: Sequence[Any], page_size: int, key: Any) -> Page[Any]:
    if len(items) > page_size:
        return Page(tuple(items[:page_size]), key(items[page_size - 1]))
    return Page(tuple(items), "")


def _change(row: Any) -> EnrollmentChange:
    return EnrollmentChange(InstallationId(row.installation_id), GroupPath(row.program),
                            EnrollmentState(row.from_state), EnrollmentState(row.to_state), row.actor,
                            _unix_ms(row.at), row.reason)


class AssetRepository:
    """Customers, installations, devices, groups, programs and principals in Postgres."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # ------------------------------------------------------------ checks inside transactions

    async def _check_installation(self, con: AsyncConnection, installation_id: str, vis: Visibility,
                                  *, lock: bool = False) -> None:
        query = select(visible(vis, Inst.c.installation_id)).where(Inst.c.installation_id == installation_id)
        if lock:
            query = query.with_for_update(of=Inst)
        seen = (await con.execute(query)).scalar_one_or_none()
        if seen is None:
            raise NotFound(f"installation {installation_id!r} does not exist")
        if not seen:
            raise PermissionDenied(f"installation {installation_id!r} is outside this token's groups")

    async def _check_group(self, con: AsyncConnection, path: GroupPath) -> GroupPath | None:
        """NotFound unless the group exists; returns the program it lies in, if any."""
        row = (await con.execute(select(Grp.c.path, _program_of(Grp.c.path).label("program"))
                                 .where(Grp.c.path == path))).one_or_none()
        if row is None:
            raise NotFound(f"group {path!r} does not exist")
        return GroupPath(row.program) if row.program is not None else None

    async def _check_plain_groups(self, con: AsyncConnection, group_paths: Sequence[GroupPath]) -> None:
        for path in group_paths:
            program = await self._check_group(con, path)
            if program is not None:
                raise FailedPrecondition(
                    f"group {path!r} belongs to program {program!r}: change enrollment with ChangeEnrollment")

    # ------------------------------------------------------------ customers

    async def create_customer(self, customer: Customer) -> Customer:
        async with self.engine.begin() as con:
            created = await con.execute(pg_insert(customers).values(
                customer_id=customer.customer_id, name=customer.name, email=customer.email,
            ).on_conflict_do_nothing())
            if created.rowcount == 0:
                raise AlreadyExists(f"customer {customer.customer_id!r} already exists")
        return customer

    async def get_customer(self, customer_id: str, vis: Visibility) -> Customer:
        async with self.engine.connect() as con:
            row = (await con.execute(
                select(customers, _customer_visible(vis, customers.c.customer_id).label("seen"))
                .where(customers.c.customer_id == customer_id))).one_or_none()
        if row is None:
            raise NotFound(f"customer {customer_id!r} does not exist")
        if not row.seen:
            raise PermissionDenied(f"customer {customer_id!r} is outside this token's groups")
        return Customer(CustomerId(row.customer_id), row.name, row.email)

    # ------------------------------------------------------------ installations

    async def create_installation(self, installation: Installation, group_paths: Sequence[GroupPath]) -> Installation:
        """Inserts the installation and its memberships (groups must exist, outside programs)."""
        s, loc = installation.settings, installation.location
        async with self.engine.begin() as con:
            if (await con.execute(select(Inst.c.installation_id).where(
                    Inst.c.installation_id == installation.installation_id))).first() is not None:
                raise AlreadyExists(f"installation {installation.installation_id!r} already exists")
            if installation.customer_id is not None and (await con.execute(select(customers.c.customer_id).where(
                    customers.c.customer_id == installation.customer_id))).first() is None:
                raise NotFound(f"customer {installation.customer_id!r} does not exist")
            await self._check_plain_groups(con, group_paths)
            try:
                await con.execute(insert(Inst).values(
                    installation_id=installation.installation_id, customer_id=installation.customer_id,
                    location=_point(loc.longitude_deg, loc.latitude_deg) if loc is not None else None,
                    address=installation.address, time_zone=installation.time_zone, utility=installation.utility,
                    battery_nominal_energy_wh=installation.battery_nominal_energy_wh,
                    max_charge_power_w=installation.max_charge_power_w,
                    max_discharge_power_w=installation.max_discharge_power_w,
                    backup_reserve_pct=s.backup_reserve_pct, stormwatch_enabled=s.stormwatch_enabled,
                    priority=s.priority.value))
            except IntegrityError as exc:  # a concurrent create of the same id
                raise AlreadyExists(f"installation {installation.installation_id!r} already exists") from exc
            if group_paths:
                await con.execute(insert(Memb), [{"installation_id": installation.installation_id, "path": p}
                                              for p in dict.fromkeys(group_paths)])
        return installation

    async def get_installation(self, installation_id: str, vis: Visibility) -> Installation:
        async with self.engine.connect() as con:
            row = (await con.execute(
                select(*_INSTALLATION_COLUMNS, visible(vis, Inst.c.installation_id).label("seen"))
                .where(Inst.c.installation_id == installation_id))).one_or_none()
        if row is None:
            raise NotFound(f"installation {installation_id!r} does not exist")
        if not row.seen:
            raise PermissionDenied(f"installation {installation_id!r} is outside this token's groups")
        return _installation(row)

    async def update_settings(self, installation_id: str, vis: Visibility, *, backup_reserve_pct: float | None,
                              stormwatch_enabled: bool | None, priority: Priority | None) -> Installation:
        changes: dict[str, Any] = {}
        if backup_reserve_pct is not None:
            changes["backup_reserve_pct"] = backup_reserve_pct
        if stormwatch_enabled is not None:
            changes["stormwatch_enabled"] = stormwatch_enabled
        if priority is not None:
            changes["priority"] = priority.value
        async with self.engine.begin() as con:
            await self._check_installation(con, installation_id, vis, lock=True)
            if changes:
                await con.execute(update(Inst).where(Inst.c.installation_id == installation_id)
                                  .values(**changes, updated_at=func.now()))
            row = (await con.execute(select(*_INSTALLATION_COLUMNS)
                                     .where(Inst.c.installation_id == installation_id))).one()
        return _installation(row)

    def box_query(self, box: Box, vis: Visibility, page_size: int, after: str = "") -> Select[Any]:
        """Installations in the box by the GiST index (`location && envelope`), ordered by id."""
        envelope = func.ST_MakeEnvelope(box.min_longitude_deg, box.min_latitude_deg,
                                        box.max_longitude_deg, box.max_latitude_deg, 4326)
        return self._page_query(Inst.c.location.intersects(envelope), vis, page_size, after)

    def _page_query(self, where: ColumnElement[bool], vis: Visibility, page_size: int, after: str) -> Select[Any]:
        query = select(*_INSTALLATION_COLUMNS).where(where, visible(vis, Inst.c.installation_id))
        if after:
            query = query.where(Inst.c.installation_id > after)
        return query.order_by(Inst.c.installation_id).limit(page_size + 1)

    async def search_box(self, box: Box, vis: Visibility, page_size: int, after: str = "") -> Page[Installation]:
        async with self.engine.connect() as con:
            rows = (await con.execute(self.box_query(box, vis, page_size, after))).all()
        return _page([_installation(r) for r in rows], page_size, lambda i: i.installation_id)

    async def search_polygon(self, polygon_wkb: bytes, vis: Visibility, page_size: int,
                             after: str = "") -> Page[Installation]:
        """Installations inside or on the boundary of the polygon (ST_Intersects, index-assisted)."""
        shape = func.ST_GeomFromWKB(polygon_wkb, 4326)
        async with self.engine.connect() as con:
            rows = (await con.execute(self._page_query(func.ST_Intersects(Inst.c.location, shape), vis,
                                                       page_size, after))).all()
        return _page([_installation(r) for r in rows], page_size, lambda i: i.installation_id)

    async def search_near(self, center: GeoPoint, radius_m: float, vis: Visibility, page_size: int,
                          after: tuple[float, str] | None = None) -> Page[InstallationDistance]:
        """Within `radius_m` on the spheroid (geography), nearest first, ties by id; keyset pages
        after (distance_m, installation_id). Distances are recomputed alike on every page, so the
        float comparison is exact."""
        here = cast(_point(center.longitude_deg, center.latitude_deg), Geography)
        there = cast(Inst.c.location, Geography)
        distance = func.ST_Distance(there, here)
        query = (select(*_INSTALLATION_COLUMNS, distance.label("distance_m"))
                 .where(func.ST_DWithin(there, here, radius_m), visible(vis, Inst.c.installation_id)))
        if after is not None:
            query = query.where(tuple_(distance, Inst.c.installation_id) > tuple_(after[0], after[1]))
        query = query.order_by(distance, Inst.c.installation_id).limit(page_size + 1)
        async with self.engine.connect() as con:
            rows = (await con.execute(query)).all()
        return _page([InstallationDistance(_installation(r), r.distance_m) for r in rows], page_size,
                     lambda f: f.installation.installation_id)

    # ------------------------------------------------------------ devices

    async def register_device(self, device: Device, credential_sha256: bytes, vis: Visibility) -> Device:
        async with self.engine.begin() as con:
            return await self._insert_device(con, device, credential_sha256, vis)

    async def _insert_device(self, con: AsyncConnection, device: Device, credential_sha256: bytes,
                             vis: Visibility) -> Device:
        await self._check_installation(con, device.installation_id, vis)
        taken = (await con.execute(select(Dev.c.device_id, Dev.c.serial).where(
            or_(Dev.c.device_id == device.device_id, Dev.c.serial == device.serial)))).first()
        if taken is not None:
            what = "serial" if taken.serial == device.serial else "device id"
            value = device.serial if what == "serial" else device.device_id
            raise AlreadyExists(f"{what} {value!r} is already registered")
        try:
            row = (await con.execute(insert(Dev).values(
                device_id=device.device_id, installation_id=device.installation_id, serial=device.serial,
                kind=device.kind.value, firmware=device.firmware, credential_sha256=credential_sha256,
            ).returning(*_DEVICE_COLUMNS))).one()
        except IntegrityError as exc:  # a concurrent registration
            raise AlreadyExists(f"device {device.device_id!r} or serial {device.serial!r} "
                                "is already registered") from exc
        return _device(row)

    async def create_device_claim(self, device: Device, unknown_credential_sha256: bytes, code_sha256: bytes,
                                  expires_at: dt.datetime, created_by: str, vis: Visibility) -> Device:
        """Registers `device` with a credential nobody knows (it cannot connect yet) and stores the
        claim code's hash beside it, in one transaction."""
        async with self.engine.begin() as con:
            created = await self._insert_device(con, device, unknown_credential_sha256, vis)
            await con.execute(insert(device_claims).values(
                code_sha256=code_sha256, device_id=device.device_id, created_by=created_by, expires_at=expires_at))
        return created

    async def redeem_device_claim(self, code_sha256: bytes, credential_sha256: bytes) -> Device:
        """Marks the claim redeemed and makes `credential_sha256` its device's only credential, in
        one transaction. Unauthenticated when the code is unknown, used or expired, or the device
        is gone or revoked (the claim then stays unredeemed: the transaction is undone)."""
        Claim = device_claims
        async with self.engine.begin() as con:
            claim = (await con.execute(update(Claim).where(
                Claim.c.code_sha256 == code_sha256, Claim.c.redeemed_at.is_(None), Claim.c.expires_at > func.now(),
            ).values(redeemed_at=func.now()).returning(Claim.c.device_id))).one_or_none()
            if claim is None:
                raise Unauthenticated("unknown, used or expired claim code")
            row = (await con.execute(update(Dev).where(
                Dev.c.device_id == claim.device_id, Dev.c.revoked_at.is_(None),
            ).values(credential_sha256=credential_sha256, previous_credential_sha256=None,
                     previous_credential_valid_until=None).returning(*_DEVICE_COLUMNS))).one_or_none()
            if row is None:
                raise Unauthenticated("the claimed device no longer exists or is revoked")
        return _device(row)

    async def _device_row(self, con: AsyncConnection, device_id: str, vis: Visibility) -> Any:
        row = (await con.execute(select(*_DEVICE_COLUMNS, visible(vis, Dev.c.installation_id).label("seen"))
                                 .where(Dev.c.device_id == device_id))).one_or_none()
        if row is None:
            raise NotFound(f"device {device_id!r} does not exist")
        if not row.seen:
            raise PermissionDenied(f"device {device_id!r} is outside this token's groups")
        return row

    async def get_device(self, device_id: str, vis: Visibility) -> Device:
        async with self.engine.connect() as con:
            return _device(await self._device_row(con, device_id, vis))

    async def list_devices(self, installation_id: str, vis: Visibility, page_size: int,
                           after: str = "") -> Page[Device]:
        """The installation's devices by id (keyset pages after `after`)."""
        query = select(*_DEVICE_COLUMNS).where(Dev.c.installation_id == installation_id)
        if after:
            query = query.where(Dev.c.device_id > after)
        async with self.engine.connect() as con:
            await self._check_installation(con, installation_id, vis)
            rows = (await con.execute(query.order_by(Dev.c.device_id).limit(page_size + 1))).all()
        return _page([_device(r) for r in rows], page_size, lambda d: d.device_id)

    async def revoke_device(self, device_id: str, vis: Visibility) -> Device:
        """Idempotent: revoking a revoked device keeps its first revocation time."""
        async with self.engine.begin() as con:
            await self._device_row(con, device_id, vis)
            await con.execute(update(Dev).where(Dev.c.device_id == device_id, Dev.c.revoked_at.is_(None))
                              .values(revoked_at=func.now()))
            row = (await con.execute(select(*_DEVICE_COLUMNS).where(Dev.c.device_id == device_id))).one()
        return _device(row)

    async def rotate_device_credential(self, device_id: str, credential_sha256: bytes,
                                       previous_valid_until: dt.datetime | None, vis: Visibility) -> Device:
        """Makes `credential_sha256` the device's credential; the one it replaces stays valid until
        `previous_valid_until` (None: not at all). An older previous credential ends at once."""
        async with self.engine.begin() as con:
            row = await self._device_row(con, device_id, vis)
            if row.revoked_at is not None:
                raise FailedPrecondition(f"device {device_id!r} is revoked: register it again")
            # In an UPDATE every right-hand side reads the row as it was: the old credential moves over.
            await con.execute(update(Dev).where(Dev.c.device_id == device_id).values(
                previous_credential_sha256=Dev.c.credential_sha256 if previous_valid_until is not None else None,
                previous_credential_valid_until=previous_valid_until,
                credential_sha256=credential_sha256))
        return _device(row)

    async def device_credential(self, device_id: str) -> StoredCredentials | None:
        """The credentials of an unrevoked device (for authentication)."""
        async with self.engine.connect() as con:
            row = (await con.execute(
                select(Dev.c.credential_sha256, Dev.c.installation_id, Dev.c.previous_credential_sha256,
                       Dev.c.previous_credential_valid_until)
                .where(Dev.c.device_id == device_id, Dev.c.revoked_at.is_(None)))).one_or_none()
        if row is None:
            return None
        until = row.previous_credential_valid_until
        return StoredCredentials(
            InstallationId(row.installation_id), bytes(row.credential_sha256),
            bytes(row.previous_credential_sha256) if row.previous_credential_sha256 is not None else None,
            _unix_ms(until) if until is not None else None)

    # ------------------------------------------------------------ groups

    async def create_group(self, path: GroupPath, display_name: str) -> Group:
        """Creates the group and its missing ancestors (with empty display names)."""
        async with self.engine.begin() as con:
            await self._insert_group(con, path, display_name)
        return Group(path, display_name)

    async def _insert_group(self, con: AsyncConnection, path: GroupPath, display_name: str) -> None:
        if (await con.execute(select(Grp.c.path).where(Grp.c.path == path))).first() is not None:
            raise AlreadyExists(f"group {path!r} already exists")
        program = (await con.execute(select(Prog.c.path).where(
            or_(Prog.c.path.ancestor_of(path), Prog.c.path.descendant_of(path))).limit(1))).scalar_one_or_none()
        if program is not None:
            raise FailedPrecondition(f"group {path!r} would overlap program {program!r}; a program's groups "
                                     "are its state groups only")
        ancestors = paths.lineage(path)[:-1]
        if ancestors:
            await con.execute(pg_insert(Grp).values([{"path": a, "display_name": ""} for a in ancestors])
                              .on_conflict_do_nothing())
        try:
            await con.execute(insert(Grp).values(path=path, display_name=display_name))
        except IntegrityError as exc:
            raise AlreadyExists(f"group {path!r} already exists") from exc

    async def list_groups(self, path: GroupPath, *, ancestors: bool, vis: Visibility, page_size: int,
                          after: str = "") -> Page[Group]:
        """The group and its descendants (`<@`), or its ancestors and itself (`@>`), by path
        (keyset pages after the path `after`; paths are unique). Groups outside the caller's
        paths are left out (ancestors of them are not: their labels are part of the caller's own
        paths)."""
        relation = Grp.c.path.ancestor_of(path) if ancestors else Grp.c.path.descendant_of(path)
        query = select(Grp.c.path, Grp.c.display_name, _program_of(Grp.c.path).label("program")).where(relation)
        if not ancestors and not vis.everything:
            query = query.where(Grp.c.path.descendant_of(list(vis.paths)))
        if after:
            query = query.where(Grp.c.path > after)
        async with self.engine.connect() as con:
            await self._check_group(con, path)
            rows = (await con.execute(query.order_by(Grp.c.path).limit(page_size + 1))).all()
        return _page([_group(r) for r in rows], page_size, lambda g: g.path)

    async def add_to_group(self, installation_id: str, path: GroupPath, vis: Visibility) -> None:
        async with self.engine.begin() as con:
            await self._check_installation(con, installation_id, vis)
            await self._check_plain_groups(con, [path])
            await con.execute(pg_insert(Memb).values(installation_id=installation_id, path=path)
                              .on_conflict_do_nothing())

    async def remove_from_group(self, installation_id: str, path: GroupPath, vis: Visibility) -> None:
        async with self.engine.begin() as con:
            await self._check_installation(con, installation_id, vis)
            await self._check_plain_groups(con, [path])
            removed = await con.execute(
                delete(Memb).where(Memb.c.installation_id == installation_id, Memb.c.path == path))
            if removed.rowcount == 0:
                raise NotFound(f"installation {installation_id!r} is not a member of {path!r}")

    async def group_installations(self, path: GroupPath, page_size: int, after: str = "") -> Page[InstallationId]:
        """Members of the group or any group below it, by id (keyset pages)."""
        member = exists().where(Memb.c.installation_id == Inst.c.installation_id, Memb.c.path.descendant_of(path))
        query = select(Inst.c.installation_id).where(member)
        if after:
            query = query.where(Inst.c.installation_id > after)
        async with self.engine.connect() as con:
            await self._check_group(con, path)
            ids = (await con.execute(query.order_by(Inst.c.installation_id).limit(page_size + 1))).scalars().all()
        return _page([InstallationId(i) for i in ids], page_size, lambda i: i)

    async def all_group_installations(self, path: GroupPath) -> list[InstallationId]:
        """Every member of the group at any depth, unordered (for fan-out; GiST on `path <@`)."""
        async with self.engine.connect() as con:
            await self._check_group(con, path)
            ids = (await con.execute(select(Memb.c.installation_id).where(Memb.c.path.descendant_of(path))
                                     .distinct())).scalars().all()
        return [InstallationId(i) for i in ids]

    async def installation_groups(self, installation_id: str, vis: Visibility) -> list[Group]:
        """Groups the installation is in directly or through a descendant (`@>`), by path."""
        query = (select(Grp.c.path, Grp.c.display_name, _program_of(Grp.c.path).label("program"))
                 .where(exists().where(Memb.c.installation_id == installation_id, Grp.c.path.ancestor_of(Memb.c.path))))
        if not vis.everything:
            query = query.where(Grp.c.path.descendant_of(list(vis.paths)))
        async with self.engine.connect() as con:
            await self._check_installation(con, installation_id, vis)
            rows = (await con.execute(query.order_by(Grp.c.path))).all()
        return [_group(r) for r in rows]

    # ------------------------------------------------------------ programs and enrollment

    async def create_program(self, path: GroupPath, display_name: str) -> Group:
        """The program's group, its missing ancestors and its state groups, in one transaction."""
        async with self.engine.begin() as con:
            await self._insert_group(con, path, display_name)
            await con.execute(insert(Prog).values(path=path, display_name=display_name))
            await con.execute(insert(Grp), [{"path": paths.join(path, s.value), "display_name": s.value}
                                          for s in STATE_GROUPS])
        return Group(path, display_name, path)

    async def _check_program(self, con: AsyncConnection, program: GroupPath) -> None:
        if (await con.execute(select(Prog.c.path).where(Prog.c.path == program))).first() is None:
            raise NotFound(f"program {program!r} does not exist")

    async def change_enrollment(self, installation_id: str, program: GroupPath, target: EnrollmentState,
                                *, actor: str, reason: str, vis: Visibility) -> EnrollmentChange:
        """Applies one legal transition and records it; FailedPrecondition for an illegal one."""
        async with self.engine.begin() as con:
            await self._check_program(con, program)
            await self._check_installation(con, installation_id, vis, lock=True)
            current = await self._enrollment_state(con, installation_id, program)
            decision = enrollment.transition(current, target)
            if isinstance(decision, enrollment.Rejected):
                raise FailedPrecondition(f"installation {installation_id!r} in {program!r}: {decision.reason}")
            await con.execute(delete(Memb).where(Memb.c.installation_id == installation_id, Memb.c.program == program))
            if target != EnrollmentState.UNENROLLED:
                await con.execute(insert(Memb).values(installation_id=installation_id,
                                                   path=paths.join(program, target.value), program=program,
                                                   enrollment_state=target.value))
            row = (await con.execute(insert(enrollment_audit).values(
                installation_id=installation_id, program=program, actor=actor, from_state=current.value,
                to_state=target.value, reason=reason).returning(*enrollment_audit.c))).one()
        return _change(row)

    async def _enrollment_state(self, con: AsyncConnection, installation_id: str,
                                program: GroupPath) -> EnrollmentState:
        state = (await con.execute(select(Memb.c.enrollment_state).where(
            Memb.c.installation_id == installation_id, Memb.c.program == program))).scalar_one_or_none()
        return EnrollmentState(state) if state is not None else EnrollmentState.UNENROLLED

    async def get_enrollment(self, installation_id: str, program: GroupPath, vis: Visibility) -> EnrollmentState:
        async with self.engine.connect() as con:
            await self._check_program(con, program)
            await self._check_installation(con, installation_id, vis)
            return await self._enrollment_state(con, installation_id, program)

    async def enrollment_history(self, installation_id: str, program: GroupPath,
                                 vis: Visibility) -> list[EnrollmentChange]:
        async with self.engine.connect() as con:
            await self._check_program(con, program)
            await self._check_installation(con, installation_id, vis)
            rows = (await con.execute(select(enrollment_audit).where(
                enrollment_audit.c.installation_id == installation_id, enrollment_audit.c.program == program)
                .order_by(enrollment_audit.c.audit_id))).all()
        return [_change(r) for r in rows]

    # ------------------------------------------------------------ principals

    async def create_principal(self, principal: ApiPrincipal, token_sha256: bytes, created_by: str) -> None:
        expires = (dt.datetime.fromtimestamp(principal.expires_unix_ms / 1_000, dt.UTC)
                   if principal.expires_unix_ms is not None else None)
        async with self.engine.begin() as con:
            await con.execute(insert(api_principals).values(
                principal_id=principal.principal_id, name=principal.name, token_sha256=token_sha256,
                scopes=sorted(s.value for s in principal.scopes), allowed_paths=list(principal.allowed_paths),
                created_by=created_by, expires_at=expires))

    async def principal_by_token(self, token_sha256: bytes) -> ApiPrincipal | None:
        """The unrevoked principal holding the token (expiry is the caller's decision)."""
        async with self.engine.connect() as con:
            row = (await con.execute(select(api_principals).where(
                api_principals.c.token_sha256 == token_sha256, api_principals.c.revoked_at.is_(None)))).one_or_none()
        return None if row is None else _principal(row)

    async def principal(self, principal_id: str) -> ApiPrincipal:
        async with self.engine.connect() as con:
            row = (await con.execute(select(api_principals).where(
                api_principals.c.principal_id == principal_id))).one_or_none()
        if row is None:
            raise NotFound(f"token {principal_id!r} does not exist")
        return _principal(row)

    async def revoke_principal(self, principal_id: str) -> None:
        """Idempotent."""
        async with self.engine.begin() as con:
            await con.execute(update(api_principals).where(api_principals.c.principal_id == principal_id,
                                                           api_principals.c.revoked_at.is_(None))
                              .values(revoked_at=func.now()))


STATE_GROUPS = (EnrollmentState.ELIGIBLE, EnrollmentState.PENDING, EnrollmentState.ENROLLED)


def _principal(row: Any) -> ApiPrincipal:
    return ApiPrincipal(
        PrincipalId(row.principal_id), row.name, frozenset(Scope(s) for s in row.scopes),
        tuple(GroupPath(p) for p in row.allowed_paths),
        _unix_ms(row.expires_at) if row.expires_at is not None else None,
    )
