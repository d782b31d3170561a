"""The ControlService gRPC API (`gridtwin.control.v1.ControlService`) with health and reflection.

Access is the AssetService's: `authorization: Bearer <token>`, admitted by the access guard
(services/access/guard.py) by the rules in services/access/rules.py ACCESS: submitting and
cancelling need the command scope, reading the read scope; devices are refused. A target must be visible to the
token: an installation (or a device's installation) must be a member of one of the token's
groups, a group path must lie within them; fan-outs are visible by their group (fan-outs
without a group, e.g. the VPP's, only to tokens over the whole hierarchy). Order of checks:
UNAUTHENTICATED → PERMISSION_DENIED (scope) → INVALID_ARGUMENT (input) → NOT_FOUND /
PERMISSION_DENIED (target). Errors become status codes in one place (`gridtwin.grpc_server.observing`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import grpc
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from gridtwin.api.control.v1 import control_pb2 as pb
from gridtwin.api.control.v1 import control_pb2_grpc as pb_grpc
from gridtwin.grpc_server import GrpcApi, GrpcServer, observing
from gridtwin.settings import ControlSettings, TlsSettings
from services.access import rules
from services.access.authentication import Authenticator
from services.access.guard import AccessGuard, caller, check_installation
from services.access.model import DevicePrincipal, Principal
from services.assets.database import asyncpg_dsn
from services.assets.errors import PermissionDenied
from services.assets.model import GroupPath
from services.assets.paths import ROOT, is_within_any
from services.control.convert import STATES_FROM_PB, command_to_pb, progress_to_pb, spec_from_pb
from services.control.model import Command, InvalidArgument, NotFound
from services.control.service import Control, NewCommand

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["ControlService"]
SERVICE_NAME = SERVICE.full_name
RPCS = Counter("gridtwin_control_rpcs_total", "Control RPCs finished, by method and status code", ["method", "code"])
LATENCY = Histogram("gridtwin_control_rpc_latency_seconds", "Control RPC latency", ["method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError)
_observed = observing(RPCS, LATENCY, unavailable=_UNAVAILABLE, unavailable_detail="command storage unavailable")

Handler = Callable[[Any, Any, Principal, grpc.aio.ServicerContext], Awaitable[Any]]


def _rpc(*, timed: bool = True) -> Callable[[Handler], Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]]:
    """Runs for the caller the access guard admitted; counted, timed and its errors mapped by
    `gridtwin.grpc_server.observing`."""

    def wrap(fn: Handler) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def run(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await fn(self, request, caller(), context)
        run.__name__ = fn.__name__
        return _observed(timed=timed)(run)

    return wrap


class ControlServicer(pb_grpc.ControlServiceServicer):
    def __init__(self, control: Control, authenticator: Authenticator, *, stream_interval_s: float = 0.5) -> None:
        self.control = control
        self.authenticator = authenticator
        self._stream_interval_s = stream_interval_s

    # ------------------------------------------------------------ access to targets

    async def _check_installation(self, principal: Principal, installation_id: str) -> None:
        await check_installation(self.control.store.pool, principal, installation_id)

    async def _check_device(self, principal: Principal, device_id: str) -> None:
        installation = await self.control.store.pool.fetchval(
            "SELECT installation_id FROM devices WHERE device_id = $1", device_id)
        if installation is None:
            raise NotFound(f"device {device_id!r} does not exist")
        await self._check_installation(principal, installation)

    def _check_group(self, principal: Principal, path: str) -> None:
        denied = rules.check_path(principal, GroupPath(path))
        if denied is not None:
            raise PermissionDenied(denied.reason)

    async def _check_command(self, principal: Principal, command: Command) -> None:
        await self._check_installation(principal, command.record.installation_id)

    async def _check_fanout(self, principal: Principal, group_path: str) -> None:
        paths = () if isinstance(principal, DevicePrincipal) else principal.allowed_paths
        if not is_within_any(GroupPath(group_path), paths) and ROOT not in paths:
            raise PermissionDenied("this fan-out is outside this token's groups")

    # ------------------------------------------------------------ RPCs

    @_rpc()
    async def SubmitCommand(self, request: pb.SubmitCommandRequest, principal: Principal,
                            context: grpc.aio.ServicerContext) -> pb.SubmitCommandResponse:
        target = request.WhichOneof("target")
        if target is None:
            raise InvalidArgument("target", "name device_id or installation_id")
        item = NewCommand(spec_from_pb(request.spec), request.ttl_s,
                          device_id=request.device_id if target == "device_id" else None,
                          installation_id=request.installation_id if target == "installation_id" else None,
                          idempotency_key=request.idempotency_key or None)
        self.control._validated(item, self.control._clock_ms(), "")
        if item.device_id is not None:
            await self._check_device(principal, item.device_id)
        elif await self.control.store.installation_exists(request.installation_id):
            await self._check_installation(principal, request.installation_id)
        submitted = await self.control.submit_one(item, source=request.source)
        return pb.SubmitCommandResponse(command=command_to_pb(submitted.command), deduplicated=submitted.deduplicated)

    @_rpc()
    async def SubmitGroupCommand(self, request: pb.SubmitGroupCommandRequest, principal: Principal,
                                 context: grpc.aio.ServicerContext) -> pb.SubmitGroupCommandResponse:
        spec = spec_from_pb(request.spec)
        self._check_group(principal, request.group_path)
        fanout_id, total, deduplicated = await self.control.submit_group(
            request.group_path, spec, ttl_s=request.ttl_s, source=request.source,
            idempotency_key=request.idempotency_key or None)
        if deduplicated:
            total = (await self.control.progress(fanout_id, max_failures=0)).total
        return pb.SubmitGroupCommandResponse(fanout_id=fanout_id, total=total, deduplicated=deduplicated)

    @_rpc()
    async def GetCommand(self, request: pb.GetCommandRequest, principal: Principal,
                         context: grpc.aio.ServicerContext) -> pb.Command:
        command = await self.control.get(request.command_id)
        await self._check_command(principal, command)
        return command_to_pb(command)

    @_rpc()
    async def ListCommands(self, request: pb.ListCommandsRequest, principal: Principal,
                           context: grpc.aio.ServicerContext) -> pb.ListCommandsResponse:
        states = []
        for value in request.states:
            if value not in STATES_FROM_PB:
                raise InvalidArgument("states", f"unknown state {value}")
            states.append(STATES_FROM_PB[value])
        limit = request.page_size or 100
        commands, token = await self.control.list_for_installation(
            request.installation_id, limit=limit, page_token=request.page_token, states=states)
        await self._check_installation(principal, request.installation_id)
        return pb.ListCommandsResponse(commands=[command_to_pb(c) for c in commands], next_page_token=token)

    @_rpc()
    async def GetFanOutProgress(self, request: pb.GetFanOutProgressRequest, principal: Principal,
                                context: grpc.aio.ServicerContext) -> pb.FanOutProgress:
        progress = await self.control.progress(request.fanout_id, max_failures=min(request.max_failures or 100, 10_000))
        await self._check_fanout(principal, progress.group_path)
        return progress_to_pb(progress)

    @_rpc(timed=False)
    async def StreamFanOutProgress(self, request: pb.StreamFanOutProgressRequest, principal: Principal,
                                   context: grpc.aio.ServicerContext) -> None:
        interval_s = (request.interval_ms or self._stream_interval_s * 1_000) / 1_000
        if interval_s < 0.05:
            raise InvalidArgument("interval_ms", "at least 50 ms")
        first = await self.control.progress(request.fanout_id, max_failures=0)
        await self._check_fanout(principal, first.group_path)
        async for progress in self.control.watch_progress(request.fanout_id, interval_s=interval_s,
                                                          max_failures=min(request.max_failures or 100, 10_000)):
            await context.write(progress_to_pb(progress))

    @_rpc()
    async def CancelCommand(self, request: pb.CancelCommandRequest, principal: Principal,
                            context: grpc.aio.ServicerContext) -> pb.Command:
        command = await self.control.get(request.command_id)
        await self._check_command(principal, command)
        return command_to_pb(await self.control.cancel(request.command_id))

    @_rpc()
    async def CancelFanOut(self, request: pb.CancelFanOutRequest, principal: Principal,
                           context: grpc.aio.ServicerContext) -> pb.FanOutProgress:
        progress = await self.control.progress(request.fanout_id, max_failures=0)
        await self._check_fanout(principal, progress.group_path)
        return progress_to_pb(await self.control.cancel_fanout(request.fanout_id))


class ControlApi(GrpcApi):
    """The gRPC server: ControlService, health checking and reflection. `async with` or
    start()/stop(); `port` is the bound port (settings port 0 = ephemeral)."""

    def __init__(self, settings: ControlSettings, control: Control, engine: AsyncEngine | None = None, *,
                 authenticator: Authenticator | None = None, tls: TlsSettings | None = None) -> None:
        """`authenticator`: the process's (on its asyncpg pool); without one, one on the engine's
        database with a small pool of its own (tools, tests)."""
        self._own_authenticator = authenticator is None
        if authenticator is None:
            assert engine is not None, "an authenticator or an engine"
            authenticator = Authenticator(asyncpg_dsn(engine), cache_s=settings.auth_cache_s)
        self.authenticator = authenticator
        servicer = ControlServicer(control, self.authenticator, stream_interval_s=settings.stream_interval_s)
        self._server = GrpcServer(settings.host, settings.port, [SERVICE_NAME],
                                  lambda server: pb_grpc.add_ControlServiceServicer_to_server(servicer, server),
                                  tls=tls, interceptors=[AccessGuard(self.authenticator, [SERVICE])])

    async def stop(self, grace_s: float = 5.0) -> None:
        await super().stop(grace_s)
        if self._own_authenticator:
            await self.authenticator.close()   # its own pool, and the audit log's last entries
