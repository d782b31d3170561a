"""The AccessService gRPC API (`gridtwin.access.v1.AccessService`): conversions between messages
and the access use cases (service.py). Served by the assets process beside AssetService, behind
the same guard (`services.access.guard.AccessGuard`), its errors mapped by the one `observing`
wrapper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from gridtwin.api.access.v1 import access_pb2 as pb
from gridtwin.api.access.v1 import access_pb2_grpc as pb_grpc
from gridtwin.grpc_server import observing
from services.access.authentication import STORAGE_DOWN
from services.access.guard import for_caller
from services.access.model import ApiPrincipal, Kind, Principal
from services.access.service import Access, Session, parse_paths, parse_scopes
from services.access.store import AuditRecord, TokenRecord, User

SERVICE = pb.DESCRIPTOR.services_by_name["AccessService"]

RPCS = Counter("gridtwin_access_rpcs_total", "Access RPCs finished, by method and status code", ["method", "code"])
LATENCY = Histogram("gridtwin_access_rpc_latency_seconds", "Access RPC latency", ["method"],
                    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
_observed = observing(RPCS, LATENCY, unavailable=STORAGE_DOWN, unavailable_detail="access storage unavailable")

KIND_TO_PB = {Kind.OPERATOR: pb.Principal.OPERATOR, Kind.HOMEOWNER: pb.Principal.HOMEOWNER,
              Kind.INSTALLER: pb.Principal.INSTALLER, Kind.MACHINE: pb.Principal.MACHINE,
              Kind.TOKEN: pb.Principal.TOKEN, Kind.DEVICE: pb.Principal.DEVICE}
KIND_FROM_PB = {v: k for k, v in KIND_TO_PB.items()}


def principal_to_pb(principal: Principal) -> pb.Principal:
    if not isinstance(principal, ApiPrincipal):
        return pb.Principal(kind=pb.Principal.DEVICE, principal_id=principal.device_id, name=principal.device_id,
                            installation_ids=[principal.installation_id])
    return pb.Principal(kind=KIND_TO_PB[principal.kind], principal_id=principal.principal_id, name=principal.name,
                        role=principal.role.value if principal.role else "",
                        scopes=sorted(s.value for s in principal.scopes), allowed_paths=list(principal.allowed_paths),
                        installation_ids=list(principal.installation_ids),
                        expires_unix_ms=principal.expires_unix_ms or 0)


def session_to_pb(session: Session) -> pb.Session:
    return pb.Session(token=session.token, expires_unix_ms=session.expires_unix_ms,
                      principal=principal_to_pb(session.principal), idle_timeout_s=session.idle_timeout_s)


def user_to_pb(user: User) -> pb.User:
    return pb.User(user_id=user.user_id, username=user.username, kind=KIND_TO_PB[user.kind],
                   role=user.role.value if user.role else "", allowed_paths=list(user.allowed_paths),
                   installation_ids=list(user.installation_ids), email=user.email, disabled=user.disabled,
                   created_unix_ms=user.created_unix_ms)


def token_to_pb(token: TokenRecord) -> pb.TokenInfo:
    return pb.TokenInfo(token_id=token.token_id, name=token.name, scopes=sorted(s.value for s in token.scopes),
                        allowed_paths=list(token.allowed_paths), expires_unix_ms=token.expires_unix_ms or 0,
                        owner_user_id=token.owner_user_id or "", created_unix_ms=token.created_unix_ms,
                        revoked=token.revoked)


def audit_to_pb(entry: AuditRecord) -> pb.AuditEntry:
    return pb.AuditEntry(time_unix_ms=entry.time_unix_ms, actor=entry.actor, method=entry.method,
                         target=entry.target, code=entry.code)


def source_of(context: grpc.aio.ServicerContext) -> str:
    """The caller's address for login throttling: the first `x-forwarded-for` hop when a gateway
    (the HTTP API) forwards it, else the peer. Direct gRPC callers can set the header; the
    per-username lockout still holds for them."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-forwarded-for" and isinstance(value, str) and value.strip():
            return value.split(",")[0].strip()[:100]
    peer = context.peer() or "unknown"
    # "ipv4:1.2.3.4:5678" / "ipv6:[::1]:5678": the address without the port
    return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer


Handler = Callable[[Any, Any, Principal], Awaitable[Any]]


def _rpc(fn: Handler) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """The method (named after `fn`) run for the caller the access guard admitted, observed."""
    return _observed()(for_caller(fn))


class AccessServicer(pb_grpc.AccessServiceServicer):
    def __init__(self, access: Access) -> None:
        self.access = access

    # ---------------------------------------------------------- sessions (Login: anonymous)

    @_observed()
    async def Login(self, request: pb.LoginRequest, context: grpc.aio.ServicerContext) -> pb.Session:
        return session_to_pb(await self.access.login(request.username, request.password, source_of(context)))

    @_observed()
    async def LoginWithIdentity(self, request: pb.LoginWithIdentityRequest,
                                context: grpc.aio.ServicerContext) -> pb.Session:
        return session_to_pb(await self.access.login_with_identity(request.id_token, request.nonce))

    @_rpc
    async def Logout(self, request: pb.LogoutRequest, principal: Principal) -> pb.LogoutReply:
        await self.access.logout(principal)
        return pb.LogoutReply()

    @_rpc
    async def WhoAmI(self, request: pb.WhoAmIRequest, principal: Principal) -> pb.Principal:
        return principal_to_pb(principal)

    # ---------------------------------------------------------- users

    @_rpc
    async def CreateUser(self, request: pb.CreateUserRequest, principal: Principal) -> pb.User:
        user = await self.access.create_user(
            principal, request.username, request.password, KIND_FROM_PB.get(request.kind), request.role,
            list(request.allowed_paths), list(request.installation_ids), request.email)
        return user_to_pb(user)

    @_rpc
    async def ListUsers(self, request: pb.ListUsersRequest, principal: Principal) -> pb.ListUsersResponse:
        users, next_token = await self.access.list_users(principal, request.page_size, request.page_token)
        return pb.ListUsersResponse(users=[user_to_pb(u) for u in users], next_page_token=next_token)

    @_rpc
    async def DisableUser(self, request: pb.DisableUserRequest, principal: Principal) -> pb.User:
        return user_to_pb(await self.access.disable_user(principal, request.user_id))

    # ---------------------------------------------------------- invitations, resets

    @_rpc
    async def InviteHomeowner(self, request: pb.InviteHomeownerRequest, principal: Principal) -> pb.Invitation:
        issued = await self.access.invite_homeowner(principal, request.installation_id, request.email)
        return pb.Invitation(code=issued.code, expires_unix_ms=issued.expires_unix_ms,
                             installation_id=request.installation_id)

    @_observed()
    async def AcceptInvitation(self, request: pb.AcceptInvitationRequest,
                               context: grpc.aio.ServicerContext) -> pb.Session:
        return session_to_pb(await self.access.accept_invitation(request.code, request.username, request.password))

    @_rpc
    async def CreatePasswordReset(self, request: pb.CreatePasswordResetRequest,
                                  principal: Principal) -> pb.PasswordReset:
        issued = await self.access.create_password_reset(principal, request.username)
        return pb.PasswordReset(code=issued.code, expires_unix_ms=issued.expires_unix_ms)

    @_observed()
    async def ResetPassword(self, request: pb.ResetPasswordRequest,
                            context: grpc.aio.ServicerContext) -> pb.ResetPasswordReply:
        await self.access.reset_password(request.code, request.new_password)
        return pb.ResetPasswordReply()

    # ---------------------------------------------------------- personal access tokens

    @_rpc
    async def CreateToken(self, request: pb.CreateTokenRequest, principal: Principal) -> pb.CreateTokenResponse:
        token, record = await self.access.create_token(
            principal, request.name, parse_scopes(request.scopes), parse_paths(request.allowed_paths),
            request.expires_unix_ms or None, standalone=request.standalone)
        return pb.CreateTokenResponse(token=token, info=token_to_pb(record))

    @_rpc
    async def ListTokens(self, request: pb.ListTokensRequest, principal: Principal) -> pb.ListTokensResponse:
        tokens, next_token = await self.access.list_tokens(principal, request.page_size, request.page_token)
        return pb.ListTokensResponse(tokens=[token_to_pb(t) for t in tokens], next_page_token=next_token)

    @_rpc
    async def RevokeToken(self, request: pb.RevokeTokenRequest, principal: Principal) -> pb.RevokeTokenResponse:
        return pb.RevokeTokenResponse(token_id=await self.access.revoke_token(principal, request.token_id))

    # ---------------------------------------------------------- machine clients

    @_rpc
    async def CreateClient(self, request: pb.CreateClientRequest, principal: Principal) -> pb.Client:
        issued = await self.access.create_client(principal, request.name, parse_scopes(request.scopes),
                                                 parse_paths(request.allowed_paths))
        client = issued.client
        return pb.Client(client_id=client.client_id, client_secret=issued.secret, name=client.name,
                         scopes=sorted(s.value for s in client.scopes), allowed_paths=list(client.allowed_paths))

    @_observed()
    async def IssueClientToken(self, request: pb.IssueClientTokenRequest,
                               context: grpc.aio.ServicerContext) -> pb.ClientToken:
        issued = await self.access.issue_client_token(request.client_id, request.client_secret, request.scope)
        return pb.ClientToken(access_token=issued.access_token, expires_in_s=issued.expires_in_s,
                              token_type="Bearer", scope=" ".join(sorted(s.value for s in issued.scopes)))

    # ---------------------------------------------------------- audit

    @_rpc
    async def ListAuditLog(self, request: pb.ListAuditLogRequest, principal: Principal) -> pb.ListAuditLogResponse:
        entries, next_token = await self.access.list_audit(principal, request.page_size, request.page_token,
                                                           request.actor, request.method)
        return pb.ListAuditLogResponse(entries=[audit_to_pb(e) for e in entries], next_page_token=next_token)


def add_to_server(servicer: AccessServicer, server: grpc.aio.Server) -> None:
    pb_grpc.add_AccessServiceServicer_to_server(servicer, server)


__all__ = ["SERVICE", "AccessServicer", "add_to_server", "principal_to_pb"]
