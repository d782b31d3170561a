"""After-event energy from real Postgres against an independent numpy integration of the same
stored samples (a real household's half-hourly load and PV driving a battery)."""

from __future__ import annotations

import datetime as dt

import asyncpg
import numpy as np
import pandas as pd
import pytest

from services.control.vpp.report import compensation, event_energy
from tests.data import HOUSEHOLD_CSV

pytestmark = pytest.mark.integration

START = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def _household_battery(days: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Battery power from the real home: it covers the load from the battery and stores surplus PV,
    within ±5 kW. The CSV holds kWh per half hour: × 2 gives mean kW."""
    df = pd.read_csv(HOUSEHOLD_CSV, index_col=0).iloc[: days * 48]
    load_w, pv_w = df["GC"].to_numpy() * 2000, df["GG"].to_numpy() * 2000
    return np.arange(len(df)) * 1800.0, np.clip(load_w - pv_w, -5000, 5000)


def _fine_reference(ts: np.ndarray, p: np.ndarray, a: float, b: float, max_gap: float) -> tuple[float, float]:
    """Independent of the code under test: dense sampling of the interpolated signal, np.trapezoid."""
    t = np.linspace(a, b, 2_000_001)
    v = np.interp(t, ts, p)
    seg = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2)
    ok = (t >= ts[0]) & (t <= ts[-1]) & ((ts[seg + 1] - ts[seg]) <= max_gap)
    dt_h = (b - a) / (len(t) - 1) / 3600
    return (float(np.trapezoid(np.where(ok, np.maximum(v, 0), 0)) * dt_h),
            float(np.trapezoid(np.where(ok, np.maximum(-v, 0), 0)) * dt_h))


async def _store(pool: asyncpg.Pool, inst: str, device: str, ts_s: np.ndarray, power: np.ndarray) -> None:
    for day in {(START + dt.timedelta(seconds=float(t))).date() for t in ts_s}:
        await pool.execute("SELECT telemetry_ensure_partition($1::date)", day)
    base_us = int(START.timestamp()) * 1_000_000
    await pool.executemany(
        "INSERT INTO telemetry_samples (device_id, ts, installation_id, site_power_w, battery_power_w, solar_power_w, "
        "load_power_w, state_of_charge_pct, grid_status, received_at) VALUES "
        "($1, timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3, 0, $4, 0, 0, 50, 1, now())",
        [(device, base_us + int(t * 1e6), inst, float(p)) for t, p in zip(ts_s, power, strict=True)])


async def test_report_matches_independent_integration(clean_db: asyncpg.Pool) -> None:
    pool = clean_db
    ts, power = _household_battery()
    await _store(pool, "home", "home-gw", ts, power)
    # a second home: the same signal shifted and with a 3-hour hole (a gap beyond max_gap_s)
    hole = (ts < 20 * 3600) | (ts > 23 * 3600)
    await _store(pool, "home2", "home2-gw", ts[hole] + 7.0, -power[hole])
    a_s, b_s = 6 * 3600 + 600.0, 30 * 3600 + 900.0          # edges inside segments
    start, end = START + dt.timedelta(seconds=a_s), START + dt.timedelta(seconds=b_s)
    reports = await event_energy(pool, ["home", "home2", "absent"], start, end, max_gap_s=1800)
    pos, neg = _fine_reference(ts, power, a_s, b_s, 1800)
    assert reports["home"].discharged_wh == pytest.approx(pos, rel=1e-4)
    assert reports["home"].charged_wh == pytest.approx(neg, rel=1e-4)
    assert reports["home"].coverage == pytest.approx(1.0)
    pos2, neg2 = _fine_reference(ts[hole] + 7.0, -power[hole], a_s, b_s, 1800)
    assert reports["home2"].discharged_wh == pytest.approx(pos2, rel=1e-4)
    assert reports["home2"].charged_wh == pytest.approx(neg2, rel=1e-4)
    assert reports["home2"].coverage < 0.9
    assert reports["absent"].samples == 0 and reports["absent"].discharged_wh == 0
    assert reports["home"].samples == int(np.count_nonzero((ts >= a_s) & (ts <= b_s)))
    print(f"\nhome discharged {reports['home'].discharged_wh / 1000:.3f} kWh "
          f"→ {compensation(reports['home'].discharged_wh, 2)} at 2/kWh")
