"""The anomaly rules: one small strategy object per rule, `evaluate(state, sample, params, now_ms)`
→ a `Violation` or None. Pure and allocation-free on the good path.

A rule only reads: the twin has already folded the sample into its derived state (the energy
integrated since the last full/empty point, the run of unchanged readings) when rules run, and
the alert lifecycle (alerts.py) turns a run of violations into one alert. Staleness depends on
the clock, not on a sample, so it is evaluated by `TwinState.tick` (see `stale_violation`).

Why these are sound where the Powerwall fleet monitor's three were not:

1. Solar negative: inverters draw a few watts at night, so only readings below the configured
   standby tolerance count (the monitor flagged -3.31 W as a fault).
2. Energy balance: the monitor added raw power readings (W per sample) and compared the sum with
   135000 — W against Wh, and a sum that grows with the sampling rate. Here battery power is
   integrated with the trapezoidal rule into Wh, only between points where the battery was full
   (or empty), never across a gap, and compared with the nominal energy from the assets service.
3. Export while the battery reports nothing: a full battery exporting solar surplus is normal.
   Flagged only when the export exceeds what the panels produce (energy from a source that does
   not report) or when a battery below full sits idle while surplus leaves and no plan holds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from actors.twin.config import (
    EnergyBalanceParams,
    ExportWithoutBatteryParams,
    PowerBalanceParams,
    PowerLimitParams,
    SocConsistencyParams,
    SocRangeParams,
    SolarNegativeParams,
    StaleParams,
    StuckSensorParams,
)
from actors.twin.model import GridStatus, RuleId, Sample, Severity, Violation

if TYPE_CHECKING:
    from actors.twin.twin import TwinState

ANCHOR_NONE, ANCHOR_FULL, ANCHOR_EMPTY = 0, 1, 2


class Rule(Protocol):
    rule: RuleId

    def evaluate(self, state: TwinState, sample: Sample, params: Any, now_ms: int) -> Violation | None: ...


class SolarNegative:
    rule = RuleId.SOLAR_NEGATIVE

    def evaluate(self, state: TwinState, s: Sample, p: SolarNegativeParams, now_ms: int) -> Violation | None:
        if s.solar_power_w < -p.standby_tolerance_w:
            return Violation(s.solar_power_w, -p.standby_tolerance_w)
        return None


class BatteryEnergyBalance:
    rule = RuleId.BATTERY_ENERGY_BALANCE

    def evaluate(self, state: TwinState, s: Sample, p: EnergyBalanceParams, now_ms: int) -> Violation | None:
        nominal = state.facts.battery_nominal_energy_wh
        if nominal is None or state.anchor == ANCHOR_NONE:
            return None
        limit = nominal * (1.0 + p.margin_pct / 100.0)
        if state.anchor == ANCHOR_FULL:
            if state.net_out_wh > limit:
                return Violation(state.net_out_wh, limit, note="discharged since full")
        elif -state.net_out_wh > limit:
            return Violation(-state.net_out_wh, limit, note="charged since empty")
        return None


class ExportWithoutBattery:
    rule = RuleId.EXPORT_WITHOUT_BATTERY

    def evaluate(self, state: TwinState, s: Sample, p: ExportWithoutBatteryParams, now_ms: int) -> Violation | None:
        export_w = -s.site_power_w
        if export_w <= p.min_export_w or abs(s.battery_power_w) > p.idle_w or s.grid_status == GridStatus.ISLANDED:
            return None
        produced_w = max(s.solar_power_w, 0.0)
        if export_w > produced_w + p.unexplained_w:
            return Violation(export_w, produced_w + p.unexplained_w, note="export exceeds solar production")
        if s.state_of_charge_pct < p.full_soc_pct and not state.plan_active(now_ms):
            return Violation(export_w, p.min_export_w, Severity.INFO, note="battery idle below full while exporting")
        return None


class SocOutOfRange:
    rule = RuleId.SOC_OUT_OF_RANGE

    def evaluate(self, state: TwinState, s: Sample, p: SocRangeParams, now_ms: int) -> Violation | None:
        soc = s.state_of_charge_pct
        if soc < p.min_pct:
            return Violation(soc, p.min_pct)
        if soc > p.max_pct:
            return Violation(soc, p.max_pct)
        return None


class SocInconsistent:
    rule = RuleId.SOC_INCONSISTENT

    def evaluate(self, state: TwinState, s: Sample, p: SocConsistencyParams, now_ms: int) -> Violation | None:
        nominal = state.facts.battery_nominal_energy_wh
        if nominal is None or state.anchor == ANCHOR_NONE:
            return None
        expected = state.anchor_soc_pct - state.net_out_wh / nominal * 100.0
        allowed = p.tolerance_pct + p.loss_fraction * state.throughput_wh / nominal * 100.0
        deviation = s.state_of_charge_pct - expected
        if abs(deviation) > allowed:
            return Violation(deviation, allowed, note=f"expected {expected:.1f} %")
        return None


class PowerLimit:
    rule = RuleId.POWER_LIMIT

    def evaluate(self, state: TwinState, s: Sample, p: PowerLimitParams, now_ms: int) -> Violation | None:
        battery = s.battery_power_w
        factor = 1.0 + p.margin_pct / 100.0
        if battery > 0:
            rated = state.facts.max_discharge_power_w
            if rated is not None and battery > rated * factor:
                return Violation(battery, rated * factor, note="discharge")
        elif battery < 0:
            rated = state.facts.max_charge_power_w
            if rated is not None and -battery > rated * factor:
                return Violation(-battery, rated * factor, note="charge")
        return None


class StuckSensor:
    rule = RuleId.STUCK_SENSOR

    def evaluate(self, state: TwinState, s: Sample, p: StuckSensorParams, now_ms: int) -> Violation | None:
        if state.unchanged_count < p.min_samples:
            return None
        stuck_s = (s.ts_ms - state.unchanged_since_ms) / 1_000.0
        if stuck_s >= p.stuck_after_s:
            return Violation(stuck_s, p.stuck_after_s)
        return None


class PowerBalance:
    rule = RuleId.POWER_BALANCE

    def evaluate(self, state: TwinState, s: Sample, p: PowerBalanceParams, now_ms: int) -> Violation | None:
        site, battery, solar, load = s.site_power_w, s.battery_power_w, s.solar_power_w, s.load_power_w
        residual = site + battery + solar - load
        allowed = p.tolerance_w + p.tolerance_fraction * max(abs(site), abs(battery), abs(solar), abs(load))
        if abs(residual) > allowed:
            return Violation(residual, allowed)
        return None


# Evaluated per sample, in this order, after the implausible-value check (twin.py).
SAMPLE_RULES: tuple[Rule, ...] = (
    SolarNegative(), BatteryEnergyBalance(), ExportWithoutBattery(), SocOutOfRange(), SocInconsistent(),
    PowerLimit(), StuckSensor(), PowerBalance(),
)


def stale_violation(last_ts_ms: int, p: StaleParams, now_ms: int) -> Violation | None:
    """Telemetry stale after `stale_after_s` without a newer sample; offline (critical) later."""
    silent_s = (now_ms - last_ts_ms) / 1_000.0
    if silent_s > p.offline_after_s:
        return Violation(silent_s, p.offline_after_s, Severity.CRITICAL, note="offline")
    if silent_s > p.stale_after_s:
        return Violation(silent_s, p.stale_after_s, note="stale")
    return None
