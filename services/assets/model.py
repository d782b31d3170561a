"""The assets domain as plain values: ids, enums and frozen dataclasses (standard library only).

Units are in the names: energy in Wh, power in W, reserve in percent of the battery's energy,
coordinates in degrees of WGS 84 (SRID 4326), distances in meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, NewType, TypeVar

T = TypeVar("T")

CustomerId = NewType("CustomerId", str)
InstallationId = NewType("InstallationId", str)
DeviceId = NewType("DeviceId", str)
PrincipalId = NewType("PrincipalId", str)
# An ltree path of validated labels, e.g. "utility.pge.north_ca" (see paths.py); "" is the root.
GroupPath = NewType("GroupPath", str)


class Priority(StrEnum):
    """What the customer lets win when StormWatch and a VPP event want the battery at once."""

    STORMWATCH_FIRST = "stormwatch_first"
    VPP_FIRST = "vpp_first"


class DeviceKind(StrEnum):
    GATEWAY = "gateway"            # the device that talks to the cloud for its installation
    BATTERY = "battery"
    SOLAR_INVERTER = "solar_inverter"
    METER = "meter"


class EnrollmentState(StrEnum):
    """An installation's state in one program. UNENROLLED means "no membership at all"."""

    UNENROLLED = "unenrolled"
    ELIGIBLE = "eligible"
    PENDING = "pending"
    ENROLLED = "enrolled"


@dataclass(frozen=True)
class GeoPoint:
    longitude_deg: float
    latitude_deg: float


@dataclass(frozen=True)
class Customer:
    customer_id: CustomerId
    name: str
    email: str = ""


@dataclass(frozen=True)
class InstallationSettings:
    """The part of an installation its customer adjusts."""

    backup_reserve_pct: float = 20.0
    stormwatch_enabled: bool = True
    priority: Priority = Priority.STORMWATCH_FIRST


@dataclass(frozen=True)
class Installation:
    """A site with a battery (and usually solar). `None` means not known yet: installations that
    a device registration created before the site was surveyed have no location or ratings."""

    installation_id: InstallationId
    customer_id: CustomerId | None = None
    location: GeoPoint | None = None
    address: str = ""
    time_zone: str = "UTC"
    utility: str = ""
    battery_nominal_energy_wh: float | None = None
    max_charge_power_w: float | None = None
    max_discharge_power_w: float | None = None
    settings: InstallationSettings = InstallationSettings()


@dataclass(frozen=True)
class Device:
    device_id: DeviceId
    serial: str
    kind: DeviceKind
    firmware: str
    installation_id: InstallationId
    revoked: bool = False
    created_unix_ms: int = 0


@dataclass(frozen=True)
class Group:
    path: GroupPath
    display_name: str = ""
    program: GroupPath | None = None   # set for a program and the state groups under it


@dataclass(frozen=True)
class EnrollmentChange:
    """One audit-trail entry: who moved an installation from one state to another, and when."""

    installation_id: InstallationId
    program: GroupPath
    from_state: EnrollmentState
    to_state: EnrollmentState
    actor: str
    at_unix_ms: int
    reason: str = ""


@dataclass(frozen=True)
class InstallationDistance:
    installation: Installation
    distance_m: float


@dataclass(frozen=True)
class Page(Generic[T]):
    """At most `page_size` ids or records, and where the next page starts ("" when done)."""

    items: tuple[T, ...]
    next_page_token: str
