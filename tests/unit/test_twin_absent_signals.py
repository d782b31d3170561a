"""Absent signals in the pure twin: an unset field is "not reported", never 0.

The three-signal device is the Powerwall monitor's: the real gateway response in
../shared/data/powerwall reports site, battery and solar power (load and state of charge left
out here, as that monitor read them). Rules that need a missing signal do not run; the ones that
can run on three signals raise one alert per condition and clear it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from actors.runtime.batch import split_by_shard
from actors.twin.config import RulesConfig
from actors.twin.model import (
    AlertEvent,
    AlertEventKind,
    GridStatus,
    InstallationFacts,
    RuleId,
    Sample,
)
from actors.twin.rules import (
    NOT_RUN,
    BatteryEnergyBalance,
    ExportWithoutBattery,
    PowerBalance,
    PowerLimit,
    Rule,
    SocInconsistent,
    SocOutOfRange,
    SolarNegative,
)
from actors.twin.twin import TwinState
from actors.twin.view import ReportedValue
from gridtwin.api.device.v1.device_pb2 import Sample as PbSample
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from tests.data import POWERWALL

NOW = 1_800_000_000_000
START = NOW - 86_400_000
PW = InstallationFacts(battery_nominal_energy_wh=13_500, max_charge_power_w=5_000, max_discharge_power_w=5_000)
AGGREGATES = json.loads((POWERWALL / "pypowerwall__proxy_web_bogus_api.meters.aggregates.json").read_text())
SITE_W = AGGREGATES["site"]["instant_power"]         # 27 W
BATTERY_W = AGGREGATES["battery"]["instant_power"]   # -990 W (charging)
SOLAR_W = AGGREGATES["solar"]["instant_power"]       # 1840 W


def twin(facts: InstallationFacts = PW, **overrides: dict[str, object]) -> TwinState:
    return TwinState("pw-site", facts, RulesConfig.defaults().with_overrides(overrides))


def three(ts_s: float, site: float | None = SITE_W, battery: float | None = BATTERY_W,
          solar: float | None = SOLAR_W, device: str = "pw-gateway") -> Sample:
    """A reading of the three-signal monitor; a tiny jitter, as real meters have."""
    jitter = (int(ts_s) % 7) * 0.25
    return Sample(device, int(START + ts_s * 1_000), None if site is None else site + jitter,
                  None if battery is None else battery - jitter, None if solar is None else solar + jitter,
                  None, None, GridStatus.CONNECTED)


def run(t: TwinState, samples: list[Sample]) -> list[AlertEvent]:
    out: list[AlertEvent] = []
    for s in samples:
        t.apply(s, NOW, out)
    return out


def of(events: list[AlertEvent], rule: RuleId) -> list[AlertEventKind]:
    return [e.kind for e in events if e.alert.rule == rule]


def test_a_real_three_signal_powerwall_stream_raises_no_power_balance() -> None:
    t = twin()
    events = run(t, [three(i) for i in range(600)])
    assert events == []                                               # no power_balance, nothing else
    assert t.reported.applied == 600 and t.reported.rejected == 0
    # Read as zero, the missing load would have been a 877 W imbalance on every sample:
    as_zero = twin()
    run(as_zero, [Sample("pw-gateway", START + i * 1_000, SITE_W, BATTERY_W, SOLAR_W, 0.0, None) for i in range(10)])
    assert [a.rule for a in as_zero.open_alerts()] == [RuleId.POWER_BALANCE]


def test_the_view_shows_unreported_signals_as_not_reported() -> None:
    t = twin()
    run(t, [three(0)])
    reported = t.view(NOW).reported
    assert reported.load_power_w is None and reported.state_of_charge_pct is None
    assert reported.site_power_w == SITE_W
    assert set(reported.last_reported) == {"site_power_w", "battery_power_w", "solar_power_w"}


@pytest.mark.parametrize(("rule", "missing"), [
    (SolarNegative(), "solar_power_w"),
    (BatteryEnergyBalance(), "battery_power_w"),
    (ExportWithoutBattery(), "site_power_w"),
    (SocOutOfRange(), "state_of_charge_pct"),
    (SocInconsistent(), "state_of_charge_pct"),
    (PowerLimit(), "battery_power_w"),
    (PowerBalance(), "load_power_w"),
    (PowerBalance(), "site_power_w"),
])
def test_a_rule_that_needs_a_missing_signal_does_not_run(rule: Rule, missing: str) -> None:
    t = twin()
    values = {"site_power_w": -5_000.0, "battery_power_w": 9_000.0, "solar_power_w": -500.0, "load_power_w": 1.0,
              "state_of_charge_pct": 150.0}   # every rule runs on these…
    full = Sample("d", START, *values.values())
    assert rule.evaluate(t, full, RulesConfig.defaults()[rule.rule], NOW) is not NOT_RUN
    values[missing] = None                                                        # …none without the signal
    assert rule.evaluate(t, Sample("d", START, *values.values()), RulesConfig.defaults()[rule.rule], NOW) is NOT_RUN


def test_negative_solar_on_three_signals_is_one_alert_that_stays_one_and_clears() -> None:
    t = twin()
    events = run(t, [three(i) for i in range(10)])
    events += run(t, [three(10 + i, solar=-60.0 - i) for i in range(400)])     # more than UPDATE_INTERVAL
    events += run(t, [three(410 + i) for i in range(5)])
    kinds = of(events, RuleId.SOLAR_NEGATIVE)
    assert kinds.count(AlertEventKind.RAISED) == 1 and kinds[-1] == AlertEventKind.CLEARED
    assert kinds.count(AlertEventKind.CLEARED) == 1
    assert len({e.alert.alert_id for e in events}) == 1


def test_battery_energy_beyond_capacity_without_state_of_charge() -> None:
    """Three signals, no SOC: the battery cannot give out more than it holds without being
    charged in between (13.5 kWh + 10 %); that is one alert, and charging clears it."""
    t = twin()
    discharge = [three(i * 10, battery=5_000.0) for i in range(3 * 360 + 1)]       # 5 kW for 3 h = 15 kWh
    events = run(t, discharge)
    kinds = of(events, RuleId.BATTERY_ENERGY_BALANCE)
    assert kinds == [AlertEventKind.RAISED]
    alert = [e.alert for e in events if e.alert.rule == RuleId.BATTERY_ENERGY_BALANCE][0]
    assert alert.details["value"] > 13_500 * 1.1 and alert.details["note"] == "discharged since its lowest point"
    # 14.85 kWh were reached at 2.97 h: the run starts there, not at the first sample.
    assert alert.first_seen_ms == pytest.approx(START + 2.97 * 3_600_000, abs=20_000)
    events = run(t, [three(10_800 + i * 10, battery=5_000.0) for i in range(1, 60)])   # still discharging
    assert AlertEventKind.RAISED not in of(events, RuleId.BATTERY_ENERGY_BALANCE)
    events = run(t, [three(11_400 + i * 10, battery=-5_000.0) for i in range(1, 200)])  # charging
    assert of(events, RuleId.BATTERY_ENERGY_BALANCE)[-1:] == [AlertEventKind.CLEARED]
    assert t.open_alerts() == []


def test_cycles_with_losses_never_look_like_too_much_energy() -> None:
    """Ten cycles: 14 kWh in, 12.5 kWh out each (losses), no SOC: nothing to flag, ever."""
    t = twin()
    samples, at = [], -3 * 86_400                 # 65 hours, ending before NOW
    for _ in range(10):
        for power, seconds in ((-5_000.0, 10_080), (5_000.0, 9_000), (0.0, 3_600)):
            for _ in range(seconds // 60):
                samples.append(three(at, battery=power))
                at += 60
    assert run(t, samples) == []


def test_export_with_no_battery_signal_is_one_alert_that_stays_one_and_clears() -> None:
    t = twin()
    exporting = [three(i, site=-2_000.0, battery=None, solar=500.0) for i in range(200)]   # site and solar only
    events = run(t, exporting)
    assert of(events, RuleId.EXPORT_WITHOUT_BATTERY) == [AlertEventKind.RAISED]
    assert t.open_alerts()[0].details["note"] == "export exceeds solar production, battery not reported"
    events = run(t, [three(200 + i, site=-2_000.0, battery=None, solar=500.0) for i in range(400)])
    assert AlertEventKind.RAISED not in of(events, RuleId.EXPORT_WITHOUT_BATTERY)
    events = run(t, [three(600 + i, site=300.0, battery=None, solar=500.0) for i in range(5)])
    assert of(events, RuleId.EXPORT_WITHOUT_BATTERY) == [AlertEventKind.CLEARED]


def test_samples_without_the_signal_neither_continue_nor_clear_an_open_alert() -> None:
    t = twin(soc_out_of_range={"clear_after": 3})
    events = run(t, [Sample("d", START, 0.0, 0.0, 0.0, 0.0, 104.0)])
    assert of(events, RuleId.SOC_OUT_OF_RANGE) == [AlertEventKind.RAISED]
    # SOC only every minute, powers every second: the alert is not cleared in between.
    assert run(t, [Sample("d", START + i * 1_000, 0.0, float(i), 0.0, float(i), None) for i in range(1, 59)]) == []
    assert t.open_alerts()[0].samples == 1
    events = run(t, [Sample("d", START + (59 + i) * 1_000, 0.0, 0.0, 0.0, 0.0, 50.0) for i in range(3)])
    assert of(events, RuleId.SOC_OUT_OF_RANGE) == [AlertEventKind.CLEARED]


def test_the_newest_value_of_each_signal_is_kept_per_signal() -> None:
    t = twin()
    run(t, [Sample("d", START, 100.0, -500.0, 1_000.0, 600.0, 55.0),
            Sample("d", START + 1_000, 110.0, -490.0, 1_010.0, None, None)])
    reported = t.view(NOW).reported
    assert reported.load_power_w is None and reported.state_of_charge_pct is None   # not in the newest
    assert reported.last_reported["state_of_charge_pct"] == ReportedValue(55.0, START)
    assert reported.last_reported["site_power_w"] == ReportedValue(110.0, START + 1_000)
    # Two devices of one installation: a meter (site, solar) and the battery, arriving late.
    t = twin()
    run(t, [Sample("meter", START + 10_000, 50.0, None, 900.0, None, None),
            Sample("battery", START + 9_000, None, -800.0, None, None, 61.0)])
    reported = t.view(NOW).reported
    assert reported.device_id == "meter" and reported.battery_power_w is None
    assert reported.last_reported["battery_power_w"] == ReportedValue(-800.0, START + 9_000)
    assert reported.last_reported["state_of_charge_pct"].value == 61.0
    run(t, [Sample("meter", START + 11_000, 55.0, 1.0, 950.0, None, None)])
    assert "battery_power_w" not in (t.reported.held or {})        # reported again by the newest sample


def test_battery_energy_is_integrated_across_a_sample_without_it() -> None:
    t = twin()
    run(t, [Sample("d", START, 0.0, 1_000.0, 0.0, None, None), Sample("d", START + 10_000, 0.0, None, 0.0, None, None),
            Sample("d", START + 20_000, 0.0, 1_000.0, 0.0, None, None)])
    assert t.battery.net_out_wh == pytest.approx(1_000.0 * 20 / 3_600)


@pytest.mark.parametrize(("values", "note"), [
    ((math.nan, None, 1.0, None, None), "site_power_w is nan"),
    ((None, None, None, None, math.inf), "state_of_charge_pct is inf"),
    ((None, -5e5, None, None, None), "battery_power_w beyond ±200000 W"),
    ((None, None, None, None, None), "no signal reported"),
])
def test_reported_values_are_still_checked(values: tuple[float | None, ...], note: str) -> None:
    t = twin()
    events = run(t, [Sample("d", START, *values)])
    assert t.reported.rejected == 1 and t.reported.applied == 0
    assert [e.alert.rule for e in events] == [RuleId.IMPLAUSIBLE_VALUE] and events[0].alert.details["note"] == note


def _partial_stream() -> list[Sample]:
    out = []
    for i in range(300):
        soc = 100.0 if i == 0 else (60.0 if i % 10 == 0 else None)
        load = None if i % 3 else 400.0
        out.append(Sample("d", START + i * 1_000, 100.0 + i % 5, 2_000.0 * math.sin(i / 40), -30.0 if 80 < i < 120
                          else 800.0, load, soc))
    return out


def test_snapshots_keep_absent_signals_and_restore_the_older_format() -> None:
    samples = _partial_stream()
    whole = twin()
    run(whole, samples)
    first = twin()
    run(first, samples[:157])
    snapshot = json.loads(json.dumps(first.snapshot()))
    assert snapshot["format"] == 3 and None in snapshot["reported"] and snapshot["held"]
    restored = TwinState.restore("pw-site", PW, first.config, snapshot)
    run(restored, samples[157:])
    assert restored.snapshot() == whole.snapshot()
    # Format 1 (before absent signals): every value a number, no "held", no lowest point.
    old = twin()
    run(old, [Sample("d", START + i * 1_000, 100.0, 500.0, 800.0, 1_400.0, 50.0) for i in range(20)])
    v1 = json.loads(json.dumps(old.snapshot()))
    v1["format"], v1["anchor"] = 1, v1["anchor"][:5]
    del v1["held"]
    back = TwinState.restore("pw-site", PW, old.config, v1)
    assert back.battery.min_out_wh == back.battery.net_out_wh == old.battery.net_out_wh
    assert back.reported.held is None
    assert back.view(NOW).reported == old.view(NOW).reported
    with pytest.raises(ValueError):
        TwinState.restore("pw-site", PW, old.config, {**v1, "format": 99})


def test_the_columnar_batch_carries_presence() -> None:
    record = TelemetryRecord(device_id="pw-gateway", installation_id="pw-site")
    record.samples.append(PbSample(timestamp_unix_ms=1, site_power_w=SITE_W, battery_power_w=BATTERY_W,
                                   solar_power_w=SOLAR_W))
    record.samples.append(PbSample(timestamp_unix_ms=2, site_power_w=0.0, battery_power_w=math.nan,
                                   solar_power_w=0.0, state_of_charge_pct=0.0))
    [batch] = split_by_shard([record], 1).values()
    assert batch.present is not None
    assert batch.column(0) == [SITE_W, 0.0]                      # an explicit 0 is reported
    assert batch.column(3) == [None, None]                        # load: never reported
    assert batch.column(4) == [None, 0.0]
    assert batch.column(1)[0] == BATTERY_W and math.isnan(batch.column(1)[1])   # a reported NaN stays (rejected)
    full = TelemetryRecord(device_id="x", installation_id="y")
    full.samples.append(PbSample(timestamp_unix_ms=1, site_power_w=1, battery_power_w=2, solar_power_w=3,
                                 load_power_w=6, state_of_charge_pct=50))
    [plain] = split_by_shard([full], 1).values()
    assert plain.present is None and plain.column(3) == [6.0]      # the common case has no mask
    assert np.isnan(batch.values[0, 3])
