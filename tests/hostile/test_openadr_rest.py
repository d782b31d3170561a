"""Schema-violating OpenADR 3.1 events over HTTP to the real aiohttp endpoint (the server of
tests/integration/test_vpp_rest.py): every one is a 400 application/problem+json naming where
the body is wrong, nothing is created, and an existing event is left as it was by a bad PUT."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from tests.hostile.strategies import HOSTILE
from tests.integration.test_vpp_rest import _dispatch, server  # noqa: F401  (the server fixture)
from tests.unit.test_hostile_openadr import broken_bodies, schema_valid

pytestmark = pytest.mark.integration


def violations(n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    @settings(HOSTILE, max_examples=n * 3)
    @given(broken_bodies())
    def gather(body: dict[str, Any]) -> None:
        if not schema_valid(body) and len(found) < n:
            found.append(body)

    gather()
    return found


async def test_schema_violations_are_problems_and_store_nothing(server: Any) -> None:  # noqa: F811
    url, events, session = server
    async with session.post(url, json=_dispatch() | {"targets": ["utility.pge.north_ca"]}) as r:
        assert r.status == 201
        original = await r.json()
    bodies = violations(80)
    assert len(bodies) >= 60
    nested = json.dumps(_dispatch()).replace('"loadControlEvent"', '[' * 900 + ']' * 900).encode()
    raw = [b"{", b"\xff\xfe", b"[" * 60_000, nested, json.dumps({"intervals": [[]] * 10}).encode()]
    for index, body in enumerate([*bodies, *raw]):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        for method, target in (("POST", url), ("PUT", f"{url}/{original['id']}")):
            async with session.request(method, target, data=data,
                                       headers={"Content-Type": "application/json"}) as r:
                text = await r.text()
                assert r.status == 400 and r.content_type == "application/problem+json", (index, method, text[:300])
                problem = json.loads(text)
                assert problem["status"] == 400 and problem["title"] and problem.get("detail")
                if isinstance(body, dict):
                    assert problem["problems"] and all(p["pointer"] == "" or p["pointer"].startswith("/")
                                                       for p in problem["problems"])
    assert list(events.events) == [original["id"]] and len(events.specs) == 1
    async with session.get(f"{url}/{original['id']}") as r:
        assert await r.json() == original
