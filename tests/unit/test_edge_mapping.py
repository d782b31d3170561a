"""The edge adapters' pure mapping functions on the real recorded device answers in ../shared/data
(Powerwall, Fronius, DSMR telegrams) and on SunSpec registers built from the official model
definitions: vendor signs and units → the device protocol's."""

from __future__ import annotations

import json

import pytest
from dsmr_parser.clients.telegram_buffer import TelegramBuffer
from dsmr_parser.exceptions import InvalidChecksumError
from pyfronius import Fronius

from edge.adapters import dsmr, fronius, mqtt, powerwall, sunspec
from edge.adapters.base import BadAnswer, DeviceRefused
from edge.control import ApplyBatteryPower, ApplyMode, ApplyReserve
from edge.model import BATTERY, LOAD, SITE, SOC, SOLAR, GridStatus, OperationMode, Reading, Unit
from tests.data import SHARED_DATA

PW = SHARED_DATA / "powerwall"
FR = SHARED_DATA / "fronius"
P1 = SHARED_DATA / "dsmr"


def values(readings: tuple[Reading, ...]) -> dict[str, float]:
    return {r.signal: r.value for r in readings}


def load(path) -> object:  # type: ignore[no-untyped-def]
    return json.loads(path.read_text())


# ------------------------------------------------------------------ Powerwall


def test_powerwall_aggregates_map_one_to_one_with_state_of_charge_and_grid_status():
    aggregates = load(PW / "pypowerwall__proxy_web_bogus_api.meters.aggregates.json")
    soe = load(PW / "pypowerwall__proxy_web_bogus_api.system_status.soe.json")
    grid = load(PW / "pypowerwall__proxy_web_bogus_api.system_status.grid_status.json")
    readings, status = powerwall.readings(aggregates, soe, grid, at_ms=1_000)
    got = values(readings)
    # the gateway's own conventions are the protocol's: battery −990 W is charging
    assert {k: got[k] for k in (SITE, BATTERY, SOLAR, LOAD, SOC)} == {
        SITE: 27.0, BATTERY: -990.0, SOLAR: 1840.0, LOAD: 866.25, SOC: 20.109166592431226}
    assert status is GridStatus.CONNECTED
    assert "grid_frequency_hz" not in got            # the site meter reports frequency 0: not measured
    assert got["site_voltage_v"] == pytest.approx(211.11967293457045)
    assert all(r.at_ms == 1_000 for r in readings) and {r.unit for r in readings} >= {Unit.WATT, Unit.PERCENT}


def test_powerwall_other_recording_and_a_site_without_solar_meter():
    aggregates = load(PW / "ha_core__powerwall_fixtures_meters.json")
    got = values(powerwall.readings(aggregates, None, None, 0)[0])
    assert (got[SITE], got[BATTERY], got[SOLAR], got[LOAD]) == pytest.approx((31.80038, -8550, 10489.66, 1971.46), 1e-5)
    assert SOC not in got
    del aggregates["solar"]
    assert SOLAR not in values(powerwall.readings(aggregates, None, None, 0)[0])   # unreported, not 0


@pytest.mark.parametrize("answer", [[], {"site": {"instant_power": "27"}}, {"bogus": 1}, {"site": 3}])
def test_powerwall_malformed_aggregates_are_bad_answers(answer):
    with pytest.raises(BadAnswer):
        powerwall.readings(answer, None, None, 0)


def test_powerwall_state_report_values():
    state = powerwall.device_state(load(PW / "pypowerwall__proxy_web_bogus_api.operation.json"),
                                   load(PW / "pypowerwall__proxy_web_bogus_api.system_status.json"),
                                   load(PW / "pypowerwall__proxy_web_bogus_api.status.json"))
    assert state.mode is OperationMode.SELF_CONSUMPTION and state.backup_reserve_pct == 81
    assert state.battery_nominal_energy_wh == 25_995 and state.battery_max_power_w == 10_800
    assert state.firmware == "23.28.2 27626f98"


def test_powerwall_grid_states():
    assert powerwall.GRID_STATUS["SystemIslandedActive"] is GridStatus.ISLANDED
    assert powerwall.GRID_STATUS["SystemTransitionToGrid"] is GridStatus.TRANSITIONING


# ------------------------------------------------------------------ Fronius


def flow(name: str) -> dict:  # type: ignore[type-arg]
    return Fronius._system_power_flow(load(FR / name)["Body"]["Data"])   # pyfronius's own conversion


def test_fronius_gen24_with_battery_signs():
    gen24 = flow("ha_core__fronius_fixtures_gen24_storage_GetPowerFlowRealtimeData.json")
    got = values(fronius.power_flow_readings(gen24, 0))
    # P_Grid 2274.9 import, P_Load −2459.3 (consumption), P_Akku 0.159 (discharge), P_PV 216.4, SOC 4.6
    assert got == pytest.approx({SITE: 2274.9, LOAD: 2459.3092254638673, BATTERY: 0.15907810628414154,
                                 SOLAR: 216.43276786804199, SOC: 4.6})


def test_fronius_nulls_are_unreported():
    got = values(fronius.power_flow_readings(flow("pyfronius__v1_solar_api_v1_GetPowerFlowRealtimeData.fcgi.json"), 0))
    assert got == pytest.approx({SITE: 367.722145, LOAD: 367.722145})      # P_Akku and P_PV null


def test_fronius_storage_and_meter_details():
    storage = Fronius._system_storage_data(load(
        FR / "pyfronius__v1_solar_api_v1_GetStorageRealtimeData.cgi___Scope-System.json")["Body"]["Data"])
    assert values(fronius.storage_readings(storage, 0)) == pytest.approx({SOC: 7.9, "battery_temperature_c": 19.55})
    meter = Fronius._system_meter_data(load(
        FR / "pyfronius__v1_solar_api_v1_GetMeterRealtimeData.cgi___Scope-System.json")["Body"]["Data"])
    assert fronius.meter_readings(meter, 0) == ()     # that meter reports no frequency
    flow_readings = (Reading(SITE, 1.0, Unit.WATT, 0),)
    merged = fronius.merged(flow_readings, fronius.storage_readings(storage, 0))
    assert [r.signal for r in merged] == [SITE, SOC, "battery_temperature_c"]


def test_fronius_unknown_unit_is_a_bad_answer():
    with pytest.raises(BadAnswer):
        fronius.power_flow_readings({"power_grid": {"value": 1, "unit": "hp"}}, 0)


# ------------------------------------------------------------------ DSMR / P1

TELEGRAMS = {   # file → (version, site power W)
    "V2_2": ("2.2", 1_010.0), "V3": ("3", 1_190.0), "V4_2": ("4", 2_027.0), "V5": ("5", 244.0),
    "V5_TWO_MBUS": ("5", 111.0), "V5_EON_HU": ("5EONHU", -2_601.0), "FLUVIUS_V171": ("5B", 0.0),
    "FLUVIUS_V171_ALT": ("5B", 338.0), "ISKRA_IE": ("ISKRA_IE", 170.0 - 270.0),
    "SAGEMCOM_T210_D_R": ("5", 286.0), "ESY5Q3DA1004_V304": ("Q3D", 1_688.21),   # Sagemcom: decrypted, in W
    "ESY5Q3DB1024_V304": ("Q3D", 2_124.86),
}


def telegram(name: str) -> str:
    """The recorded telegram as the agent frames it (dsmr_parser's buffer: '/' … '!CRC', the bytes
    around it dropped; an EasyMeter recording ends in line noise)."""
    framing = TelegramBuffer()
    framing.append((P1 / f"dsmr_parser__TELEGRAM_{name}.txt").read_bytes().decode("latin1"))
    [found] = list(framing.get_all())
    return found


@pytest.mark.parametrize("name", sorted(TELEGRAMS))
def test_every_recorded_telegram_gives_site_power_in_watts(name):
    version, site_w = TELEGRAMS[name]
    got = values(dsmr.readings(dsmr.parser(version).parse(telegram(name), throw_ex=True), 5))
    assert got[SITE] == pytest.approx(site_w)


def test_dsmr_phases_and_voltages_are_extras():
    got = values(dsmr.readings(dsmr.parser("4").parse(telegram("V4_2"), throw_ex=True), 0))
    assert got["site_power_l1_w"] == pytest.approx(170.0) and got["site_power_l2_w"] == pytest.approx(1_247.0)
    iskra = values(dsmr.readings(dsmr.parser("ISKRA_IE").parse(telegram("ISKRA_IE"), throw_ex=True), 0))
    assert iskra["site_power_l1_w"] == pytest.approx(217.0 - 227.0)


def test_a_telegram_with_a_wrong_crc_is_refused_and_one_without_power_is_a_bad_answer():
    changed = telegram("V5").replace("1-0:1.7.0(00.244*kW)", "1-0:1.7.0(00.245*kW)")
    with pytest.raises(InvalidChecksumError):
        dsmr.parser("5").parse(changed, throw_ex=True)
    heat_meter = dsmr.parser("5").parse(telegram("UNPADDED_CRC"), throw_ex=True)
    with pytest.raises(BadAnswer):
        dsmr.readings(heat_meter, 0)


# ------------------------------------------------------------------ SunSpec


def sf(value: int) -> int:
    return value & 0xFFFF


def registers_of(models: dict[int, dict]) -> dict[int, dict]:  # type: ignore[type-arg]
    return {m: sunspec.decode(m, sunspec.encode(m, v)) for m, v in models.items()}


def test_sunspec_points_scale_factors_and_unimplemented_values():
    models = registers_of({
        103: {"W": 31_250, "W_SF": sf(-1), "Hz": 4_998, "Hz_SF": sf(-2)},        # 3,125.0 W, 49.98 Hz
        203: {"W": 1_200, "W_SF": sf(0), "Hz": 5_001, "Hz_SF": sf(-2)},          # import 1,200 W
        802: {"W": sf(-1_500), "W_SF": sf(0), "SoC": 655, "SoC_SF": sf(-1)},      # 65.5 %
        124: {"ChaState": 700, "ChaState_SF": sf(-1)},
    })
    got = values(sunspec.readings(models, 0))
    assert got == pytest.approx({SITE: 1_200, SOLAR: 3_125, BATTERY: -1_500, SOC: 65.5, "grid_frequency_hz": 50.01})
    flipped = values(sunspec.readings(models, 0, meter_sign="export_positive", battery_sign="charge_positive"))
    assert flipped[SITE] == -1_200 and flipped[BATTERY] == 1_500
    bare = registers_of({103: {"W_SF": sf(0)}, 124: {"ChaState": 420, "ChaState_SF": sf(-1)}})
    assert values(sunspec.readings(bare, 0)) == {SOC: 42.0}      # W 0x8000: not implemented, unreported


def test_sunspec_float_models_and_strings():
    models = registers_of({113: {"W": 2_500.5, "Hz": 50.0}, 1: {"Mn": "Fronius", "SN": "1234"}})
    assert values(sunspec.readings(models, 0)) == pytest.approx({SOLAR: 2_500.5, "grid_frequency_hz": 50.0})
    assert models[1]["Mn"] == "Fronius" and models[1]["SN"] == "1234"


STORAGE_124 = {"WChaMax": 5_000, "WChaMax_SF": 0, "InOutWRte_SF": sf(-2), "MinRsvPct": 200, "MinRsvPct_SF": sf(-1),
               "StorCtl_Mod": 0}


def test_storage_setpoints_as_charge_and_discharge_windows():
    storage = registers_of({124: STORAGE_124})[124]
    discharge = dict(sunspec.storage_writes(storage, ApplyBatteryPower(2_500), revert_s=60))
    assert discharge == {"OutWRte": 5_000, "InWRte": sf(-5_000), "InOutWRte_RvrtTms": 60, "StorCtl_Mod": 3}
    charge = sunspec.storage_writes(storage, ApplyBatteryPower(-1_000), revert_s=0)
    assert charge == [("OutWRte", sf(-2_000)), ("InWRte", 2_000), ("ChaGriSet", 1), ("StorCtl_Mod", 3)]
    assert sunspec.storage_writes(storage, ApplyBatteryPower(None), revert_s=60) == [("StorCtl_Mod", 0)]
    assert sunspec.storage_writes(storage, ApplyMode(OperationMode.SELF_CONSUMPTION), revert_s=60) == [
        ("StorCtl_Mod", 0)]
    assert sunspec.storage_writes(storage, ApplyReserve(35), revert_s=60) == [("MinRsvPct", 350)]
    for power in (2_500.0, -1_000.0, 0.0):     # the inverse: what the registers hold once written
        written = dict(sunspec.storage_writes(storage, ApplyBatteryPower(power), revert_s=60))
        held = sunspec.decode(124, sunspec.encode(124, {**STORAGE_124, **written}))
        assert sunspec.applied_power_w(held) == pytest.approx(power)


def test_setpoints_need_a_known_maximum_power():
    storage = registers_of({124: {"StorCtl_Mod": 0}})[124]
    with pytest.raises(DeviceRefused):
        sunspec.storage_writes(storage, ApplyBatteryPower(1_000), revert_s=60)


# ------------------------------------------------------------------ MQTT


def test_mqtt_payloads_units_and_signs():
    assert mqtt.reading(mqtt.TopicMapping(SITE, "kW"), b"1.5", 7) == Reading(SITE, 1_500.0, Unit.WATT, 7)
    assert mqtt.reading(mqtt.TopicMapping(SOC, "ratio"), b"0.5", 0).value == 50.0
    assert mqtt.reading(mqtt.TopicMapping(BATTERY, "W", "value", invert=True), b'{"value": 200}', 0).value == -200
    assert mqtt.reading(mqtt.TopicMapping(SOLAR, "W", "a.b"), '{"a": {"b": 3}}', 0).value == 3
    for payload in (b"unavailable", b'{"value": null}', b"NaN", b"true"):
        with pytest.raises(BadAnswer):
            mqtt.reading(mqtt.TopicMapping(SITE, "W", "value" if payload.startswith(b"{") else ""), payload, 0)
    assert mqtt.unit_fits(SITE, "kW") and not mqtt.unit_fits(SOC, "W") and mqtt.unit_fits("grid_frequency_hz", "Hz")


def test_mqtt_topics_of_one_signal_are_summed_once_all_have_published():
    topics = {f"grid/L{i}": mqtt.TopicMapping(SITE) for i in (1, 2, 3)}
    latest = {"grid/L1": Reading(SITE, 100, Unit.WATT, 5), "grid/L2": Reading(SITE, 200, Unit.WATT, 3)}
    assert mqtt.summed(topics, latest) == ()
    latest["grid/L3"] = Reading(SITE, -50, Unit.WATT, 9)
    assert mqtt.summed(topics, latest) == (Reading(SITE, 250, Unit.WATT, 3),)
