"""The VPP as an OpenADR 3 VTN (the server grid operators post events to): the REST layer of
`rest.py` on top of the same `VppDispatcher` as the gRPC API.

- Programs: an OpenADR `programID` is the `openadr_program_id` of a program's terms
  (`vpp_program_terms`); event targets are hierarchy group paths.
- Events keep the body they were posted with (`vpp_events.openadr_request`) and are served back
  with the VPP's id and times; the REST endpoint lists and reads only events that came this way.
- A POST with an `id` the VPP already stored returns that event (a retried POST stays one
  event); without one, every POST is a new event.
- Access: `Authorization: Bearer <token>` with the AssetService's tokens; reading needs the read
  scope, changing the command scope, and as over gRPC an event is the business of the tokens whose
  groups hold its target (or its program when it targets the whole program): other tokens are
  refused 403 for it and do not see it listed.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import asyncpg
from aiohttp import web

from gridtwin.errors import GridtwinError, PermissionDenied, Unauthenticated
from services.access import rules
from services.access.authentication import Authenticator
from services.access.model import BOUND, DevicePrincipal, Principal, Scope
from services.assets.model import GroupPath
from services.control.vpp.dispatch import GridEvent, UnknownTarget, VppDispatcher
from services.control.vpp.model import LTREE, GridEventSpec, InvalidEvent, Source
from services.control.vpp.rest import Authorize, NotAuthorized, OpenAdrEvent

# The principal of the request being handled: set by `token_authorizer`, which the REST layer
# awaits in the request's own task before the handler (as the gRPC AccessGuard sets `caller()`).
_CALLER: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("gridtwin_openadr_caller", default=None)


def _denied(spec_target: str) -> str | None:
    """Why the caller may not see or change an event aimed at `spec_target` (None: it may)."""
    principal = _CALLER.get()
    if principal is None:     # no authorizer configured (a VTN without access control)
        return None
    denied = rules.check_path(principal, GroupPath(spec_target))
    return None if denied is None else denied.reason


def _target(spec: GridEventSpec) -> str:
    return spec.target_group or spec.program


def _check(spec: GridEventSpec) -> None:
    reason = _denied(_target(spec))
    if reason is not None:
        raise NotAuthorized(reason, status=403)


def _openadr(event: GridEvent) -> OpenAdrEvent:
    return OpenAdrEvent(event.event_id, event.openadr_request or {}, event.created, event.updated, event.spec,
                        extra={"state": event.state.value})


class VppEvents:
    """The `rest.OpenAdrHandler` of the VPP."""

    def __init__(self, vpp: VppDispatcher, pool: asyncpg.Pool) -> None:
        self._vpp = vpp
        self._pool = pool

    async def create(self, spec: GridEventSpec, request: Mapping[str, Any]) -> OpenAdrEvent:
        _check(spec)
        event_id = f"ev-{uuid.uuid4().hex[:16]}"
        external_id = str(request.get("id") or event_id)[:200]
        try:
            event = await self._vpp.create(replace(spec, external_id=external_id), event_id=event_id,
                                           openadr_request=request)
        except UnknownTarget as error:          # removed between the mapping and the dispatch
            raise InvalidEvent(str(error)) from error
        return _openadr(event)

    async def update(self, event_id: str, spec: GridEventSpec, request: Mapping[str, Any]) -> OpenAdrEvent | None:
        if await self.get(event_id) is None:
            return None
        _check(spec)
        return _openadr(await self._vpp.update(event_id, spec, openadr_request=request))

    async def cancel(self, event_id: str) -> OpenAdrEvent | None:
        if await self.get(event_id) is None:
            return None
        return _openadr(await self._vpp.cancel(event_id))

    async def get(self, event_id: str) -> OpenAdrEvent | None:
        try:
            event = await self._vpp.get(event_id)
        except UnknownTarget:
            return None
        if event.spec.source is not Source.OPENADR:
            return None
        _check(event.spec)
        return _openadr(event)

    async def list(self, *, program_id: str | None, skip: int, limit: int) -> Sequence[OpenAdrEvent]:
        program = None
        if program_id is not None:
            program = await self.program(program_id)
            if program is None:
                return []
        events = await self._vpp.list_events(include_ended=True, limit=limit, offset=skip, program=program,
                                             source=Source.OPENADR)
        return [_openadr(e) for e in events if _denied(_target(e.spec)) is None]

    # ------------------------------------------------------------ resolvers for rest.openadr_app

    async def program(self, program_id: str) -> str | None:
        """The program path whose terms carry this OpenADR programID."""
        return await self._pool.fetchval(  # type: ignore[no-any-return]
            "SELECT program::text FROM vpp_program_terms WHERE openadr_program_id = $1", program_id)

    async def group(self, program: str, target: str) -> str | None:
        """The target itself, when it is an existing hierarchy group."""
        if not LTREE.fullmatch(target):
            return None
        found = await self._pool.fetchval("SELECT true FROM hierarchy_groups WHERE path = $1::text::ltree", target)
        return target if found else None


def token_authorizer(authenticator: Authenticator) -> Authorize:
    """`Authorization: Bearer <token>`: 401 without a valid token, 403 without the scope."""

    async def authorize(request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        try:
            principal = await authenticator.authenticate([("authorization", header)])
        except Unauthenticated as error:
            raise NotAuthorized(str(error)) from error
        except PermissionDenied as error:
            raise NotAuthorized(str(error), status=403) from error
        except GridtwinError as error:   # credential storage unavailable
            raise NotAuthorized(str(error), status=error.http_status) from error
        if isinstance(principal, DevicePrincipal) or principal.kind in BOUND:
            raise NotAuthorized(f"{principal.kind.value}s cannot manage events", status=403)
        needed = Scope.READ if request.method in ("GET", "HEAD") else Scope.COMMAND
        if needed not in rules.effective_scopes(principal.scopes):
            raise NotAuthorized(f"this needs the {needed.value} scope", status=403)
        _CALLER.set(principal)

    return authorize
