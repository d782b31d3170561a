"""Unit tests of the fleet simulator's physical model (simulator/physics.py)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pvlib
import pytest

from simulator.physics import (
    FleetConfig,
    FleetModel,
    FleetSnapshot,
    _bdew_household_w_per_annual_kwh,
    default_household_trace_csv,
)

LA = ZoneInfo("America/Los_Angeles")
TRACE_CSV = default_household_trace_csv()


@dataclass
class Run:
    """Stacked snapshots of a simulation: arrays of shape (steps, devices)."""

    times: list[dt.datetime]
    dt_s: float
    soc_start_pct: np.ndarray
    site_w: np.ndarray
    battery_w: np.ndarray
    solar_w: np.ndarray
    load_w: np.ndarray
    soc_pct: np.ndarray


def simulate(model: FleetModel, start: dt.datetime, dt_s: float, n_steps: int) -> Run:
    soc_start = model.state_of_charge_pct
    snaps: list[FleetSnapshot] = []
    times = [start + dt.timedelta(seconds=dt_s * (k + 1)) for k in range(n_steps)]
    for t in times:
        snaps.append(model.step(t, dt_s))
    return Run(
        times=times,
        dt_s=dt_s,
        soc_start_pct=soc_start,
        site_w=np.stack([s.site_power_w for s in snaps]),
        battery_w=np.stack([s.battery_power_w for s in snaps]),
        solar_w=np.stack([s.solar_power_w for s in snaps]),
        load_w=np.stack([s.load_power_w for s in snaps]),
        soc_pct=np.stack([s.state_of_charge_pct for s in snaps]),
    )


def local_midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=LA).astimezone(dt.UTC)


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize(
    "load_source",
    ["household_trace", "bdew"],
)
def test_power_balance_soc_and_power_limits_over_a_day(load_source: str) -> None:
    cfg = FleetConfig(n_devices=200, seed=1, load_source=load_source)  # type: ignore[arg-type]
    start = local_midnight_utc(dt.date(2025, 6, 21))
    run = simulate(FleetModel(cfg, start), start, 60.0, 24 * 60)

    np.testing.assert_allclose(run.site_w + run.battery_w + run.solar_w, run.load_w, atol=1e-6)
    assert run.soc_pct.min() >= cfg.backup_reserve_pct - 1e-9
    assert run.soc_pct.max() <= 100.0
    assert np.abs(run.battery_w).max() <= cfg.battery_max_power_w + 1e-9
    assert run.load_w.min() >= cfg.min_load_w > 0
    assert run.solar_w.min() >= 0.0
    # Self-consumption: the battery only charges from surplus solar...
    charging = run.battery_w < 0
    assert np.all(-run.battery_w[charging] <= (run.solar_w - run.load_w)[charging] + 1e-6)
    # ...and never discharges more than the home's deficit, so it never exports.
    discharging = run.battery_w > 0
    assert np.all(run.site_w[discharging] >= -1e-6)
    # The battery actually works over a June day.
    assert charging.any() and discharging.any()


def test_cloud_factor_stays_within_bounds() -> None:
    cfg = FleetConfig(n_devices=500, load_source="bdew", cloud_walk_sigma_per_sqrt_s=0.05)
    start = dt.datetime(2025, 3, 1, 18, tzinfo=dt.UTC)
    model = FleetModel(cfg, start)
    lo, hi = cfg.cloud_factor_range
    seen = []
    for k in range(200):
        model.step(start + dt.timedelta(seconds=30 * (k + 1)), 30.0)
        seen.append(model.cloud_factor)
    clouds = np.stack(seen)
    assert clouds.min() >= lo and clouds.max() <= hi
    # It walks: not constant, and it explores a good part of the range.
    assert clouds.std(axis=0).mean() > 0.05


def test_same_seed_same_fleet() -> None:
    cfg = FleetConfig(n_devices=50, seed=7, load_source="bdew")
    start = dt.datetime(2025, 6, 21, 18, tzinfo=dt.UTC)
    a = simulate(FleetModel(cfg, start), start, 10.0, 30)
    b = simulate(FleetModel(cfg, start), start, 10.0, 30)
    c = simulate(FleetModel(replace(cfg, seed=8), start), start, 10.0, 30)
    np.testing.assert_array_equal(a.load_w, b.load_w)
    np.testing.assert_array_equal(a.solar_w, b.solar_w)
    np.testing.assert_array_equal(a.soc_pct, b.soc_pct)
    assert not np.array_equal(a.load_w, c.load_w)


# --------------------------------------------------------------------- solar


def test_clear_day_solar_shape_and_yield() -> None:
    day = dt.date(2025, 6, 21)
    cfg = FleetConfig(n_devices=50, seed=2, load_source="bdew", cloud_factor_range=(1.0, 1.0))
    start = local_midnight_utc(day)
    model = FleetModel(cfg, start)
    run = simulate(model, start, 60.0, 24 * 60)
    local_hours = np.array([t.astimezone(LA).hour for t in run.times])

    night = (local_hours < 4) | (local_hours >= 22)
    assert np.all(run.solar_w[night] == 0.0)
    assert run.solar_w[local_hours == 13].min() > 0.0

    transit = pvlib.solarposition.sun_rise_set_transit_spa(
        pd.DatetimeIndex([pd.Timestamp(day, tz=LA)]), cfg.latitude, cfg.longitude
    )["transit"].iloc[0]
    peak = pd.Timestamp(run.times[int(np.argmax(run.solar_w.sum(axis=1)))])
    assert abs((peak - transit).total_seconds()) <= 10 * 60

    kwh_per_kwp = run.solar_w.sum(axis=0) * run.dt_s / 3600.0 / model.pv_peak_w
    assert np.all((kwh_per_kwp > 3.0) & (kwh_per_kwp < 8.0)), kwh_per_kwp
    # AC never exceeds the DC peak.
    assert np.all(run.solar_w <= model.pv_peak_w + 1e-9)


def test_solar_is_continuous_across_utc_midnight() -> None:
    # 00:00 UTC is late afternoon in California: the per-UTC-day profile switch
    # must not make the production jump.
    cfg = FleetConfig(n_devices=20, load_source="bdew", cloud_factor_range=(1.0, 1.0))
    start = dt.datetime(2025, 6, 21, 23, 58, tzinfo=dt.UTC)
    run = simulate(FleetModel(cfg, start), start, 30.0, 8)
    assert run.solar_w.min() > 0.0
    steps = np.abs(np.diff(run.solar_w, axis=0)) / run.solar_w[:-1]
    assert steps.max() < 0.01


# ------------------------------------------------------------------- battery


def test_battery_energy_is_conserved_over_a_day() -> None:
    cfg = FleetConfig(n_devices=100, seed=3, load_source="bdew")
    start = local_midnight_utc(dt.date(2025, 4, 10))
    run = simulate(FleetModel(cfg, start), start, 60.0, 24 * 60)

    sqrt_eff = math.sqrt(cfg.round_trip_efficiency)
    charge_w = np.clip(-run.battery_w, 0.0, None)
    discharge_w = np.clip(run.battery_w, 0.0, None)
    stored_wh = (charge_w * sqrt_eff - discharge_w / sqrt_eff).sum(axis=0) * run.dt_s / 3600.0
    delta_soc_wh = (run.soc_pct[-1] - run.soc_start_pct) / 100.0 * cfg.battery_nominal_energy_wh
    np.testing.assert_allclose(delta_soc_wh, stored_wh, atol=1e-6)
    # Round-trip losses: the battery takes in more than it gives back for the
    # same change of stored energy.
    assert np.all(charge_w.sum(axis=0) * sqrt_eff - delta_soc_wh * 3600 / run.dt_s >= 0)


def test_setpoint_is_honoured_and_clipped() -> None:
    cfg = FleetConfig(n_devices=4, load_source="bdew", initial_soc_pct_range=(50.0, 50.0))
    start = dt.datetime(2025, 1, 15, 9, tzinfo=dt.UTC)  # 01:00 in California: no sun
    model = FleetModel(cfg, start)
    model.battery_setpoint_w[:] = [7_000.0, 2_000.0, -7_000.0, np.nan]
    run = simulate(model, start, 60.0, 3 * 60)

    assert np.all(run.solar_w == 0.0)
    first = run.battery_w[0]
    assert first[0] == cfg.battery_max_power_w  # clipped to max discharge
    assert first[1] == 2_000.0
    assert first[2] == -cfg.battery_max_power_w  # clipped to max charge, from the grid
    assert first[3] == pytest.approx(run.load_w[0, 3])  # self-consumption covers the load
    np.testing.assert_allclose(run.site_w[0, 2], run.load_w[0, 2] + cfg.battery_max_power_w)

    reserve = cfg.backup_reserve_pct
    assert run.soc_pct[:, 0].min() >= reserve - 1e-9
    assert run.soc_pct[-1, 0] == pytest.approx(reserve, abs=1e-9)
    assert run.battery_w[-1, 0] == 0.0  # discharge stops at the backup reserve
    assert run.soc_pct.max() <= 100.0
    assert run.soc_pct[-1, 2] == 100.0
    assert run.battery_w[-1, 2] == 0.0  # charge stops at 100 %
    np.testing.assert_allclose(run.site_w + run.battery_w + run.solar_w, run.load_w, atol=1e-6)

    # Back to self-consumption: at night a full battery discharges into the load.
    model.battery_setpoint_w[:] = np.nan
    snap = model.step(run.times[-1] + dt.timedelta(seconds=60), 60.0)
    assert snap.battery_power_w[2] == pytest.approx(snap.load_power_w[2])
    assert snap.battery_power_w[0] == 0.0


def test_battery_below_reserve_only_charges() -> None:
    cfg = FleetConfig(n_devices=3, load_source="bdew", initial_soc_pct_range=(10.0, 10.0))
    night = dt.datetime(2025, 6, 21, 9, tzinfo=dt.UTC)
    model = FleetModel(cfg, night)
    snap = model.step(night, 60.0)
    assert np.all(snap.battery_power_w == 0.0)
    np.testing.assert_allclose(snap.site_power_w, snap.load_power_w)
    noon = dt.datetime(2025, 6, 21, 20, tzinfo=dt.UTC)
    snap = model.step(noon, 60.0)
    assert np.all(snap.battery_power_w < 0.0)
    assert np.all(snap.state_of_charge_pct > 10.0)


# ---------------------------------------------------------------------- load


def trace_day(day: dt.date) -> pd.Series:
    frame = pd.read_csv(TRACE_CSV, index_col=0, parse_dates=True)
    index = pd.DatetimeIndex(frame.index)
    rows = frame[(index.month == day.month) & (index.day == day.day)]
    assert len(rows) == 48
    return rows["GC"]


@pytest.mark.parametrize("day", [dt.date(2025, 1, 15), dt.date(2025, 7, 20), dt.date(2025, 10, 9)])
def test_deterministic_device_reproduces_the_household_trace(day: dt.date) -> None:
    cfg = FleetConfig(
        n_devices=1,
        load_scale_range=(1.0, 1.0),
        load_time_shift_max_s=0.0,
        load_noise_pct=0.0,
    )
    start = local_midnight_utc(day)
    run = simulate(FleetModel(cfg, start), start, 60.0, 24 * 60)
    expected_kwh_per_half_hour = trace_day(day).to_numpy()

    simulated_kwh = run.load_w[:, 0].sum() * run.dt_s / 3.6e6
    assert simulated_kwh == pytest.approx(expected_kwh_per_half_hour.sum(), rel=0.03)
    # The daily shape follows the trace too (interpolation only smooths it).
    half_hour_kw = run.load_w[:, 0].reshape(48, 30).mean(axis=1) / 1000.0
    assert np.corrcoef(half_hour_kw, expected_kwh_per_half_hour * 2.0)[0, 1] > 0.9


def test_household_trace_day_offset_replays_another_day() -> None:
    cfg = FleetConfig(
        n_devices=1,
        load_scale_range=(1.0, 1.0),
        load_time_shift_max_s=0.0,
        load_noise_pct=0.0,
        household_trace_day_offset_days=182,
    )
    start = local_midnight_utc(dt.date(2025, 1, 15))
    run = simulate(FleetModel(cfg, start), start, 60.0, 24 * 60)
    # 15 January is day 14 of a leap year; + 182 is day 196, i.e. 15 July.
    expected_kwh = trace_day(dt.date(2012, 7, 15)).sum()
    assert run.load_w[:, 0].sum() * run.dt_s / 3.6e6 == pytest.approx(expected_kwh, rel=0.03)


def test_household_devices_are_diverse_but_positive() -> None:
    cfg = FleetConfig(n_devices=300, seed=4)
    start = dt.datetime(2025, 2, 3, 2, tzinfo=dt.UTC)  # evening peak in California
    model = FleetModel(cfg, start)
    run = simulate(model, start, 1.0, 20)
    assert run.load_w.min() > 0.0
    assert np.all((model.load_scale >= 0.6) & (model.load_scale <= 1.8))
    assert run.load_w[-1].std() / run.load_w[-1].mean() > 0.2
    # Small per-second noise: consecutive seconds differ, but by a few % at most.
    rel_change = np.abs(np.diff(run.load_w, axis=0)) / run.load_w[:-1]
    assert 0 < np.median(rel_change) < 0.03


def test_bdew_profile_integrates_to_the_annual_energy() -> None:
    for year in (2024, 2025):
        w_per_annual_kwh = _bdew_household_w_per_annual_kwh(year)
        assert w_per_annual_kwh.shape == ((366 if year == 2024 else 365) * 96,)
        assert w_per_annual_kwh.sum() * 900.0 / 3.6e6 == pytest.approx(1.0)


@pytest.mark.parametrize("day", [dt.date(2025, 1, 15), dt.date(2025, 7, 15)])
def test_bdew_device_consumes_its_share_of_the_annual_energy(day: dt.date) -> None:
    cfg = FleetConfig(n_devices=20, load_source="bdew", load_noise_pct=0.0)
    start = local_midnight_utc(day)
    model = FleetModel(cfg, start)
    run = simulate(model, start, 60.0, 24 * 60)
    assert np.all((model.load_scale >= 3_000) & (model.load_scale <= 7_000))
    daily_kwh = run.load_w.sum(axis=0) * run.dt_s / 3.6e6
    # Winter and summer days of the H25 profile sit around the yearly mean day.
    ratio = daily_kwh / (model.load_scale / 365.0)
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio


# -------------------------------------------------------------------- faults


def test_faults_negative_solar_stuck_sensor_and_clear() -> None:
    cfg = FleetConfig(n_devices=5, load_source="bdew")
    start = dt.datetime(2025, 6, 21, 9, tzinfo=dt.UTC)  # night in California
    model = FleetModel(cfg, start)
    t = start
    before = model.step(t, 1.0)

    model.inject_negative_solar([1])
    model.inject_stuck_sensor(2)
    stuck_steps = []
    for _ in range(5):
        t += dt.timedelta(seconds=1)
        stuck_steps.append(model.step(t, 1.0))

    for snap in stuck_steps:
        assert snap.solar_power_w[1] == -60.0
        assert np.all(np.delete(snap.solar_power_w, 1) >= 0.0)
        for name in ("site_power_w", "battery_power_w", "solar_power_w", "load_power_w"):
            assert getattr(snap, name)[2] == getattr(before, name)[2]
        assert snap.state_of_charge_pct[2] == before.state_of_charge_pct[2]
        assert bool(snap.grid_connected[2]) is True
    # The healthy devices keep moving (load noise, SOC).
    assert stuck_steps[-1].load_power_w[0] != before.load_power_w[0]
    # The physics keeps running under the stuck sensor.
    assert model.state_of_charge_pct[2] != before.state_of_charge_pct[2]

    model.clear_faults(np.array([1, 2]))
    snap = model.step(t + dt.timedelta(seconds=1), 1.0)
    assert snap.solar_power_w[1] == 0.0
    assert snap.load_power_w[2] != before.load_power_w[2]
    np.testing.assert_allclose(
        snap.site_power_w + snap.battery_power_w + snap.solar_power_w, snap.load_power_w
    )


def test_snapshot_arrays_are_read_only_and_shaped() -> None:
    cfg = FleetConfig(n_devices=7, load_source="bdew")
    start = dt.datetime(2025, 6, 21, 20, tzinfo=dt.UTC)
    snap = FleetModel(cfg, start).step(start, 1.0)
    assert snap.n_devices == 7
    for name in ("site_power_w", "battery_power_w", "solar_power_w", "load_power_w"):
        arr = getattr(snap, name)
        assert arr.shape == (7,) and arr.dtype == np.float64
        with pytest.raises(ValueError):
            arr[0] = 1.0
    assert snap.grid_connected.dtype == np.bool_ and snap.grid_connected.all()


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        FleetConfig(n_devices=0)
    with pytest.raises(ValueError):
        FleetConfig(n_devices=1, load_source="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FleetConfig(n_devices=1, pv_peak_w_range=(8e3, 3e3))
    start = dt.datetime(2025, 6, 21, tzinfo=dt.UTC)
    model = FleetModel(FleetConfig(n_devices=2, load_source="bdew"), start)
    with pytest.raises(ValueError):
        model.step(dt.datetime(2025, 6, 21, 1), 1.0)  # naive
    with pytest.raises(ValueError):
        model.step(start, -1.0)
    with pytest.raises(ValueError):
        model.inject_negative_solar(0, watts=10.0)
    with pytest.raises(IndexError):
        model.inject_stuck_sensor([5])


# --------------------------------------------------------------- at fleet scale


def test_a_fleet_of_10k_devices_steps_with_every_invariant_holding() -> None:
    """The size the benchmarks simulate (10,000 devices, 100 one-second steps at midday in
    California): every value finite, the balance exact for every device at every step, SOC
    within its bounds, and each battery's stored energy following its power, with the losses."""
    cfg = FleetConfig(n_devices=10_000)
    start = dt.datetime(2025, 6, 21, 20, tzinfo=dt.UTC)
    run = simulate(FleetModel(cfg, start), start, 1.0, 100)
    for values in (run.site_w, run.battery_w, run.solar_w, run.load_w, run.soc_pct):
        assert values.shape == (100, 10_000) and np.isfinite(values).all()
    np.testing.assert_allclose(run.site_w + run.battery_w + run.solar_w, run.load_w, atol=1e-6)
    assert run.soc_pct.min() >= cfg.backup_reserve_pct - 1e-9 and run.soc_pct.max() <= 100.0
    sqrt_eff = math.sqrt(cfg.round_trip_efficiency)
    stored_wh = (np.clip(-run.battery_w, 0.0, None) * sqrt_eff
                 - np.clip(run.battery_w, 0.0, None) / sqrt_eff).sum(axis=0) * run.dt_s / 3_600.0
    delta_soc_wh = (run.soc_pct[-1] - run.soc_start_pct) / 100.0 * cfg.battery_nominal_energy_wh
    np.testing.assert_allclose(delta_soc_wh, stored_wh, atol=1e-6)
    assert (run.battery_w < 0).any() and (run.solar_w > 0).mean() > 0.9     # midday: charging from solar
