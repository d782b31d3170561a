"""The OpenADR 3 REST endpoint on a real aiohttp server (ephemeral port), with an in-memory handler."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.control.vpp.model import GridEventSpec, InvalidEvent
from services.control.vpp.rest import OpenAdrEvent, bearer, openadr_app
from tests.data import SHARED_DATA

pytestmark = pytest.mark.integration

EXAMPLES = SHARED_DATA / "openadr" / "openadr3_1_0_user_guide_event_examples.json"
NOW = dt.datetime(2025, 3, 13, 12, tzinfo=dt.UTC)
TOKEN = "s3cret"


class MemoryEvents:
    """The smallest OpenAdrHandler: a dict."""

    def __init__(self) -> None:
        self.events: dict[str, OpenAdrEvent] = {}
        self.specs: list[GridEventSpec] = []
        self._ids = itertools.count(1)

    async def create(self, spec: GridEventSpec, request: Mapping[str, Any]) -> OpenAdrEvent:
        event = OpenAdrEvent(f"ev{next(self._ids)}", request, NOW, NOW, spec)
        self.events[event.id] = event
        self.specs.append(spec)
        return event

    async def update(self, event_id: str, spec: GridEventSpec, request: Mapping[str, Any]) -> OpenAdrEvent | None:
        if event_id not in self.events:
            return None
        if self.events[event_id].extra.get("state") == "cancelled":
            raise InvalidEvent("the event was cancelled")
        self.events[event_id] = replace(self.events[event_id], request=request, spec=spec,
                                        modified=NOW + dt.timedelta(minutes=1))
        return self.events[event_id]

    async def cancel(self, event_id: str) -> OpenAdrEvent | None:
        if event_id not in self.events:
            return None
        self.events[event_id] = replace(self.events[event_id], extra={"state": "cancelled"})
        return self.events[event_id]

    async def get(self, event_id: str) -> OpenAdrEvent | None:
        return self.events.get(event_id)

    async def list(self, *, program_id: str | None, skip: int, limit: int) -> Sequence[OpenAdrEvent]:
        chosen = [e for e in self.events.values() if program_id is None or e.request.get("programID") == program_id]
        return chosen[skip: skip + limit]


async def programs(program_id: str) -> str | None:
    return {"44": "program.ca_vpp"}.get(program_id)


async def groups(program: str, target: str) -> str | None:
    return target if target == "utility.pge.north_ca" else None


async def token_ok(token: str) -> bool:
    return token == TOKEN


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, MemoryEvents, aiohttp.ClientSession]]:
    events = MemoryEvents()
    app = openadr_app(events, resolve_program=programs, resolve_group=groups, authorize=bearer(token_ok),
                      clock=lambda: NOW)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        yield f"http://127.0.0.1:{port}/openadr3/events", events, session
    await runner.cleanup()


def _dispatch(value: float = -500) -> dict[str, Any]:
    examples = json.loads(EXAMPLES.read_text())["examples"]
    caption = "Example 8.5-1: Create load control event"
    body = copy.deepcopy(next(e["json"] for e in examples if e["caption"] == caption))
    body["intervals"][0]["payloads"][0]["values"] = [value]
    return body


async def _problem(response: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json(content_type=None)
    assert body["status"] == status and body["title"]
    return body


async def test_create_read_update_list_cancel(server: Any) -> None:
    url, events, session = server
    async with session.post(url, json=_dispatch() | {"targets": ["utility.pge.north_ca"]}) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
    assert created["id"] == "ev1" and created["objectType"] == "EVENT"
    assert created["createdDateTime"] == "2025-03-13T12:00:00.000Z" and created["programID"] == "44"
    spec = events.specs[0]
    assert (spec.program, spec.target_group, spec.target_power_w) == ("program.ca_vpp", "utility.pge.north_ca", 500e3)
    async with session.get(f"{url}/ev1") as r:
        assert r.status == 200 and (await r.json())["eventName"] == "loadControlEvent"
    async with session.put(f"{url}/ev1", json=_dispatch(-750)) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["modificationDateTime"] == "2025-03-13T12:01:00.000Z"
    assert events.events["ev1"].spec is not None and events.events["ev1"].spec.target_power_w == 750e3
    assert events.events["ev1"].spec.external_id == "ev1"
    async with session.post(url, json=_dispatch(-100)) as r:
        assert r.status == 201
    async with session.get(url, params={"programID": "44", "skip": "1", "limit": "5"}) as r:
        assert [e["id"] for e in await r.json()] == ["ev2"]
    async with session.delete(f"{url}/ev1") as r:
        assert r.status == 200 and (await r.json())["state"] == "cancelled"
    async with session.put(f"{url}/ev1", json=_dispatch(-750)) as r:
        assert "cancelled" in (await _problem(r, 400))["detail"]


async def test_unknown_ids_are_404(server: Any) -> None:
    url, _, session = server
    for method in ("GET", "DELETE"):
        async with session.request(method, f"{url}/nope") as r:
            await _problem(r, 404)
    async with session.put(f"{url}/nope", json=_dispatch()) as r:
        await _problem(r, 404)


@pytest.mark.parametrize(("mutate", "pointer"), [
    (lambda b: b.__setitem__("programID", 44), "/programID"),                       # wrong type
    (lambda b: b["intervals"][0].__setitem__("payloads", "x"), "/intervals/0/payloads"),
    (lambda b: b.pop("intervals"), "/intervals"),                                    # missing intervals
    (lambda b: b["intervals"][0]["payloads"][0].__setitem__("values", [300]), "/intervals/0/payloads/0/values/0"),
    (lambda b: b["intervalPeriod"].__setitem__("start", "2025-03-01T00:00:00Z"), "/intervalPeriod"),  # past
    (lambda b: b.__setitem__("programID", "99"), "/programID"),                     # unknown program
    (lambda b: b.__setitem__("targets", ["VEN-99"]), "/targets/0"),                 # unknown group
])
async def test_bad_events_are_400_with_problems(server: Any, mutate: Any, pointer: str) -> None:
    url, events, session = server
    body = _dispatch()
    mutate(body)
    async with session.post(url, json=body) as r:
        problem = await _problem(r, 400)
    assert pointer in [p["pointer"] for p in problem["problems"]], problem
    assert problem["instance"] == "/openadr3/events" and not events.events


async def test_every_example_gets_201_or_a_problem(server: Any) -> None:
    url, _, session = server
    for example in json.loads(EXAMPLES.read_text())["examples"]:
        bodies = example["json"] if isinstance(example["json"], list) else [example["json"]]
        for body in bodies:
            async with session.post(url, json=body) as r:
                assert r.status in (201, 400), (example["caption"], r.status)
                if r.status == 400:
                    assert (await r.json(content_type=None))["problems"]


async def test_not_json_too_big_and_unauthorized(server: Any) -> None:
    url, _, session = server
    async with session.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as r:
        assert "not JSON" in (await _problem(r, 400))["detail"]
    async with session.post(url, json=[1, 2]) as r:
        await _problem(r, 400)
    async with session.post(url, json=_dispatch() | {"eventName": "x" * (70 * 1024)}) as r:
        await _problem(r, 413)
    async with session.get(url, params={"limit": "0"}) as r:
        await _problem(r, 400)
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(url) as r:
            await _problem(r, 401)
            assert r.headers["WWW-Authenticate"] == "Bearer"
        async with anonymous.get(url, headers={"Authorization": "Bearer wrong"}) as r:
            await _problem(r, 403)
