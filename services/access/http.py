"""The HTTP twin of the gRPC guard: authenticate a request (an `Authorization` header, else the
session cookie as a Bearer token) and admit it by an RPC's rule from the same table (`ACCESS`),
with the same refusals; and the problem+json body of a refusal (RFC 9457) from the one status
table in gridtwin/errors.py.

Framework-neutral (headers and cookies as mappings); `dependency(method)` adapts it to FastAPI /
Starlette: `Depends(access.dependency("/gridtwin.assets.v1.AssetService/GetInstallation"))`.
The HTTP API that forwards every call to the gRPC services needs none of this (the gRPC guard
decides); it is for HTTP routes served without a gRPC call behind them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gridtwin.errors import GridtwinError, InvalidArgument, PermissionDenied, Unauthenticated
from services.access import rules
from services.access.authentication import Authenticator
from services.access.model import Principal

SESSION_COOKIE = "gridtwin_session"


class HttpAccess:
    def __init__(self, authenticator: Authenticator, *, session_cookie: str = SESSION_COOKIE) -> None:
        self.authenticator = authenticator
        self.session_cookie = session_cookie

    async def principal(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> tuple[Principal, bool]:
        """The caller and whether it came by the session cookie (a write by cookie needs CSRF
        protection, the caller's job); Unauthenticated without valid credentials."""
        authorization = headers.get("authorization", "")
        if authorization:
            return await self.authenticator.authenticate_header(authorization), False
        session = cookies.get(self.session_cookie, "")
        if session:
            return await self.authenticator.bearer(session), True
        raise Unauthenticated("send `Authorization: Bearer <token>` or log in (session cookie)")

    async def admit(self, method: str, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Principal | None:
        """The caller admitted to `method` (a full gRPC method name) by its rule; None for an
        anonymous rule. Unauthenticated / PermissionDenied as the gRPC guard refuses."""
        rule = rules.ACCESS.get(method)
        if rule is None:
            raise PermissionDenied(f"{method} has no access rule")
        if rule.anonymous:
            return None
        principal, _ = await self.principal(headers, cookies)
        denied = rules.admit(principal, method, rule)
        if denied is not None:
            raise PermissionDenied(denied.reason)
        return principal

    def dependency(self, method: str) -> Callable[[Any], Awaitable[Principal | None]]:
        """A FastAPI/Starlette dependency: `request` → the admitted principal (raises GridtwinError;
        map it with `problem`)."""
        async def admitted(request: Any) -> Principal | None:
            return await self.admit(method, request.headers, request.cookies)
        return admitted


def problem(error: GridtwinError, *, instance: str = "") -> dict[str, Any]:
    """The RFC 9457 problem+json body of `error` (its status from the one table)."""
    body: dict[str, Any] = {"type": "about:blank", "title": error.grpc_status.name.replace("_", " ").lower(),
                            "status": error.http_status, "detail": str(error), "code": error.grpc_status.name}
    if instance:
        body["instance"] = instance
    if isinstance(error, InvalidArgument) and error.field:
        body["pointer"] = error.pointer
    if error.retriable:
        body["retriable"] = True
    retry_after_s = getattr(error, "retry_after_s", None)
    if retry_after_s is not None:
        body["retry_after_s"] = retry_after_s
    return body
