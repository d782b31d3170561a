"""The analytics gRPC API (`gridtwin.analytics.v1.AnalyticsService`) with health and reflection.

Access is the access context's: the same Bearer tokens (`services.access.authentication`), the
read scope, and hierarchy scoping (`services.access.rules`): an installation must be visible to
the token (NOT_FOUND when it does not exist, PERMISSION_DENIED outside the token's groups), a
group path must lie within the token's paths, and a group covers all its members. Devices get
PERMISSION_DENIED. Steps in order: UNAUTHENTICATED → PERMISSION_DENIED (scope) →
INVALID_ARGUMENT (input) → PERMISSION_DENIED / NOT_FOUND (target). Errors become status codes in
one place (`gridtwin.grpc_server.observing`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import grpc
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from gridtwin.api.analytics.v1 import analytics_pb2 as pb
from gridtwin.api.analytics.v1 import analytics_pb2_grpc as pb_grpc
from gridtwin.grpc_server import GrpcApi, GrpcServer, observing
from gridtwin.settings import AnalyticsSettings, TlsSettings
from services.access import rules
from services.access.authentication import Authenticator
from services.access.guard import AccessGuard, caller
from services.access.model import Principal
from services.analytics.capacity import DEFAULT_OPTIONS, CapacityOptions, CapacityTrend, Fit
from services.analytics.flows import CHANNELS, Flows
from services.analytics.reader import AnalyticsReader, Site
from services.analytics.service import Analytics, Instants, LocalDates, Range
from services.analytics.summary import Report
from services.analytics.tariffs import Cost, Tariff, TouWindow
from services.assets.errors import InvalidArgument, NotFound, PermissionDenied
from services.assets.paths import parse_path
from services.assets.repository import AssetRepository
from services.assets.validation import parse_id
from services.telemetry.energy import POWER_FIELDS

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["AnalyticsService"]
SERVICE_NAME = SERVICE.full_name
MAX_POINTS = 10_000
RESOLUTION_S: dict[int, int] = {
    pb.RESOLUTION_RAW: 0, pb.RESOLUTION_ONE_MINUTE: 60, pb.RESOLUTION_FIFTEEN_MINUTES: 900,
    pb.RESOLUTION_ONE_HOUR: 3_600, pb.RESOLUTION_ONE_DAY: 86_400,
}
RESOLUTION_PB = {seconds: value for value, seconds in RESOLUTION_S.items()}
_MAX_MS = 253_402_300_800_000  # year 10000

RPCS = Counter("gridtwin_analytics_rpcs_total", "Analytics RPCs finished, by method and status code",
               ["method", "code"])
LATENCY = Histogram(
    "gridtwin_analytics_rpc_latency_seconds", "Analytics RPC latency", ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError)


# ------------------------------------------------------------ converters at the edge

def _date(text: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(field, "a date YYYY-MM-DD") from None


def range_from_pb(message: pb.TimeRange) -> Range:
    which = message.WhichOneof("range")
    if which == "dates":
        return LocalDates(_date(message.dates.first_date, "range.dates.first_date"),
                          _date(message.dates.end_date, "range.dates.end_date"))
    if which == "instants":
        start, end = message.instants.start_unix_ms, message.instants.end_unix_ms
        if not 0 <= start < end <= _MAX_MS:
            raise InvalidArgument("range.instants", "need 0 <= start_unix_ms < end_unix_ms <= year 10000")
        return Instants(start, end)
    raise InvalidArgument("range", "dates or instants required")


def tariff_from_pb(message: pb.Tariff) -> Tariff:
    windows = tuple(TouWindow(
        w.start_minute, w.end_minute, w.import_price_per_kwh,
        w.export_price_per_kwh if w.HasField("export_price_per_kwh") else None,
        frozenset(w.weekdays), frozenset(w.months), w.name) for w in message.windows)
    return Tariff(message.import_price_per_kwh, message.export_price_per_kwh, windows, message.currency)


def _opt(value: float | None) -> dict[str, float]:
    return {} if value is None else {"value": value}


def flows_to_pb(f: Flows) -> pb.EnergyFlows:
    """A channel (and a figure derived from it) whose signal was not reported stays unset."""
    message = pb.EnergyFlows(
        covered_s=f.covered_s, span_s=f.span_s, site_covered_s=f.site_covered_s,
        battery_covered_s=f.battery_covered_s, solar_covered_s=f.solar_covered_s, load_covered_s=f.load_covered_s)
    for channel in CHANNELS:
        energy = f.energy_wh(channel)
        if energy is not None:
            setattr(message, channel, energy)
    for name in ("solar_self_consumed_wh", "self_consumption_ratio", "self_sufficiency_ratio", "direct_use_ratio",
                 "coverage"):
        value = getattr(f, name)
        if value is not None:
            setattr(message, name, value)
    return message


def cost_to_pb(c: Cost) -> pb.Cost:
    message = pb.Cost(import_cost=c.import_cost, export_revenue=c.export_revenue, net_cost=c.net_cost)
    for name in ("no_battery_net_cost", "no_solar_no_battery_net_cost", "battery_savings", "solar_savings",
                 "total_savings"):
        value = getattr(c, name)
        if value is not None:
            setattr(message, name, value)
    return message


def report_to_pb(report: Report, *, time_zone: str, installations: int, resolutions_s: tuple[int, ...],
                 max_gap_s: float, currency: str, days: bool) -> pb.EnergyReport:
    message = pb.EnergyReport(
        time_zone=time_zone, installations=installations, start_unix_ms=report.start_ms, end_unix_ms=report.end_ms,
        total=flows_to_pb(report.total), resolutions_s=list(resolutions_s), max_gap_s=max_gap_s, currency=currency)
    if report.cost is not None:
        message.cost.CopyFrom(cost_to_pb(report.cost))
    if days:
        for d in report.days:
            day = message.days.add(date=d.date.isoformat(), start_unix_ms=d.start_ms, end_unix_ms=d.end_ms,
                                   flows=flows_to_pb(d.flows))
            if d.cost is not None:
                day.cost.CopyFrom(cost_to_pb(d.cost))
    return message


def _fit(fit: Fit | None) -> pb.LinearFit | None:
    if fit is None:
        return None
    message = pb.LinearFit(slope=fit.slope, intercept=fit.intercept, points=fit.points)
    if fit.r_squared is not None:
        message.r_squared = fit.r_squared
    return message


def trend_to_pb(trend: CapacityTrend) -> pb.CapacityTrend:
    message = pb.CapacityTrend(equivalent_full_cycles=trend.equivalent_full_cycles)
    if trend.nominal_wh is not None:
        message.nominal_wh = trend.nominal_wh
    if trend.capacity_wh is not None:
        message.capacity_wh = trend.capacity_wh
    if (by_time := _fit(trend.by_time)) is not None:
        message.by_time.CopyFrom(by_time)
        message.fade_wh_per_year = by_time.slope
    if (by_cycle := _fit(trend.by_cycle)) is not None:
        message.by_cycle.CopyFrom(by_cycle)
        message.fade_wh_per_cycle = by_cycle.slope
    if trend.fade_pct_per_year is not None:
        message.fade_pct_per_year = trend.fade_pct_per_year
    if trend.end_of_life_ms is not None:
        message.end_of_life_unix_ms = trend.end_of_life_ms
    for c in trend.cycles:
        message.cycles.add(at_unix_ms=c.at_ms, capacity_wh=c.capacity_wh,
                           round_trip_efficiency=c.round_trip_efficiency,
                           equivalent_full_cycles=c.equivalent_full_cycles)
    for h in trend.half_cycles:
        message.half_cycles.add(charge=h.direction == "charge", start_unix_ms=h.start_ms, end_unix_ms=h.end_ms,
                                energy_wh=h.energy_wh, soc_start_pct=h.soc_start_pct, soc_end_pct=h.soc_end_pct,
                                capacity_wh=h.capacity_wh)
    return message


# ------------------------------------------------------------ the servicer

Handler = Callable[[Any, Any, Principal], Awaitable[Any]]


_observed = observing(RPCS, LATENCY, unavailable=_UNAVAILABLE, unavailable_detail="analytics storage unavailable")


def _rpc(fn: Handler) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """Runs for the caller the access guard admitted; counted, timed and its errors mapped by
    `gridtwin.grpc_server.observing`."""
    async def run(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await fn(self, request, caller())
    run.__name__ = fn.__name__
    return _observed()(run)


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    def __init__(self, analytics: Analytics, repository: AssetRepository, authenticator: Authenticator, *,
                 max_gap_s: float, default_max_points: int = 1_000) -> None:
        self.analytics = analytics
        self.repository = repository
        self.authenticator = authenticator
        self._max_gap_s = max_gap_s
        self._default_max_points = min(default_max_points, MAX_POINTS)

    async def _sites(self, target: pb.Target, principal: Principal) -> list[Site]:
        """The installations a target names, after the access checks."""
        which = target.WhichOneof("target")
        if which == "installation_id":
            installation_id = parse_id(target.installation_id, "target.installation_id")
            found = await self.repository.get_installation(installation_id, rules.visibility(principal))
            return [Site(found.installation_id, found.time_zone, found.battery_nominal_energy_wh)]
        if which == "group_path":
            path = parse_path(target.group_path, "target.group_path")
            denied = rules.check_path(principal, path)
            if denied is not None:
                raise PermissionDenied(denied.reason)
            sites = await self.analytics.reader.group_sites(path)
            if sites is None:
                raise NotFound(f"group {path!r} does not exist")
            return sites
        raise InvalidArgument("target", "installation_id or group_path required")

    @_rpc
    async def GetEnergyReport(self, request: pb.EnergyReportRequest, principal: Principal) -> pb.EnergyReport:
        range_ = range_from_pb(request.range)
        tariff = tariff_from_pb(request.tariff) if request.HasField("tariff") else None
        sites = await self._sites(request.target, principal)
        result = await self.analytics.energy(sites, range_, tariff)
        return report_to_pb(result.report, time_zone=result.time_zone, installations=result.installations,
                            resolutions_s=result.resolutions_s, max_gap_s=self._max_gap_s,
                            currency=tariff.currency if tariff else "", days=not request.omit_days)

    @_rpc
    async def GetCapacityTrend(self, request: pb.CapacityTrendRequest, principal: Principal) -> pb.CapacityTrend:
        range_ = range_from_pb(request.range)
        swing = request.min_swing_pct or DEFAULT_OPTIONS.min_swing_pct
        if not (math.isfinite(swing) and 0 < swing <= 100):
            raise InvalidArgument("min_swing_pct", "between 0 and 100")
        (site,) = await self._sites(pb.Target(installation_id=request.installation_id), principal)
        options = CapacityOptions(**{**DEFAULT_OPTIONS.__dict__, "min_swing_pct": swing})
        return trend_to_pb(await self.analytics.capacity(site, range_, options))

    @_rpc
    async def GetSeries(self, request: pb.SeriesRequest, principal: Principal) -> pb.SeriesResponse:
        range_ = range_from_pb(request.range)
        if request.max_points > MAX_POINTS:
            raise InvalidArgument("max_points", f"at most {MAX_POINTS}")
        channels = tuple(request.channels) or POWER_FIELDS
        unknown = set(channels) - set(POWER_FIELDS)
        if unknown:
            raise InvalidArgument("channels", f"unknown {sorted(unknown)}; choose from {', '.join(POWER_FIELDS)}")
        if request.resolution != pb.RESOLUTION_AUTO and request.resolution not in RESOLUTION_S:
            raise InvalidArgument("resolution", f"unknown value {request.resolution}")
        resolution = None if request.resolution == pb.RESOLUTION_AUTO else RESOLUTION_S[request.resolution]
        sites = await self._sites(request.target, principal)
        chart = await self.analytics.series(sites, range_, request.max_points or self._default_max_points,
                                            channels, resolution)
        return pb.SeriesResponse(
            resolution=pb.Resolution.Name(RESOLUTION_PB[chart.resolution_s]), points_read=chart.points_read,
            series=[pb.ChannelSeries(channel=name, timestamps_unix_ms=ts.tolist(), values=values.tolist())
                    for name, (ts, values) in chart.channels.items()])


# ------------------------------------------------------------ the server

class AnalyticsApi(GrpcApi):
    """The gRPC server: AnalyticsService, health checking and reflection. `async with` or
    `start()`/`stop()`; `port` is the bound port (settings port 0 = ephemeral)."""

    def __init__(self, settings: AnalyticsSettings, pool: asyncpg.Pool, engine: AsyncEngine, *,
                 max_gap_s: float, authenticator: Authenticator | None = None,
                 tls: TlsSettings | None = None) -> None:
        self._settings = settings
        self.repository = AssetRepository(engine)
        self._own_authenticator = authenticator is None
        # The process's authenticator, else one on this pool.
        self.authenticator = authenticator or Authenticator(pool, cache_s=settings.auth_cache_s,
                                                            max_entries=settings.auth_cache_entries)
        self.analytics = Analytics(AnalyticsReader(pool))
        servicer = AnalyticsServicer(self.analytics, self.repository, self.authenticator, max_gap_s=max_gap_s,
                                     default_max_points=settings.default_max_points)
        self._server = GrpcServer(
            settings.host, settings.port, [SERVICE_NAME],
            lambda server: pb_grpc.add_AnalyticsServiceServicer_to_server(servicer, server),
            options=[("grpc.max_send_message_length", 64 * 2**20)],  # series of many points
            tls=tls, interceptors=[AccessGuard(self.authenticator, [SERVICE])],
        )

    async def stop(self, grace_s: float = 5.0) -> None:
        await super().stop(grace_s)
        if self._own_authenticator:
            await self.authenticator.close()   # flushes the audit log's last entries
