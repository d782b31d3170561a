"""The OpenADR 3 REST endpoint of the VPP (aiohttp): events in, the same `GridEventSpec` as gRPC.

    POST   /openadr3/events        201, the created event (OpenADR `event` JSON)
    GET    /openadr3/events        200, a list (query: programID, skip, limit)
    GET    /openadr3/events/{id}   200 | 404
    PUT    /openadr3/events/{id}   200 | 404, the updated event
    DELETE /openadr3/events/{id}   200 | 404, the cancelled event

Every refusal is an RFC 7807 / OpenADR `problem` (application/problem+json): 400 for bodies
that are not JSON objects or fail the mapping (`problems` lists JSON pointers and messages),
401/403 from the `authorize` hook, 404 for an unknown id, 413 for bodies over
`max_body_bytes`. What the VPP does with an event is the `OpenAdrHandler`'s business; this layer
only parses, maps (`openadr.to_grid_event`) and renders.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from services.control.vpp.model import GridEventSpec, InvalidEvent
from services.control.vpp.openadr import (
    GroupResolver,
    OpenAdrError,
    ProgramResolver,
    to_grid_event,
    to_openadr,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class OpenAdrEvent:
    """An event as the VPP keeps it, enough to render the OpenADR `event` a VEN reads."""

    id: str
    request: Mapping[str, Any]          # the eventRequest body as accepted
    created: dt.datetime
    modified: dt.datetime
    spec: GridEventSpec | None = None   # what it was mapped to
    extra: Mapping[str, Any] = field(default_factory=dict)  # rendered too, e.g. {"state": "cancelled"}


class OpenAdrHandler(Protocol):
    """What the VPP does with OpenADR events. Returning None means "no such event" (404). Raising
    `InvalidEvent` or `OpenAdrError` refuses the request (400), e.g. an update of a finished event."""

    async def create(self, spec: GridEventSpec, request: Mapping[str, Any]) -> OpenAdrEvent: ...

    async def update(self, event_id: str, spec: GridEventSpec, request: Mapping[str, Any]) -> OpenAdrEvent | None: ...

    async def cancel(self, event_id: str) -> OpenAdrEvent | None: ...

    async def get(self, event_id: str) -> OpenAdrEvent | None: ...

    async def list(self, *, program_id: str | None, skip: int, limit: int) -> Sequence[OpenAdrEvent]: ...


class NotAuthorized(Exception):
    """Raised by an `authorize` hook: 401 (no or bad credentials) or 403 (not allowed)."""

    def __init__(self, detail: str, *, status: int = 401) -> None:
        super().__init__(detail)
        self.status = status


Authorize = Callable[[web.Request], Awaitable[None]]
Clock = Callable[[], dt.datetime]


def bearer(check: Callable[[str], Awaitable[bool]]) -> Authorize:
    """An `authorize` hook taking `Authorization: Bearer <token>` and asking `check(token)`."""

    async def authorize(request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorized("an 'Authorization: Bearer <token>' header is required")
        if not await check(token.strip()):
            raise NotAuthorized("the token is not allowed to manage events", status=403)

    return authorize


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def problem(status: int, title: str, detail: str = "", **extra: Any) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_JSON)


def openadr_app(
    events: OpenAdrHandler,
    *,
    resolve_program: ProgramResolver,
    resolve_group: GroupResolver,
    authorize: Authorize | None = None,
    clock: Clock = _utcnow,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> web.Application:
    """The aiohttp application serving `/openadr3/events` on `events` (an `OpenAdrHandler`)."""
    routes = _Routes(events, resolve_program, resolve_group, clock, max_body_bytes)

    @web.middleware
    async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        try:
            if authorize is not None:
                await authorize(request)
            return await handler(request)
        except NotAuthorized as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            response = problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden", str(exc))
            response.headers.update(headers)
            return response
        except OpenAdrError as exc:
            return web.Response(status=exc.status, text=json.dumps(exc.problem_json(request.path)),
                                content_type=PROBLEM_JSON)
        except InvalidEvent as exc:
            return problem(400, "The event cannot be dispatched", str(exc), instance=request.path,
                           problems=[{"pointer": "", "message": str(exc)}])
        except web.HTTPRequestEntityTooLarge:
            return problem(413, "Payload Too Large", f"the body is limited to {max_body_bytes} bytes")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return problem(exc.status, exc.reason, exc.text or "")
            raise

    # client_max_size makes aiohttp stop reading a larger body (HTTPRequestEntityTooLarge).
    app = web.Application(middlewares=[errors], client_max_size=max_body_bytes)
    app.router.add_post("/openadr3/events", routes.create)
    app.router.add_get("/openadr3/events", routes.list)
    app.router.add_get("/openadr3/events/{id}", routes.get)
    app.router.add_put("/openadr3/events/{id}", routes.update)
    app.router.add_delete("/openadr3/events/{id}", routes.cancel)
    return app


class _Routes:
    def __init__(self, handler: OpenAdrHandler, resolve_program: ProgramResolver, resolve_group: GroupResolver,
                 clock: Clock, max_body_bytes: int) -> None:
        self._handler = handler
        self._resolve_program = resolve_program
        self._resolve_group = resolve_group
        self._clock = clock
        self._max_body_bytes = max_body_bytes

    async def create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        spec = await to_grid_event(body, self._clock(), resolve_program=self._resolve_program,
                                   resolve_group=self._resolve_group)
        event = await self._handler.create(spec, body)
        return _event_response(event, status=201)

    async def update(self, request: web.Request) -> web.Response:
        event_id = request.match_info["id"]
        body = await self._body(request)
        spec = await to_grid_event(body, self._clock(), resolve_program=self._resolve_program,
                                   resolve_group=self._resolve_group, event_id=event_id)
        return _event_response(_found(await self._handler.update(event_id, spec, body), event_id))

    async def cancel(self, request: web.Request) -> web.Response:
        event_id = request.match_info["id"]
        return _event_response(_found(await self._handler.cancel(event_id), event_id))

    async def get(self, request: web.Request) -> web.Response:
        event_id = request.match_info["id"]
        return _event_response(_found(await self._handler.get(event_id), event_id))

    async def list(self, request: web.Request) -> web.Response:
        skip = _int_param(request, "skip", 0, 0, 10**9)
        limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        events = await self._handler.list(program_id=request.query.get("programID"), skip=skip, limit=limit)
        return web.json_response([_render(e) for e in events])

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > self._max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=self._max_body_bytes, actual_size=request.content_length)
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise web.HTTPBadRequest(reason="Bad Request", text=f"the body is not JSON: {exc}") from exc
        except RecursionError as exc:   # arrays or objects nested thousands deep (fits in 64 KiB)
            raise web.HTTPBadRequest(reason="Bad Request", text="the body is nested too deeply") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(reason="Bad Request", text="an event is a JSON object")
        return body


def _found(event: OpenAdrEvent | None, event_id: str) -> OpenAdrEvent:
    if event is None:
        raise web.HTTPNotFound(reason="Not Found", text=f"no event {event_id!r}")
    return event


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(reason="Bad Request", text=f"{name} must be an integer") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(reason="Bad Request", text=f"{name} must be within {low}..{high}")
    return value


def _render(event: OpenAdrEvent) -> dict[str, Any]:
    return {**to_openadr(event.id, event.request, event.created, event.modified), **event.extra}


def _event_response(event: OpenAdrEvent, status: int = 200) -> web.Response:
    return web.json_response(_render(event), status=status)
