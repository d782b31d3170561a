"""The twin domain as plain values (standard library only): ids, enums, installation facts,
samples, alerts and the events a twin records.

Units are in the names: power in W (sign conventions of a Powerwall gateway: site > 0 imports,
battery > 0 discharges, solar > 0 produces, load > 0 consumes, so load ≈ site + battery + solar),
energy in Wh, state of charge in percent, times in Unix milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, NewType

from services.control.model import OperationMode

InstallationId = NewType("InstallationId", str)
DeviceId = NewType("DeviceId", str)
AlertId = NewType("AlertId", str)


class GridStatus(IntEnum):
    """As the device protocol numbers them."""

    UNSPECIFIED = 0
    CONNECTED = 1
    ISLANDED = 2
    TRANSITIONING = 3


class Severity(IntEnum):
    INFO = 1
    WARNING = 2
    CRITICAL = 3


class AlertState(StrEnum):
    """raised → ongoing → cleared. `raised` until the alert is seen again after being stored."""

    RAISED = "raised"
    ONGOING = "ongoing"
    CLEARED = "cleared"


class RuleId(StrEnum):
    SOLAR_NEGATIVE = "solar_negative"
    BATTERY_ENERGY_BALANCE = "battery_energy_balance"
    EXPORT_WITHOUT_BATTERY = "export_without_battery"
    TELEMETRY_STALE = "telemetry_stale"
    SOC_OUT_OF_RANGE = "soc_out_of_range"
    SOC_INCONSISTENT = "soc_inconsistent"
    POWER_LIMIT = "power_limit"
    STUCK_SENSOR = "stuck_sensor"
    POWER_BALANCE = "power_balance"
    IMPLAUSIBLE_VALUE = "implausible_value"


@dataclass(frozen=True)
class InstallationFacts:
    """What the assets service knows about the site. `None`: not known (rules needing it rest)."""

    battery_nominal_energy_wh: float | None = None
    max_charge_power_w: float | None = None
    max_discharge_power_w: float | None = None
    backup_reserve_pct: float = 20.0
    time_zone: str = "UTC"
    stormwatch_enabled: bool = True
    priority: str = "stormwatch_first"   # or "vpp_first": who wins when both want the battery


UNKNOWN_FACTS = InstallationFacts()


# The measured signals of a sample, as the device protocol names them.
SIGNALS: tuple[str, ...] = ("site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct")


class Sample:
    """One reading of an installation. A signal the device did not report is None ("not
    reported", never 0): rules that need it do not run for the sample. Mutable slots on purpose:
    one is allocated per sample in the hot loop, and a frozen dataclass costs several times more
    to build."""

    __slots__ = ("device_id", "ts_ms", "site_power_w", "battery_power_w", "solar_power_w", "load_power_w",
                 "state_of_charge_pct", "grid_status")

    def __init__(self, device_id: str, ts_ms: int, site_power_w: float | None, battery_power_w: float | None,
                 solar_power_w: float | None, load_power_w: float | None, state_of_charge_pct: float | None,
                 grid_status: int = GridStatus.CONNECTED) -> None:
        self.device_id = device_id
        self.ts_ms = ts_ms
        self.site_power_w = site_power_w
        self.battery_power_w = battery_power_w
        self.solar_power_w = solar_power_w
        self.load_power_w = load_power_w
        self.state_of_charge_pct = state_of_charge_pct
        self.grid_status = grid_status

    def __repr__(self) -> str:
        return (f"Sample({self.device_id!r}, {self.ts_ms}, site={self.site_power_w}, battery={self.battery_power_w}, "
                f"solar={self.solar_power_w}, load={self.load_power_w}, soc={self.state_of_charge_pct})")


@dataclass(frozen=True)
class Violation:
    """What a rule found wrong with one sample: the measured value against its limit."""

    value: float
    limit: float
    severity: Severity | None = None   # None: the rule's configured severity
    note: str = ""


@dataclass
class Alert:
    """One persistent condition of one installation under one rule. Its id is derived from
    the installation, the rule and the timestamp of the first violating sample, so replaying
    the same telemetry after a crash yields the same alert, never a second one."""

    alert_id: AlertId
    installation_id: InstallationId
    rule: RuleId
    severity: Severity
    state: AlertState
    first_seen_ms: int
    last_seen_ms: int
    cleared_ms: int | None = None
    samples: int = 1
    details: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def make_id(installation_id: str, rule: RuleId, first_seen_ms: int) -> AlertId:
        return AlertId(f"{installation_id}/{rule.value}/{first_seen_ms}")


class AlertEventKind(StrEnum):
    RAISED = "raised"
    UPDATED = "updated"   # still ongoing: last seen, severity or worst value changed
    CLEARED = "cleared"


@dataclass(frozen=True)
class AlertEvent:
    kind: AlertEventKind
    alert: Alert   # a copy as of the event


# ------------------------------------------------------------------ desired state and programs


@dataclass(frozen=True)
class DeviceStateReported:
    """A device's StateReport, as far as its twin keeps it: the mode it runs in and the plan it
    says is active (the twin's desired state is in `commands.DesiredPlan`)."""

    device_id: str
    ts_ms: int
    mode: OperationMode | None        # None: the device did not say
    active_plan_id: str = ""


@dataclass(frozen=True)
class CustomerNotice:
    """A message for the customer's app (StormWatch activated/updated/ended, …); the id is a
    function of what happened, so a replay notifies once."""

    notice_id: str
    installation_id: str
    kind: str
    alert_id: str
    title: str
    body: str
    at_ms: int
