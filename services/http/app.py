"""The ASGI service: the route table served with FastAPI, over the gRPC services.

Every request, in order: security headers and CORS (middleware); the caller's credential
(`Authorization` as sent, else the session cookie as a Bearer token); the per-principal rate
limit (429); for a cookie-authenticated write, the CSRF token (403); the request message built
from path, query and body (400 with pointers); for a POST with `Idempotency-Key`, a stored answer
replayed; the gRPC call with the credential; the answer as JSON (ETag, 304, `next` link) or a
problem. Nothing here decides who may do what: the service answers PERMISSION_DENIED.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import grpc
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from google.protobuf.message import Message
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from gridtwin.settings import ROOT, HttpSettings, OidcSettings
from services.http import problems, sse
from services.http.idempotency import IdempotencyStore
from services.http.limits import RateLimiter, csrf_ok, csrf_token, etag, matches, principal_key
from services.http.openapi import API_PREFIX, document
from services.http.routes import ACCESS_SERVICE, ROUTES, Kind, Route
from services.http.transcode import (
    BadRequest,
    Fault,
    build_request,
    field_value,
    method_descriptor,
    parse_json,
    to_json,
)
from services.http.upstream import Upstream

log = logging.getLogger(__name__)

REQUESTS = Counter("gridtwin_http_requests_total", "HTTP API requests", ["route", "status"])
LATENCY = Histogram("gridtwin_http_request_seconds", "HTTP API request latency (unary routes)", ["route"])

CSRF_COOKIE = "gridtwin_csrf"
FIRST_EVENT_WAIT_S = 1.0      # a new stream's refusal (401/403/404) is awaited this long before 200
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DOCS_DIR = ROOT / "var" / "docs" / "swagger-ui"
DOCS_PAGE = Path(__file__).parent / "docs"


@dataclass
class Context:
    settings: HttpSettings
    upstream: Upstream
    hub: sse.Hub
    limiter: RateLimiter
    idempotency: IdempotencyStore | None
    cookie_secure: bool
    tls: bool
    oidc: OidcSettings | None = None   # login with an identity provider (services/http/oidc.py)


@dataclass(frozen=True)
class Caller:
    metadata: tuple[tuple[str, str], ...]
    key: str              # principal_key of the credential, or of the client address
    via_cookie: bool
    session: str = ""     # the cookie's session token


class ProblemError(Exception):
    def __init__(self, status: int, detail: str, *, faults: list[Fault] | None = None, kind: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.faults, self.kind, self.headers = status, detail, faults, kind, headers or {}


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(problems.encode(body), status_code=int(body["status"]), media_type=problems.MEDIA_TYPE,
                    headers=headers)


# ------------------------------------------------------------------ the caller

def caller_of(request: Request, ctx: Context) -> Caller:
    authorization = request.headers.get("authorization", "")
    if authorization:
        return Caller((("authorization", authorization),), principal_key(authorization), via_cookie=False)
    session = request.cookies.get(ctx.settings.session_cookie, "")
    if session:
        return Caller((("authorization", f"Bearer {session}"),), principal_key("Bearer " + session),
                      via_cookie=True, session=session)
    client = request.client.host if request.client else "unknown"
    return Caller((), principal_key("address:" + client), via_cookie=False)


def admit(request: Request, ctx: Context, caller: Caller) -> None:
    """Rate limit, then CSRF for cookie-authenticated writes."""
    wait_s = ctx.limiter.take(caller.key, time.monotonic())
    if wait_s > 0:
        retry = max(1, int(wait_s + 0.999))
        raise ProblemError(429, f"rate limit of {ctx.settings.rate_limit_per_s:g} requests/s exceeded; "
                                f"retry after {retry} s", kind="rate-limited", headers={"Retry-After": str(retry)})
    if caller.via_cookie and request.method not in SAFE_METHODS and \
            not csrf_ok(caller.session, request.headers.get("x-csrf-token", "")):
        raise ProblemError(403, "a write with the session cookie needs the session's X-CSRF-Token header",
                           kind="csrf")


async def read_body(request: Request, ctx: Context) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > ctx.settings.max_body_bytes:
        raise ProblemError(413, f"the body exceeds {ctx.settings.max_body_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > ctx.settings.max_body_bytes:
            raise ProblemError(413, f"the body exceeds {ctx.settings.max_body_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def json_body(raw: bytes, request: Request) -> Any:
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if raw.strip() and kind not in ("application/json", "application/merge-patch+json") and not kind.endswith("+json"):
        raise ProblemError(415, f"send JSON (application/json), not {kind}")
    return parse_json(raw)


def next_link(request: Request, token: str) -> str:
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("pageToken", "page_token")]
    return str(request.url.path) + "?" + urlencode([*query, ("pageToken", token)])


def json_response(request: Request, message: Message, status: int, *, cacheable: bool) -> Response:
    body = to_json(message)
    headers: dict[str, str] = {}
    token = getattr(message, "next_page_token", None) if "next_page_token" in message.DESCRIPTOR.fields_by_name \
        else None
    if token is not None:
        body["next"] = next_link(request, token) if token else None
        if token:
            headers["Link"] = f'<{body["next"]}>; rel="next"'
    payload = json.dumps(body, separators=(",", ":")).encode()
    if cacheable:
        tag = etag(payload)
        headers.update({"ETag": tag, "Cache-Control": "private, no-cache"})
        if matches(request.headers.get("if-none-match", ""), tag):
            return Response(status_code=304, headers=headers)
    return Response(payload, status_code=status, media_type="application/json", headers=headers)


# ------------------------------------------------------------------ handlers

def unary_handler(route: Route, ctx: Context) -> Callable[[Request], Awaitable[Response]]:
    descriptor = method_descriptor(route.rpc).input_type
    call_name = f"{route.method} {route.path}"

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        response = await _guarded(request, lambda: _unary(route, ctx, request, descriptor))
        REQUESTS.labels(call_name, str(response.status_code)).inc()
        LATENCY.labels(call_name).observe(time.perf_counter() - started)
        return response
    return handle


async def _guarded(request: Request, run: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await run()
    except ProblemError as error:
        return problem_response(problems.problem(error.status, error.detail, instance=request.url.path,
                                                 kind=error.kind, faults=error.faults), error.headers)
    except BadRequest as error:
        return problem_response(problems.problem(400, "the request is not valid", instance=request.url.path,
                                                 kind="invalid-request", faults=error.faults))
    except grpc.aio.AioRpcError as error:
        return problem_response(problems.from_grpc(error, request.url.path))


async def _unary(route: Route, ctx: Context, request: Request, descriptor: Any) -> Response:
    caller = caller_of(request, ctx)
    admit(request, ctx, caller)
    raw = await read_body(request, ctx) if route.body else b""
    body = json_body(raw, request) if route.body else None
    message = build_request(descriptor, body=body, body_field="" if route.body == "*" else route.body,
                            path_params={route.field_of(k): v for k, v in request.path_params.items()},
                            query=request.query_params.multi_items(), fixed=route.fixed)
    key = request.headers.get("idempotency-key", "")
    if route.kind is Kind.DOWNLOAD:
        return await _download(route, ctx, message, caller)
    if route.method == "POST" and key and ctx.idempotency is not None:
        return await _idempotent(route, ctx, request, message, caller, key, raw)
    answer = await ctx.upstream.unary(route.rpc)(message, metadata=caller.metadata,
                                                 timeout=ctx.settings.upstream_timeout_s)
    return json_response(request, answer, route.status, cacheable=route.method == "GET")


async def _idempotent(route: Route, ctx: Context, request: Request, message: Message, caller: Caller, key: str,
                      raw: bytes) -> Response:
    assert ctx.idempotency is not None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ProblemError(400, "Idempotency-Key must be 1 to 255 printable characters")
    request_hash = hashlib.sha256(raw + b"\x00" + request.url.path.encode()).digest()
    stored = await ctx.idempotency.claim(caller.key, key, f"{route.method} {request.url.path}", request_hash)
    if stored is not None:
        if not stored.same_request:
            raise ProblemError(422, "this Idempotency-Key was used for another request", kind="idempotency-key-reused")
        if stored.status is None:
            raise ProblemError(409, "a request with this Idempotency-Key is still in progress",
                               kind="idempotency-key-in-use", headers={"Retry-After": "1"})
        return Response(stored.body, status_code=stored.status, media_type=stored.content_type,
                        headers={"Idempotent-Replayed": "true"})
    if "idempotency_key" in message.DESCRIPTOR.fields_by_name and not message.idempotency_key:
        # the service keeps its own idempotency too (control commands): the same key reaches it
        message.idempotency_key = f"http:{caller.key[:16]}:{key}"   # type: ignore[attr-defined]
    try:
        answer = await ctx.upstream.unary(route.rpc)(message, metadata=caller.metadata,
                                                     timeout=ctx.settings.upstream_timeout_s)
        response = json_response(request, answer, route.status, cacheable=False)
    except grpc.aio.AioRpcError as error:
        response = problem_response(problems.from_grpc(error, request.url.path))
    except BaseException:
        await ctx.idempotency.release(caller.key, key)
        raise
    if response.status_code >= 500 or response.status_code == 429:
        await ctx.idempotency.release(caller.key, key)   # nothing happened: a retry may act
    else:
        await ctx.idempotency.store(caller.key, key, response.status_code, response.media_type or "",
                                    bytes(response.body))
    return response


async def _download(route: Route, ctx: Context, message: Message, caller: Caller) -> Response:
    call = ctx.upstream.stream(route.rpc)(message, metadata=caller.metadata, timeout=ctx.settings.upstream_timeout_s)
    chunks = call.__aiter__()
    try:
        first = await chunks.__anext__()   # a refusal is a problem, before any byte is sent
    except StopAsyncIteration:
        return Response(b"", media_type="text/plain")

    async def rest() -> Any:
        yield first.data
        async for chunk in chunks:
            yield chunk.data
    return StreamingResponse(rest(), media_type=first.content_type or "application/octet-stream")


def events_handler(route: Route, ctx: Context) -> Callable[[Request], Awaitable[Response]]:
    descriptor = method_descriptor(route.rpc).input_type

    async def handle(request: Request) -> Response:
        return await _guarded(request, lambda: _events(route, ctx, request, descriptor))
    return handle


def _encoder(route: Route) -> sse.Encode:
    def encode(message: object) -> sse.Event:
        assert isinstance(message, Message)
        data = json.dumps(to_json(message), separators=(",", ":")).encode()
        if route.event_id:
            event_id = str(field_value(message, route.event_id))
        else:   # a snapshot: its id names its content, so a resumed client that saw it gets nothing
            event_id = base64.urlsafe_b64encode(hashlib.sha256(data).digest()[:9]).decode()
        return sse.Event(event_id, data)
    return encode


def _end_frame(ended: sse.Ended) -> bytes:
    return b"event: error\ndata: " + json.dumps(ended.error, separators=(",", ":")).encode() + b"\n\n"


async def _events(route: Route, ctx: Context, request: Request, descriptor: Any) -> Response:
    caller = caller_of(request, ctx)
    admit(request, ctx, caller)
    message = build_request(descriptor, path_params={route.field_of(k): v for k, v in request.path_params.items()},
                            query=request.query_params.multi_items(), fixed=route.fixed)
    last_event_id = request.headers.get("last-event-id", "").strip()
    start = ""
    key: tuple[str, ...] = (route.rpc, message.SerializeToString(deterministic=True).hex(), caller.key)
    if route.resume_field:
        # Clients of one resource share the stream opened at the first one's position; another
        # position joins it when the replay buffer reaches back to it, else opens its own.
        if last_event_id:
            try:
                setattr(message, route.resume_field, int(last_event_id))
            except ValueError:
                raise BadRequest([Fault("not an event id of this stream", parameter="Last-Event-ID")]) from None
        start = str(getattr(message, route.resume_field))
        base = type(message)()
        base.CopyFrom(message)
        base.ClearField(route.resume_field)   # type: ignore[arg-type]
        key = (route.rpc, base.SerializeToString(deterministic=True).hex(), caller.key)
        if not ctx.hub.covers(key, start) and ctx.hub.live(key):
            key = (*key, start)
        last_event_id = start

    def open_() -> grpc.aio.UnaryStreamCall:
        return ctx.upstream.stream(route.rpc)(message, metadata=caller.metadata)

    topic, subscriber = await ctx.hub.subscribe(key, open_, _encoder(route), last_event_id=last_event_id,
                                                snapshot=not route.resume_field, first_wait_s=FIRST_EVENT_WAIT_S,
                                                start=start)
    if topic.ended is not None and topic.ended.error is not None and topic.delivered == 0:
        ctx.hub.leave(topic, subscriber)
        return problem_response({**topic.ended.error, "instance": request.url.path})
    body = sse.stream(ctx.hub, topic, subscriber, heartbeat_s=ctx.settings.sse_heartbeat_s, encode_end=_end_frame)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ------------------------------------------------------------------ sessions and OAuth

def _set_session(response: Response, ctx: Context, token: str, max_age_s: int | None) -> None:
    response.set_cookie(ctx.settings.session_cookie, token, max_age=max_age_s, path="/", secure=ctx.cookie_secure,
                        httponly=True, samesite="strict")
    response.set_cookie(CSRF_COOKIE, csrf_token(token), max_age=max_age_s, path="/", secure=ctx.cookie_secure,
                        httponly=False, samesite="strict")


def _session_answer(ctx: Context, session: Any) -> Response:
    principal = to_json(session.principal)
    body = {"principal": principal, "expiresUnixMs": str(session.expires_unix_ms),
            "csrfToken": csrf_token(session.token)}
    response = JSONResponse(body, headers={"Cache-Control": "no-store"})
    max_age = max(0, int((session.expires_unix_ms / 1000) - time.time())) if session.expires_unix_ms else None
    _set_session(response, ctx, session.token, max_age)
    return response


def session_routes(app: FastAPI, ctx: Context) -> None:
    from gridtwin.api.access.v1 import access_pb2 as acc

    async def login(request: Request) -> Response:
        async def run() -> Response:
            caller = caller_of(request, ctx)
            admit(request, ctx, caller)
            body = json_body(await read_body(request, ctx), request)
            message = build_request(acc.LoginRequest.DESCRIPTOR, body=body)
            forwarded = (("x-forwarded-for", request.client.host),) if request.client else ()
            session = await ctx.upstream.unary(ACCESS_SERVICE + "Login")(
                message, metadata=forwarded, timeout=ctx.settings.upstream_timeout_s)
            return _session_answer(ctx, session)
        return await _guarded(request, run)

    async def accept_invitation(request: Request) -> Response:
        async def run() -> Response:
            caller = caller_of(request, ctx)
            admit(request, ctx, caller)
            body = json_body(await read_body(request, ctx), request)
            message = build_request(acc.AcceptInvitationRequest.DESCRIPTOR, body=body)
            session = await ctx.upstream.unary(ACCESS_SERVICE + "AcceptInvitation")(
                message, timeout=ctx.settings.upstream_timeout_s)
            return _session_answer(ctx, session)
        return await _guarded(request, run)

    async def logout(request: Request) -> Response:
        async def run() -> Response:
            caller = caller_of(request, ctx)
            admit(request, ctx, caller)
            if caller.metadata:
                await ctx.upstream.unary(ACCESS_SERVICE + "Logout")(
                    acc.LogoutRequest(), metadata=caller.metadata, timeout=ctx.settings.upstream_timeout_s)
            response = Response(status_code=204)
            for name in (ctx.settings.session_cookie, CSRF_COOKIE):
                response.delete_cookie(name, path="/", secure=ctx.cookie_secure, httponly=True, samesite="strict")
            return response
        return await _guarded(request, run)

    async def oauth_token(request: Request) -> Response:
        """RFC 6749 §4.4: form-encoded; client authentication in the body or HTTP Basic."""
        def oauth_error(status: int, error: str, description: str) -> Response:
            return JSONResponse({"error": error, "error_description": description}, status_code=status,
                                headers={"Cache-Control": "no-store", **(
                                    {"WWW-Authenticate": "Basic"} if status == 401 else {})})
        caller = caller_of(request, ctx)
        try:
            admit(request, ctx, caller)
        except ProblemError as error:
            return oauth_error(error.status, "slow_down" if error.status == 429 else "invalid_request", error.detail)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return oauth_error(400, "invalid_request", "send application/x-www-form-urlencoded")
        try:
            form = dict(parse_qsl((await read_body(request, ctx)).decode(), strict_parsing=False))
        except (ProblemError, UnicodeDecodeError, ValueError):
            return oauth_error(400, "invalid_request", "a form-encoded body of at most the API's size limit")
        client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return oauth_error(401, "invalid_client", "malformed Basic credentials")
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
        if not client_id or not client_secret:
            return oauth_error(401, "invalid_client", "client_id and client_secret are required")
        try:
            issued = await ctx.upstream.unary(ACCESS_SERVICE + "IssueClientToken")(
                acc.IssueClientTokenRequest(client_id=client_id, client_secret=client_secret,
                                            scope=str(form.get("scope", ""))),
                timeout=ctx.settings.upstream_timeout_s)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
                return oauth_error(401, "invalid_client", error.details() or "unknown client")
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
                return oauth_error(400, "invalid_scope", error.details() or "scope not allowed")
            return problem_response(problems.from_grpc(error, request.url.path))
        return JSONResponse({"access_token": issued.access_token, "token_type": issued.token_type or "Bearer",
                             "expires_in": int(issued.expires_in_s), "scope": issued.scope},
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    app.add_api_route(API_PREFIX + "/auth/login", login, methods=["POST"], include_in_schema=False)
    app.add_api_route(API_PREFIX + "/auth/logout", logout, methods=["POST"], include_in_schema=False)
    app.add_api_route(API_PREFIX + "/invitations/accept", accept_invitation, methods=["POST"],
                      include_in_schema=False)
    app.add_api_route("/oauth/token", oauth_token, methods=["POST"], include_in_schema=False)


# ------------------------------------------------------------------ headers, docs, the app

class SecurityHeaders:
    """Headers every answer carries; the docs page needs images as data: URIs (Swagger UI's CSS)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy",
             b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ] + ([(b"strict-transport-security", b"max-age=31536000; includeSubDomains")] if hsts else [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)
        await self.app(scope, receive, with_headers)


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(title="gridtwin HTTP API", openapi_url=None, docs_url=None, redoc_url=None)
    spec = json.dumps(document(), separators=(",", ":")).encode()

    async def openapi(_: Request) -> Response:
        return Response(spec, media_type="application/json")

    async def docs(_: Request) -> Response:
        return FileResponse(DOCS_PAGE / "index.html", media_type="text/html")

    async def docs_init(_: Request) -> Response:
        return FileResponse(DOCS_PAGE / "init.js", media_type="text/javascript")

    async def healthz(_: Request) -> Response:   # the process serves; the services have their own probes
        return Response(b"ok\n", media_type="text/plain")

    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route(API_PREFIX + "/openapi.json", openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs/init.js", docs_init, methods=["GET"], include_in_schema=False)
    if DOCS_DIR.is_dir():
        app.mount("/docs/swagger-ui", StaticFiles(directory=DOCS_DIR), name="swagger-ui")
    else:
        log.warning("no %s (scripts/bootstrap.sh unpacks it): /docs will not render", DOCS_DIR)
    session_routes(app, ctx)
    from services.http import oidc  # here: it imports this module
    app.include_router(oidc.router(ctx))
    # Literal paths before parameterized ones: /installations/near before /installations/{id}.
    for route in sorted(ROUTES, key=lambda r: r.path.count("{")):
        handler = events_handler(route, ctx) if route.kind is Kind.EVENTS else unary_handler(route, ctx)
        # plain Starlette routes: the handlers read the request themselves, so FastAPI's
        # dependency solving per request would only cost time
        app.router.add_route(API_PREFIX + route.path, handler, methods=[route.method], name=route.operation_id,
                             include_in_schema=False)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 400
        detail = exc.detail if isinstance(exc, StarletteHTTPException) else str(exc)
        headers = dict(getattr(exc, "headers", None) or {})
        return problem_response(problems.problem(status, str(detail), instance=request.url.path), headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return problem_response(problems.problem(500, "internal error", instance=request.url.path))

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, http_error)
    app.add_exception_handler(Exception, unexpected)

    web = Path(ctx.settings.static_dir) if ctx.settings.static_dir else ROOT / "web" / "dist"
    if web.is_dir():   # the built front end (web/, next issue): everything not under /api or /docs
        app.mount("/", StaticFiles(directory=web, html=True), name="web")
    if ctx.settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=ctx.settings.cors_origins, allow_credentials=True,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "Idempotency-Key",
                                          "If-None-Match", "Last-Event-ID"],
                           expose_headers=["ETag", "Link", "Retry-After", "Idempotent-Replayed"])
    app.add_middleware(SecurityHeaders, hsts=ctx.tls)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_secure(settings: HttpSettings, tls: bool) -> bool:
    """Secure cookies, except when the settings turn it off for plain HTTP on loopback (a
    developer's machine): anywhere else the setting is ignored."""
    return settings.cookie_secure or tls or not is_loopback(settings.host)


async def sweep_idempotency(store: IdempotencyStore, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await store.sweep()
        except Exception:   # the next sweep tries again; answers never depend on it
            log.warning("idempotency sweep failed", exc_info=True)
