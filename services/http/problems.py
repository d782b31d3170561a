"""RFC 9457 problem details: every error the HTTP API answers, in one shape.

gRPC statuses become HTTP statuses through the one table in gridtwin/errors.py. The `type` is a
relative URI naming the problem (`/problems/invalid-argument`), `detail` is what the service said
(safe to show: services never put a stack or a secret in it), `instance` the request path, and
`errors` lists each field at fault with its JSON pointer (or its query parameter).
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

import grpc

from gridtwin.errors import http_status, json_pointer
from services.http.transcode import Fault

MEDIA_TYPE = "application/problem+json"
# gridtwin.errors.InvalidArgument says "field: why"; the field becomes the pointer.
_FIELD_DETAIL = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*|\[\d+\])*): ")


def problem(status: int, detail: str, *, instance: str = "", kind: str = "", faults: list[Fault] | None = None,
            **extra: Any) -> dict[str, Any]:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": f"/problems/{kind or title.lower().replace(' ', '-')}", "title": title, "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if faults:
        body["errors"] = [{k: v for k, v in (("detail", f.detail), ("pointer", f.pointer), ("parameter", f.parameter))
                           if v or k == "detail"} for f in faults]
    body.update(extra)
    return body


def from_grpc(error: grpc.aio.AioRpcError, instance: str) -> dict[str, Any]:
    code = error.code()
    detail = error.details() or code.name
    if code is grpc.StatusCode.UNAVAILABLE:
        detail = "a service the API depends on is unavailable; try again shortly"
    faults = None
    if code is grpc.StatusCode.INVALID_ARGUMENT and (match := _FIELD_DETAIL.match(detail)):
        faults = [Fault(detail[match.end():], pointer=json_pointer(match.group(1)))]
    return problem(http_status(code), detail, instance=instance, kind=code.name.lower().replace("_", "-"),
                   faults=faults, grpc_status=code.name)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
