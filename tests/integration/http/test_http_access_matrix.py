"""The access matrix over HTTP: every route of the HTTP API × every kind of caller, against the
real services behind the real HTTP service (tests/integration/http/http_support.py).

Generated from the same sources as the gRPC matrix (tests/integration/test_access_matrix.py):
each route names its gRPC method (services/http/routes.py), the method's rule in ACCESS gives
the expected gRPC status for each caller, the one table in gridtwin/errors.py its HTTP status,
and the method's sample request, turned back into a path, a query and a body, the call. So the
HTTP API can neither grant nor refuse more than the services do, and a new route fails here
until its method has a rule and a sample. Lists answered to a caller of another group must hold
nothing of group "mx". `pytest -s` prints the matrix.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from gridtwin.errors import http_status
from services.access.rules import ACCESS, Rule, Target
from services.http.routes import ROUTES, SESSION_RPCS, Kind, Route
from services.http.transcode import field_value, to_json
from tests.integration import test_access_matrix as matrix
from tests.integration.http.http_support import HttpWorld

pytestmark = pytest.mark.integration

# A sample names an installation; the routes of the same method by group name this one.
DEFAULTS = {"path": f"{matrix.IN}.site", "installation_id": matrix.HOME}
COVERED = [r for r in ROUTES if r.rpc in ACCESS and r.rpc in matrix.SAMPLES]


def _flatten(document: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, value in document.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            items += [(prefix + key, str(v).lower() if isinstance(v, bool) else str(v)) for v in value]
        else:
            items.append((prefix + key, str(value).lower() if isinstance(value, bool) else str(value)))
    return items


def rule_of(route: Route, message: Message) -> Rule:
    """The method's rule; for a route that names a group where the sample names an installation
    (GET /groups/{path}/energy-report), the rule of a group target: people bound to
    installations see no groups; for a fleet list narrowed to one installation
    (GET /installations/{id}/alerts), the rule of an installation target."""
    rule = ACCESS[route.rpc]
    filled = {p for p in re.findall(r"{(\w+)}", route.path) if not field_value(message, route.field_of(p))}
    if "path" in filled and rule.target is Target.INSTALLATION:
        return dataclasses.replace(rule, target=Target.GROUP, homeowners=False, installers=False)
    if "installation_id" in filled and rule.target is Target.FILTERED:   # a list of one installation's
        return dataclasses.replace(rule, target=Target.INSTALLATION)
    return rule


def http_call(route: Route, message: Message) -> tuple[str, str, list[tuple[str, str]], Any]:
    """The HTTP request that stands for `message` on `route`: (method, path, query, JSON body)."""
    message = type(message).FromString(message.SerializeToString())
    path = "/api/v1" + route.path
    taken: set[str] = set()
    for param in re.findall(r"{(\w+)}", route.path):
        field = route.field_of(param)
        value = field_value(message, field)
        if not value:   # a sibling route's sample: name the world's own
            value = DEFAULTS[param]
            holder = message
            *parents, leaf = field.split(".")
            for part in parents:
                holder = getattr(holder, part)
            setattr(holder, leaf, value)
        taken.add(field)
        path = path.replace("{" + param + "}", quote(str(value), safe=""))
    body: Any = None
    query: list[tuple[str, str]] = []
    if route.body == "*":
        body = to_json(message)
    elif route.body:
        body = to_json(getattr(message, route.body))
    else:
        shown = json_format.MessageToDict(message, preserving_proto_field_name=True)
        query = [(k, v) for k, v in _flatten(shown) if k not in taken]
    return route.method, path, query, body


async def call(client: httpx.AsyncClient, route: Route, message: Message, headers: dict[str, str]) -> tuple[int, bytes]:
    method, path, query, body = http_call(route, message)
    if route.kind is Kind.EVENTS:
        async with client.stream(method, path, params=query, headers=headers) as response:
            if response.status_code != 200:
                return response.status_code, await response.aread()
            return 200, b""
    response = await client.request(method, path, params=query, json=body, headers=headers)
    return response.status_code, response.content


def caller_headers(world: matrix.World, principal: str, rule: matrix.Rule) -> dict[str, str]:
    return dict(matrix.caller_metadata(world, principal, rule))


def test_every_method_has_a_route_with_a_rule() -> None:
    routed = {r.rpc for r in ROUTES} | set(SESSION_RPCS.values())
    assert sorted(set(matrix.SAMPLES) - routed) == [], "gRPC methods without an HTTP route"
    assert [r for r in ROUTES if r.rpc not in ACCESS] == [], "routes to methods without an access rule"


@pytest.mark.parametrize("service", sorted({r.service for r in COVERED}))
async def test_http_access_matrix(http_world: HttpWorld, service: str) -> None:
    world = http_world.world
    rows: dict[str, dict[str, str]] = {}
    wrong: list[str] = []
    async with http_world.client() as client:
        for route in (r for r in COVERED if r.service == service):
            sample = matrix.SAMPLES[route.rpc]
            name = f"{route.method} {route.path}"
            cells = rows.setdefault(name, {})
            for principal in matrix.PRINCIPALS:
                request = await sample.build(world, principal)
                rule = rule_of(route, request)
                want_code = matrix.expected(rule, principal, sample.permitted)
                want = (200 if route.kind is not Kind.UNARY else route.status) if want_code is grpc.StatusCode.OK \
                    else http_status(want_code)
                got, body = await call(client, route, request, caller_headers(world, principal, rule))
                cells[principal] = str(got) if got == want else f"{got}≠{want}"
                if got != want:
                    wrong.append(f"{name} as {principal}: {got}, expected {want} ({body[:160]!r})")
                if rule.target is Target.FILTERED and got == 200 and route.kind is Kind.UNARY and principal in (
                        "in-group", "out-of-group", "homeowner", "homeowner-away"):
                    shows = any(marker in body for marker in matrix.IN_MARKERS)
                    if shows != (principal in ("in-group", "homeowner")):
                        cells[principal] += " (leak)" if shows else " (hides)"
                        wrong.append(f"{name} as {principal}: the answer {'shows' if shows else 'hides'} group mx")
    table = matrix.render(rows)
    print(f"\n{service} over HTTP: {len(rows)} routes × {len(matrix.PRINCIPALS)} principals\n{table}")
    assert not wrong, "\n".join(wrong) + "\n" + table
