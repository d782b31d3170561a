"""OpenADR 3.1 event bodies broken by hypothesis: the User Guide's dispatch example with one value
replaced, removed or added anywhere in it. A body the schema refuses is a SchemaViolation whose
problems point into the body; any other body maps to an event or to an OpenAdrError — no other
exception ever leaves `to_grid_event` (the REST layer would answer 500)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.control.vpp import openadr
from services.control.vpp.model import GridEventSpec
from tests.hostile.strategies import HOSTILE, HOSTILE_STRINGS
from tests.integration.test_vpp_rest import EXAMPLES, NOW, _dispatch, groups, programs

EXAMPLE_BODIES = [e["json"] for e in json.loads(EXAMPLES.read_text())["examples"] if isinstance(e.get("json"), dict)]
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(), st.text(max_size=20),
                         st.sampled_from([*HOSTILE_STRINGS[:20], "9999-12-31T23:59:59Z", "0001-01-01", "P9999Y",
                                          "PT0S", "-PT1H", "P1Y", "KW", "DISPATCH_SETPOINT"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def broken_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = copy.deepcopy(draw(st.one_of(st.just(_dispatch()), st.sampled_from(EXAMPLE_BODIES))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(body)[1:]))
        parent = body
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        else:
            parent.append(draw(JSON_VALUES))
        if not paths(body)[1:]:
            break
    return body


def map_event(body: Any) -> GridEventSpec:
    return asyncio.run(openadr.to_grid_event(body, NOW, resolve_program=programs, resolve_group=groups))


def schema_valid(body: Any) -> bool:
    return bool(openadr._validator("eventRequest").is_valid(openadr._with_descriptor_discriminator(body)))


@settings(HOSTILE, max_examples=200)
@given(broken_bodies())
def test_broken_bodies_are_refused_with_pointers_or_mapped(body: dict[str, Any]) -> None:
    try:
        spec = map_event(body)
    except openadr.OpenAdrError as error:
        assert error.problems and all(p.pointer == "" or p.pointer.startswith("/") for p in error.problems)
        assert all(p.message for p in error.problems) and len(error.problems) <= openadr.MAX_PROBLEMS
        problem = error.problem_json("/openadr3/events")
        assert problem["status"] == 400 and problem["title"] and json.dumps(problem, allow_nan=False)
        if not schema_valid(body):
            assert isinstance(error, openadr.SchemaViolation)
        return
    assert schema_valid(body)
    assert spec.target_power_w > 0 and spec.start < spec.end
    assert "\x00" not in spec.name + spec.external_id


@pytest.mark.parametrize(("change", "pointer"), [
    ({"intervalPeriod": {"start": "9999-12-31T23:00:00Z", "duration": "P2D"}}, "/intervalPeriod"),
    ({"eventName": "load\x00control"}, "/eventName"),
    ({"intervalPeriod": {"start": "2025-03-14T00:00:00Z", "duration": "PT99999999999999999999H"}},
     "/intervalPeriod/duration"),
])
def test_values_beyond_what_can_be_stored_or_computed(change: dict[str, Any], pointer: str) -> None:
    with pytest.raises(openadr.OpenAdrError) as error:
        map_event(_dispatch() | change)
    assert error.value.problems[0].pointer == pointer
