"""The OpenAPI 3.1 document of the HTTP API, generated from the route table and the protobuf
descriptors (so it cannot drift from what the routes transcode).

Schemas follow the proto3 JSON mapping: lowerCamelCase properties, 64-bit integers as strings
(format int64), enums by name. Each operation names the gRPC method it calls
(`x-grpc-method`); a paged list's response has the `next` link the API adds.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from services.http.routes import ROUTES, Kind, Route
from services.http.transcode import is_map, method_descriptor

API_PREFIX = "/api/v1"
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_INT32 = (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32)
_INT64 = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, descriptor: Descriptor | EnumDescriptor) -> dict[str, str]:
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}   # placeholder: recursive messages end here
            self.components[name] = (self._enum(descriptor) if isinstance(descriptor, EnumDescriptor)
                                     else self._message(descriptor))
        return {"$ref": f"#/components/schemas/{name}"}

    @staticmethod
    def _enum(descriptor: EnumDescriptor) -> dict[str, Any]:
        return {"type": "string", "enum": [v.name for v in descriptor.values], "title": descriptor.name}

    def _message(self, descriptor: Descriptor) -> dict[str, Any]:
        properties = {f.json_name: self.field(f) for f in descriptor.fields}
        if "next_page_token" in descriptor.fields_by_name:
            properties["next"] = {"type": ["string", "null"], "format": "uri-reference",
                                  "description": "The next page's URL; null on the last page."}
        schema: dict[str, Any] = {"type": "object", "title": descriptor.name, "properties": properties,
                                  "additionalProperties": False}
        oneofs = [o for o in descriptor.oneofs if not o.name.startswith("_")]
        if oneofs:
            schema["description"] = "; ".join(
                f"at most one of {', '.join(f.json_name for f in o.fields)}" for o in oneofs)
        return schema

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if is_map(field):
            return {"type": "object", "additionalProperties": self.scalar(field.message_type.fields_by_name["value"])}
        item = self.scalar(field)
        return {"type": "array", "items": item} if field.is_repeated else item

    def scalar(self, field: FieldDescriptor) -> dict[str, Any]:
        cpp = field.cpp_type
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return self.ref(field.enum_type)
        if cpp in _INT32:
            return {"type": "integer", "format": "int32"} | ({"minimum": 0} if cpp == FieldDescriptor.CPPTYPE_UINT32
                                                             else {})
        if cpp in _INT64:
            return {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
        if cpp in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
            return {"type": "number"}
        if cpp == FieldDescriptor.CPPTYPE_BOOL:
            return {"type": "boolean"}
        if field.type == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        return {"type": "string"}


def _query_fields(descriptor: Descriptor, prefix: str = "", depth: int = 0) -> list[tuple[str, FieldDescriptor]]:
    """The scalar fields a query string may set, by dotted lowerCamel name."""
    found: list[tuple[str, FieldDescriptor]] = []
    for f in descriptor.fields:
        name = prefix + f.json_name
        if f.message_type is not None and not is_map(f):
            if not f.is_repeated and depth < 3:
                found += _query_fields(f.message_type, name + ".", depth + 1)
        elif not is_map(f):
            found.append((name, f))
    return found


def _json_path(descriptor: Descriptor, dotted: str) -> str:
    parts, current, out = dotted.split("."), descriptor, []
    for part in parts:
        f = current.fields_by_name[part]
        out.append(f.json_name)
        current = f.message_type
    return ".".join(out)


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    method = method_descriptor(route.rpc)
    request, response = method.input_type, method.output_type
    path_params = re.findall(r"{(\w+)}", route.path)
    taken = {_json_path(request, route.field_of(p)) for p in path_params} | {
        _json_path(request, f) for f in route.fixed}
    parameters: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"},
         "description": f"sets `{_json_path(request, route.field_of(p))}`"} for p in path_params]
    if not route.body:
        for name, f in _query_fields(request):
            if name in taken:
                continue
            schema = schemas.field(f) if not f.is_repeated else {"type": "array", "items": schemas.scalar(f)}
            parameters.append({"name": name, "in": "query", "required": False, "schema": schema,
                               **({"explode": True} if f.is_repeated else {})})
    operation: dict[str, Any] = {
        "operationId": route.operation_id, "summary": route.summary, "tags": [route.service.split(".")[1]],
        "x-grpc-method": route.rpc, "parameters": parameters,
        "responses": {"default": _PROBLEM},
    }
    if route.method == "POST":
        operation["parameters"].append({"$ref": "#/components/parameters/IdempotencyKey"})
    if route.body:
        target = request if route.body == "*" else request.fields_by_name[route.body].message_type
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schemas.ref(target)}}}
    if route.kind is Kind.EVENTS:
        operation["parameters"].append({"name": "Last-Event-ID", "in": "header", "required": False,
                                        "schema": {"type": "string"}, "description": "resume after this event"})
        operation["responses"]["200"] = {
            "description": f"Server-Sent Events; each `data:` is a JSON {response.name} "
                           f"(#/components/schemas/{response.full_name}); `: heartbeat` comments while idle; "
                           "a last `event: error` carries a problem when the stream fails.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}}}
        schemas.ref(response)
    elif route.kind is Kind.DOWNLOAD:
        operation["responses"]["200"] = {"description": "the file",
                                         "content": {"text/csv": {"schema": {"type": "string"}},
                                                     "application/json": {"schema": {}}}}
    else:
        content = {"application/json": {"schema": schemas.ref(response)}}
        headers = {"ETag": {"schema": {"type": "string"}}} if route.method == "GET" else {}
        operation["responses"][str(route.status)] = {"description": response.name, "content": content,
                                                     **({"headers": headers} if headers else {})}
        if route.method == "GET":
            operation["responses"]["304"] = {"description": "Not modified (If-None-Match)"}
    return operation


def _session_paths(schemas: _Schemas) -> dict[str, Any]:
    login = {"type": "object", "required": ["username", "password"], "additionalProperties": False,
             "properties": {"username": {"type": "string"}, "password": {"type": "string", "format": "password"}}}
    session = {"type": "object", "properties": {
        "principal": schemas.ref(method_descriptor("/gridtwin.access.v1.AccessService/WhoAmI").output_type),
        "expiresUnixMs": {"type": "string", "format": "int64"},
        "csrfToken": {"type": "string", "description": "echo it in X-CSRF-Token on every write"}}}
    schemas.components["LoginRequest"], schemas.components["SessionCreated"] = login, session
    accept = {"type": "object", "required": ["code", "username", "password"], "additionalProperties": False,
              "properties": {"code": {"type": "string"}, "username": {"type": "string"},
                             "password": {"type": "string", "format": "password"}}}
    schemas.components["AcceptInvitationRequest"] = accept
    created = {"description": "The session cookie is set (HttpOnly); the body carries the CSRF token.",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionCreated"}}}}
    token_form = {"type": "object", "required": ["grant_type"], "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]}, "client_id": {"type": "string"},
        "client_secret": {"type": "string"}, "scope": {"type": "string"}}}
    token = {"type": "object", "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string"},
                                              "expires_in": {"type": "integer"}, "scope": {"type": "string"}}}
    return {
        f"{API_PREFIX}/auth/login": {"post": {
            "operationId": "login", "summary": "Log in: a session cookie and a CSRF token", "tags": ["access"],
            "x-grpc-method": "/gridtwin.access.v1.AccessService/Login", "security": [],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/LoginRequest"}}}},
            "responses": {"200": created, "default": _PROBLEM}}},
        f"{API_PREFIX}/auth/logout": {"post": {
            "operationId": "logout", "summary": "End the session", "tags": ["access"],
            "x-grpc-method": "/gridtwin.access.v1.AccessService/Logout",
            "responses": {"204": {"description": "logged out; the cookie is cleared"}, "default": _PROBLEM}}},
        f"{API_PREFIX}/invitations/accept": {"post": {
            "operationId": "acceptInvitation", "summary": "Accept an invitation: an account and a session",
            "tags": ["access"], "x-grpc-method": "/gridtwin.access.v1.AccessService/AcceptInvitation",
            "security": [], "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AcceptInvitationRequest"}}}},
            "responses": {"200": created, "default": _PROBLEM}}},
        f"{API_PREFIX}/auth/oidc/login": {"get": {
            "operationId": "oidcLogin", "summary": "Log in at the identity provider (when OIDC is configured)",
            "tags": ["access"], "security": [],
            "responses": {"302": {"description": "to the provider's authorization endpoint"},
                          "default": _PROBLEM}}},
        f"{API_PREFIX}/auth/oidc/callback": {"get": {
            "operationId": "oidcCallback", "summary": "Where the identity provider sends the browser back",
            "tags": ["access"], "x-grpc-method": "/gridtwin.access.v1.AccessService/LoginWithIdentity",
            "security": [], "parameters": [
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in ("code", "state", "error")],
            "responses": {"303": {"description": "the session cookie is set; on to /"}, "default": _PROBLEM}}},
        "/oauth/token": {"post": {
            "operationId": "issueClientToken", "summary": "OAuth 2.0 client credentials (RFC 6749 §4.4)",
            "tags": ["access"], "x-grpc-method": "/gridtwin.access.v1.AccessService/IssueClientToken",
            "security": [], "requestBody": {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": token_form}}},
            "responses": {"200": {"description": "an access token", "content": {"application/json": {
                "schema": token}}}, "default": {"description": "RFC 6749 §5.2 error", "content": {
                    "application/json": {"schema": {"type": "object"}}}}}}},
    }


def _unique_titles(components: dict[str, Any]) -> None:
    """Titles name generated client classes: a nested type is titled with its parents
    (AlertChange.Kind → AlertChangeKind), and a name two packages share with its domain
    (gridtwin.assets.v1.CreateTokenRequest → AssetsCreateTokenRequest)."""
    def local(full: str) -> tuple[str, str]:
        parts = full.split(".")
        return parts[1], "".join(p for p in parts[3:])
    generated = [full for full in components if full.startswith("gridtwin.")]
    counts: dict[str, int] = {}
    for full in generated:
        counts[local(full)[1]] = counts.get(local(full)[1], 0) + 1
    for full in generated:
        schema, (domain, name) = components[full], local(full)
        schema["title"] = name if counts[name] == 1 else domain.capitalize() + name


def document(title: str = "gridtwin HTTP API", version: str = "1") -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(API_PREFIX + route.path, {})[route.method.lower()] = _operation(route, schemas)
    paths.update(_session_paths(schemas))
    _unique_titles(schemas.components)
    schemas.components["Problem"] = {
        "type": "object", "description": "RFC 9457 problem details",
        "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                       "detail": {"type": "string"}, "instance": {"type": "string"},
                       "errors": {"type": "array", "items": {"type": "object", "properties": {
                           "detail": {"type": "string"}, "pointer": {"type": "string"},
                           "parameter": {"type": "string"}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Resources over the gridtwin gRPC services: the same rules, the same access table. "
                                "Authenticate with `Authorization: Bearer <token>` or the session cookie of "
                                "`POST /api/v1/auth/login` (cookie writes need `X-CSRF-Token`)."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "responses": {"Problem": {"description": "RFC 9457 problem details", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "parameters": {"IdempotencyKey": {
                "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string",
                                                                                        "maxLength": 255},
                "description": "the same key from the same caller replays the first answer"}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "gridtwin_session"}},
        },
    }
