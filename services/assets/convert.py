"""Converters between the assets domain values and the generated protobuf messages (the edge).

Enum values a client sends that this version does not know are refused with InvalidArgument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from gridtwin.api.assets.v1 import assets_pb2 as pb
from services.access.model import Scope
from services.assets.errors import InvalidArgument
from services.assets.model import (
    Customer,
    CustomerId,
    Device,
    DeviceKind,
    EnrollmentChange,
    EnrollmentState,
    GeoPoint,
    Group,
    Installation,
    InstallationId,
    InstallationSettings,
    Priority,
)

PRIORITY_TO_PB = {Priority.STORMWATCH_FIRST: pb.PRIORITY_STORMWATCH_FIRST, Priority.VPP_FIRST: pb.PRIORITY_VPP_FIRST}
PRIORITY_FROM_PB = {v: k for k, v in PRIORITY_TO_PB.items()}
KIND_TO_PB = {
    DeviceKind.GATEWAY: pb.DEVICE_KIND_GATEWAY, DeviceKind.BATTERY: pb.DEVICE_KIND_BATTERY,
    DeviceKind.SOLAR_INVERTER: pb.DEVICE_KIND_SOLAR_INVERTER, DeviceKind.METER: pb.DEVICE_KIND_METER,
}
KIND_FROM_PB = {v: k for k, v in KIND_TO_PB.items()}
STATE_TO_PB = {
    EnrollmentState.UNENROLLED: pb.ENROLLMENT_STATE_UNENROLLED, EnrollmentState.ELIGIBLE: pb.ENROLLMENT_STATE_ELIGIBLE,
    EnrollmentState.PENDING: pb.ENROLLMENT_STATE_PENDING, EnrollmentState.ENROLLED: pb.ENROLLMENT_STATE_ENROLLED,
}
STATE_FROM_PB = {v: k for k, v in STATE_TO_PB.items()}
SCOPE_TO_PB = {Scope.READ: pb.SCOPE_READ, Scope.COMMAND: pb.SCOPE_COMMAND, Scope.ADMIN: pb.SCOPE_ADMIN}
SCOPE_FROM_PB = {v: k for k, v in SCOPE_TO_PB.items()}

E = TypeVar("E")


def enum_from_pb(mapping: Mapping[Any, E], value: int, field: str, *, default: E | None = None) -> E:
    """The domain value of a protobuf enum; `default` for UNSPECIFIED (0) when given."""
    if value == 0 and default is not None:
        return default
    try:
        return mapping[value]
    except KeyError:
        raise InvalidArgument(field, f"unknown or unspecified value {value}") from None


def installation_to_pb(installation: Installation) -> pb.Installation:
    s = installation.settings
    message = pb.Installation(
        installation_id=installation.installation_id, customer_id=installation.customer_id or "",
        address=installation.address, time_zone=installation.time_zone, utility=installation.utility,
        backup_reserve_pct=s.backup_reserve_pct, stormwatch_enabled=s.stormwatch_enabled,
        priority=PRIORITY_TO_PB[s.priority],
        battery_nominal_energy_wh=installation.battery_nominal_energy_wh,
        max_charge_power_w=installation.max_charge_power_w,
        max_discharge_power_w=installation.max_discharge_power_w,
    )
    if installation.location is not None:
        message.location.CopyFrom(pb.GeoPoint(longitude_deg=installation.location.longitude_deg,
                                              latitude_deg=installation.location.latitude_deg))
    return message


def installation_from_pb(message: pb.Installation, installation_id: str) -> Installation:
    """Unvalidated (see validation.parse_installation); a missing location stays None."""
    defaults = InstallationSettings()
    location = None
    if message.HasField("location"):
        location = GeoPoint(message.location.longitude_deg, message.location.latitude_deg)
    priority = enum_from_pb(PRIORITY_FROM_PB, message.priority, "installation.priority",
                            default=Priority.STORMWATCH_FIRST)
    return Installation(
        installation_id=InstallationId(installation_id),
        customer_id=CustomerId(message.customer_id) if message.customer_id else None,
        location=location, address=message.address, time_zone=message.time_zone or "UTC",
        utility=message.utility,
        battery_nominal_energy_wh=(message.battery_nominal_energy_wh
                                   if message.HasField("battery_nominal_energy_wh") else None),
        max_charge_power_w=message.max_charge_power_w if message.HasField("max_charge_power_w") else None,
        max_discharge_power_w=message.max_discharge_power_w if message.HasField("max_discharge_power_w") else None,
        settings=InstallationSettings(
            message.backup_reserve_pct if message.HasField("backup_reserve_pct") else defaults.backup_reserve_pct,
            message.stormwatch_enabled if message.HasField("stormwatch_enabled") else defaults.stormwatch_enabled,
            priority),
    )


def customer_to_pb(customer: Customer) -> pb.Customer:
    return pb.Customer(customer_id=customer.customer_id, name=customer.name, email=customer.email)


def device_to_pb(device: Device) -> pb.Device:
    return pb.Device(device_id=device.device_id, serial=device.serial, kind=KIND_TO_PB[device.kind],
                     firmware=device.firmware, installation_id=device.installation_id, revoked=device.revoked,
                     created_unix_ms=device.created_unix_ms)


def group_to_pb(group: Group) -> pb.Group:
    return pb.Group(path=group.path, display_name=group.display_name, program=group.program or "")


def change_to_pb(change: EnrollmentChange) -> pb.EnrollmentChange:
    return pb.EnrollmentChange(
        installation_id=change.installation_id, program=change.program, from_state=STATE_TO_PB[change.from_state],
        to_state=STATE_TO_PB[change.to_state], actor=change.actor, at_unix_ms=change.at_unix_ms, reason=change.reason)
