"""The AnalyticsService over a real channel against real Postgres: a battery home whose answers
are known (two days, charged 10 → 90 % and back every day), and the access rules it shares with
the AssetService (tokens, scopes, group scoping)."""

import datetime as dt
from zoneinfo import ZoneInfo

import grpc
import numpy as np
import pytest

from gridtwin.api.analytics.v1 import analytics_pb2 as pb
from gridtwin.api.analytics.v1 import analytics_pb2_grpc as pb_grpc
from gridtwin.api.assets.v1 import assets_pb2
from gridtwin.api.device.v1 import device_pb2
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from services.access.model import Scope
from services.analytics.api import AnalyticsApi
from services.telemetry.store import TelemetryStore
from tests.integration.assets_client import bearer, device_auth

pytestmark = pytest.mark.integration

LA = ZoneInfo("America/Los_Angeles")
IN_GROUP, OUT_GROUP = "utility.pge.north_ca", "utility.sce.la_basin"
NOMINAL_WH = 13_500.0  # as assets_client creates installations
FIRST, END = dt.date(2024, 6, 3), dt.date(2024, 6, 5)
DATES = pb.TimeRange(dates=pb.LocalDateRange(first_date=FIRST.isoformat(), end_date=END.isoformat()))


def battery_home(first: dt.date, days: int) -> tuple[np.ndarray, np.ndarray]:
    """1-minute samples over whole local days: 1 kW load, 2 kW from 18:00 to 22:00; 3 kW solar
    10:00–14:00 charging the battery at 2 kW (10 → 69 % of 13.5 kWh); the battery covers the
    evening load. Nothing is exported."""
    start = int(dt.datetime(first.year, first.month, first.day, tzinfo=LA).timestamp() * 1_000)
    ts = start + np.arange(days * 1_440 + 1, dtype=np.int64) * 60_000
    hour = np.array([dt.datetime.fromtimestamp(t / 1_000, LA).hour for t in ts.tolist()])
    load = np.where((hour >= 18) & (hour < 22), 2_000.0, 1_000.0)
    solar = np.where((hour >= 10) & (hour < 14), 3_000.0, 0.0)
    battery = np.where((hour >= 10) & (hour < 14), -2_000.0, np.where((hour >= 18) & (hour < 22), 2_000.0, 0.0))
    site = load - solar - battery
    # state of charge follows the trapezoidal integral of the battery power
    stored_wh = np.concatenate([[0.0], np.cumsum((-battery[1:] - battery[:-1]) / 2 / 60)])
    soc = 10 + stored_wh / NOMINAL_WH * 100
    return ts, np.column_stack([site, battery, solar, load, soc])


async def store(pool, installation_id: str, ts: np.ndarray, values: np.ndarray) -> None:
    samples = [device_pb2.Sample(timestamp_unix_ms=int(t), site_power_w=v[0], battery_power_w=v[1], solar_power_w=v[2],
                                 load_power_w=v[3], state_of_charge_pct=v[4],
                                 grid_status=device_pb2.GRID_STATUS_CONNECTED)
               for t, v in zip(ts.tolist(), values.tolist(), strict=True)]
    await TelemetryStore(pool, max_gap_s=300).write([TelemetryRecord(
        device_id=f"{installation_id}-gw", installation_id=installation_id, sequence=1, received_unix_ms=int(ts[-1]),
        samples=samples)])


@pytest.fixture(scope="module")
async def analytics_api(platform, pool, assets_engine):
    settings = platform.analytics.model_copy(update={"port": 0, "metrics_port": 0, "auth_cache_s": 0.0})
    async with AnalyticsApi(settings, pool, assets_engine, max_gap_s=300) as api:
        yield api


@pytest.fixture
async def world(assets, analytics_api):
    for group in (IN_GROUP, OUT_GROUP):
        await assets.group(group)
    await assets.installation("site-in", -121.49, 38.58, IN_GROUP)
    await assets.installation("site-out", -118.24, 34.05, OUT_GROUP)
    device = await assets.device("site-in", "dev-in")
    ts, values = battery_home(FIRST, 2)
    await store(assets.pool, "site-in", ts, values)
    await store(assets.pool, "site-out", ts, values)
    tokens = {"pge": bearer(await assets.token(Scope.READ, paths=("utility.pge",))),
              "root": bearer(assets.root),
              "device": device_auth("dev-in", device.credential)}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{analytics_api.port}") as channel:
        yield pb_grpc.AnalyticsServiceStub(channel), tokens


async def outcome(call, request, metadata):
    try:
        return grpc.StatusCode.OK, await call(request, metadata=metadata)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details()


async def test_energy_report_of_a_battery_home(world):
    stub, tokens = world
    tariff = pb.Tariff(currency="USD", import_price_per_kwh=0.30, export_price_per_kwh=0.05)
    report = await stub.GetEnergyReport(pb.EnergyReportRequest(
        target=pb.Target(installation_id="site-in"), range=DATES, tariff=tariff), metadata=tokens["pge"])
    assert report.time_zone == "America/Los_Angeles" and report.installations == 1
    assert list(report.resolutions_s) == [3_600] and report.max_gap_s == 300
    assert [d.date for d in report.days] == ["2024-06-03", "2024-06-04"]
    t = report.total
    assert t.load_wh == pytest.approx(56_000, rel=1e-3)
    assert t.solar_wh == pytest.approx(24_000, rel=1e-2)
    assert t.battery_charge_wh == pytest.approx(16_000, rel=1e-2)
    assert t.battery_discharge_wh == pytest.approx(16_000, rel=1e-2)
    assert t.solar_direct_wh == pytest.approx(8_000, rel=1e-2)   # the 1 kW load during 4 sunny hours a day
    assert t.grid_export_wh == pytest.approx(0, abs=50)
    assert t.self_consumption_ratio == pytest.approx(1.0, abs=1e-2)
    assert t.grid_import_wh == pytest.approx(32_000, rel=1e-2)  # 16 hours a day at 1 kW
    assert t.self_sufficiency_ratio == pytest.approx(24 / 56, rel=1e-2)
    assert t.coverage == pytest.approx(1.0)
    c = report.cost
    assert c.import_cost == pytest.approx(t.grid_import_wh / 1_000 * 0.30)
    assert c.no_solar_no_battery_net_cost == pytest.approx(56 * 0.30, rel=1e-3)
    # without the battery the 8 kWh of midday surplus would be exported at 0.05 and bought back at 0.30
    assert c.battery_savings == pytest.approx(16 * (0.30 - 0.05), rel=2e-2)
    assert report.currency == "USD"


async def test_group_reports_sum_their_members(world):
    stub, tokens = world
    one = await stub.GetEnergyReport(pb.EnergyReportRequest(target=pb.Target(group_path="utility.pge"), range=DATES),
                                     metadata=tokens["pge"])
    both = await stub.GetEnergyReport(pb.EnergyReportRequest(target=pb.Target(group_path="utility"), range=DATES,
                                                             omit_days=True), metadata=tokens["root"])
    assert one.installations == 1 and both.installations == 2
    assert both.total.load_wh == pytest.approx(2 * one.total.load_wh)
    assert both.total.span_s == 2 * one.total.span_s
    assert len(both.days) == 0 and len(one.days) == 2


async def test_capacity_trend_of_a_battery_home(world):
    stub, tokens = world
    trend = await stub.GetCapacityTrend(pb.CapacityTrendRequest(installation_id="site-in", range=DATES),
                                        metadata=tokens["pge"])
    assert trend.nominal_wh == NOMINAL_WH
    assert len(trend.half_cycles) == 4 and len(trend.cycles) == 2
    for h in trend.half_cycles:
        assert h.capacity_wh == pytest.approx(NOMINAL_WH, rel=1e-3)
        assert abs(h.soc_end_pct - h.soc_start_pct) == pytest.approx(8_000 / NOMINAL_WH * 100, rel=1e-3)
    assert all(c.round_trip_efficiency == pytest.approx(1.0, rel=1e-3) for c in trend.cycles)
    assert trend.equivalent_full_cycles == pytest.approx(16_000 / NOMINAL_WH, rel=1e-2)


async def test_series_pick_a_resolution_and_keep_the_budget(world):
    stub, tokens = world
    fine = await stub.GetSeries(pb.SeriesRequest(target=pb.Target(installation_id="site-in"), range=DATES,
                                                 max_points=1_000), metadata=tokens["pge"])
    assert fine.resolution == pb.RESOLUTION_RAW and fine.points_read == 2_880
    assert {s.channel for s in fine.series} == {"site_power_w", "battery_power_w", "solar_power_w", "load_power_w",
                                                "state_of_charge_pct"}
    soc = next(s for s in fine.series if s.channel == "state_of_charge_pct")
    assert len(soc.values) == 1_000 and max(soc.values) == pytest.approx(10 + 8_000 / NOMINAL_WH * 100, abs=0.1)
    coarse = await stub.GetSeries(pb.SeriesRequest(target=pb.Target(installation_id="site-in"), range=DATES,
                                                   max_points=50, channels=["battery_power_w"]),
                                  metadata=tokens["pge"])
    assert coarse.resolution == pb.RESOLUTION_FIFTEEN_MINUTES and coarse.points_read == 192
    (battery,) = coarse.series
    assert len(battery.values) == 50 and min(battery.values) == pytest.approx(-2_000)
    group = await stub.GetSeries(pb.SeriesRequest(target=pb.Target(group_path="utility"), range=DATES,
                                                  max_points=200, channels=["load_power_w"]), metadata=tokens["root"])
    assert group.resolution == pb.RESOLUTION_FIFTEEN_MINUTES
    values = group.series[0].values  # two homes of 1 kW, 2 kW in the evening
    assert (min(values), max(values)) == (pytest.approx(2_000), pytest.approx(4_000))


async def test_access_and_input_are_refused_with_the_right_codes(world):
    stub, tokens = world
    report = stub.GetEnergyReport

    def request(**target: str) -> pb.EnergyReportRequest:
        return pb.EnergyReportRequest(target=pb.Target(**target), range=DATES)

    code = grpc.StatusCode
    DENIED, MISSING, UNAUTH, INV = (code.PERMISSION_DENIED, code.NOT_FOUND, code.UNAUTHENTICATED,
                                    code.INVALID_ARGUMENT)
    cases = [
        (request(installation_id="site-out"), tokens["pge"], DENIED),
        (request(group_path=OUT_GROUP), tokens["pge"], DENIED),
        (request(group_path="utility"), tokens["pge"], DENIED),       # above the token's paths
        (request(installation_id="nowhere"), tokens["pge"], MISSING),
        (request(group_path="utility.nobody"), tokens["root"], MISSING),
        (request(installation_id="site-in"), tokens["device"], DENIED),
        (request(installation_id="site-in"), bearer("gta_not-a-token"), UNAUTH),
        (request(installation_id="site-in"), (), UNAUTH),
        (request(), tokens["root"], INV),
        (pb.EnergyReportRequest(target=pb.Target(installation_id="site-in")), tokens["root"], INV),
        (pb.EnergyReportRequest(target=pb.Target(installation_id="site-in"), range=pb.TimeRange(
            dates=pb.LocalDateRange(first_date="2024-06-05", end_date="2024-06-03"))), tokens["root"], INV),
        (pb.EnergyReportRequest(target=pb.Target(installation_id="site-in"), range=DATES, tariff=pb.Tariff(
            import_price_per_kwh=0.3, windows=[pb.TouWindow(start_minute=60, end_minute=60)])), tokens["root"], INV),
    ]
    for req, metadata, want in cases:
        got, detail = await outcome(report, req, metadata)
        assert got == want, (req, detail)
    got, _ = await outcome(stub.GetCapacityTrend, pb.CapacityTrendRequest(installation_id="site-out", range=DATES),
                            tokens["pge"])
    assert got == DENIED
    got, _ = await outcome(stub.GetSeries, pb.SeriesRequest(target=pb.Target(group_path="utility"), range=DATES,
                                                             resolution=pb.RESOLUTION_RAW), tokens["root"])
    assert got == INV
    got, _ = await outcome(stub.GetSeries, pb.SeriesRequest(target=pb.Target(installation_id="site-in"),
                                                             range=DATES, channels=["voltage"]), tokens["root"])
    assert got == INV
    assets_read = await stub.GetEnergyReport(request(installation_id="site-in"), metadata=tokens["pge"])
    assert assets_read.installations == 1


async def test_an_installation_created_through_assets_is_read_in_its_zone(world, assets):
    stub, tokens = world
    await assets.call("CreateInstallation", assets_pb2.CreateInstallationRequest(
        installation=assets_pb2.Installation(installation_id="site-india", time_zone="Asia/Kolkata",
                                             location=assets_pb2.GeoPoint(longitude_deg=77.2, latitude_deg=28.6)),
        group_paths=[IN_GROUP]))
    report = await stub.GetEnergyReport(pb.EnergyReportRequest(target=pb.Target(installation_id="site-india"),
                                                               range=DATES), metadata=tokens["pge"])
    assert report.time_zone == "Asia/Kolkata" and list(report.resolutions_s) == [900]
    assert report.total.load_wh == 0 and report.total.coverage == 0 and len(report.days) == 2
