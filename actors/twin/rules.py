"""The anomaly rules: one small strategy object per rule, `evaluate(state, sample, params, now_ms)`
→ a `Violation` or None. Pure and allocation-free on the good path.

A rule only reads: the twin has already folded the sample into its derived state (the energy
integrated since the last full/empty point, the run of unchanged readings) when rules run, and
the alert lifecycle (alerts.py) turns a run of violations into one alert.

A signal the sample did not report is None, never 0, and a rule that needs it does not run for
that sample: it returns NOT_RUN, which is neither a violation nor a good sample (an open alert
neither goes on nor counts towards clearing; a device that reports a signal only now and then
keeps one alert, not one per report). Solar
negative needs solar power, energy balance and power limit battery power, SOC range and
consistency the state of charge, power balance all four powers, export-without-battery site
power (and solar power to compare with; an unreported battery is a battery that reports
nothing). Staleness depends on
the clock, not on a sample, so it is evaluated by `TwinState.tick` (see `stale_violation`).

Why these are sound where the Powerwall fleet monitor's three were not:

1. Solar negative: inverters draw a few watts at night, so only readings below the configured
   standby tolerance count (the monitor flagged -3.31 W as a fault).
2. Energy balance: the monitor added raw power readings (W per sample) and compared the sum with
   135000 — W against Wh, and a sum that grows with the sampling rate. Here battery power is
   integrated with the trapezoidal rule into Wh, never across a gap, and compared with the
   nominal energy from the assets service: since the last point where the battery was full (or
   empty), and — for devices that report no state of charge, like that monitor's three signals —
   from the lowest point of the integral since the last gap (`min_out_wh`): the battery cannot
   deliver more than it holds without being charged in between. Charging and discharging losses
   only make that net energy out smaller than what left the cells, so the check stays sound
   over any number of cycles (the charging side has no such bound without a full/empty point).
3. Export while the battery reports nothing: a full battery exporting solar surplus is normal.
   Flagged only when the export exceeds what the panels produce (energy from a source that does
   not report) or when a battery below full sits idle while surplus leaves and no plan holds it.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, Final, Protocol

from actors.twin.battery import ANCHOR_EMPTY, ANCHOR_FULL, ANCHOR_NONE
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



class Skip(Enum):
    NOT_RUN = "not_run"


# The sample lacks a signal the rule needs: the rule did not run (not a violation, not a good sample).
NOT_RUN: Final = Skip.NOT_RUN
Outcome = Violation | Skip | None


class Rule(Protocol):
    rule: RuleId

    def evaluate(self, state: TwinState, sample: Sample, params: Any, now_ms: int) -> Outcome: ...


class SolarNegative:
    rule = RuleId.SOLAR_NEGATIVE

    def evaluate(self, state: TwinState, s: Sample, p: SolarNegativeParams, now_ms: int) -> Outcome:
        solar = s.solar_power_w
        if solar is None:
            return NOT_RUN
        if solar < -p.standby_tolerance_w:
            return Violation(solar, -p.standby_tolerance_w)
        return None


class BatteryEnergyBalance:
    rule = RuleId.BATTERY_ENERGY_BALANCE

    def evaluate(self, state: TwinState, s: Sample, p: EnergyBalanceParams, now_ms: int) -> Outcome:
        nominal = state.facts.battery_nominal_energy_wh
        if nominal is None:
            return None
        if s.battery_power_w is None:
            return NOT_RUN
        limit = nominal * (1.0 + p.margin_pct / 100.0)
        if state.battery.anchor == ANCHOR_FULL:
            if state.battery.net_out_wh > limit:
                return Violation(state.battery.net_out_wh, limit, note="discharged since full")
        elif state.battery.anchor == ANCHOR_EMPTY and -state.battery.net_out_wh > limit:
            return Violation(-state.battery.net_out_wh, limit, note="charged since empty")
        drawdown = state.battery.net_out_wh - state.battery.min_out_wh
        if drawdown > limit:
            return Violation(drawdown, limit, note="discharged since its lowest point")
        return None


class ExportWithoutBattery:
    rule = RuleId.EXPORT_WITHOUT_BATTERY

    def evaluate(self, state: TwinState, s: Sample, p: ExportWithoutBatteryParams, now_ms: int) -> Outcome:
        site, battery = s.site_power_w, s.battery_power_w
        if site is None:
            return NOT_RUN
        export_w = -site
        if (export_w <= p.min_export_w or (battery is not None and abs(battery) > p.idle_w)
                or s.grid_status == GridStatus.ISLANDED):
            return None
        solar, soc = s.solar_power_w, s.state_of_charge_pct
        if solar is None and soc is None:
            return NOT_RUN   # nothing to hold the export against
        if solar is not None:
            produced_w = max(solar, 0.0)
            if export_w > produced_w + p.unexplained_w:
                note = "export exceeds solar production" + (", battery not reported" if battery is None else "")
                return Violation(export_w, produced_w + p.unexplained_w, note=note)
        if soc is not None and soc < p.full_soc_pct and not state.plan_active(now_ms):
            return Violation(export_w, p.min_export_w, Severity.INFO, note="battery idle below full while exporting")
        return None


class SocOutOfRange:
    rule = RuleId.SOC_OUT_OF_RANGE

    def evaluate(self, state: TwinState, s: Sample, p: SocRangeParams, now_ms: int) -> Outcome:
        soc = s.state_of_charge_pct
        if soc is None:
            return NOT_RUN
        if soc < p.min_pct:
            return Violation(soc, p.min_pct)
        if soc > p.max_pct:
            return Violation(soc, p.max_pct)
        return None


class SocInconsistent:
    rule = RuleId.SOC_INCONSISTENT

    def evaluate(self, state: TwinState, s: Sample, p: SocConsistencyParams, now_ms: int) -> Outcome:
        nominal, soc = state.facts.battery_nominal_energy_wh, s.state_of_charge_pct
        if soc is None:
            return NOT_RUN
        if nominal is None or state.battery.anchor == ANCHOR_NONE:
            return None
        expected = state.battery.anchor_soc_pct - state.battery.net_out_wh / nominal * 100.0
        allowed = p.tolerance_pct + p.loss_fraction * state.battery.throughput_wh / nominal * 100.0
        deviation = soc - expected
        if abs(deviation) > allowed:
            return Violation(deviation, allowed, note=f"expected {expected:.1f} %")
        return None


class PowerLimit:
    rule = RuleId.POWER_LIMIT

    def evaluate(self, state: TwinState, s: Sample, p: PowerLimitParams, now_ms: int) -> Outcome:
        battery = s.battery_power_w
        if battery is None:
            return NOT_RUN
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

    def evaluate(self, state: TwinState, s: Sample, p: StuckSensorParams, now_ms: int) -> Outcome:
        if state.reported.unchanged_count < p.min_samples:
            return None
        stuck_s = (s.ts_ms - state.reported.unchanged_since_ms) / 1_000.0
        if stuck_s >= p.stuck_after_s:
            return Violation(stuck_s, p.stuck_after_s)
        return None


class PowerBalance:
    rule = RuleId.POWER_BALANCE

    def evaluate(self, state: TwinState, s: Sample, p: PowerBalanceParams, now_ms: int) -> Outcome:
        site, battery, solar, load = s.site_power_w, s.battery_power_w, s.solar_power_w, s.load_power_w
        if site is None or battery is None or solar is None or load is None:
            return NOT_RUN   # the balance needs every flow: a device without a load meter has none to check
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
