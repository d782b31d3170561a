"""The real household year (Ausgrid customer 12, Sydney, half-hourly) stored through the real
TelemetryStore: daily totals, self-consumption, self-sufficiency, direct solar use and cost from
the analytics equal an independent pandas computation on the same samples.

The CSV's timestamps are Sydney wall-clock time with daylight saving: on 2011-10-02 the rows for
02:00 and 02:30 do not exist in local time (the file has zeros there; they are dropped), and on
2012-04-01 02:00 and 02:30 happen twice but appear once (taken as the first, daylight time), so
that 25-hour day has a 90-minute hole, longer than the store's 60-minute gap limit."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from gridtwin.api.device.v1 import device_pb2
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from services.analytics.reader import AnalyticsReader, Site
from services.analytics.service import Analytics, LocalDates
from services.analytics.tariffs import Tariff, TouWindow
from services.telemetry.store import TelemetryStore
from tests.data import HOUSEHOLD_CSV

pytestmark = pytest.mark.integration

SITE = Site("ausgrid-12", "Australia/Sydney", None)
MAX_GAP_S = 3_600
YEAR = LocalDates(dt.date(2011, 7, 1), dt.date(2012, 7, 1))
TARIFF = Tariff(0.12, 0.08, (
    TouWindow(14 * 60, 20 * 60, 0.50, weekdays=frozenset(range(1, 6)), name="peak"),
    TouWindow(7 * 60, 22 * 60, 0.25, name="shoulder"),
), "AUD")


def household() -> pd.DataFrame:
    """Samples at UTC instants: load and solar mean power (kWh per half hour × 2000 → W)."""
    frame = pd.read_csv(HOUSEHOLD_CSV, index_col=0, parse_dates=True)
    local = frame.index.tz_localize("Australia/Sydney", ambiguous=np.ones(len(frame), bool), nonexistent="NaT")
    frame = frame[~local.isna()].set_axis(local[~local.isna()].tz_convert("UTC"))
    return pd.DataFrame({"load_w": frame["GC"] * 2_000.0, "solar_w": frame["GG"] * 2_000.0}, index=frame.index)


def records(frame: pd.DataFrame, per_record: int = 1_000) -> list[TelemetryRecord]:
    ts_ms = frame.index.as_unit("ms").asi8
    out = []
    for lo in range(0, len(frame), per_record):
        samples = [device_pb2.Sample(timestamp_unix_ms=int(t), load_power_w=float(load), solar_power_w=float(solar),
                                     site_power_w=float(load - solar), state_of_charge_pct=0.0,
                                     grid_status=device_pb2.GRID_STATUS_CONNECTED)
                   for t, load, solar in zip(ts_ms[lo:lo + per_record], frame["load_w"].iloc[lo:lo + per_record],
                                             frame["solar_w"].iloc[lo:lo + per_record], strict=True)]
        out.append(TelemetryRecord(device_id="ausgrid-12-meter", installation_id=SITE.installation_id,
                                   sequence=lo, received_unix_ms=int(ts_ms[-1]), samples=samples))
    return out


def independent(frame: pd.DataFrame) -> pd.DataFrame:
    """Per Sydney day, from the samples alone: trapezoids between consecutive samples at most
    MAX_GAP_S apart, sign splits and min(solar, load) by fine quadrature of the linear segments,
    and the TOU price of each segment's local start (segments never cross an hour boundary)."""
    t = frame.index.as_unit("ms").asi8
    ok = np.diff(t) <= MAX_GAP_S * 1_000
    t0 = frame.index[:-1][ok]
    dt_h = (np.diff(t) / 3.6e6)[ok]
    load, solar = frame["load_w"].to_numpy(), frame["solar_w"].to_numpy()
    l0, l1, s0, s1 = load[:-1][ok], load[1:][ok], solar[:-1][ok], solar[1:][ok]
    f = (np.arange(600) + 0.5) / 600
    lf = l0[:, None] + f * (l1 - l0)[:, None]
    sf = s0[:, None] + f * (s1 - s0)[:, None]
    site = lf - sf
    local = t0.tz_convert("Australia/Sydney")
    minute = local.hour * 60 + local.minute
    weekday = local.day_of_week + 1
    price = np.where((minute >= 840) & (minute < 1_200) & (weekday <= 5), 0.50,
                     np.where((minute >= 420) & (minute < 1_320), 0.25, 0.12))
    seg = pd.DataFrame({
        "date": local.date,
        "load_wh": (l0 + l1) / 2 * dt_h,
        "solar_wh": (s0 + s1) / 2 * dt_h,
        "grid_import_wh": np.maximum(site, 0).mean(axis=1) * dt_h,
        "grid_export_wh": np.maximum(-site, 0).mean(axis=1) * dt_h,
        "solar_direct_wh": np.maximum(np.minimum(sf, lf), 0).mean(axis=1) * dt_h,
        "covered_s": dt_h * 3_600,
    })
    seg["import_cost"] = seg["grid_import_wh"] / 1_000 * price
    seg["export_revenue"] = seg["grid_export_wh"] / 1_000 * 0.08
    seg["no_solar_cost"] = seg["load_wh"] / 1_000 * price
    return seg.groupby("date").sum()


@pytest.fixture(scope="module")
async def loaded(pool):
    await pool.execute("TRUNCATE telemetry_samples, telemetry_rollups, devices, installations, customers, "
                       "hierarchy_groups, programs, vpp_program_terms, group_memberships, enrollment_audit, "
                       "api_principals")
    await pool.execute("INSERT INTO installations (installation_id, time_zone) VALUES ($1, $2)",
                       SITE.installation_id, SITE.time_zone)
    frame = household()
    store = TelemetryStore(pool, max_gap_s=MAX_GAP_S)
    for record in records(frame):
        await store.write([record])
    return frame, Analytics(AnalyticsReader(pool))


async def test_daily_totals_and_ratios_equal_pandas(loaded):
    frame, analytics = loaded
    result = await analytics.energy([SITE], YEAR, TARIFF)
    assert result.resolutions_s == (3_600,)  # Sydney is +10/+11 and the windows are on the hour
    want = independent(frame)
    days = result.report.days
    assert len(days) == 366  # 2012 is a leap year
    for day in days:
        w = want.loc[day.date]
        f = day.flows
        for name in ("load_wh", "solar_wh", "grid_import_wh", "grid_export_wh", "solar_direct_wh", "covered_s"):
            assert getattr(f, name) == pytest.approx(w[name], rel=1e-6, abs=1e-3), (day.date, name)
        assert f.battery_charge_wh == f.battery_discharge_wh == 0
        if w["solar_wh"] > 0:
            assert f.self_consumption_ratio == pytest.approx((w["solar_wh"] - w["grid_export_wh"]) / w["solar_wh"],
                                                             rel=1e-6, abs=1e-9)
        assert f.self_sufficiency_ratio == pytest.approx((w["load_wh"] - w["grid_import_wh"]) / w["load_wh"],
                                                         rel=1e-6, abs=1e-9)
        assert day.cost is not None
        assert day.cost.import_cost == pytest.approx(w["import_cost"], rel=1e-6, abs=1e-6)
        assert day.cost.export_revenue == pytest.approx(w["export_revenue"], rel=1e-6, abs=1e-6)
        assert day.cost.no_solar_no_battery_net_cost == pytest.approx(w["no_solar_cost"], rel=1e-6, abs=1e-6)
        assert day.cost.battery_savings == pytest.approx(0, abs=1e-6)  # this home has no battery

    total = result.report.total
    assert total.load_wh == pytest.approx(want["load_wh"].sum(), rel=1e-9)
    assert total.self_consumption_ratio == pytest.approx(
        (want["solar_wh"].sum() - want["grid_export_wh"].sum()) / want["solar_wh"].sum(), rel=1e-6)
    assert result.report.cost is not None
    assert result.report.cost.net_cost == pytest.approx(
        want["import_cost"].sum() - want["export_revenue"].sum(), rel=1e-6)


async def test_dst_days_and_the_hole_in_the_data(loaded):
    _, analytics = loaded
    result = await analytics.energy([SITE], YEAR, None)
    by_date = {d.date: d for d in result.report.days}
    spring, autumn = by_date[dt.date(2011, 10, 2)], by_date[dt.date(2012, 4, 1)]
    assert (spring.end_ms - spring.start_ms, autumn.end_ms - autumn.start_ms) == (23 * 3_600_000, 25 * 3_600_000)
    assert spring.flows.coverage == pytest.approx(1.0)
    assert autumn.flows.covered_s == pytest.approx(23.5 * 3_600)
    assert by_date[dt.date(2011, 7, 1)].flows.coverage == pytest.approx(1.0)
    assert by_date[dt.date(2012, 6, 30)].flows.covered_s == pytest.approx(23.5 * 3_600)  # the last sample is 23:30
    assert result.report.cost is None


async def test_any_range_with_edges_off_the_hour_reads_minutes_there(loaded):
    frame, analytics = loaded
    from services.analytics.service import Instants

    start = int(pd.Timestamp("2012-01-15 06:17", tz="Australia/Sydney").value // 1_000_000)
    end = int(pd.Timestamp("2012-01-17 19:43", tz="Australia/Sydney").value // 1_000_000)
    result = await analytics.energy([SITE], Instants(start, end), None)
    t = frame.index.as_unit("ms").asi8
    grid = np.arange(start, end + 1, 1_000)  # 1-second trapezoids of the linear interpolation
    load = np.interp(grid, t, frame["load_w"].to_numpy())
    assert result.report.total.load_wh == pytest.approx(np.trapezoid(load, grid / 3.6e6), rel=1e-6)
    assert [d.date for d in result.report.days] == [dt.date(2012, 1, d) for d in (15, 16, 17)]


async def test_the_year_in_figures(loaded):
    """Not vacuous: a real home (11.9 MWh a year) whose small PV (2.6 MWh) mostly feeds it directly."""
    _, analytics = loaded
    result = await analytics.energy([SITE], YEAR, TARIFF)
    total, cost = result.report.total, result.report.cost
    assert 2_000_000 < total.solar_wh < 3_500_000 and 8_000_000 < total.load_wh < 16_000_000
    assert 0 < total.solar_direct_wh < total.solar_wh
    assert total.self_consumption_ratio is not None and 0.5 < total.self_consumption_ratio < 1
    assert cost is not None and cost.solar_savings > 0


async def test_cli_prints_tables_and_writes_charts_and_exports(loaded, platform, pool, tmp_path):
    """`gridtwin analytics report | series | capacity` on the household year: tables, PNG charts,
    CSV and Parquet files that hold the same days as the analytics, through the AnalyticsService."""
    import asyncio

    from typer.testing import CliRunner

    from gridtwin.app import wiring
    from gridtwin.app.cli import app
    from services.access.model import Scope
    from tests.integration.access_support import mint

    tariff = tmp_path / "tariff.json"
    tariff.write_text(json.dumps({"currency": "AUD", "import_price_per_kwh": 0.12, "export_price_per_kwh": 0.08,
                                  "windows": [{"name": "peak", "start": "14:00", "end": "20:00",
                                               "import_price_per_kwh": 0.50, "weekdays": [1, 2, 3, 4, 5]},
                                              {"name": "shoulder", "start": "07:00", "end": "22:00",
                                               "import_price_per_kwh": 0.25}]}))
    settings = platform.model_copy(update={"analytics": platform.analytics.model_copy(update={"port": 0,
                                                                                              "metrics_port": 0})})
    async with wiring.analytics(settings) as server:
        runner = CliRunner(env={"GRIDTWIN_ANALYTICS__PORT": str(server.port), "COLUMNS": "200",  # type: ignore[attr-defined]
                                "GRIDTWIN_TOKEN": await mint(pool, Scope.READ),
                                "GRIDTWIN_CONFIG": str(tmp_path / "no-config.toml")})
        await asyncio.to_thread(_cli_checks, runner, app, tmp_path, tariff)


def _cli_checks(runner, app, tmp_path, tariff):
    out = {name: tmp_path / name for name in ("days.csv", "days.parquet", "days.png", "series.csv", "series.png",
                                              "capacity.png")}
    result = runner.invoke(app, ["analytics", "report", SITE.installation_id, "--from", "2011-07-01",
                                 "--to", "2012-07-01", "--tariff", str(tariff), "--csv", str(out["days.csv"]),
                                 "--parquet", str(out["days.parquet"]), "--chart", str(out["days.png"])])
    assert result.exit_code == 0, result.output
    assert "2012-04-01" in result.output and "total" in result.output and "battery saved" in result.output
    assert "read from 1 h rollups" in result.output and "(3600,)" not in result.output
    days = json.loads(runner.invoke(app, ["analytics", "report", SITE.installation_id, "--from", "2012-04-01",
                                          "--to", "2012-04-03", "-o", "json"]).stdout)
    assert [d["date"] for d in days] == ["2012-04-01", "2012-04-02"] and days[0]["hours"] == 25
    csv, parquet = pd.read_csv(out["days.csv"]), pd.read_parquet(out["days.parquet"])
    assert len(csv) == len(parquet) == 366
    np.testing.assert_allclose(csv["load_wh"], parquet["load_wh"])
    want = independent(household())
    np.testing.assert_allclose(parquet["grid_import_wh"],
                               want["grid_import_wh"].to_numpy(), rtol=1e-6, atol=1e-3)
    assert parquet.loc[parquet["date"] == dt.date(2012, 4, 1), "hours"].item() == 25

    result = runner.invoke(app, ["analytics", "series", SITE.installation_id, "--from", "2012-01-01", "--to",
                                 "2012-01-08", "--points", "200", "--channel", "load_power_w", "--channel",
                                 "solar_power_w", "--csv", str(out["series.csv"]), "--chart", str(out["series.png"])])
    assert result.exit_code == 0, result.output
    series = pd.read_csv(out["series.csv"])
    assert set(series["channel"]) == {"load_power_w", "solar_power_w"}
    assert (series.groupby("channel").size() == 200).all()

    result = runner.invoke(app, ["analytics", "capacity", SITE.installation_id, "--from", "2011-07-01", "--to",
                                 "2012-07-01", "--chart", str(out["capacity.png"])])
    assert result.exit_code == 0, result.output
    assert "0 / 0" in result.output  # no battery, no cycles

    for name in ("days.png", "series.png", "capacity.png"):
        assert out[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = runner.invoke(app, ["analytics", "report", "nowhere", "--from", "2011-07-01", "--to", "2011-07-02"])
    assert refused.exit_code == 3 and refused.output.startswith("error: not found"), refused.output
