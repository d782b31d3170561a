"""The edge agent's values (standard library only): readings, snapshots, samples, commands, acks.

Sign conventions are the device protocol's (as on a Powerwall gateway): site > 0 imports from the
grid, battery > 0 discharges, solar > 0 produces, load > 0 consumes. Every adapter maps its
vendor's conventions onto these explicitly; an unreported signal is absent (None), never 0.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

SITE, BATTERY, SOLAR, LOAD, SOC = (
    "site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct")
SIGNALS: tuple[str, ...] = (SITE, BATTERY, SOLAR, LOAD, SOC)


class Unit(enum.StrEnum):
    """The units a reading is stored in (adapters convert vendor units to these, units.py)."""

    WATT = "W"
    PERCENT = "%"
    HERTZ = "Hz"
    VOLT = "V"
    AMPERE = "A"
    CELSIUS = "°C"
    WATT_HOUR = "Wh"


class GridStatus(enum.StrEnum):
    CONNECTED = "connected"
    ISLANDED = "islanded"            # grid down, home on battery/solar
    TRANSITIONING = "transitioning"


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value: `signal` is one of SIGNALS or an extra's name that carries its unit
    (`grid_frequency_hz`); `at_ms` is when the agent read it (its clock, Unix ms)."""

    signal: str
    value: float
    unit: Unit
    at_ms: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one read of a source gave."""

    source: str
    at_ms: int
    readings: tuple[Reading, ...]
    grid_status: GridStatus | None = None

    def value(self, signal: str) -> float | None:
        return next((r.value for r in self.readings if r.signal == signal), None)


@dataclass(frozen=True, slots=True)
class SampleValues:
    """One sample of the installation: the five signals (None = not reported), grid status and
    extras, at `timestamp_ms`."""

    timestamp_ms: int
    site_power_w: float | None = None
    battery_power_w: float | None = None
    solar_power_w: float | None = None
    load_power_w: float | None = None
    state_of_charge_pct: float | None = None
    grid_status: GridStatus | None = None
    extra: tuple[tuple[str, float], ...] = ()

    def reported(self) -> dict[str, float]:
        return {s: v for s in SIGNALS if (v := getattr(self, s)) is not None}


# ------------------------------------------------------------------ commands


class OperationMode(enum.StrEnum):
    SELF_CONSUMPTION = "self_consumption"
    BACKUP = "backup"
    AUTONOMOUS = "autonomous"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"     # taken: a plan will run, or an immediate command has run
    COMPLETED = "completed"
    REJECTED = "rejected"     # invalid, or this installation's devices cannot do it
    EXPIRED = "expired"


@dataclass(frozen=True)
class ChargeTo:
    target_pct: float
    max_power_w: float          # 0: the battery's limit


@dataclass(frozen=True)
class Discharge:
    power_w: float
    floor_pct: float            # never below the backup reserve either


@dataclass(frozen=True)
class Hold:
    pass


Action = ChargeTo | Discharge | Hold


@dataclass(frozen=True)
class PlanStep:
    start_ms: int
    end_ms: int
    action: Action | None       # None: a step the agent does not understand


@dataclass(frozen=True)
class SetMode:
    mode: OperationMode | None  # None: unspecified


@dataclass(frozen=True)
class SetBackupReserve:
    reserve_pct: float


@dataclass(frozen=True)
class RunPlan:
    """A control plan; no steps ends the active one."""

    plan_id: str
    steps: tuple[PlanStep, ...]


@dataclass(frozen=True)
class Unsupported:
    """A command kind the agent does not carry out (configuration, firmware, unknown)."""

    kind: str


CommandBody = SetMode | SetBackupReserve | RunPlan | Unsupported


@dataclass(frozen=True)
class Command:
    command_id: str
    expires_ms: int             # 0: never
    issued_ms: int
    body: CommandBody


@dataclass(frozen=True)
class CommandAck:
    command_id: str
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class DeviceState:
    """What the controllable device says about itself (for the StateReport); None = unknown."""

    mode: OperationMode | None = None
    backup_reserve_pct: float | None = None
    battery_nominal_energy_wh: float | None = None
    battery_max_power_w: float | None = None
    firmware: str = ""
    config: dict[str, str] = field(default_factory=dict)
