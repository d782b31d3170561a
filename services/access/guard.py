"""The gate every gridtwin gRPC call passes before its handler: authentication (services/access/
authentication.py) and the method's rule (`services.access.rules.ACCESS`: scope, kinds of
principal). What the request names is scoped to the caller by the handler, which reads the caller
with `caller()` and uses the checks below. Writes are recorded in the audit log here, for every
service in one place.

Order of refusals, the same in every service: UNAUTHENTICATED (credentials) → PERMISSION_DENIED
(scope, kind) → the handler's own (INVALID_ARGUMENT, then NOT_FOUND / PERMISSION_DENIED for
targets). A method that has no rule is refused, and a server will not even start with one
(`AccessGuard` checks the services it guards), so a new RPC cannot be served unguarded. A rule
marked `anonymous` (a claim code, a password, a client secret is the credential) skips
authentication; its handler checks the secret and reads no `caller()`.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import asyncpg
import grpc
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import Counter

from gridtwin.errors import GridtwinError, PermissionDenied
from services.access import rules
from services.access.audit import target_of
from services.access.authentication import Authenticator
from services.access.model import BOUND, Principal
from services.access.rules import ACCESS, AUDITED, Rule

log = logging.getLogger(__name__)

# Health checks and reflection answer anyone: probes and grpcurl carry no token.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                           "grpc.reflection.v1.ServerReflection"})

REFUSED = Counter("gridtwin_access_refused_total", "Calls refused before their handler ran, by method and code",
                  ["method", "code"])

_CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("gridtwin_caller")


def caller() -> Principal:
    """The principal of the RPC being handled; set by AccessGuard (LookupError without one)."""
    return _CALLER.get()


def caller_or_none() -> Principal | None:
    return _CALLER.get(None)


CallerHandler = Callable[[Any, Any, Principal], Awaitable[Any]]


def for_caller(fn: CallerHandler) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """A servicer method written as `(self, request, principal)`, run for the caller the guard
    admitted; keeps `fn`'s name, which `observing` labels the call with."""
    async def run(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await fn(self, request, caller())
    run.__name__ = fn.__name__
    return run


def unruled_methods(services: Iterable[ServiceDescriptor], rules: Mapping[str, Rule] = ACCESS) -> list[str]:
    """Full names of the services' methods that have no access rule."""
    return [f"/{s.full_name}/{m.name}" for s in services for m in s.methods
            if s.full_name not in OPEN_SERVICES and f"/{s.full_name}/{m.name}" not in rules]


class AccessGuard(grpc.aio.ServerInterceptor):
    """Authenticates every call, admits it by its method's rule and records writes in the audit
    log; `services`: the descriptors of the services this server runs, each method of which must
    have a rule."""

    def __init__(self, authenticator: Authenticator, services: Iterable[ServiceDescriptor],
                 rules: Mapping[str, Rule] = ACCESS) -> None:
        missing = unruled_methods(services, rules)
        if missing:
            raise RuntimeError(f"no access rule for {missing} (services/access/rules.py ACCESS)")
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

        audit = self._authenticator.audit if method in AUDITED else None

        def record(request: Any, code: grpc.StatusCode) -> None:
            if audit is not None:
                principal = caller_or_none()
                audit.record(principal.actor if principal is not None else "anonymous", method,
                             target_of(request), code.name)

        return _guarded(handler, admit, record)

    async def _refusal(self, method: str, rule: Rule | None, context: grpc.aio.ServicerContext
                       ) -> tuple[grpc.StatusCode | None, str]:
        if rule is None:
            return grpc.StatusCode.PERMISSION_DENIED, f"{method} has no access rule"
        if rule.anonymous:   # the request's own one-time secret is checked by the handler
            return None, ""
        try:
            principal = await self._authenticator.authenticate(context.invocation_metadata() or ())
        except GridtwinError as error:   # Unauthenticated, or Unavailable (credential storage down)
            if error.retriable:
                log.warning("%s: %s (%r)", method, error, error.__cause__)
            return error.grpc_status, str(error)
        denied = rules.admit(principal, method, rule)
        if denied is not None:
            return grpc.StatusCode.PERMISSION_DENIED, denied.reason
        _CALLER.set(principal)  # the RPC's own task context: no other call sees it
        return None, ""


def _code_of(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _guarded(handler: grpc.RpcMethodHandler,
             admit: Callable[[grpc.aio.ServicerContext], Awaitable[None]],
             record: Callable[[Any, grpc.StatusCode], None]) -> grpc.RpcMethodHandler:
    """The handler with `admit` run first and `record` after (with the outcome); keeps each
    behavior's kind (grpc treats an async generator and a coroutine that calls context.write
    differently)."""
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
            try:
                await admit(context)
            except grpc.aio.AbortError:
                record(request, _code_of(context))
                raise
            try:
                response = await behavior(request, context)
            except grpc.aio.AbortError:
                record(request, _code_of(context))
                raise
            except BaseException:
                record(request, grpc.StatusCode.UNKNOWN)
                raise
            record(request, grpc.StatusCode.OK)
            return response
        wrapped = call
    return handler._replace(**{kind: wrapped})  # type: ignore[attr-defined, no-any-return]


# ------------------------------------------------------------ target checks for handlers

async def check_installation(pool: asyncpg.Pool, principal: Principal, installation_id: str) -> None:
    """PermissionDenied unless the installation is one of the caller's own (a device, a homeowner,
    an installer), or a member of a group within the caller's paths (a token over "" sees every
    installation, existing or not)."""
    vis = rules.visibility(principal)
    seen = rules.sees_installation(vis, installation_id)
    if seen is None:
        if "\x00" in installation_id:    # no installation has one (and Postgres text cannot hold it)
            seen = False
        else:
            seen = await pool.fetchval("""
                SELECT EXISTS (SELECT 1 FROM group_memberships WHERE installation_id = $1
                               AND path <@ ANY($2::text[]::ltree[]))
            """, installation_id, list(vis.paths))
    if not seen:
        if principal.kind in BOUND:
            raise PermissionDenied(f"installation {installation_id!r} is not one of yours")
        raise PermissionDenied(f"installation {installation_id!r} is outside this token's groups")


def visible_installations(principal: Principal) -> tuple[str, list[str]] | None:
    """For filtering a list in SQL: None when the principal sees everything, else a condition on
    `installation_id` with one parameter placeholder `{}` and its argument."""
    vis = rules.visibility(principal)
    if vis.everything:
        return None
    if vis.installation_ids is not None:
        return "installation_id = ANY({}::text[])", [str(i) for i in vis.installation_ids]
    return ("installation_id IN (SELECT installation_id FROM group_memberships "
            "WHERE path <@ ANY({}::text[]::ltree[]))"), list(vis.paths)


async def refuse_unless_visible(pool: asyncpg.Pool, installation_id: str) -> None:
    """`check_installation` for the caller (PermissionDenied, which `observing` turns into
    PERMISSION_DENIED)."""
    await check_installation(pool, caller(), installation_id)
