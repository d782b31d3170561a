"""The WeatherService gRPC API (`gridtwin.weather.v1.WeatherService`) over the alert store, with
health checking and reflection (gridtwin.grpc_server).

StreamAlertChanges follows the change log (`weather_alert_changes`): it sends what is logged
after the client's `after_seq`, then polls every `stream_poll_s` for more. Each stream holds at
most `changes_per_read` changes in memory at a time; the client's pace bounds the rest (gRPC flow
control). Storage outages are UNAVAILABLE; bad requests INVALID_ARGUMENT (mapped in `_observed`).
Alerts are public: any read token of the AssetService (services/access/guard.py admits it).
ListAffectedInstallations names installations, so its answer holds only those within the
token's groups (services/weather/affected.py computes it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from typing import TypeVar

import asyncpg
import grpc
from prometheus_client import Counter, Histogram

from gridtwin.api.weather.v1 import weather_pb2 as pb
from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc
from gridtwin.errors import InvalidArgument, NotFound
from gridtwin.grpc_server import GrpcApi, GrpcServer, observing
from gridtwin.paging import page_token, parse_page_token
from gridtwin.settings import TlsSettings
from services.access.authentication import Authenticator
from services.access.guard import AccessGuard, caller, visible_installations
from services.weather.affected import AffectedInstallations
from services.weather.convert import affected_page_pb, alert_pb, change_pb, stored_pb
from services.weather.model import Alert, StoredAlert
from services.weather.store import AlertStore, page_key

log = logging.getLogger(__name__)
M = TypeVar("M", pb.Alert, pb.AlertChange)

MAX_CHANGES_PER_PAGE = 5_000
DEFAULT_ALERTS_PER_PAGE = 100
MAX_ALERTS_PER_PAGE = 1_000
DEFAULT_INSTALLATIONS_PER_PAGE = 100
MAX_INSTALLATIONS_PER_PAGE = 1_000
# A page's size in bytes stops well short of a client's default 4 MiB receive limit: an alert's area
# may have up to 10,000 vertices (services/weather/geometry.py), some 400 KB of WKT.
PAGE_BYTES = 2 << 20

SERVICE = pb.DESCRIPTOR.services_by_name["WeatherService"]
SERVICE_NAME = SERVICE.full_name
RPCS = Counter("gridtwin_weather_rpcs_total", "Weather RPCs finished, by method and status code", ["method", "code"])
LATENCY = Histogram("gridtwin_weather_rpc_latency_seconds", "Weather RPC latency", ["method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

_observed = observing(RPCS, LATENCY, unavailable=(OSError, asyncpg.PostgresConnectionError),
                      unavailable_detail="alert storage unavailable")


class WeatherServicer(pb_grpc.WeatherServiceServicer):
    def __init__(self, store: AlertStore, *, stream_poll_s: float = 1.0, changes_per_read: int = 500,
                 page_bytes: int = PAGE_BYTES) -> None:
        self._store = store
        self._affected = AffectedInstallations(store.pool)
        self._page_bytes = page_bytes
        self._stream_poll_s = stream_poll_s
        self._changes_per_read = changes_per_read

    @_observed("ListActiveAlerts")
    async def ListActiveAlerts(self, request: pb.ListActiveAlertsRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListActiveAlertsResponse:
        if request.page_size > MAX_ALERTS_PER_PAGE:
            raise InvalidArgument("page_size", f"at most {MAX_ALERTS_PER_PAGE}")
        box = None
        if request.HasField("bbox"):
            b = request.bbox
            box = (b.min_longitude_deg, b.min_latitude_deg, b.max_longitude_deg, b.max_latitude_deg)
            if not all(math.isfinite(v) for v in box) or box[0] > box[2] or box[1] > box[3]:
                raise InvalidArgument("bbox", "finite, min <= max")
        size = request.page_size or DEFAULT_ALERTS_PER_PAGE
        alerts = await self._store.active_page(_page_after(request.page_token), size + 1, box)
        page = _within(self._page_bytes, [alert_pb(a) for a in alerts[:size]])
        more = len(page) < len(alerts)
        return pb.ListActiveAlertsResponse(alerts=page, next_page_token=_token(alerts[len(page) - 1]) if more else "")

    @_observed("StreamAlertChanges", timed=False)
    async def StreamAlertChanges(self, request: pb.StreamAlertChangesRequest,
                                 context: grpc.aio.ServicerContext) -> None:
        if request.after_seq < 0:
            raise InvalidArgument("after_seq", ">= 0")
        seq = request.after_seq
        while True:
            logged = await self._store.changes_after(seq, self._changes_per_read)
            for entry in logged:
                await context.write(change_pb(entry))
                seq = entry.seq
            if len(logged) < self._changes_per_read:
                await asyncio.sleep(self._stream_poll_s)


    @_observed("ListAlertChanges")
    async def ListAlertChanges(self, request: pb.ListAlertChangesRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListAlertChangesResponse:
        if request.after_seq < 0:
            raise InvalidArgument("after_seq", ">= 0")
        if request.limit > MAX_CHANGES_PER_PAGE:
            raise InvalidArgument("limit", f"at most {MAX_CHANGES_PER_PAGE}")
        logged = await self._store.changes_after(request.after_seq, request.limit or self._changes_per_read)
        return pb.ListAlertChangesResponse(changes=_within(self._page_bytes, [change_pb(entry) for entry in logged]))

    @_observed("GetAlert")
    async def GetAlert(self, request: pb.GetAlertRequest, context: grpc.aio.ServicerContext) -> pb.StoredAlert:
        return stored_pb(await self._stored(request.alert_id))

    @_observed("ListAffectedInstallations")
    async def ListAffectedInstallations(self, request: pb.ListAffectedInstallationsRequest,
                                        context: grpc.aio.ServicerContext) -> pb.ListAffectedInstallationsResponse:
        _check_alert_id(request.alert_id)
        if request.page_size > MAX_INSTALLATIONS_PER_PAGE:
            raise InvalidArgument("page_size", f"at most {MAX_INSTALLATIONS_PER_PAGE}")
        after = _installation_after(request.page_token, request.alert_id)
        stored = await self._stored(request.alert_id)
        page = await self._affected.page(stored.alert, after=after,
                                         limit=request.page_size or DEFAULT_INSTALLATIONS_PER_PAGE,
                                         visible=visible_installations(caller()))
        token = page_token(_alert_key(request.alert_id), page.next_after) if page.next_after else ""
        return affected_page_pb(page, token)

    async def _stored(self, alert_id: str) -> StoredAlert:
        _check_alert_id(alert_id)
        stored = await self._store.get(alert_id)
        if stored is None:
            raise NotFound(f"no alert {alert_id!r}")
        return stored


def _check_alert_id(alert_id: str) -> None:
    if not 0 < len(alert_id) <= 512:
        raise InvalidArgument("alert_id", "1-512 characters")
    if "\x00" in alert_id:   # no stored id has one (Postgres text cannot hold it)
        raise InvalidArgument("alert_id", "no NUL characters")


def _alert_key(alert_id: str) -> int:
    """What binds a page token of affected installations to its alert."""
    return zlib.crc32(alert_id.encode())


def _installation_after(token: str, alert_id: str) -> str:
    """The installation id a `next_page_token` of this alert's installations stands for ("" = first page)."""
    if not token:
        return ""
    try:
        key, installation_id = parse_page_token(token)
    except ValueError:
        key, installation_id = -1, ""
    if key != _alert_key(alert_id) or not installation_id:
        raise InvalidArgument("page_token", "not a next_page_token of this alert's installations")
    return installation_id


def _within(budget: int, messages: list[M]) -> list[M]:
    """The first messages whose encoded size stays within `budget` bytes — at least one."""
    used = 0
    for count, message in enumerate(messages):
        used += message.ByteSize()
        if used > budget and count > 0:
            return messages[:count]
    return messages


def _token(alert: Alert) -> str:
    return page_token(*page_key(alert))


def _page_after(token: str) -> tuple[int, str] | None:
    """The key a `next_page_token` stands for; INVALID_ARGUMENT when it is not one."""
    if not token:
        return None
    try:
        return parse_page_token(token)
    except ValueError:
        raise InvalidArgument("page_token", "not a next_page_token of this method") from None


class WeatherApi(GrpcApi):
    """The gRPC server: WeatherService, health and reflection. `async with` or start()/stop()."""

    def __init__(self, host: str, port: int, store: AlertStore, *, authenticator: Authenticator,
                 stream_poll_s: float = 1.0, page_bytes: int = PAGE_BYTES, tls: TlsSettings | None = None) -> None:
        servicer = WeatherServicer(store, stream_poll_s=stream_poll_s, page_bytes=page_bytes)
        self._server = GrpcServer(host, port, [SERVICE_NAME],
                                  lambda server: pb_grpc.add_WeatherServiceServicer_to_server(servicer, server),
                                  tls=tls, interceptors=[AccessGuard(authenticator, [SERVICE])])
