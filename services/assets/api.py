"""The assets gRPC API (`gridtwin.assets.v1.AssetService`): authentication, access, validation,
then the repository; health checking and reflection beside it.

Every RPC goes through the same steps, in this order, so the outcome of a bad call is
predictable: UNAUTHENTICATED (credentials) → PERMISSION_DENIED (scope for the method) →
INVALID_ARGUMENT (input) → PERMISSION_DENIED (paths named in the request) → NOT_FOUND /
PERMISSION_DENIED (ids, checked in SQL) → ALREADY_EXISTS / FAILED_PRECONDITION. Errors become
status codes in one place (`gridtwin.grpc_server.observing`). The same server runs the access
context's AccessService (services/access/api.py) behind the same guard.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import grpc
import shapely
import sqlalchemy.exc
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from gridtwin import paging, unixtime
from gridtwin.api.assets.v1 import assets_pb2 as pb
from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc
from gridtwin.grpc_server import GrpcApi, GrpcServer, observing
from gridtwin.settings import AccessSettings, AssetsSettings, TlsSettings
from services.access import rules
from services.access.authentication import Authenticator
from services.access.credentials import hash_credential
from services.access.guard import AccessGuard, for_caller
from services.access.model import DevicePrincipal, Principal
from services.access.service import Access
from services.assets import claims, convert
from services.assets.database import asyncpg_dsn
from services.assets.errors import InvalidArgument, PermissionDenied, Unauthenticated
from services.assets.model import (
    Customer,
    Device,
    DeviceId,
    DeviceKind,
    EnrollmentState,
    GroupPath,
    InstallationId,
    InstallationSettings,
    Page,
)
from services.assets.paths import parse_path
from services.assets.repository import AssetRepository
from services.assets.validation import (
    parse_box,
    parse_customer,
    parse_distance_key,
    parse_id,
    parse_installation,
    parse_page_size,
    parse_page_token,
    parse_point,
    parse_polygon,
    parse_query_page_token,
    parse_radius_m,
    parse_settings,
    parse_text,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE = pb.DESCRIPTOR.services_by_name["AssetService"]
SERVICE_NAME = SERVICE.full_name
METHODS = tuple(m.name for m in SERVICE.methods)

# Storage outages (the database down or unreachable) are UNAVAILABLE: the client may retry.
_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, sqlalchemy.exc.OperationalError,
                sqlalchemy.exc.InterfaceError)

RPCS = Counter("gridtwin_assets_rpcs_total", "Assets RPCs finished, by method and status code", ["method", "code"])
LATENCY = Histogram(
    "gridtwin_assets_rpc_latency_seconds", "Assets RPC latency", ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


# A rotation's grace is for a device to pick up its new credential, not a second credential for good.
MAX_ROTATION_GRACE_S = 30 * 86_400.0


# ------------------------------------------------------------ the servicer

_observed = observing(RPCS, LATENCY, unavailable=_UNAVAILABLE, unavailable_detail="asset storage unavailable")
Handler = Callable[[Any, Any, Principal], Awaitable[Any]]


def _rpc(fn: Handler) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """The method (named after `fn`) run for the caller the access guard admitted, observed."""
    return _observed()(for_caller(fn))


def _anonymous_rpc(fn: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any, grpc.aio.ServicerContext],
                                                                          Awaitable[Any]]:
    """As `_rpc`, for a method whose rule is anonymous: there is no caller, the request carries its
    own secret."""
    async def run(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await fn(self, request)
    run.__name__ = fn.__name__
    return _observed()(run)


def _denied(result: rules.Denied | None) -> None:
    if result is not None:
        raise PermissionDenied(result.reason)


def _path(text: str, field: str) -> GroupPath:
    return parse_path(text, field)


def _query(method: str, *filters: str) -> str:
    """The canonical text of a list request's filters, which its page tokens are bound to."""
    return json.dumps([method, *filters])


def _next_page_token(page: Page[T], query: str, key: Callable[[T], tuple[str, ...]]) -> str:
    """An opaque token naming the page's last row (its sort key and id); "" on the last page."""
    return paging.query_page_token(query, *key(page.items[-1])) if page.next_page_token else ""


class AssetServicer(pb_grpc.AssetServiceServicer):
    def __init__(self, repository: AssetRepository, authenticator: Authenticator, access: Access) -> None:
        self.repository = repository
        self.authenticator = authenticator
        self.access = access

    # ---------------------------------------------------------- customers

    @_rpc
    async def CreateCustomer(self, request: pb.CreateCustomerRequest, principal: Principal) -> pb.Customer:
        customer_id, name, email = parse_customer(request.customer_id or f"cust-{uuid.uuid4().hex[:16]}",
                                                  request.name, request.email)
        if not name:
            raise InvalidArgument("name", "required")
        customer = await self.repository.create_customer(Customer(customer_id, name, email))
        return convert.customer_to_pb(customer)

    @_rpc
    async def GetCustomer(self, request: pb.GetCustomerRequest, principal: Principal) -> pb.Customer:
        customer_id = parse_id(request.customer_id, "customer_id")
        return convert.customer_to_pb(await self.repository.get_customer(customer_id, rules.visibility(principal)))

    # ---------------------------------------------------------- installations

    @_rpc
    async def CreateInstallation(self, request: pb.CreateInstallationRequest, principal: Principal) -> pb.Installation:
        installation_id = request.installation.installation_id or f"inst-{uuid.uuid4().hex[:16]}"
        installation = parse_installation(convert.installation_from_pb(request.installation, installation_id))
        group_paths = [_path(p, f"group_paths[{i}]") for i, p in enumerate(request.group_paths)]
        vis = rules.visibility(principal)
        _denied(rules.check_paths(principal, group_paths))
        if not vis.everything and not group_paths:
            raise PermissionDenied("a token limited to groups must place the installation in one of them")
        if installation.customer_id is not None:
            await self.repository.get_customer(installation.customer_id, vis)  # exists and is visible
        created = await self.repository.create_installation(installation, group_paths)
        return convert.installation_to_pb(created)

    @_rpc
    async def GetInstallation(self, request: pb.GetInstallationRequest, principal: Principal) -> pb.Installation:
        installation_id = parse_id(request.installation_id, "installation_id")
        return convert.installation_to_pb(
            await self.repository.get_installation(installation_id, rules.visibility(principal)))

    @_rpc
    async def UpdateInstallationSettings(self, request: pb.UpdateInstallationSettingsRequest,
                                         principal: Principal) -> pb.Installation:
        installation_id = parse_id(request.installation_id, "installation_id")
        reserve = request.backup_reserve_pct if request.HasField("backup_reserve_pct") else None
        if reserve is not None:
            parse_settings(InstallationSettings(backup_reserve_pct=reserve))
        priority = (convert.enum_from_pb(convert.PRIORITY_FROM_PB, request.priority, "priority")
                    if request.priority else None)
        updated = await self.repository.update_settings(
            installation_id, rules.visibility(principal), backup_reserve_pct=reserve,
            stormwatch_enabled=request.stormwatch_enabled if request.HasField("stormwatch_enabled") else None,
            priority=priority)
        return convert.installation_to_pb(updated)

    # ---------------------------------------------------------- geosearch

    @_rpc
    async def SearchInstallationsInBox(self, request: pb.SearchInstallationsInBoxRequest,
                                       principal: Principal) -> pb.SearchInstallationsResponse:
        box = parse_box(request.min_longitude_deg, request.min_latitude_deg, request.max_longitude_deg,
                        request.max_latitude_deg)
        page = await self.repository.search_box(box, rules.visibility(principal), parse_page_size(request.page_size),
                                                parse_page_token(request.page_token))
        return pb.SearchInstallationsResponse(installations=[convert.installation_to_pb(i) for i in page.items],
                                              next_page_token=page.next_page_token)

    @_rpc
    async def SearchInstallationsInPolygon(self, request: pb.SearchInstallationsInPolygonRequest,
                                           principal: Principal) -> pb.SearchInstallationsResponse:
        polygon = parse_polygon(request.polygon_wkt)
        page = await self.repository.search_polygon(
            shapely.to_wkb(polygon), rules.visibility(principal), parse_page_size(request.page_size),
            parse_page_token(request.page_token))
        return pb.SearchInstallationsResponse(installations=[convert.installation_to_pb(i) for i in page.items],
                                              next_page_token=page.next_page_token)

    @_rpc
    async def SearchInstallationsNear(self, request: pb.SearchInstallationsNearRequest,
                                      principal: Principal) -> pb.SearchInstallationsNearResponse:
        if not request.HasField("center"):
            raise InvalidArgument("center", "required")
        center = parse_point(request.center.longitude_deg, request.center.latitude_deg, "center")
        radius_m = parse_radius_m(request.radius_m)
        if request.page_size:
            page_size = parse_page_size(request.page_size)
        else:   # `limit` is the older name of page_size
            page_size = parse_page_size(request.limit, field="limit")
        query = _query("SearchInstallationsNear", repr(center.longitude_deg), repr(center.latitude_deg),
                       repr(radius_m))
        key = parse_query_page_token(request.page_token, query, 2)
        after = (parse_distance_key(key[0]), key[1]) if key is not None else None
        page = await self.repository.search_near(center, radius_m, rules.visibility(principal), page_size, after)
        return pb.SearchInstallationsNearResponse(
            installations=[pb.InstallationDistance(installation=convert.installation_to_pb(f.installation),
                                                   distance_m=f.distance_m) for f in page.items],
            next_page_token=_next_page_token(page, query, lambda f: (repr(f.distance_m),
                                                                      f.installation.installation_id)))

    # ---------------------------------------------------------- devices

    @_rpc
    async def RegisterDevice(self, request: pb.RegisterDeviceRequest,
                             principal: Principal) -> pb.RegisterDeviceResponse:
        installation_id = parse_id(request.installation_id, "installation_id")
        serial = parse_id(request.serial, "serial")
        device_id = parse_id(request.device_id or serial, "device_id")
        kind = convert.enum_from_pb(convert.KIND_FROM_PB, request.kind, "kind", default=DeviceKind.GATEWAY)
        firmware = parse_text(request.firmware, "firmware", 64)
        credential = secrets.token_urlsafe(32)
        device = await self.repository.register_device(
            Device(DeviceId(device_id), serial, kind, firmware, InstallationId(installation_id)),
            hash_credential(credential), rules.visibility(principal))
        return pb.RegisterDeviceResponse(device=convert.device_to_pb(device), credential=credential)

    def _device_id(self, device_id: str, principal: Principal) -> str:
        device_id = parse_id(device_id, "device_id")
        if isinstance(principal, DevicePrincipal) and device_id != principal.device_id:
            raise PermissionDenied("a device may only read itself")
        return device_id

    @_rpc
    async def GetDevice(self, request: pb.GetDeviceRequest, principal: Principal) -> pb.Device:
        device_id = self._device_id(request.device_id, principal)
        return convert.device_to_pb(await self.repository.get_device(device_id, rules.visibility(principal)))

    @_rpc
    async def ListDevices(self, request: pb.ListDevicesRequest, principal: Principal) -> pb.ListDevicesResponse:
        installation_id = parse_id(request.installation_id, "installation_id")
        query = _query("ListDevices", installation_id)
        key = parse_query_page_token(request.page_token, query, 1)
        page = await self.repository.list_devices(installation_id, rules.visibility(principal),
                                                  parse_page_size(request.page_size), key[0] if key else "")
        return pb.ListDevicesResponse(devices=[convert.device_to_pb(d) for d in page.items],
                                      next_page_token=_next_page_token(page, query, lambda d: (d.device_id,)))

    @_rpc
    async def RevokeDevice(self, request: pb.RevokeDeviceRequest, principal: Principal) -> pb.Device:
        device_id = self._device_id(request.device_id, principal)
        device = await self.repository.revoke_device(device_id, rules.visibility(principal))
        self.authenticator.forget(device_id=device_id)
        return convert.device_to_pb(device)

    @_rpc
    async def RotateDeviceCredential(self, request: pb.RotateDeviceCredentialRequest,
                                     principal: Principal) -> pb.RotateDeviceCredentialResponse:
        device_id = self._device_id(request.device_id, principal)
        if not 0 <= request.grace_s <= MAX_ROTATION_GRACE_S:   # NaN fails both comparisons
            raise InvalidArgument("grace_s", f"between 0 and {MAX_ROTATION_GRACE_S:.0f} seconds")
        credential = secrets.token_urlsafe(32)
        now_ms = unixtime.now_ms()
        valid_until_ms = now_ms + round(request.grace_s * 1_000)
        device = await self.repository.rotate_device_credential(
            device_id, hash_credential(credential),
            unixtime.from_ms(valid_until_ms) if valid_until_ms > now_ms else None, rules.visibility(principal))
        self.authenticator.forget(device_id=device_id)   # this replica: the old credential's grace starts now
        return pb.RotateDeviceCredentialResponse(device=convert.device_to_pb(device), credential=credential,
                                                 previous_valid_until_unix_ms=valid_until_ms)

    @_rpc
    async def CreateDeviceClaim(self, request: pb.CreateDeviceClaimRequest,
                                principal: Principal) -> pb.CreateDeviceClaimResponse:
        installation_id = parse_id(request.installation_id, "installation_id")
        serial = parse_id(request.serial, "serial")
        device_id = parse_id(request.device_id or serial, "device_id")
        kind = convert.enum_from_pb(convert.KIND_FROM_PB, request.kind, "kind", default=DeviceKind.GATEWAY)
        firmware = parse_text(request.firmware, "firmware", 64)
        ttl_s = request.ttl_s or claims.DEFAULT_TTL_S
        if not 0 < ttl_s <= claims.MAX_TTL_S:   # NaN fails too
            raise InvalidArgument("ttl_s", f"between 0 and {claims.MAX_TTL_S:.0f} seconds")
        code = claims.new_claim_code()
        digest = claims.code_sha256(code)
        assert digest is not None
        expires_ms = unixtime.now_ms() + round(ttl_s * 1_000)
        device = await self.repository.create_device_claim(
            Device(DeviceId(device_id), serial, kind, firmware, InstallationId(installation_id)),
            hash_credential(secrets.token_urlsafe(32)), digest, unixtime.from_ms(expires_ms), principal.actor,
            rules.visibility(principal))
        return pb.CreateDeviceClaimResponse(device=convert.device_to_pb(device), claim_code=code,
                                            expires_unix_ms=expires_ms)

    @_anonymous_rpc
    async def ClaimDevice(self, request: pb.ClaimDeviceRequest) -> pb.ClaimDeviceResponse:
        digest = claims.code_sha256(request.claim_code)
        if digest is None:
            raise Unauthenticated("not a claim code (20 symbols such as 7KQ2-M9XD-3HFA-0RTW-PZ4C)")
        credential = secrets.token_urlsafe(32)
        device = await self.repository.redeem_device_claim(digest, hash_credential(credential))
        self.authenticator.forget(device_id=device.device_id)
        return pb.ClaimDeviceResponse(device=convert.device_to_pb(device), credential=credential)

    # ---------------------------------------------------------- hierarchies

    def _group_path(self, text: str, principal: Principal, field: str = "path") -> GroupPath:
        path = _path(text, field)
        _denied(rules.check_path(principal, path))
        return path

    @_rpc
    async def CreateGroup(self, request: pb.CreateGroupRequest, principal: Principal) -> pb.Group:
        path = self._group_path(request.path, principal)
        group = await self.repository.create_group(path, parse_text(request.display_name, "display_name", 200))
        return convert.group_to_pb(group)

    @_rpc
    async def ListGroups(self, request: pb.ListGroupsRequest, principal: Principal) -> pb.ListGroupsResponse:
        if request.relation not in (pb.RELATION_DESCENDANTS, pb.RELATION_ANCESTORS):
            raise InvalidArgument("relation", f"unknown value {request.relation}")
        path = self._group_path(request.path, principal)
        query = _query("ListGroups", path, str(request.relation))
        key = parse_query_page_token(request.page_token, query, 1)
        page = await self.repository.list_groups(path, ancestors=request.relation == pb.RELATION_ANCESTORS,
                                                 vis=rules.visibility(principal),
                                                 page_size=parse_page_size(request.page_size),
                                                 after=key[0] if key else "")
        return pb.ListGroupsResponse(groups=[convert.group_to_pb(g) for g in page.items],
                                     next_page_token=_next_page_token(page, query, lambda g: (g.path,)))

    @_rpc
    async def AddToGroup(self, request: pb.AddToGroupRequest, principal: Principal) -> pb.Membership:
        installation_id = parse_id(request.installation_id, "installation_id")
        path = self._group_path(request.path, principal)
        await self.repository.add_to_group(installation_id, path, rules.visibility(principal))
        return pb.Membership(installation_id=installation_id, path=path)

    @_rpc
    async def RemoveFromGroup(self, request: pb.RemoveFromGroupRequest, principal: Principal) -> pb.Membership:
        installation_id = parse_id(request.installation_id, "installation_id")
        path = self._group_path(request.path, principal)
        await self.repository.remove_from_group(installation_id, path, rules.visibility(principal))
        return pb.Membership(installation_id=installation_id, path=path)

    @_rpc
    async def ListGroupInstallations(self, request: pb.ListGroupInstallationsRequest,
                                     principal: Principal) -> pb.ListGroupInstallationsResponse:
        path = self._group_path(request.path, principal)
        page = await self.repository.group_installations(path, parse_page_size(request.page_size),
                                                         parse_page_token(request.page_token))
        return pb.ListGroupInstallationsResponse(installation_ids=list(page.items),
                                                 next_page_token=page.next_page_token)

    @_rpc
    async def ListInstallationGroups(self, request: pb.ListInstallationGroupsRequest,
                                     principal: Principal) -> pb.ListGroupsResponse:
        installation_id = parse_id(request.installation_id, "installation_id")
        groups = await self.repository.installation_groups(installation_id, rules.visibility(principal))
        return pb.ListGroupsResponse(groups=[convert.group_to_pb(g) for g in groups])

    # ---------------------------------------------------------- programs

    @_rpc
    async def CreateProgram(self, request: pb.CreateProgramRequest, principal: Principal) -> pb.Group:
        path = self._group_path(request.path, principal)
        group = await self.repository.create_program(path, parse_text(request.display_name, "display_name", 200))
        return convert.group_to_pb(group)

    @_rpc
    async def ChangeEnrollment(self, request: pb.ChangeEnrollmentRequest, principal: Principal) -> pb.EnrollmentChange:
        installation_id = parse_id(request.installation_id, "installation_id")
        program = self._group_path(request.program, principal, "program")
        target: EnrollmentState = convert.enum_from_pb(convert.STATE_FROM_PB, request.target, "target")
        reason = parse_text(request.reason, "reason", 500)
        change = await self.repository.change_enrollment(installation_id, program, target, actor=principal.actor,
                                                         reason=reason, vis=rules.visibility(principal))
        return convert.change_to_pb(change)

    @_rpc
    async def GetEnrollment(self, request: pb.GetEnrollmentRequest, principal: Principal) -> pb.Enrollment:
        installation_id = parse_id(request.installation_id, "installation_id")
        program = self._group_path(request.program, principal, "program")
        state = await self.repository.get_enrollment(installation_id, program, rules.visibility(principal))
        return pb.Enrollment(installation_id=installation_id, program=program, state=convert.STATE_TO_PB[state])

    @_rpc
    async def ListEnrollmentHistory(self, request: pb.ListEnrollmentHistoryRequest,
                                    principal: Principal) -> pb.ListEnrollmentHistoryResponse:
        installation_id = parse_id(request.installation_id, "installation_id")
        program = self._group_path(request.program, principal, "program")
        changes = await self.repository.enrollment_history(installation_id, program, rules.visibility(principal))
        return pb.ListEnrollmentHistoryResponse(changes=[convert.change_to_pb(c) for c in changes])

    # ---------------------------------------------------------- tokens (the access context's)

    @_rpc
    async def CreateToken(self, request: pb.CreateTokenRequest, principal: Principal) -> pb.CreateTokenResponse:
        """A standalone token: AccessService.CreateToken with `standalone`, one implementation."""
        scopes = frozenset(convert.enum_from_pb(convert.SCOPE_FROM_PB, s, f"scopes[{i}]")
                           for i, s in enumerate(request.scopes))
        allowed = tuple(dict.fromkeys(parse_path(p, f"allowed_paths[{i}]", allow_root=True)
                                      for i, p in enumerate(request.allowed_paths)))
        token, record = await self.access.create_token(principal, request.name, scopes, allowed,
                                                       request.expires_unix_ms or None, standalone=True)
        return pb.CreateTokenResponse(principal_id=record.token_id, token=token)

    @_rpc
    async def RevokeToken(self, request: pb.RevokeTokenRequest, principal: Principal) -> pb.RevokeTokenResponse:
        return pb.RevokeTokenResponse(
            principal_id=await self.access.revoke_token(principal, request.principal_id, "principal_id"))


# ------------------------------------------------------------ the server

class AssetApi(GrpcApi):
    """The gRPC server: AssetService and the access context's AccessService behind one guard,
    health checking and reflection. `async with AssetApi(...)` or `start()`/`stop()`; `port` is the
    bound port (settings port 0 = ephemeral).

    `pool`: the process's asyncpg pool for access (authentication, people, the audit log); without
    one (tools, tests) the API opens a small one of its own on the engine's database at start."""

    def __init__(self, settings: AssetsSettings, engine: AsyncEngine, *, pool: asyncpg.Pool | None = None,
                 access: AccessSettings | None = None, tls: TlsSettings | None = None) -> None:
        self._settings = settings
        self._engine = engine
        self._pool, self._own_pool = pool, pool is None
        self._access_settings = access or AccessSettings()
        self._tls = tls
        self.repository = AssetRepository(engine)
        self.authenticator: Authenticator | None = None

    async def start(self) -> None:
        from services.access.api import SERVICE as ACCESS_SERVICE
        from services.access.api import AccessServicer, add_to_server
        from services.access.store import AccessStore

        if self._pool is None:
            self._pool = await asyncpg.create_pool(asyncpg_dsn(self._engine), min_size=1, max_size=4)
        settings = self._settings
        self.authenticator = Authenticator(self._pool, cache_s=settings.auth_cache_s,
                                           max_entries=settings.auth_cache_entries)
        self.access = Access(AccessStore(self._pool), self.authenticator, self._access_settings)
        servicer = AssetServicer(self.repository, self.authenticator, self.access)
        access_servicer = AccessServicer(self.access)

        def register(server: grpc.aio.Server) -> None:
            pb_grpc.add_AssetServiceServicer_to_server(servicer, server)
            add_to_server(access_servicer, server)

        self._server = GrpcServer(settings.host, settings.port, [SERVICE_NAME, ACCESS_SERVICE.full_name], register,
                                  tls=self._tls,
                                  interceptors=[AccessGuard(self.authenticator, [SERVICE, ACCESS_SERVICE])])
        await self._server.start()

    async def stop(self, grace_s: float = 5.0) -> None:
        await super().stop(grace_s)
        if self.authenticator is not None:
            await self.authenticator.close()   # flushes the audit log
        if self._own_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None
