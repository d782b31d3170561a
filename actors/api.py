"""The twin API (gRPC `gridtwin.twins.v1.TwinService`) with health checking and reflection.

Guarantees:
- GetTwin activates the twin if it is passivated (a read is a message); NOT_FOUND when the
  installation never reported. StreamTwin sends the twin at once, then each change, at most one
  per `min_interval_ms` (so the app sees the latest state, not every sample), until cancelled.
- ListAlerts is newest first (first seen, then id), keyset-paged; filters combine with AND.
- ExportAlertLog streams every alert of the installation active at any time in [start, end)
  (first seen before end, not cleared before start), oldest first, as CSV or JSON.
- Access: the AssetService's tokens, admitted by services/access/guard.py (rules in
  services/access/rules.py ACCESS); an installation must lie within the token's groups (a device:
  its own), ListAlerts answers only alerts of installations within them.
- Status codes: INVALID_ARGUMENT for bad ids, ranges or tokens; PERMISSION_DENIED for an
  installation outside the token's groups; NOT_FOUND; UNAVAILABLE when the database or the twin
  runtime cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import grpc
from prometheus_client import Counter, Gauge, Histogram

from actors.runtime.convert import STATE_NAMES, alert_to_pb, twin_to_pb
from actors.runtime.router import TwinRouter
from actors.runtime.store import alert_from_row
from actors.twin import export
from actors.twin import stormwatch as sw
from actors.twin.model import Alert
from gridtwin import paging
from gridtwin.api.twins.v1 import twin_service_pb2 as pb
from gridtwin.api.twins.v1 import twin_service_pb2_grpc as pb_grpc
from gridtwin.errors import InvalidArgument, NotFound
from gridtwin.grpc_server import GrpcApi, GrpcServer, observing
from gridtwin.paging import page_token, parse_page_token
from gridtwin.settings import TlsSettings, TwinsSettings
from services.access.authentication import Authenticator
from services.access.guard import AccessGuard, caller, refuse_unless_visible, visible_installations
from services.weather.model import AlertId

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["TwinService"]
SERVICE_NAME = SERVICE.full_name
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_MAX_MS = 253_402_300_800_000
MAX_PAGE = 1_000
MAX_NOTIFICATIONS = 500
EXPORT_CHUNK_BYTES = 64 * 1_024

RPCS = Counter("gridtwin_twin_api_rpcs_total", "RPCs finished, by method and status code", ["method", "code"])
LATENCY = Histogram("gridtwin_twin_api_rpc_latency_seconds", "Unary RPC latency", ["method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
STREAMS = Gauge("gridtwin_twin_api_streams", "Open StreamTwin streams")

_ALERT_COLUMNS = ("alert_id, installation_id, rule, severity, state, first_seen, last_seen, cleared_at, samples, "
                  "details::text AS details")




def _invalid(detail: str) -> InvalidArgument:
    return InvalidArgument("", detail)


Handler = Callable[..., Awaitable[Any]]


_observed = observing(RPCS, LATENCY, unavailable=(OSError, asyncpg.PostgresConnectionError, TimeoutError),
                      unavailable_detail="twin storage or runtime unavailable")


def _installation(installation_id: str) -> str:
    if not _ID.fullmatch(installation_id):
        raise _invalid("installation_id must be 1-128 characters of [A-Za-z0-9_.:-]")
    return installation_id


def _page_token(alert: Alert) -> str:
    return page_token(alert.first_seen_ms * 1_000, alert.alert_id)


def _parse_token(token: str) -> tuple[int, str]:
    try:
        return parse_page_token(token)
    except ValueError as error:
        raise _invalid(str(error)) from None


class TwinServicer(pb_grpc.TwinServiceServicer):
    def __init__(self, pool: asyncpg.Pool, router: TwinRouter, *, stream_min_interval_s: float = 1.0) -> None:
        self._pool = pool
        self._router = router
        self._min_interval_s = stream_min_interval_s

    @_observed("GetTwin")
    async def GetTwin(self, request: pb.GetTwinRequest, context: grpc.aio.ServicerContext) -> pb.Twin:
        installation = _installation(request.installation_id)
        await refuse_unless_visible(self._pool, installation)
        view = await self._router.view(installation)
        if view is None:
            raise NotFound("no twin: the installation has not reported")
        return twin_to_pb(view)

    @_observed("StreamTwin", timed=False)
    async def StreamTwin(self, request: pb.StreamTwinRequest, context: grpc.aio.ServicerContext) -> None:
        installation = _installation(request.installation_id)
        interval_s = request.min_interval_ms / 1_000 if request.min_interval_ms else self._min_interval_s
        await refuse_unless_visible(self._pool, installation)
        view = await self._router.view(installation)
        if view is None:
            raise NotFound("no twin: the installation has not reported")
        STREAMS.inc()
        try:
            while True:
                await context.write(twin_to_pb(view))
                version = view.version
                await asyncio.sleep(interval_s)
                while True:
                    newer = await self._router.watch(installation, version, 30.0)
                    if newer is not None:
                        view = newer
                        break
        finally:
            STREAMS.dec()

    @_observed("ListAlerts")
    async def ListAlerts(self, request: pb.ListAlertsRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListAlertsResponse:
        if request.page_size > MAX_PAGE:
            raise _invalid(f"page_size above {MAX_PAGE}")
        page_size = request.page_size or 100
        where, args = ["true"], []  # type: ignore[var-annotated]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if request.installation_id:
            installation = _installation(request.installation_id)
            await refuse_unless_visible(self._pool, installation)
            where.append(f"installation_id = {arg(installation)}")
        visible = visible_installations(caller())
        if visible is not None:  # a token limited to groups: their installations' alerts only
            condition, paths = visible
            where.append(condition.format(arg(paths)))
        if request.rule:
            where.append(f"rule = {arg(request.rule)}")
        if request.min_severity:
            where.append(f"severity >= {arg(int(request.min_severity))}")
        if request.states:
            states = [STATE_NAMES[s].value for s in request.states if s in STATE_NAMES]
            where.append(f"state = ANY({arg(states)}::text[])")
        if not 0 <= request.start_unix_ms <= _MAX_MS or not 0 <= request.end_unix_ms <= _MAX_MS:
            raise _invalid("times must be within 0 .. year 10000")
        if request.start_unix_ms:
            where.append(f"first_seen >= {arg(request.start_unix_ms * 1_000)}")
        if request.end_unix_ms:
            where.append(f"first_seen < {arg(request.end_unix_ms * 1_000)}")
        if request.page_token:
            first_us, alert_id = _parse_token(request.page_token)
            where.append(f"(first_seen, alert_id) < ({arg(first_us)}, {arg(alert_id)})")
        sql = (f"SELECT {_ALERT_COLUMNS} FROM twin_alerts WHERE {' AND '.join(where)} "
               f"ORDER BY first_seen DESC, alert_id DESC LIMIT {arg(page_size + 1)}")
        alerts = [alert_from_row(r) for r in await self._pool.fetch(sql, *args)]
        token = _page_token(alerts[page_size - 1]) if len(alerts) > page_size else ""
        return pb.ListAlertsResponse(alerts=[alert_to_pb(a) for a in alerts[:page_size]], next_page_token=token)

    @_observed("ExportAlertLog", timed=False)
    async def ExportAlertLog(self, request: pb.ExportAlertLogRequest, context: grpc.aio.ServicerContext) -> None:
        installation = _installation(request.installation_id)
        start, end = request.start_unix_ms, request.end_unix_ms
        if not 0 <= start < end <= _MAX_MS:
            raise _invalid("need 0 <= start_unix_ms < end_unix_ms <= year 10000")
        await refuse_unless_visible(self._pool, installation)
        as_json = request.format == pb.EXPORT_FORMAT_JSON
        content_type = "application/json" if as_json else "text/csv"
        first = True
        async for chunk in self._export(installation, start, end, as_json):
            await context.write(pb.ExportChunk(data=chunk, content_type=content_type if first else ""))
            first = False

    async def _export(self, installation: str, start_ms: int, end_ms: int, as_json: bool) -> AsyncIterator[bytes]:
        sql = (f"SELECT {_ALERT_COLUMNS} FROM twin_alerts WHERE installation_id = $1 AND first_seen < $3 "
               "AND (cleared_at IS NULL OR cleared_at >= $2) ORDER BY first_seen, alert_id")
        async with self._pool.acquire() as con, con.transaction():
            alerts = (alert_from_row(r) async for r in con.cursor(sql, installation, start_ms * 1_000, end_ms * 1_000))
            buffered: list[Alert] = []
            async for alert in alerts:
                buffered.append(alert)
        text = export.to_json(buffered) if as_json else export.to_csv(buffered)
        chunk = bytearray()
        for piece in text:
            chunk += piece.encode()
            if len(chunk) >= EXPORT_CHUNK_BYTES:
                yield bytes(chunk)
                chunk.clear()
        if chunk:
            yield bytes(chunk)


    @_observed("OptOutOfStorm")
    async def OptOutOfStorm(self, request: pb.OptOutOfStormRequest, context: grpc.aio.ServicerContext) -> pb.Twin:
        installation = _installation(request.installation_id)
        if not 0 < len(request.alert_id) <= 512:
            raise _invalid("alert_id must be 1-512 characters")
        await refuse_unless_visible(self._pool, installation)
        if await self._pool.fetchval("SELECT 1 FROM installations WHERE installation_id = $1", installation) is None:
            raise NotFound(f"no installation {installation!r}")
        await self._router.tell([(installation, sw.OptOut(AlertId(request.alert_id)))])
        view = await self._router.view(installation)
        if view is None:
            raise NotFound("no twin: the installation has not reported")
        return twin_to_pb(view)

    @_observed("ListNotifications")
    async def ListNotifications(self, request: pb.ListNotificationsRequest,
                                context: grpc.aio.ServicerContext) -> pb.ListNotificationsResponse:
        installation = _installation(request.installation_id)
        if request.page_size > MAX_NOTIFICATIONS:
            raise _invalid(f"page_size above {MAX_NOTIFICATIONS}")
        if request.limit > MAX_NOTIFICATIONS:
            raise _invalid(f"limit above {MAX_NOTIFICATIONS}")
        page_size = request.page_size or request.limit or 50
        query = json.dumps(["ListNotifications", installation])
        after: tuple[int, str] | None = None
        if request.page_token:
            try:
                at_us, notification_id = paging.parse_query_page_token(request.page_token, query, 2)
                after = (int(at_us), notification_id)
            except ValueError as error:
                raise _invalid(f"page_token: {error}") from None
            if not 0 <= after[0] <= _MAX_MS * 1_000:
                raise _invalid("page_token: malformed page_token")
        await refuse_unless_visible(self._pool, installation)
        keyset = "AND (at, notification_id) < ($3, $4) " if after is not None else ""
        rows = await self._pool.fetch(
            "SELECT notification_id, kind, alert_id, title, body, at FROM customer_notifications "
            f"WHERE installation_id = $1 {keyset}ORDER BY at DESC, notification_id DESC LIMIT $2",
            installation, page_size + 1, *(after or ()))
        last = rows[page_size - 1] if len(rows) > page_size else None
        token = paging.query_page_token(query, str(last["at"]), last["notification_id"]) if last else ""
        return pb.ListNotificationsResponse(notifications=[
            pb.Notification(notification_id=r["notification_id"], kind=r["kind"], alert_id=r["alert_id"],
                            title=r["title"], body=r["body"], at_unix_ms=r["at"] // 1_000) for r in rows[:page_size]],
            next_page_token=token)


class TwinApi(GrpcApi):
    """The gRPC server: TwinService, health and reflection. `async with` or `start()`/`stop()`."""

    def __init__(self, settings: TwinsSettings, pool: asyncpg.Pool, router: TwinRouter, *,
                 authenticator: Authenticator, tls: TlsSettings | None = None) -> None:
        self._settings = settings
        self._pool = pool
        self._router = router
        servicer = TwinServicer(pool, router, stream_min_interval_s=settings.stream_min_interval_s)
        self._server = GrpcServer(settings.host, settings.port, [SERVICE_NAME],
                                  lambda server: pb_grpc.add_TwinServiceServicer_to_server(servicer, server),
                                  tls=tls, interceptors=[AccessGuard(authenticator, [SERVICE])])
