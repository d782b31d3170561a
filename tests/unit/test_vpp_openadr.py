"""OpenADR 3.1 events → GridEventSpec: every User Guide example is mapped or refused with a reason."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from services.control.vpp.model import Source
from services.control.vpp.openadr import (
    NotADispatch,
    OpenAdrError,
    SchemaViolation,
    TimeError,
    UnknownReference,
    parse_dispatch,
    parse_duration,
    to_grid_event,
)
from tests.data import SHARED_DATA

EXAMPLES = SHARED_DATA / "openadr" / "openadr3_1_0_user_guide_event_examples.json"
UTC = dt.UTC


def _examples() -> list[tuple[str, Any]]:
    data = json.loads(EXAMPLES.read_text())
    out = []
    for example in data["examples"]:
        bodies = example["json"] if isinstance(example["json"], list) else [example["json"]]
        out += [(example["caption"], body) for body in bodies]
    return out


ALL = _examples()
BY_CAPTION = {caption: body for caption, body in ALL}


async def programs(program_id: str) -> str | None:
    return {"44": "program.ca_vpp", "0": "program.ca_vpp", "53": "program.tx_vpp"}.get(program_id)


async def groups(program: str, target: str) -> str | None:
    return target if target in {"utility.pge.north_ca", "program.ca_vpp.enrolled"} else None


async def _map(body: Any, now: dt.datetime, **kw: Any) -> Any:
    return await to_grid_event(body, now, resolve_program=programs, resolve_group=groups, **kw)


def test_there_are_27_examples() -> None:
    assert len(json.loads(EXAMPLES.read_text())["examples"]) == 27


@pytest.mark.parametrize(("caption", "body"), ALL, ids=[c for c, _ in ALL])
async def test_every_example_is_mapped_or_refused_with_a_reason(caption: str, body: Any) -> None:
    now = dt.datetime(2020, 1, 1, tzinfo=UTC)
    try:
        spec = await _map(body, now)
    except OpenAdrError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        problem = exc.problem_json("/openadr3/events")
        assert problem["status"] == 400 and problem["problems"] and json.dumps(problem)
    else:
        assert spec.source is Source.OPENADR


def _load_control(value: float = -500, units: str = "KW") -> dict[str, Any]:
    body = copy.deepcopy(BY_CAPTION["Example 8.5-1: Create load control event"])
    body["payloadDescriptors"][0]["units"] = units
    body["intervals"][0]["payloads"][0]["values"] = [value]
    return body


def test_load_control_example_parses_to_its_window_and_setpoint() -> None:
    with pytest.raises(OpenAdrError, match="0 kW asks for no discharge"):
        parse_dispatch(BY_CAPTION["Example 8.5-1: Create load control event"])
    parsed = parse_dispatch(_load_control(-500))
    assert parsed.start == dt.datetime(2025, 3, 14, tzinfo=UTC)
    assert parsed.end == dt.datetime(2025, 3, 14, 4, tzinfo=UTC)
    assert parsed.target_power_w == 500_000
    assert parsed.program_id == "44" and parsed.name == "loadControlEvent" and parsed.target is None


async def test_dispatch_setpoint_maps_onto_the_model() -> None:
    now = dt.datetime(2025, 3, 13, 12, tzinfo=UTC)
    body = _load_control(-2.5, "MW") | {"targets": ["utility.pge.north_ca"]}
    spec = await _map(body, now)
    assert (spec.program, spec.target_group, spec.target_power_w) == ("program.ca_vpp", "utility.pge.north_ca", 2.5e6)
    assert (spec.start, spec.end) == (dt.datetime(2025, 3, 14, tzinfo=UTC), dt.datetime(2025, 3, 14, 4, tzinfo=UTC))
    assert spec.external_id == "loadControlEvent" and spec.name == "loadControlEvent"
    assert spec.source is Source.OPENADR
    assert (await _map(body | {"id": "ev-7"}, now)).external_id == "ev-7"
    assert (await _map(body, now, event_id="path-id")).external_id == "path-id"


@pytest.mark.parametrize(("units", "watts"), [("W", 900.0), ("kw", 900e3), ("MW", 900e6)])
def test_units(units: str, watts: float) -> None:
    assert parse_dispatch(_load_control(-900, units)).target_power_w == watts


def test_fast_dr_example_is_refused_as_open_ended() -> None:
    with pytest.raises(OpenAdrError, match="until further notice") as exc:
        parse_dispatch(BY_CAPTION["Example 8.9.3-1: Create fast demand response dispatch event"])
    assert exc.value.problems[0].pointer == "/intervalPeriod/duration"


def test_intervals_follow_one_another_and_must_ask_for_one_level() -> None:
    body = _load_control(-100)
    body["intervalPeriod"]["duration"] = "PT1H"
    body["intervals"].append({"id": 1, "intervalPeriod": {"duration": "PT30M"},
                              "payloads": [{"type": "DISPATCH_SETPOINT", "values": [-100]}]})
    parsed = parse_dispatch(body)
    assert parsed.end - parsed.start == dt.timedelta(hours=1, minutes=30)
    body["intervals"][1]["payloads"][0]["values"] = [-200]
    with pytest.raises(OpenAdrError, match="different discharge levels"):
        parse_dispatch(body)


def test_gap_between_intervals_is_refused() -> None:
    body = _load_control(-100)
    body["intervals"].append({"id": 1, "intervalPeriod": {"start": "2025-03-14T05:00:00Z", "duration": "PT1H"},
                              "payloads": [{"type": "DISPATCH_SETPOINT", "values": [-100]}]})
    with pytest.raises(OpenAdrError, match="gap"):
        parse_dispatch(body)


@pytest.mark.parametrize(("mutate", "pointer", "kind"), [
    (lambda b: b.__setitem__("programID", 44), "/programID", SchemaViolation),
    (lambda b: b.pop("programID"), "", SchemaViolation),
    (lambda b: b["intervals"][0].pop("payloads"), "/intervals/0", SchemaViolation),
    (lambda b: b.__setitem__("intervals", "none"), "/intervals", SchemaViolation),
    (lambda b: b["intervalPeriod"].__setitem__("duration", "4 hours"), "/intervalPeriod/duration", SchemaViolation),
    (lambda b: b.pop("intervals"), "/intervals", NotADispatch),
    (lambda b: b["intervals"][0]["payloads"][0].__setitem__("values", ["lots"]), "/intervals/0/payloads/0/values/0",
     OpenAdrError),
    (lambda b: b["intervals"][0]["payloads"][0].__setitem__("values", [250]), "/intervals/0/payloads/0/values/0",
     OpenAdrError),  # positive consumption: no discharge
    (lambda b: b["payloadDescriptors"][0].__setitem__("units", "KWH"), "/payloadDescriptors/0/units", OpenAdrError),
    (lambda b: b.pop("payloadDescriptors"), "/payloadDescriptors", OpenAdrError),
    (lambda b: b["intervalPeriod"].__setitem__("start", "0001-01-01"), "/intervalPeriod/start", OpenAdrError),
    (lambda b: b["intervalPeriod"].__setitem__("start", "2025-03-14T00:00:00"), "/intervalPeriod/start",
     OpenAdrError),
    (lambda b: b["intervalPeriod"].__setitem__("duration", "PT0H"), "/intervalPeriod/duration", OpenAdrError),
    (lambda b: b["intervalPeriod"].__setitem__("duration", "P1M"), "/intervalPeriod/duration", OpenAdrError),
    (lambda b: b.__setitem__("targets", ["a.b", "c.d"]), "/targets", OpenAdrError),
])
def test_bad_payloads_name_where(mutate: Any, pointer: str, kind: type[OpenAdrError]) -> None:
    body = _load_control(-100)
    mutate(body)
    with pytest.raises(kind) as exc:
        parse_dispatch(body)
    assert pointer in [p.pointer for p in exc.value.problems], exc.value.problems


def test_schema_violations_are_all_listed() -> None:
    body = _load_control(-100) | {"programID": 44, "priority": -1, "eventName": 3}
    with pytest.raises(SchemaViolation) as exc:
        parse_dispatch(body)
    assert {"/programID", "/priority", "/eventName"} <= {p.pointer for p in exc.value.problems}


async def test_window_in_the_past_unknown_program_and_group() -> None:
    with pytest.raises(OpenAdrError, match="ended in the past"):
        await _map(_load_control(-100), dt.datetime(2026, 1, 1, tzinfo=UTC))
    now = dt.datetime(2025, 3, 13, tzinfo=UTC)
    with pytest.raises(UnknownReference, match="unknown program"):
        await _map(_load_control(-100) | {"programID": "99"}, now)
    with pytest.raises(UnknownReference, match="names no hierarchy group") as exc:
        await _map(_load_control(-100) | {"targets": ["VEN-99"]}, now)
    assert exc.value.problems[0].pointer == "/targets/0"


async def test_model_rules_come_back_as_problems() -> None:
    body = _load_control(-100)
    body["intervalPeriod"]["duration"] = "P2D"
    with pytest.raises(OpenAdrError, match="longer than 24 h"):
        await _map(body, dt.datetime(2025, 3, 13, tzinfo=UTC))
    with pytest.raises(OpenAdrError, match="check the unit"):
        await _map(_load_control(-100, "GW"), dt.datetime(2025, 3, 13, tzinfo=UTC))


def test_price_and_report_requests_are_not_dispatches() -> None:
    with pytest.raises(NotADispatch, match="tariff"):
        parse_dispatch(BY_CAPTION["Example 7.2-3: Create Minimal event"])
    with pytest.raises(NotADispatch, match="report request"):
        parse_dispatch(BY_CAPTION["Example 8.7-1: Create capability report request event"])
    with pytest.raises(NotADispatch, match="ceiling"):
        parse_dispatch(BY_CAPTION["Example 8.10.1-1: Create capacity limit event"])


def test_a_dispatch_may_carry_a_price_too() -> None:
    body = _load_control(-100)
    body["intervals"][0]["payloads"].append({"type": "PRICE", "values": [0.3]})
    assert parse_dispatch(body).target_power_w == 100e3


@pytest.mark.parametrize(("text", "expected"), [
    ("PT1H", dt.timedelta(hours=1)), ("PT30M", dt.timedelta(minutes=30)), ("P1DT2H", dt.timedelta(days=1, hours=2)),
    ("P1W", dt.timedelta(weeks=1)), ("PT0.5S", dt.timedelta(seconds=0.5)), ("PT0H", dt.timedelta(0)),
])
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P9999Y", "P1Y", "P2M", "-PT1H", "PT", "P", "1H", "PT1.5H"])
def test_durations_refused(text: str) -> None:
    with pytest.raises(TimeError):
        parse_duration(text)
