"""The gate every gridtwin gRPC call passes before its handler: authentication (the AssetService's
tokens and device credentials) and the method's rule (`services.assets.access.ACCESS`: scope,
devices). What the request names is scoped to the token's groups by the handler, which reads the
caller with `caller()` and uses the checks below.

Order of refusals, the same in every service: UNAUTHENTICATED (credentials) → PERMISSION_DENIED
(scope, devices) → the handler's own (INVALID_ARGUMENT, then NOT_FOUND / PERMISSION_DENIED for
targets). A method that has no rule is refused, and a server will not even start with one
(`AccessGuard` checks the services it guards), so a new RPC cannot be served unguarded. A rule
marked `anonymous` (ClaimDevice: the request's claim code is the credential) skips authentication;
its handler checks the secret and reads no `caller()`.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import sqlalchemy.exc
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import Counter

from gridtwin.grpc_server import Refused
from services.assets import access
from services.assets.access import ACCESS, DevicePrincipal, Principal, Rule
from services.assets.errors import PermissionDenied, Unauthenticated

if TYPE_CHECKING:  # services/assets/api.py imports this module
    from services.assets.api import Authenticator

log = logging.getLogger(__name__)

# Health checks and reflection answer anyone: probes and grpcurl carry no token.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                           "grpc.reflection.v1.ServerReflection"})
_STORAGE_DOWN = (OSError, asyncpg.PostgresConnectionError, sqlalchemy.exc.OperationalError,
                 sqlalchemy.exc.InterfaceError)

REFUSED = Counter("gridtwin_access_refused_total", "Calls refused before their handler ran, by method and code",
                  ["method", "code"])

_CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("gridtwin_caller")


def caller() -> Principal:
    """The principal of the RPC being handled; set by AccessGuard (LookupError without one)."""
    return _CALLER.get()


def unruled_methods(services: Iterable[ServiceDescriptor], rules: Mapping[str, Rule] = ACCESS) -> list[str]:
    """Full names of the services' methods that have no access rule."""
    return [f"/{s.full_name}/{m.name}" for s in services for m in s.methods
            if s.full_name not in OPEN_SERVICES and f"/{s.full_name}/{m.name}" not in rules]


class AccessGuard(grpc.aio.ServerInterceptor):
    """Authenticates every call and admits it by its method's rule; `services`: the descriptors of
    the services this server runs, each method of which must have a rule."""

    def __init__(self, authenticator: Authenticator, services: Iterable[ServiceDescriptor],
                 rules: Mapping[str, Rule] = ACCESS) -> None:
        missing = unruled_methods(services, rules)
        if missing:
            raise RuntimeError(f"no access rule for {missing} (services/assets/access.py ACCESS)")
        self._authenticator = authenticator
        self._rules = rules

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.split("/")[1] in OPEN_SERVICES:
            return handler
        rule = self._rules.get(method)

        async def admit(context: grpc.aio.ServicerContext) -> None:
            code, detail = await self._refusal(method, rule, context)
            if code is not None:
                REFUSED.labels(method, code.name).inc()
                await context.abort(code, detail)

        return _guarded(handler, admit)

    async def _refusal(self, method: str, rule: Rule | None, context: grpc.aio.ServicerContext
                       ) -> tuple[grpc.StatusCode | None, str]:
        if rule is None:
            return grpc.StatusCode.PERMISSION_DENIED, f"{method} has no access rule"
        if rule.anonymous:   # the request's own one-time secret is checked by the handler
            return None, ""
        try:
            principal = await self._authenticator.authenticate(context.invocation_metadata() or ())
        except Unauthenticated as error:
            return grpc.StatusCode.UNAUTHENTICATED, str(error)
        except _STORAGE_DOWN as exc:
            log.warning("%s: credential storage unavailable: %s", method, exc)
            return grpc.StatusCode.UNAVAILABLE, "credential storage unavailable"
        denied = access.admit(principal, method, rule)
        if denied is not None:
            return grpc.StatusCode.PERMISSION_DENIED, denied.reason
        _CALLER.set(principal)  # the RPC's own task context: no other call sees it
        return None, ""


def _guarded(handler: grpc.RpcMethodHandler,
             admit: Callable[[grpc.aio.ServicerContext], Awaitable[None]]) -> grpc.RpcMethodHandler:
    """The handler with `admit` run first; keeps each behavior's kind (grpc treats an async
    generator and a coroutine that calls context.write differently)."""
    kind = next(k for k in ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
                if getattr(handler, k) is not None)
    behavior = getattr(handler, kind)
    if inspect.isasyncgenfunction(behavior):
        async def generate(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await admit(context)
            async for response in behavior(request, context):
                yield response
        wrapped: Callable[..., Any] = generate
    else:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            return await behavior(request, context)
        wrapped = call
    return handler._replace(**{kind: wrapped})  # type: ignore[attr-defined, no-any-return]


# ------------------------------------------------------------ target checks for handlers

async def check_installation(pool: asyncpg.Pool, principal: Principal, installation_id: str) -> None:
    """PermissionDenied unless the installation is the device's own, or a member of a group within
    the token's paths (a token over "" sees every installation, existing or not)."""
    vis = access.visibility(principal)
    if vis.everything:
        return
    if vis.installation_id is not None:
        seen = vis.installation_id == installation_id
    elif "\x00" in installation_id:    # no installation has one (and Postgres text cannot hold it)
        seen = False
    else:
        seen = await pool.fetchval("""
            SELECT EXISTS (SELECT 1 FROM group_memberships WHERE installation_id = $1
                           AND path <@ ANY($2::text[]::ltree[]))
        """, installation_id, list(vis.paths))
    if not seen:
        raise PermissionDenied(f"installation {installation_id!r} is outside this token's groups")


def visible_installations(principal: Principal) -> tuple[str, list[str]] | None:
    """For filtering a list in SQL: None when the principal sees everything, else a condition on
    `installation_id` with one parameter placeholder `{}` and its argument."""
    vis = access.visibility(principal)
    if vis.everything:
        return None
    if isinstance(principal, DevicePrincipal) or vis.installation_id is not None:
        return "installation_id = ANY({}::text[])", [str(vis.installation_id)]
    return ("installation_id IN (SELECT installation_id FROM group_memberships "
            "WHERE path <@ ANY({}::text[]::ltree[]))"), list(vis.paths)


async def refuse_unless_visible(pool: asyncpg.Pool, installation_id: str) -> None:
    """`check_installation` for the caller, refused as a `Refused` (for servicers built on
    gridtwin.grpc_server.observing)."""
    try:
        await check_installation(pool, caller(), installation_id)
    except PermissionDenied as error:
        raise Refused(grpc.StatusCode.PERMISSION_DENIED, str(error)) from None
