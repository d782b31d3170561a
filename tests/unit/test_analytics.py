"""The pure analytics core: direct solar use, local days of 23 and 25 hours, rollup choice per
zone and tariff, tariff boundaries (DST included), gaps, a home without battery, capacity fade on
synthetic cycles with a known answer, LTTB and the series resolution."""

import datetime as dt
import math

import numpy as np
import pytest

from services.analytics import series
from services.analytics.capacity import BatteryBuckets, CapacityOptions, capacity_trend, fit_line, half_cycles
from services.analytics.flows import E, Flows
from services.analytics.localtime import (
    day_of,
    days_covering,
    local_clock,
    local_days,
    offsets_s,
    read_plan,
    read_resolution,
    zone,
)
from services.analytics.summary import BucketEnergy, ZonePart, merge, summarize
from services.analytics.tariffs import Tariff, TariffError, TouWindow, flat
from services.telemetry.energy import ENERGY_FIELDS, POWER_FIELDS, Samples, direct_use_wh, energy_by_bucket

NY, SYDNEY, UTC = zone("America/New_York"), zone("Australia/Sydney"), zone("UTC")
P = {name: i for i, name in enumerate(POWER_FIELDS)}


def hourly(days, per_hour: dict[str, float]) -> BucketEnergy:
    """Hour buckets over `days` with the same energy every hour (full coverage)."""
    starts = np.arange(days[0].start_ms, days[-1].end_ms, 3_600_000, dtype=np.int64)
    energy = np.zeros((len(starts), len(ENERGY_FIELDS)))
    for name, value in per_hour.items():
        energy[:, E[name]] = value
    energy[:, E["covered_s"]] = 3_600
    return BucketEnergy(starts, energy)


# ------------------------------------------------------------ direct solar use

def test_direct_use_is_exact_against_fine_quadrature():
    rng = np.random.default_rng(3)
    n = 2_000
    s0, s1, l0, l1 = (rng.uniform(-200, 3_000, n) for _ in range(4))
    dt_s = rng.uniform(1, 1_800, n)
    got = direct_use_wh(s0, s1, l0, l1, dt_s)
    steps = 20_000
    f = (np.arange(steps) + 0.5) / steps  # midpoint rule on the piecewise-linear integrand
    s = s0[:, None] + f * (s1 - s0)[:, None]
    load = l0[:, None] + f * (l1 - l0)[:, None]
    want = np.maximum(np.minimum(s, load), 0).mean(axis=1) * dt_s / 3_600
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_direct_use_in_buckets_never_exceeds_solar_or_load():
    ts = np.arange(0, 7_200_001, 600_000, dtype=np.int64)
    values = np.zeros((len(ts), len(POWER_FIELDS)))
    values[:, P["solar_power_w"]] = np.linspace(0, 4_000, len(ts))
    values[:, P["load_power_w"]] = 1_500.0
    table = energy_by_bucket(Samples(np.zeros(len(ts), np.int64), np.zeros(len(ts), np.int64), ts, values), 900)
    direct, solar, load = (table.values[:, E[f]] for f in ("solar_direct_wh", "solar_wh", "load_wh"))
    assert (direct <= solar + 1e-9).all() and (direct <= load + 1e-9).all()
    # solar ramps 0 → 4 kW over two hours; the load takes min(solar, 1.5 kW)
    t_cross_h = 1_500 / 2_000
    want = 1_500 * t_cross_h / 2 + 1_500 * (2 - t_cross_h)
    assert direct.sum() == pytest.approx(want, rel=1e-9)


# ------------------------------------------------------------ local days

def test_days_of_23_and_25_hours():
    spring = local_days(dt.date(2024, 3, 9), dt.date(2024, 3, 12), NY)
    assert [d.hours for d in spring] == [24, 23, 24]
    autumn = local_days(dt.date(2024, 11, 2), dt.date(2024, 11, 5), NY)
    assert [d.hours for d in autumn] == [24, 25, 24]
    sydney = local_days(dt.date(2011, 10, 1), dt.date(2011, 10, 3), SYDNEY)
    assert [d.hours for d in sydney] == [24, 23]
    assert days_covering(sydney[0].start_ms + 1, sydney[1].end_ms, SYDNEY) == sydney


def test_local_clock_matches_datetime_for_every_bucket_of_a_year():
    for name, step_s in (("America/New_York", 3_600), ("Australia/Lord_Howe", 900), ("Asia/Kolkata", 900),
                         ("Europe/London", 3_600)):
        tz = zone(name)
        days = local_days(dt.date(2024, 1, 1), dt.date(2025, 1, 1), tz)
        starts = np.arange(days[0].start_ms, days[-1].end_ms, step_s * 1_000, dtype=np.int64)
        clock = local_clock(starts, days, tz)
        local = [dt.datetime.fromtimestamp(t / 1_000, tz) for t in starts.tolist()]
        assert clock.minute.tolist() == [t.hour * 60 + t.minute for t in local], name
        assert clock.weekday.tolist() == [t.isoweekday() for t in local], name
        assert clock.month.tolist() == [t.month for t in local], name


@pytest.mark.parametrize(("zone_name", "minutes", "want"), [
    ("UTC", (), 86_400),
    ("UTC", (17 * 60, 21 * 60), 3_600),
    ("America/New_York", (), 3_600),
    ("America/New_York", (16 * 60 + 30,), 900),
    ("Asia/Kolkata", (), 900),           # +05:30
    ("Asia/Kathmandu", (), 900),         # +05:45
    ("Australia/Adelaide", (), 900),     # +09:30 / +10:30
    ("America/St_Johns", (), 900),       # −03:30 / −02:30
    ("Australia/Lord_Howe", (), 900),    # +10:30 / +11:00 (half-hour DST)
    ("Europe/Berlin", (7,), 60),
])
def test_read_resolution_cuts_at_every_midnight_and_tariff_boundary(zone_name, minutes, want):
    tz = zone(zone_name)
    days = local_days(dt.date(2024, 1, 1), dt.date(2025, 1, 1), tz)
    resolution = read_resolution(offsets_s(days, tz), minutes)
    assert resolution == want
    size = resolution * 1_000
    assert all(d.start_ms % size == 0 for d in days)


def test_read_plan_reads_minutes_at_the_edges_only():
    hour = 3_600_000
    plan = read_plan(10 * hour + 17 * 60_000 + 5, 14 * hour + 3 * 60_000, 3_600)
    assert [(p.resolution_s, p.start_ms, p.end_ms) for p in plan] == [
        (60, 10 * hour + 17 * 60_000, 11 * hour), (3_600, 11 * hour, 14 * hour),
        (60, 14 * hour, 14 * hour + 3 * 60_000)]
    assert [p.resolution_s for p in read_plan(hour, 3 * hour, 3_600)] == [3_600]
    assert [p.resolution_s for p in read_plan(hour + 60_000, hour + 120_000, 3_600)] == [60]


# ------------------------------------------------------------ daily totals

def test_daily_totals_on_dst_days_have_23_and_25_hours_of_energy():
    for first, end, hours in ((dt.date(2024, 3, 10), dt.date(2024, 3, 11), 23),
                              (dt.date(2024, 11, 3), dt.date(2024, 11, 4), 25)):
        days = local_days(first, end, NY)
        report = summarize(hourly(days, {"load_wh": 1_000, "grid_import_wh": 1_000}),
                           days[0].start_ms, days[-1].end_ms, days, NY, None)
        (day,) = report.days
        assert day.flows.load_wh == pytest.approx(hours * 1_000)
        assert day.flows.span_s == hours * 3_600
        assert day.flows.coverage == pytest.approx(1.0)


def test_partial_range_counts_only_its_part_of_each_day():
    days = local_days(dt.date(2024, 6, 1), dt.date(2024, 6, 3), NY)
    start, end = days[0].start_ms + 6 * 3_600_000, days[1].start_ms + 12 * 3_600_000
    report = summarize(hourly(days, {"load_wh": 500}), start, end, days, NY, None)
    assert [d.flows.load_wh for d in report.days] == [pytest.approx(18 * 500), pytest.approx(12 * 500)]
    assert report.total.span_s == 30 * 3_600


def test_a_gap_longer_than_the_limit_is_not_integrated_and_shows_in_coverage():
    # 1 kW load sampled every minute for a day in New York, silent from 10:00 to 13:00 local
    days = local_days(dt.date(2024, 6, 1), dt.date(2024, 6, 2), NY)
    ts = np.arange(days[0].start_ms, days[0].end_ms + 1, 60_000, dtype=np.int64)
    silent = (ts > days[0].start_ms + 10 * 3_600_000) & (ts < days[0].start_ms + 13 * 3_600_000)
    ts = ts[~silent]
    values = np.zeros((len(ts), len(POWER_FIELDS)))
    values[:, P["load_power_w"]] = values[:, P["site_power_w"]] = 1_000.0
    minutes = energy_by_bucket(Samples(np.zeros(len(ts), np.int64), np.zeros(len(ts), np.int64), ts, values),
                               max_gap_s=300)
    report = summarize(BucketEnergy(minutes.bucket_ms, minutes.values), days[0].start_ms, days[0].end_ms, days, NY,
                       None)
    assert report.total.load_wh == pytest.approx(21 * 1_000)
    assert report.total.covered_s == pytest.approx(21 * 3_600)
    assert report.total.coverage == pytest.approx(21 / 24)


# ------------------------------------------------------------ ratios and the home without battery

def test_ratios_follow_their_definitions_and_are_none_without_denominator():
    f = Flows(solar_wh=10_000, grid_export_wh=4_000, load_wh=8_000, grid_import_wh=2_000, solar_direct_wh=3_000)
    assert f.solar_self_consumed_wh == 6_000
    assert f.self_consumption_ratio == pytest.approx(0.6)
    assert f.self_sufficiency_ratio == pytest.approx(0.75)
    assert f.direct_use_ratio == pytest.approx(0.3)
    night = Flows(load_wh=5_000, grid_import_wh=5_000)
    assert night.self_consumption_ratio is None and night.self_sufficiency_ratio == 0
    assert Flows().self_sufficiency_ratio is None and Flows().coverage is None
    # a battery charged from the grid, with losses, imports more than the home uses
    assert Flows(load_wh=1_000, grid_import_wh=1_200).self_sufficiency_ratio == 0


def test_home_without_battery_saves_nothing_by_its_battery():
    """No battery: per interval import = load − direct use and export = solar − direct use, so
    the "without battery" counterfactual is the actual home, to rounding."""
    rng = np.random.default_rng(11)
    day_ms = 86_400_000
    ts = np.arange(0, 3 * day_ms + 1, 30_000, dtype=np.int64)
    t_h = ts / 3.6e6
    solar = np.maximum(0, 3_000 * np.sin((t_h % 24 - 6) / 12 * math.pi)) * rng.uniform(0.6, 1.0, len(ts))
    load = 400 + 1_500 * rng.random(len(ts))
    values = np.zeros((len(ts), len(POWER_FIELDS)))
    values[:, P["solar_power_w"]], values[:, P["load_power_w"]] = solar, load
    values[:, P["site_power_w"]] = load - solar
    table = energy_by_bucket(Samples(np.zeros(len(ts), np.int64), np.zeros(len(ts), np.int64), ts, values), 300)
    tz = UTC
    days = local_days(dt.date(1970, 1, 1), dt.date(1970, 1, 4), tz)
    tariff = Tariff(0.30, 0.08, (TouWindow(17 * 60, 21 * 60, 0.55, name="peak"),))
    report = summarize(BucketEnergy(table.bucket_ms, table.values), 0, 3 * day_ms, days, tz, tariff)
    flows, cost = report.total, report.cost
    assert flows.battery_charge_wh == flows.battery_discharge_wh == 0
    assert flows.grid_import_wh == pytest.approx(flows.load_wh - flows.solar_direct_wh, rel=1e-9)
    assert flows.grid_export_wh == pytest.approx(flows.solar_wh - flows.solar_direct_wh, rel=1e-9)
    assert cost is not None
    assert cost.battery_savings == pytest.approx(0, abs=1e-6)
    assert cost.solar_savings == pytest.approx(cost.total_savings) and cost.solar_savings > 0
    assert flows.self_consumption_ratio == pytest.approx(flows.direct_use_ratio)


# ------------------------------------------------------------ tariffs

PEAK = TouWindow(17 * 60, 21 * 60, 0.50, export_price_per_kwh=0.20, name="peak")
NIGHT = TouWindow(22 * 60, 6 * 60, 0.10, name="night")  # wraps past midnight
TOU = Tariff(0.30, 0.05, (PEAK, NIGHT), "USD")


def day_cost(first: dt.date, tariff: Tariff, per_hour: dict[str, float], tz=NY):
    days = local_days(first, first + dt.timedelta(days=1), tz)
    report = summarize(hourly(days, per_hour), days[0].start_ms, days[-1].end_ms, days, tz, tariff)
    assert report.cost is not None
    return report.cost


def test_time_of_use_prices_each_hour_in_local_time():
    cost = day_cost(dt.date(2024, 6, 5), TOU, {"grid_import_wh": 1_000, "load_wh": 1_000})
    # 4 h peak, 8 h night (22–06), 12 h at the flat price
    assert cost.import_cost == pytest.approx(4 * 0.50 + 8 * 0.10 + 12 * 0.30)
    assert cost.no_solar_import_cost == pytest.approx(cost.import_cost)
    exported = day_cost(dt.date(2024, 6, 5), TOU, {"grid_export_wh": 1_000, "solar_wh": 1_000})
    assert exported.export_revenue == pytest.approx(4 * 0.20 + 20 * 0.05)  # night keeps the flat export


def test_tariff_windows_on_days_of_23_and_25_hours():
    # the night window loses its 02:00 hour when clocks spring forward, and 01:00–02:00 comes twice
    spring = day_cost(dt.date(2024, 3, 10), TOU, {"grid_import_wh": 1_000, "load_wh": 1_000})
    assert spring.import_cost == pytest.approx(4 * 0.50 + 7 * 0.10 + 12 * 0.30)
    autumn = day_cost(dt.date(2024, 11, 3), TOU, {"grid_import_wh": 1_000, "load_wh": 1_000})
    assert autumn.import_cost == pytest.approx(4 * 0.50 + 9 * 0.10 + 12 * 0.30)


def test_window_boundaries_at_quarter_hours_and_weekday_windows():
    quarter = Tariff(0.20, 0.0, (TouWindow(16 * 60 + 30, 16 * 60 + 45, 1.00),))
    days = local_days(dt.date(2024, 6, 5), dt.date(2024, 6, 6), NY)
    resolution = read_resolution(offsets_s(days, NY), quarter.boundary_minutes())
    assert resolution == 900
    starts = np.arange(days[0].start_ms, days[0].end_ms, 900_000, dtype=np.int64)
    energy = np.zeros((len(starts), len(ENERGY_FIELDS)))
    energy[:, E["grid_import_wh"]] = 250.0  # 1 kW for 15 minutes
    report = summarize(BucketEnergy(starts, energy), days[0].start_ms, days[0].end_ms, days, NY, quarter)
    assert report.cost is not None
    assert report.cost.import_cost == pytest.approx(0.25 * 1.00 + 23.75 * 0.20)

    weekdays = Tariff(0.20, 0.0, (TouWindow(0, 1_440, 0.40, weekdays=frozenset(range(1, 6))),))
    week = local_days(dt.date(2024, 6, 3), dt.date(2024, 6, 10), NY)  # Monday to Sunday
    report = summarize(hourly(week, {"grid_import_wh": 1_000}), week[0].start_ms, week[-1].end_ms, week, NY,
                       weekdays)
    assert [round(d.cost.import_cost, 6) for d in report.days] == [9.6] * 5 + [4.8] * 2


def test_first_matching_window_wins_and_bad_tariffs_are_refused():
    overlapping = Tariff(0.30, 0.0, (TouWindow(0, 720, 0.10), TouWindow(360, 1_080, 0.90)))
    cost = day_cost(dt.date(2024, 6, 5), overlapping, {"grid_import_wh": 1_000}, tz=UTC)
    assert cost.import_cost == pytest.approx(12 * 0.10 + 6 * 0.90 + 6 * 0.30)
    for bad in (lambda: flat(-0.1), lambda: flat(math.nan), lambda: Tariff(0.1, 0, (TouWindow(60, 60, 0.2),)),
                lambda: Tariff(0.1, 0, (TouWindow(0, 1_441, 0.2),)),
                lambda: Tariff(0.1, 0, (TouWindow(0, 60, 0.2, weekdays=frozenset({0})),))):
        with pytest.raises(TariffError):
            bad()


def test_savings_against_the_home_without_battery_and_without_solar():
    cost = day_cost(dt.date(2024, 6, 5), flat(0.30, 0.10), {
        "load_wh": 1_000, "solar_wh": 600, "solar_direct_wh": 400, "grid_import_wh": 300, "grid_export_wh": 0})
    # per hour: actual 0.3 kWh in; without battery 0.6 in, 0.2 out; without either 1.0 in
    assert cost.net_cost == pytest.approx(24 * 0.09)
    assert cost.no_battery_net_cost == pytest.approx(24 * (0.18 - 0.02))
    assert cost.no_solar_no_battery_net_cost == pytest.approx(24 * 0.30)
    assert cost.battery_savings == pytest.approx(24 * 0.07)
    assert cost.solar_savings == pytest.approx(24 * 0.14)
    assert cost.total_savings == pytest.approx(24 * 0.21)


def test_group_days_merge_each_members_own_local_day():
    ny_days = local_days(dt.date(2024, 6, 5), dt.date(2024, 6, 6), NY)
    syd_days = local_days(dt.date(2024, 6, 5), dt.date(2024, 6, 6), SYDNEY)
    parts = [ZonePart(hourly(ny_days, {"load_wh": 1_000}), ny_days[0].start_ms, ny_days[0].end_ms, ny_days, NY, 2),
             ZonePart(hourly(syd_days, {"load_wh": 500}), syd_days[0].start_ms, syd_days[0].end_ms, syd_days,
                      SYDNEY, 1)]
    report = merge(parts, None)
    (day,) = report.days
    assert day.date == dt.date(2024, 6, 5)
    assert day.flows.load_wh == pytest.approx(24 * 1_500)
    assert day.flows.span_s == 3 * 86_400
    assert day.flows.coverage == pytest.approx(2 / 3)  # the buckets hold one hour of data each


def test_day_of_assigns_buckets_to_days_and_none_outside():
    days = local_days(dt.date(2024, 6, 5), dt.date(2024, 6, 7), NY)
    buckets = np.array([days[0].start_ms - 1, days[0].start_ms, days[1].start_ms - 1, days[1].start_ms,
                        days[1].end_ms], dtype=np.int64)
    assert day_of(buckets, days).tolist() == [-1, 0, 0, 1, -1]


# ------------------------------------------------------------ capacity

def synthetic_battery(years: float, nominal_wh: float, fade_per_year: float, efficiency: float,
                      resolution_s: int = 900) -> BatteryBuckets:
    """A battery cycled once a day, 10 % → 90 % from 10:00 to 14:00 and back from 18:00 to 22:00,
    losing `fade_per_year` of its nominal capacity a year. Energy is measured outside the battery:
    charging takes ΔSoC·C/√η, discharging gives ΔSoC·C·√η."""
    per_day = 86_400 // resolution_s
    n = int(years * 365.25) * per_day
    t_ms = np.arange(n, dtype=np.int64) * resolution_s * 1_000 + 1_700_000_000_000 // 86_400_000 * 86_400_000
    hour = (np.arange(n) % per_day) * resolution_s / 3_600
    capacity = nominal_wh * (1 - fade_per_year * (t_ms - t_ms[0]) / (365.25 * 86_400_000))
    rate = 80 / 4 * resolution_s / 3_600  # SoC points per bucket
    soc = np.full(n + 1, 10.0)
    charge, discharge = np.zeros(n), np.zeros(n)
    for i in range(n):
        step = rate if 10 <= hour[i] < 14 else -rate if 18 <= hour[i] < 22 else 0.0
        soc[i + 1] = soc[i] + step
        if step > 0:
            charge[i] = step / 100 * capacity[i] / math.sqrt(efficiency)
        elif step < 0:
            discharge[i] = -step / 100 * capacity[i] * math.sqrt(efficiency)
    return BatteryBuckets(t_ms, resolution_s, charge, discharge, np.minimum(soc[:-1], soc[1:]),
                          np.maximum(soc[:-1], soc[1:]), np.full(n, 900, np.int64), np.full(n, float(resolution_s)))


def test_capacity_fade_regression_on_synthetic_cycles():
    nominal = 13_500.0
    trend = capacity_trend(synthetic_battery(2.0, nominal, 0.03, 0.90), nominal)
    assert len(trend.cycles) == pytest.approx(730, abs=2)
    assert all(h.swing_pct == pytest.approx(80.0) for h in trend.half_cycles)
    assert trend.by_time is not None and trend.by_cycle is not None
    assert trend.by_time.slope == pytest.approx(-0.03 * nominal, rel=0.01)
    assert trend.fade_pct_per_year == pytest.approx(-3.0, rel=0.01)
    assert trend.by_time.r_squared == pytest.approx(1.0, abs=1e-6)
    # one discharge of 80 % of the (fading) capacity·√η a day
    assert trend.by_cycle.slope == pytest.approx(-0.03 * nominal / (365.25 * 0.8 * math.sqrt(0.9) * 0.97), rel=0.03)
    assert all(c.round_trip_efficiency == pytest.approx(0.90, rel=1e-4) for c in trend.cycles)
    assert trend.cycles[0].capacity_wh == pytest.approx(nominal, rel=1e-3)
    assert trend.end_of_life_ms is not None
    years_to_80 = (trend.end_of_life_ms - trend.cycles[0].at_ms) / (365.25 * 86_400_000)
    assert years_to_80 == pytest.approx(0.2 / 0.03, rel=0.01)


def test_capacity_skips_shallow_cycles_gaps_and_a_battery_that_never_moves():
    b = synthetic_battery(0.2, 10_000, 0.0, 1.0)
    trend = capacity_trend(b, 10_000)
    assert trend.by_time is not None and trend.by_time.slope == pytest.approx(0, abs=1e-6)
    assert trend.end_of_life_ms is None  # not fading: no projection
    shallow = half_cycles(b, CapacityOptions(min_swing_pct=90))
    assert shallow == []
    holey = BatteryBuckets(b.bucket_ms, b.resolution_s, b.charge_wh, b.discharge_wh, b.soc_min_pct, b.soc_max_pct,
                           b.sample_count, np.where(np.arange(len(b.bucket_ms)) % 96 == 46, 0.0, b.covered_s))
    hole_ms = b.bucket_ms[46::96]
    split = half_cycles(holey)  # a hole ends a run: its parts are estimates of their own, none spans it
    assert len(split) > len(half_cycles(b))
    assert all(h.capacity_wh == pytest.approx(10_000) for h in split)
    assert not any(((hole_ms >= h.start_ms) & (hole_ms < h.end_ms)).any() for h in split)
    idle = BatteryBuckets(b.bucket_ms, b.resolution_s, np.zeros(len(b.bucket_ms)), np.zeros(len(b.bucket_ms)),
                          np.full(len(b.bucket_ms), 50.0), np.full(len(b.bucket_ms), 50.0), b.sample_count,
                          b.covered_s)
    none = capacity_trend(idle, None)
    assert none.cycles == () and none.capacity_wh is None and none.by_time is None


def test_fit_line_r_squared():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    fit = fit_line(x, 2 * x + 1)
    assert fit is not None and (fit.slope, fit.intercept, fit.r_squared) == pytest.approx((2, 1, 1))
    noisy = fit_line(x, np.array([1.0, 2.0, 1.0, 2.0]))
    assert noisy is not None and noisy.r_squared == pytest.approx(0.2)
    assert fit_line(np.array([1.0]), np.array([1.0])) is None


# ------------------------------------------------------------ series

def test_series_resolution_from_the_range():
    day, year = 86_400_000, 365 * 86_400_000
    assert series.choose_resolution(0, day, 1_000, raw_count=3_000) == series.RAW
    assert series.choose_resolution(0, day, 1_000, raw_count=86_400) == 60
    assert series.choose_resolution(0, 30 * day, 1_000, raw_count=None) == 900
    assert series.choose_resolution(0, year, 1_000, raw_count=None) == 3_600
    assert series.choose_resolution(0, 20 * year, 1_000, raw_count=None) == 86_400
    assert series.choose_resolution(0, 200 * year, 1_000, raw_count=None) == 86_400


def test_lttb_keeps_the_budget_the_ends_and_the_spikes():
    rng = np.random.default_rng(5)
    ts = np.arange(100_000, dtype=np.int64) * 1_000
    y = rng.normal(0, 1, len(ts))
    y[31_337], y[77_777] = 50.0, -60.0
    kept = series.lttb(ts, y, 500)
    assert len(kept) == 500 and kept[0] == 0 and kept[-1] == len(ts) - 1
    assert {31_337, 77_777} <= set(kept.tolist())
    assert (np.diff(kept) > 0).all()
    assert series.lttb(ts[:10], y[:10], 500).tolist() == list(range(10))
