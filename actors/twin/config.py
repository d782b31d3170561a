"""Thresholds of the anomaly rules: fleet defaults, overridden per rule and per installation.

Every rule has the lifecycle knobs (`enabled`, `severity`, `raise_after` consecutive violating
samples before an alert is raised, `clear_after` consecutive good samples before it clears) and
its own thresholds, with the unit in each name. Overrides are plain mappings
(``{"solar_negative": {"standby_tolerance_w": 5}}``) so they can live in settings (JSON) and in
the `twin_rule_overrides` table; unknown rules or fields are refused with ValueError.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors.twin.model import RuleId, Severity
from actors.twin.stormwatch import StormWatchConfig


@dataclass(frozen=True)
class RuleParams:
    enabled: bool = True
    severity: Severity = Severity.WARNING
    raise_after: int = 1
    clear_after: int = 3


@dataclass(frozen=True)
class SolarNegativeParams(RuleParams):
    # Inverters draw a few watts from the AC side at night; readings down to -tolerance are standby.
    standby_tolerance_w: float = 10.0
    raise_after: int = 3


@dataclass(frozen=True)
class EnergyBalanceParams(RuleParams):
    """Net energy out of the battery since it was last full (or into it since it was last empty)
    cannot exceed its nominal energy: conversion losses only make it smaller (out) or at most
    1/sqrt(round-trip efficiency) larger (in); `margin_pct` covers that and metering error."""

    margin_pct: float = 10.0
    full_soc_pct: float = 99.0
    empty_soc_pct: float = 1.0
    max_gap_s: float = 300.0   # energy is never integrated across a longer gap (as the rollups)
    severity: Severity = Severity.CRITICAL


@dataclass(frozen=True)
class ExportWithoutBatteryParams(RuleParams):
    """Export beyond `min_export_w` while the battery reports nothing (|power| ≤ `idle_w`): flagged
    when the export exceeds solar production by `unexplained_w` (the energy comes from somewhere
    that does not report), or when the battery is below `full_soc_pct` and no plan holds it (in
    self-consumption it should be absorbing that surplus)."""

    min_export_w: float = 200.0
    idle_w: float = 5.0
    unexplained_w: float = 100.0
    full_soc_pct: float = 98.0
    raise_after: int = 30


@dataclass(frozen=True)
class StaleParams(RuleParams):
    stale_after_s: float = 120.0
    offline_after_s: float = 600.0   # the same alert becomes critical
    clear_after: int = 1


@dataclass(frozen=True)
class SocRangeParams(RuleParams):
    min_pct: float = 0.0
    max_pct: float = 100.0
    severity: Severity = Severity.CRITICAL


@dataclass(frozen=True)
class SocConsistencyParams(RuleParams):
    """Reported SOC against the SOC integrated from battery power since the last full/empty point.
    Allowed deviation: `tolerance_pct` points plus `loss_fraction` of the energy moved through
    the battery since then (conversion losses are not metered on the AC side)."""

    tolerance_pct: float = 10.0
    loss_fraction: float = 0.08
    raise_after: int = 10


@dataclass(frozen=True)
class PowerLimitParams(RuleParams):
    margin_pct: float = 10.0   # above the rated charge/discharge power
    raise_after: int = 3


@dataclass(frozen=True)
class StuckSensorParams(RuleParams):
    """Every channel repeating its exact previous value (real meters always jitter, if only in the
    last digit) for `stuck_after_s` and at least `min_samples` samples."""

    stuck_after_s: float = 300.0
    min_samples: int = 10
    clear_after: int = 1


@dataclass(frozen=True)
class PowerBalanceParams(RuleParams):
    """|site + battery + solar − load| above `tolerance_w` + `tolerance_fraction` × the largest flow."""

    tolerance_w: float = 100.0
    tolerance_fraction: float = 0.05
    raise_after: int = 5


@dataclass(frozen=True)
class ImplausibleValueParams(RuleParams):
    """Values no home installation produces: not finite, or a power beyond `max_abs_power_w`, or
    a timestamp more than `max_clock_skew_s` ahead of the twin's clock. Such a sample is counted
    and otherwise ignored (it must not poison integrals)."""

    max_abs_power_w: float = 200_000.0
    max_clock_skew_s: float = 300.0
    severity: Severity = Severity.CRITICAL
    clear_after: int = 10


PARAMS_TYPES: dict[RuleId, type[RuleParams]] = {
    RuleId.SOLAR_NEGATIVE: SolarNegativeParams,
    RuleId.BATTERY_ENERGY_BALANCE: EnergyBalanceParams,
    RuleId.EXPORT_WITHOUT_BATTERY: ExportWithoutBatteryParams,
    RuleId.TELEMETRY_STALE: StaleParams,
    RuleId.SOC_OUT_OF_RANGE: SocRangeParams,
    RuleId.SOC_INCONSISTENT: SocConsistencyParams,
    RuleId.POWER_LIMIT: PowerLimitParams,
    RuleId.STUCK_SENSOR: StuckSensorParams,
    RuleId.POWER_BALANCE: PowerBalanceParams,
    RuleId.IMPLAUSIBLE_VALUE: ImplausibleValueParams,
}

Overrides = Mapping[str, Mapping[str, Any]]
_STORMWATCH = StormWatchConfig()


@dataclass(frozen=True)
class RulesConfig:
    """The parameters of every rule for one installation (or the fleet's defaults), and what
    StormWatch acts on (fleet-wide: GRIDTWIN_TWINS__STORMWATCH_EVENT_TYPES; overrides keep it)."""

    params: Mapping[RuleId, RuleParams]
    stormwatch: StormWatchConfig = _STORMWATCH

    @staticmethod
    def defaults(stormwatch: StormWatchConfig = _STORMWATCH) -> RulesConfig:
        return RulesConfig({rule: cls() for rule, cls in PARAMS_TYPES.items()}, stormwatch)

    def __getitem__(self, rule: RuleId) -> Any:
        return self.params[rule]

    def with_overrides(self, overrides: Overrides) -> RulesConfig:
        """A copy with `overrides` applied; ValueError on an unknown rule, field or bad value."""
        if not overrides:
            return self
        params = dict(self.params)
        for rule_name, fields in overrides.items():
            try:
                rule = RuleId(rule_name)
            except ValueError:
                raise ValueError(f"unknown rule {rule_name!r}") from None
            params[rule] = _replace(params[rule], dict(fields), rule_name)
        return RulesConfig(params, self.stormwatch)


def _replace(current: RuleParams, fields: dict[str, Any], rule_name: str) -> RuleParams:
    known = {f.name: f for f in dataclasses.fields(current)}
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in known:
            raise ValueError(f"rule {rule_name!r} has no parameter {name!r}")
        default = getattr(current, name)
        if name == "severity":
            value = Severity[value.upper()] if isinstance(value, str) else Severity(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{rule_name}.{name} must be true or false")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{rule_name}.{name} must be a positive integer")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{rule_name}.{name} must be a finite number")
            value = float(value)
        clean[name] = value
    return dataclasses.replace(current, **clean)
