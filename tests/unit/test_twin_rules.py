"""The pure twin: anomaly rules, alert lifecycle, idempotency, snapshots — including the values the
Powerwall fleet monitor flagged and real Powerwall gateway responses."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from actors.twin.commands import DesiredPlan, HoldReserve, Source
from actors.twin.config import RulesConfig, SolarNegativeParams
from actors.twin.export import to_csv, to_json
from actors.twin.model import (
    AlertEvent,
    AlertEventKind,
    AlertState,
    GridStatus,
    InstallationFacts,
    RuleId,
    Sample,
    Severity,
)
from actors.twin.rules import SolarNegative
from actors.twin.twin import TwinState
from tests.data import POWERWALL

NOW = 1_800_000_000_000
PW = InstallationFacts(battery_nominal_energy_wh=13_500, max_charge_power_w=5_000, max_discharge_power_w=5_000)


def twin(facts: InstallationFacts = PW, **overrides: dict[str, object]) -> TwinState:
    return TwinState("site-1", facts, RulesConfig.defaults().with_overrides(overrides))


def sample(ts_s: float, site: float = 0.0, battery: float = 0.0, solar: float = 0.0, load: float | None = None,
           soc: float = 50.0, grid: int = GridStatus.CONNECTED, device: str = "dev-1") -> Sample:
    load = site + battery + solar if load is None else load
    return Sample(device, int(NOW - 86_400_000 + ts_s * 1_000), site, battery, solar, load, soc, grid)


def run(t: TwinState, samples: list[Sample], now_ms: int = NOW) -> list[AlertEvent]:
    out: list[AlertEvent] = []
    for s in samples:
        t.apply(s, now_ms, out)
    return out


def kinds(events: list[AlertEvent], rule: RuleId | None = None) -> list[str]:
    return [e.kind.value for e in events if rule is None or e.alert.rule == rule]


# ------------------------------------------------------------------ rule 1: negative solar


@pytest.mark.parametrize(("tolerance_w", "flagged"), [
    (5.0, {-5.553}),            # the monitor's night readings: -5.553 below a 5 W tolerance…
    (3.0, {-5.553, -3.31}),     # …both beyond 3 W…
    (10.0, set()),              # …neither beyond the default 10 W of inverter standby draw
])
def test_negative_solar_against_the_standby_tolerance(tolerance_w: float, flagged: set[float]) -> None:
    rule, t = SolarNegative(), twin()
    params = SolarNegativeParams(standby_tolerance_w=tolerance_w)
    found = {v for v in (-5.553, -3.31) if rule.evaluate(t, sample(0, solar=v), params, NOW) is not None}
    assert found == flagged


def test_the_monitors_night_values_as_a_stream_raise_one_alert_when_beyond_tolerance() -> None:
    night = [sample(i, site=300, solar=-5.553 if i % 2 else -3.31, load=300) for i in range(20)]
    assert kinds(run(twin(solar_negative={"standby_tolerance_w": 10.0}), night)) == []
    strict = run(twin(solar_negative={"standby_tolerance_w": 3.0}), night)
    assert kinds(strict) == ["raised"]                     # a persistent condition is one alert
    assert strict[0].alert.details["worst"] == pytest.approx(-5.553)


def test_a_real_neurio_solar_meter_reading_at_night() -> None:
    vitals = json.loads((POWERWALL / "pypowerwall__docs_vitals-example.json").read_text())
    neurio = next(v for k, v in vitals.items() if k.startswith("NEURIO"))
    solar_w = neurio["NEURIO_CT0_InstRealPower"]           # -15.92 W with the PV strings disabled
    assert neurio["NEURIO_CT0_Location"] == "solarRGM" and solar_w < 0
    params = SolarNegativeParams(standby_tolerance_w=10.0)
    assert SolarNegative().evaluate(twin(), sample(0, solar=solar_w), params, NOW) is not None
    params = SolarNegativeParams(standby_tolerance_w=20.0)
    assert SolarNegative().evaluate(twin(), sample(0, solar=solar_w), params, NOW) is None


# ------------------------------------------------------------------ rule 2: energy balance


def test_energy_balance_integrates_watt_hours_not_raw_readings() -> None:
    t = twin()
    # Full, then discharging 4 kW at 1 Hz. The monitor's sum of raw readings passes 135000 after
    # 34 samples; the energy that has left the battery then is 38 Wh.
    samples = [sample(0, battery=0.0, soc=100.0)]
    samples += [sample(i, battery=4_000.0, soc=100 - i / 40) for i in range(1, 3_601)]
    events = run(t, samples)
    assert sum(s.battery_power_w for s in samples[:35]) > 135_000
    assert t.battery.net_out_wh == pytest.approx(4_000 - 4_000 / 2 / 3_600, rel=1e-9)   # trapezoid from 0 W
    assert kinds(events, RuleId.BATTERY_ENERGY_BALANCE) == []           # 4 kWh from a 13.5 kWh battery
    more = run(t, [sample(3_600 + i, battery=4_000.0, soc=10.0) for i in range(1, 10_801)])
    raised = [e for e in more if e.alert.rule == RuleId.BATTERY_ENERGY_BALANCE]
    assert [e.kind for e in raised][:1] == [AlertEventKind.RAISED]
    assert raised[0].alert.details["value"] > 13_500 * 1.1
    assert raised[0].alert.severity == Severity.CRITICAL


def test_trapezoidal_rule_is_exact_for_a_ramp_and_never_crosses_a_gap() -> None:
    t = twin()
    run(t, [sample(0, battery=0.0, soc=100.0)] + [sample(i, battery=10.0 * i, soc=90.0) for i in range(1, 61)])
    assert t.battery.net_out_wh == pytest.approx(0.5 * 600 * 60 / 3_600)        # triangle: 5 Wh
    run(t, [sample(61 + 3_600, battery=600.0, soc=90.0)])                # an hour of silence
    assert t.battery.anchor == 0 and t.battery.net_out_wh == pytest.approx(5.0)   # anchor forgotten, not integrated


def test_charging_since_empty_beyond_nominal_is_flagged() -> None:
    t = twin()
    samples = [sample(0, battery=0.0, soc=0.0)] + [sample(i, battery=-5_000.0, soc=min(100.0, i / 36)) for i in
                                                    range(1, 12_000)]
    events = run(t, samples)
    # SOC reaches 99 at ~3564 s (anchoring full from then on, charging is not discharging): no false alarm.
    assert kinds(events, RuleId.BATTERY_ENERGY_BALANCE) == []
    t2 = twin()
    stuck_soc = [sample(0, battery=0.0, soc=0.0)] + [sample(i, battery=-5_000.0, soc=40.0) for i in range(1, 12_000)]
    assert "raised" in kinds(run(t2, stuck_soc), RuleId.BATTERY_ENERGY_BALANCE)


# ------------------------------------------------------------------ rule 3: export without battery


def test_export_while_the_battery_reports_nothing() -> None:
    full = [sample(i, site=-2_000, battery=0.0, solar=2_500, soc=100.0) for i in range(60)]
    assert kinds(run(twin(), full), RuleId.EXPORT_WITHOUT_BATTERY) == []           # full: normal
    unexplained = [sample(i, site=-2_000, battery=0.0, solar=500, soc=60.0) for i in range(60)]
    events = [e for e in run(twin(), unexplained) if e.alert.rule == RuleId.EXPORT_WITHOUT_BATTERY]
    assert kinds(events) == ["raised"] and events[0].alert.severity == Severity.WARNING
    idle = [sample(i, site=-2_000, battery=0.0, solar=2_500, soc=60.0) for i in range(60)]
    events = [e for e in run(twin(), idle) if e.alert.rule == RuleId.EXPORT_WITHOUT_BATTERY]
    assert kinds(events) == ["raised"] and events[0].alert.severity == Severity.INFO
    held = twin()
    held.desired.plan = DesiredPlan((HoldReserve(0, 2 * NOW, 100.0),), (Source.VPP,))
    assert kinds(run(held, idle), RuleId.EXPORT_WITHOUT_BATTERY) == []              # a plan holds it
    islanded = [sample(i, site=-2_000, battery=0.0, solar=500, grid=GridStatus.ISLANDED) for i in range(60)]
    assert kinds(run(twin(), islanded), RuleId.EXPORT_WITHOUT_BATTERY) == []


# ------------------------------------------------------------------ the operator's rules


def test_stale_then_offline_is_one_alert_that_escalates_and_clears() -> None:
    t, out = twin(), []  # type: ignore[var-annotated]
    t.apply(sample(0, site=100, load=100), NOW, out)
    last = t.reported.last_ts_ms
    t.tick(last + 60_000, out)
    assert out == []
    t.tick(last + 130_000, out)
    t.tick(last + 700_000, out)
    assert [(e.kind, e.alert.severity) for e in out] == [(AlertEventKind.RAISED, Severity.WARNING),
                                                          (AlertEventKind.UPDATED, Severity.CRITICAL)]
    assert out[0].alert.first_seen_ms == last + 120_000                 # when it became stale
    t.apply(sample(800, site=100, load=100), last + 800_000, out)
    t.tick(last + 801_000, out)
    assert out[-1].kind == AlertEventKind.CLEARED and len({e.alert.alert_id for e in out}) == 1


def test_soc_range_power_limit_balance_and_stuck_sensor() -> None:
    events = run(twin(), [sample(i, site=100, load=100, soc=104.0) for i in range(3)])
    assert kinds(events, RuleId.SOC_OUT_OF_RANGE) == ["raised"]
    events = run(twin(), [sample(i, battery=6_000.0, site=0, load=6_000, soc=50) for i in range(5)])
    assert kinds(events, RuleId.POWER_LIMIT) == ["raised"]
    assert kinds(run(twin(InstallationFacts()), [sample(i, battery=60_000.0) for i in range(5)]),
                 RuleId.POWER_LIMIT) == []                              # no rating known: the rule rests
    events = run(twin(), [sample(i, site=500, battery=0, solar=0, load=100 + (i % 3)) for i in range(10)])
    assert kinds(events, RuleId.POWER_BALANCE) == ["raised"]
    assert kinds(run(twin(), [sample(i, site=500, load=510 + (i % 3)) for i in range(10)]),
                 RuleId.POWER_BALANCE) == []
    stuck = [sample(i, site=230.0, battery=-40.0, solar=0.0, load=190.0, soc=55.0) for i in range(400)]
    events = run(twin(), stuck)
    assert kinds(events, RuleId.STUCK_SENSOR) == ["raised"]
    assert events[-1].alert.first_seen_ms == stuck[300].ts_ms          # 300 s of identical readings
    moving = run(twin(), [sample(i, site=230.0 + (i % 2) * 0.1, load=230.0 + (i % 2) * 0.1) for i in range(400)])
    assert kinds(moving, RuleId.STUCK_SENSOR) == []


def test_soc_inconsistent_with_integrated_energy() -> None:
    t = twin()
    # Full, then 2 kW out for an hour (2 kWh ≈ 14.8 % of 13.5 kWh) while SOC claims 40 %.
    samples = [sample(0, soc=100.0)] + [sample(i, battery=2_000, soc=100 - i / 3600 * 60) for i in range(1, 3_600)]
    events = run(t, samples)
    raised = [e for e in events if e.alert.rule == RuleId.SOC_INCONSISTENT]
    assert raised and raised[0].kind == AlertEventKind.RAISED
    ok = run(twin(), [sample(0, soc=100.0)] + [sample(i, battery=2_000, soc=100 - i / 3600 * 15.6)
                                                for i in range(1, 3_600)])
    assert kinds(ok, RuleId.SOC_INCONSISTENT) == []


def test_lifecycle_raise_after_clear_after_and_one_alert_per_condition() -> None:
    t = twin(solar_negative={"raise_after": 3, "clear_after": 2})
    flicker = [sample(0, solar=-50), sample(1, solar=-50), sample(2, solar=1)]
    assert kinds(run(t, flicker)) == []                                 # two in a row is not enough
    episode = [sample(10 + i, solar=-50) for i in range(600)] + [sample(700, solar=5), sample(701, solar=5)]
    events = [e for e in run(t, episode) if e.alert.rule == RuleId.SOLAR_NEGATIVE]
    assert kinds(events) == ["raised", "updated", "cleared"]           # one update per 5 min of sample time
    assert len({e.alert.alert_id for e in events}) == 1
    cleared = events[-1].alert
    assert cleared.state == AlertState.CLEARED and cleared.cleared_ms == episode[-2].ts_ms
    assert cleared.first_seen_ms == episode[0].ts_ms and cleared.last_seen_ms == episode[599].ts_ms
    assert cleared.samples == 600


# ------------------------------------------------------------------ robustness


def test_replays_and_out_of_order_samples_change_nothing() -> None:
    t = twin()
    samples = [sample(i, battery=1_000.0 * (i % 3), solar=-50 if i > 5 else 0) for i in range(20)]
    first = run(t, samples)
    state = json.dumps(t.snapshot())
    again = run(t, samples + [sample(3, battery=9_999.0)])
    assert again == [] and t.reported.ignored == 21
    after = t.snapshot()
    assert after["counts"][1] == 21
    after["counts"][1] = 0
    before = json.loads(state)
    before["counts"][1] = 0
    before["version"] = after["version"]
    assert after == before and first


@pytest.mark.parametrize("bad", [
    dict(site=math.nan), dict(battery=math.inf), dict(solar=-math.inf), dict(load=1e300), dict(soc=math.nan),
    dict(site=-5e5),
])
def test_implausible_values_are_rejected_without_poisoning_state(bad: dict[str, float]) -> None:
    t = twin()
    run(t, [sample(0, battery=1_000.0, soc=100.0), sample(1, battery=1_000.0, soc=99.0)])
    net = t.battery.net_out_wh
    events = run(t, [sample(2, **{"battery": 1_000.0, "soc": 99.0, **bad})])
    assert t.reported.rejected == 1 and t.battery.net_out_wh == net and math.isfinite(t.reported.soc_pct)
    assert kinds(events) == ["raised"] and events[0].alert.rule == RuleId.IMPLAUSIBLE_VALUE
    assert json.dumps(t.snapshot())                                     # still serializable


def test_a_sample_from_the_far_future_does_not_block_later_ones() -> None:
    t = twin()
    future = Sample("dev-1", NOW + 86_400_000, 0, 0, 0, 0, 50)
    run(t, [future, sample(1, site=100, load=100)])
    assert t.reported.rejected == 1 and t.reported.applied == 1


def test_snapshot_restore_continues_exactly() -> None:
    samples = [sample(i, battery=3_000.0 * math.sin(i / 50), solar=-30 if 100 < i < 200 else 500, site=100,
                      soc=100.0 if i == 0 else 60.0) for i in range(400)]
    whole = twin()
    run(whole, samples)
    first = twin()
    run(first, samples[:150])
    restored = TwinState.restore("site-1", PW, first.config, json.loads(json.dumps(first.snapshot())))
    run(restored, samples[150:])
    assert restored.snapshot() == whole.snapshot()


def test_rule_overrides_per_installation_are_validated() -> None:
    overrides = {"solar_negative": {"standby_tolerance_w": 5, "severity": "critical"}}
    config = RulesConfig.defaults().with_overrides(overrides)
    assert config[RuleId.SOLAR_NEGATIVE].standby_tolerance_w == 5.0
    assert config[RuleId.SOLAR_NEGATIVE].severity == Severity.CRITICAL
    assert RulesConfig.defaults()[RuleId.SOLAR_NEGATIVE].standby_tolerance_w == 10.0
    for bad in ({"no_such_rule": {}}, {"solar_negative": {"nope": 1}}, {"solar_negative": {"raise_after": 0}},
                {"solar_negative": {"standby_tolerance_w": math.nan}}, {"power_limit": {"enabled": "yes"}}):
        with pytest.raises(ValueError):
            RulesConfig.defaults().with_overrides(bad)
    off = twin(solar_negative={"enabled": False})
    assert kinds(run(off, [sample(i, solar=-500) for i in range(10)])) == []


# ------------------------------------------------------------------ a real Powerwall trace


def _powerwall_sample(meters: dict, soc_pct: float, ts_s: int) -> Sample:  # type: ignore[type-arg]
    return sample(ts_s, site=meters["site"]["instant_power"], battery=meters["battery"]["instant_power"],
                  solar=meters["solar"]["instant_power"], load=meters["load"]["instant_power"], soc=soc_pct)


def test_real_powerwall_gateway_readings_raise_nothing() -> None:
    aggregates = json.loads((POWERWALL / "pypowerwall__proxy_web_bogus_api.meters.aggregates.json").read_text())
    soe = json.loads((POWERWALL / "pypowerwall__proxy_web_bogus_api.system_status.soe.json").read_text())
    status = json.loads((POWERWALL / "pypowerwall__proxy_web_bogus_api.system_status.json").read_text())
    facts = InstallationFacts(battery_nominal_energy_wh=status["nominal_full_pack_energy"],
                              max_charge_power_w=status["max_charge_power"],
                              max_discharge_power_w=status["max_discharge_power"])
    # The gateway's own meters: site 27 W + battery -990 W + solar 1840 W against load 866 W.
    trace = [_powerwall_sample(aggregates, soe["percentage"], i) for i in range(30)]
    assert abs(trace[0].site_power_w + trace[0].battery_power_w + trace[0].solar_power_w
               - trace[0].load_power_w) == pytest.approx(10.75, abs=0.01)
    events = run(twin(facts), trace)
    assert events == []
    ha = json.loads((POWERWALL / "ha_core__powerwall_fixtures_meters.json").read_text())
    site_info = json.loads((POWERWALL / "ha_core__powerwall_fixtures_site_info.json").read_text())
    ha_facts = InstallationFacts(battery_nominal_energy_wh=site_info["nominal_system_energy_kWh"] * 1_000,
                                 max_charge_power_w=site_info["nominal_system_power_kW"] * 1_000,
                                 max_discharge_power_w=site_info["nominal_system_power_kW"] * 1_000)
    assert run(twin(ha_facts), [_powerwall_sample(ha, 60.0, i) for i in range(30)]) == []
    # The same real readings with a rated power of 5 kW: charging at 8.55 kW is beyond it.
    small = InstallationFacts(battery_nominal_energy_wh=13_500, max_charge_power_w=5_000, max_discharge_power_w=5_000)
    events = run(twin(small), [_powerwall_sample(ha, 60.0, i) for i in range(30)])
    assert kinds(events) == ["raised"] and events[0].alert.rule == RuleId.POWER_LIMIT


def test_alert_log_export_formats() -> None:
    events = run(twin(solar_negative={"raise_after": 1, "clear_after": 1}),
                 [sample(0, solar=-50), sample(1, solar=5)])
    alerts = [events[-1].alert]
    rows = list(csv.DictReader(io.StringIO("".join(to_csv(alerts)))))
    assert rows[0]["rule"] == "solar_negative" and rows[0]["state"] == "cleared"
    assert rows[0]["first_seen"].endswith("Z") and int(rows[0]["first_seen_unix_ms"]) == alerts[0].first_seen_ms
    assert json.loads("".join(to_json(alerts)))[0]["details"]["value"] == -50.0
    assert json.loads("".join(to_json([]))) == []
