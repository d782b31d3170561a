"""The HTTP API's JSON ↔ protobuf mapping (services/http/transcode.py) and route table."""

from __future__ import annotations

import re

import pytest

from services.http.routes import ROUTES, Kind
from services.http.transcode import BadRequest, build_request, method_descriptor, parse_json, to_json

SUBMIT = method_descriptor("/gridtwin.control.v1.ControlService/SubmitCommand").input_type
ALERTS = method_descriptor("/gridtwin.twins.v1.TwinService/ListAlerts").input_type
REPORT = method_descriptor("/gridtwin.analytics.v1.AnalyticsService/GetEnergyReport").input_type


def faults(excinfo: pytest.ExceptionInfo[BadRequest]) -> list[tuple[str, str]]:
    return [(f.pointer, f.parameter) for f in excinfo.value.faults]


def test_body_path_and_query_make_one_request() -> None:
    message = build_request(SUBMIT, body={"ttlS": 600, "spec": {"setMode": {"mode": "OPERATION_MODE_BACKUP"}},
                                          "installation_id": "ignored"},
                            path_params={"installation_id": "home-1"})
    assert message.installation_id == "home-1" and message.ttl_s == 600
    assert message.spec.HasField("set_mode")


def test_query_parameters_fill_nested_and_repeated_fields() -> None:
    query = [("range.dates.firstDate", "2024-06-01"), ("range.dates.end_date", "2024-06-02"), ("omitDays", "true")]
    message = build_request(REPORT, query=query, path_params={"target.installation_id": "h"})
    assert message.range.dates.first_date == "2024-06-01" and message.range.dates.end_date == "2024-06-02"
    assert message.omit_days and message.target.installation_id == "h"
    alerts = build_request(ALERTS, query=[("states", "ALERT_STATE_RAISED"), ("states", "ALERT_STATE_CLEARED")])
    assert len(alerts.states) == 2


@pytest.mark.parametrize(("body", "pointer"), [
    ({"colour": "red"}, "/colour"),
    ({"ttlS": "soon"}, "/ttlS"),
    ({"ttlS": True}, "/ttlS"),
    ({"spec": {"setMode": {"mode": "LOUD"}}}, "/spec/setMode/mode"),
    ({"spec": {"setMode": {"colour": 1}}}, "/spec/setMode/colour"),
    ({"spec": []}, "/spec"),
    ({"ttlS": "Infinity"}, "/ttlS"),
    ({"ttlS": "NaN"}, "/ttlS"),
    ([1, 2], ""),
])
def test_bad_bodies_name_the_member_at_fault(body: object, pointer: str) -> None:
    with pytest.raises(BadRequest) as excinfo:
        build_request(SUBMIT, body=body)
    assert faults(excinfo) == [(pointer, "")]


def test_integers_out_of_range_and_bad_parameters() -> None:
    with pytest.raises(BadRequest) as excinfo:
        build_request(ALERTS, body={"pageSize": -1})
    assert faults(excinfo) == [("/pageSize", "")]
    with pytest.raises(BadRequest) as excinfo:
        build_request(ALERTS, query=[("pageSize", "many"), ("nope", "1"), ("startUnixMs", "9" * 30)])
    assert faults(excinfo) == [("", "pageSize"), ("", "nope"), ("", "startUnixMs")]


def test_json_without_nan_or_infinity() -> None:
    for raw in (b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b"{", b"\xff"):
        with pytest.raises(BadRequest):
            parse_json(raw)
    assert parse_json(b"") == {} and parse_json(b'{"a": 1.5}') == {"a": 1.5}


def test_json_answers_show_every_field() -> None:
    message = build_request(SUBMIT, body={"installationId": "h"})
    shown = to_json(message)
    assert shown["installationId"] == "h" and shown["ttlS"] == 0 and "idempotencyKey" in shown


def test_every_route_names_a_real_method_and_real_fields() -> None:
    seen = set()
    for route in ROUTES:
        method = method_descriptor(route.rpc)
        assert (route.method, route.path) not in seen, route
        seen.add((route.method, route.path))
        assert method.server_streaming == (route.kind is not Kind.UNARY), route
        for param in re.findall(r"{(\w+)}", route.path):
            descriptor = method.input_type
            for part in route.field_of(param).split("."):
                assert part in descriptor.fields_by_name, (route, param)
                descriptor = descriptor.fields_by_name[part].message_type
        if route.body not in ("", "*"):
            assert route.body in method.input_type.fields_by_name
        assert route.path == route.path.lower() and "_" not in re.sub(r"{\w+}", "", route.path), route


def test_every_method_of_every_service_has_a_route() -> None:
    """Every read and write of the services is a resource (the session RPCs are served around
    cookies and forms by the app itself)."""
    import importlib
    import pkgutil

    import gridtwin.api
    from services.http.routes import SESSION_RPCS

    methods = {f"/{service.full_name}/{method.name}"
               for module in pkgutil.walk_packages(gridtwin.api.__path__, "gridtwin.api.")
               if module.name.endswith("_pb2")
               for service in importlib.import_module(module.name).DESCRIPTOR.services_by_name.values()
               for method in service.methods}
    routed = {r.rpc for r in ROUTES} | set(SESSION_RPCS.values())
    missing = sorted(methods - routed)
    assert missing == []
