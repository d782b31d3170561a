"""The OpenAPI document of the HTTP API is valid 3.1 and describes bodies (not `{}`)."""

from __future__ import annotations

from openapi_spec_validator import validate

from services.http.openapi import document
from services.http.routes import ROUTES


def test_document_is_valid_openapi_3_1() -> None:
    spec = document()
    validate(spec)
    assert spec["openapi"] == "3.1.0"


def test_every_route_is_described_with_its_grpc_method_and_bodies() -> None:
    spec = document()
    for route in ROUTES:
        operation = spec["paths"]["/api/v1" + route.path][route.method.lower()]
        assert operation["x-grpc-method"] == route.rpc
        if route.body:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    page = spec["components"]["schemas"]["gridtwin.twins.v1.ListAlertsResponse"]
    assert set(page["properties"]) >= {"alerts", "nextPageToken", "next"}
    assert spec["components"]["schemas"]["gridtwin.assets.v1.Installation"]["properties"]["batteryNominalEnergyWh"]
