"""The VppService gRPC API (`gridtwin.control.v1.VppService`): grid events, participants,
opt-outs, delivery progress, the live contribution stream and the event report.

Access is the AssetService's tokens, as for the ControlService, admitted by the access guard
(services/access/guard.py, rules in services/access/rules.py ACCESS): changing events and opting
out need the command scope, reading the read scope; devices are refused. An event is visible to a
token when its target group (or, for a whole-program event, its program) lies within the
token's groups; an installation when it is a member of one of them. Order of checks:
UNAUTHENTICATED → PERMISSION_DENIED (scope) → INVALID_ARGUMENT → NOT_FOUND / PERMISSION_DENIED.
"""

from __future__ import annotations

import json

import asyncpg
import grpc
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from gridtwin import paging
from gridtwin.api.control.v1 import vpp_pb2 as pb
from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc
from gridtwin.errors import InvalidArgument, NotFound, PermissionDenied
from gridtwin.grpc_server import GrpcApi, GrpcServer, observing
from gridtwin.settings import TlsSettings, VppSettings
from gridtwin.unixtime import to_ms
from services.access import rules
from services.access.authentication import Authenticator
from services.access.guard import AccessGuard, caller, check_installation
from services.access.model import BOUND, Principal
from services.assets.model import GroupPath
from services.control.convert import progress_to_pb
from services.control.vpp.contribution import ContributionTracker
from services.control.vpp.convert import contribution_to_pb, event_to_pb, participant_to_pb, report_to_pb, spec_from_pb
from services.control.vpp.dispatch import GridEvent, VppDispatcher
from services.control.vpp.model import LTREE

SERVICE = pb.DESCRIPTOR.services_by_name["VppService"]
SERVICE_NAME = SERVICE.full_name
RPCS = Counter("gridtwin_vpp_rpcs_total", "VPP RPCs finished, by method and status code", ["method", "code"])
LATENCY = Histogram("gridtwin_vpp_rpc_latency_seconds", "VPP RPC latency", ["method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
MAX_PAGE = 1_000
MIN_INTERVAL_MS = 100

observed = observing(RPCS, LATENCY, unavailable=(OSError, asyncpg.PostgresConnectionError),
                     unavailable_detail="VPP storage unavailable")


def _event_id(value: str) -> str:
    if not 0 < len(value) <= 128:
        raise InvalidArgument("event_id", "1-128 characters")
    return value


def _page_size(value: int, *, default: int) -> int:
    if value > MAX_PAGE:
        raise InvalidArgument("page_size", f"at most {MAX_PAGE}")
    return value or default


def _page_key(token: str, query: str, parts: int) -> tuple[str, ...] | None:
    """The keyset a page token of `query` names (None: the first page); INVALID_ARGUMENT otherwise."""
    if not token:
        return None
    try:
        key = paging.parse_query_page_token(token, query, parts)
    except ValueError as exc:
        raise InvalidArgument("page_token", str(exc)) from None
    return key


def _int_key(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument("page_token", "malformed page_token") from None
    if not 0 < value < 2**62:
        raise InvalidArgument("page_token", "malformed page_token")
    return value


class VppServicer(pb_grpc.VppServiceServicer):
    def __init__(self, vpp: VppDispatcher, contribution: ContributionTracker, pool: asyncpg.Pool, *,
                 stream_interval_s: float = 1.0, max_gap_s: float = 300.0) -> None:
        self.vpp = vpp
        self.contribution = contribution
        self._pool = pool
        self._stream_interval_s = stream_interval_s
        self._max_gap_s = max_gap_s

    # ------------------------------------------------------------ access

    @staticmethod
    def _check_path(principal: Principal, path: str) -> None:
        denied = rules.check_path(principal, GroupPath(path))
        if denied is not None:
            raise PermissionDenied(denied.reason)

    def _check_event(self, principal: Principal, event: GridEvent) -> GridEvent:
        self._check_path(principal, event.spec.target_group or event.spec.program)
        return event

    async def _event(self, principal: Principal, event_id: str) -> GridEvent:
        return self._check_event(principal, await self.vpp.get(_event_id(event_id)))

    async def _check_installation(self, principal: Principal, installation_id: str) -> None:
        await check_installation(self._pool, principal, installation_id)

    # ------------------------------------------------------------ events

    @observed("CreateEvent")
    async def CreateEvent(self, request: pb.CreateEventRequest, context: grpc.aio.ServicerContext) -> pb.GridEvent:
        principal = caller()
        spec = spec_from_pb(request.spec)
        if LTREE.fullmatch(spec.program) and (not spec.target_group or LTREE.fullmatch(spec.target_group)):
            self._check_path(principal, spec.target_group or spec.program)
        return event_to_pb(await self.vpp.create(spec))

    @observed("UpdateEvent")
    async def UpdateEvent(self, request: pb.UpdateEventRequest, context: grpc.aio.ServicerContext) -> pb.GridEvent:
        principal = caller()
        await self._event(principal, request.event_id)
        return event_to_pb(await self.vpp.update(request.event_id, spec_from_pb(request.spec)))

    @observed("CancelEvent")
    async def CancelEvent(self, request: pb.CancelEventRequest, context: grpc.aio.ServicerContext) -> pb.GridEvent:
        principal = caller()
        await self._event(principal, request.event_id)
        return event_to_pb(await self.vpp.cancel(request.event_id))

    @observed("GetEvent")
    async def GetEvent(self, request: pb.GetEventRequest, context: grpc.aio.ServicerContext) -> pb.GridEvent:
        principal = caller()
        return event_to_pb(await self._event(principal, request.event_id))

    @observed("ListEvents")
    async def ListEvents(self, request: pb.ListEventsRequest, context: grpc.aio.ServicerContext
                         ) -> pb.ListEventsResponse:
        principal = caller()
        page_size = _page_size(request.page_size, default=100)
        query = json.dumps(["ListEvents", request.include_ended])
        key = _page_key(request.page_token, query, 2)
        after = (_int_key(key[0]), key[1]) if key is not None else None
        events = await self.vpp.list_events(include_ended=request.include_ended, limit=page_size + 1, after=after)
        # The token names the last event read, visible or not: pages may come out short, never lose one.
        read, more = events[:page_size], len(events) > page_size
        visible = [e for e in read
                   if rules.check_path(principal, GroupPath(e.spec.target_group or e.spec.program)) is None]
        token = paging.query_page_token(query, str(to_ms(read[-1].spec.start)), read[-1].event_id) if more else ""
        return pb.ListEventsResponse(events=[event_to_pb(e) for e in visible], next_page_token=token)

    @observed("ListParticipants")
    async def ListParticipants(self, request: pb.ListParticipantsRequest, context: grpc.aio.ServicerContext
                               ) -> pb.ListParticipantsResponse:
        principal = caller()
        page_size = _page_size(request.page_size, default=MAX_PAGE)
        event = await self._event(principal, request.event_id)
        query = json.dumps(["ListParticipants", event.event_id])
        key = _page_key(request.page_token, query, 1)
        rows = await self.vpp.participants(event.event_id, limit=page_size + 1, after=key[0] if key else "")
        token = paging.query_page_token(query, rows[page_size - 1]["installation_id"]) if len(rows) > page_size \
            else ""
        return pb.ListParticipantsResponse(participants=[participant_to_pb(r) for r in rows[:page_size]],
                                           next_page_token=token)

    @observed("OptOut")
    async def OptOut(self, request: pb.OptOutRequest, context: grpc.aio.ServicerContext) -> pb.Participant:
        principal = caller()
        if not 0 < len(request.installation_id) <= 128:
            raise InvalidArgument("installation_id", "1-128 characters")
        await self._check_installation(principal, request.installation_id)
        if principal.kind in BOUND:   # a homeowner sees their own participation, not the event's group
            event = await self.vpp.get(_event_id(request.event_id))
        else:
            event = await self._event(principal, request.event_id)
        await self.vpp.opt_out(event.event_id, request.installation_id)
        rows = {r["installation_id"]: r for r in await self.vpp.participants(event.event_id)}
        return participant_to_pb(rows[request.installation_id])

    @observed("GetEventProgress")
    async def GetEventProgress(self, request: pb.GetEventProgressRequest, context: grpc.aio.ServicerContext
                               ) -> object:
        principal = caller()
        event = await self._event(principal, request.event_id)
        progress = await self.vpp.progress(event.event_id)
        if progress is None:
            raise NotFound(f"event {event.event_id} has no commands")
        return progress_to_pb(progress)

    @observed("GetEventReport")
    async def GetEventReport(self, request: pb.GetEventReportRequest, context: grpc.aio.ServicerContext
                             ) -> pb.EventReport:
        principal = caller()
        await self._event(principal, request.event_id)
        event, settlement = await self.vpp.report(request.event_id, max_gap_s=self._max_gap_s)
        return report_to_pb(event, settlement)

    # ------------------------------------------------------------ live contribution

    @observed("StreamContribution", timed=False)
    async def StreamContribution(self, request: pb.StreamContributionRequest,
                                 context: grpc.aio.ServicerContext) -> None:
        principal = caller()
        if not LTREE.fullmatch(request.path):
            raise InvalidArgument("path", "a hierarchy path (labels of [A-Za-z0-9_] joined by '.')")
        if request.interval_ms and request.interval_ms < MIN_INTERVAL_MS:
            raise InvalidArgument("interval_ms", f"at least {MIN_INTERVAL_MS}")
        self._check_path(principal, request.path)
        if request.installation_id:
            await self._check_installation(principal, request.installation_id)
        interval_s = request.interval_ms / 1_000 if request.interval_ms else self._stream_interval_s
        async for snapshot in self.contribution.watch(request.path, request.installation_id or None, interval_s):
            await context.write(contribution_to_pb(snapshot))


class VppApi(GrpcApi):
    """The gRPC server: VppService, health checking and reflection. `async with` or start()/stop();
    `port` is the bound port (settings port 0 = ephemeral)."""

    def __init__(self, settings: VppSettings, vpp: VppDispatcher, contribution: ContributionTracker,
                 pool: asyncpg.Pool, engine: AsyncEngine | None = None, authenticator: Authenticator | None = None, *,
                 tls: TlsSettings | None = None) -> None:
        self._own_authenticator = authenticator is None
        # The process's authenticator, else one on this pool.
        self.authenticator = authenticator or Authenticator(pool, cache_s=settings.auth_cache_s)
        servicer = VppServicer(vpp, contribution, pool,
                               stream_interval_s=settings.stream_interval_s, max_gap_s=settings.max_gap_s)
        self._server = GrpcServer(settings.host, settings.port, [SERVICE_NAME],
                                  lambda server: pb_grpc.add_VppServiceServicer_to_server(servicer, server),
                                  tls=tls, interceptors=[AccessGuard(self.authenticator, [SERVICE])])

    async def stop(self, grace_s: float = 5.0) -> None:
        await super().stop(grace_s)
        if self._own_authenticator:
            await self.authenticator.close()   # flushes the audit log's last entries
