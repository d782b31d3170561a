"""The HTTP API against the real services (tests/integration/http/http_support.py): OpenAPI,
problem+json for bad input, ETag, Idempotency-Key, rate limits, CSRF, security headers, paging."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from openapi_spec_validator import validate

from services.access.model import Scope
from services.http.limits import csrf_token
from tests.integration import test_access_matrix as matrix
from tests.integration.http.http_support import HttpWorld

pytestmark = pytest.mark.integration


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_openapi_document_is_valid_and_describes_bodies(http_world: HttpWorld) -> None:
    async with http_world.client() as client:
        answer = await client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    spec = answer.json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    operation = spec["paths"]["/api/v1/installations"]["post"]
    assert operation["x-grpc-method"] == "/gridtwin.assets.v1.AssetService/CreateInstallation"
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "installation" in schema["properties"] and schema["properties"]["installation"] != {}


async def test_reads_answer_json_with_an_etag_and_304(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.READ)
    async with http_world.client(headers=auth(token)) as client:
        first = await client.get("/api/v1/installations/mx-home")
        assert first.status_code == 200, first.text
        assert first.json()["installationId"] == "mx-home"
        tag = first.headers["etag"]
        again = await client.get("/api/v1/installations/mx-home", headers={"if-none-match": tag})
        assert again.status_code == 304 and again.content == b""
        changed = await client.get("/api/v1/installations/mx-home", headers={"if-none-match": '"other"'})
        assert changed.status_code == 200


@pytest.mark.parametrize(("method", "path", "body", "where"), [
    ("POST", "/api/v1/customers", b"{not json", ""),
    ("POST", "/api/v1/customers", b'{"name": "Ana", "colour": "red"}', "/colour"),
    ("PATCH", "/api/v1/installations/mx-home", b'{"backupReservePct": NaN}', ""),
    ("PATCH", "/api/v1/installations/mx-home", b'{"backupReservePct": "lots"}', "/backupReservePct"),
    ("POST", "/api/v1/events", b'{"targetPowerW": 1e999}', ""),
    ("POST", "/api/v1/installations/mx-home/commands", b'{"ttlS": 600, "spec": {"setMode": {"mode": "LOUD"}}}',
     "/spec/setMode/mode"),
])
async def test_bad_input_is_a_problem_with_a_pointer(http_world: HttpWorld, method: str, path: str, body: bytes,
                                                      where: str) -> None:
    token = await http_world.token(Scope.ADMIN)
    async with http_world.client(headers={**auth(token), "content-type": "application/json"}) as client:
        answer = await client.request(method, path, content=body)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == 400 and problem["title"] and problem["type"] and problem["instance"] == path
        if where:
            assert [e["pointer"] for e in problem["errors"]] == [where]
        # and everyone else is still served
        assert (await client.get("/api/v1/installations/mx-home")).status_code == 200


async def test_bad_ids_and_parameters(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.ADMIN)
    async with http_world.client(headers=auth(token)) as client:
        missing = await client.get("/api/v1/installations/no-such-home")
        assert missing.status_code in (403, 404) and missing.headers["content-type"] == "application/problem+json"
        unknown = await client.get("/api/v1/alerts", params={"colour": "red"})
        assert unknown.status_code == 400 and unknown.json()["errors"][0]["parameter"] == "colour"
        typed = await client.get("/api/v1/alerts", params={"startUnixMs": "yesterday"})
        assert typed.status_code == 400 and typed.json()["errors"][0]["parameter"] == "startUnixMs"
        nowhere = await client.get("/api/v1/nowhere")
        assert nowhere.status_code == 404 and nowhere.headers["content-type"] == "application/problem+json"
        none = await client.get("/api/v1/installations/mx-home", headers={"authorization": ""})
        assert none.status_code == 401


async def test_idempotency_key_replays_the_first_answer(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.ADMIN)
    key = uuid.uuid4().hex
    body = {"name": "Ana", "customerId": f"idem-{key[:8]}"}
    async with http_world.client(headers={**auth(token), "idempotency-key": key}) as client:
        first = await client.post("/api/v1/customers", json=body)
        assert first.status_code == 201, first.text
        again = await client.post("/api/v1/customers", json=body)
        assert again.status_code == 201 and again.json() == first.json()
        assert again.headers.get("idempotent-replayed") == "true"
        other = await client.post("/api/v1/customers", json={**body, "name": "Bo"})
        assert other.status_code == 422
    # another caller's same key is another request (an ALREADY_EXISTS from the service, not a replay)
    other_token = await http_world.token(Scope.ADMIN)
    async with http_world.client(headers={**auth(other_token), "idempotency-key": key}) as client:
        theirs = await client.post("/api/v1/customers", json=body)
        assert theirs.headers.get("idempotent-replayed") is None


async def test_commands_keep_one_effect_per_key(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.COMMAND)
    body = {"spec": {"setMode": {"mode": "OPERATION_MODE_BACKUP"}}, "ttlS": 600}
    headers = {**auth(token), "idempotency-key": uuid.uuid4().hex}
    async with http_world.client(headers=headers) as client:
        answers = await asyncio.gather(*(client.post("/api/v1/installations/mx-home/commands", json=body)
                                         for _ in range(3)))
        created = [a for a in answers if a.status_code == 201]
        assert created and all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
        ids = {a.json()["command"]["commandId"] for a in created}
        assert len(ids) == 1


async def test_rate_limit_answers_429_with_retry_after(http_world: HttpWorld) -> None:
    from services.http.limits import RateLimiter

    limiter = http_world.server.context.limiter
    http_world.server.context.limiter = RateLimiter(1.0, 3)
    try:
        token = await http_world.token(Scope.READ)
        other = await http_world.token(Scope.READ)
        async with http_world.client(headers=auth(token)) as client:
            codes = [(await client.get("/api/v1/installations/mx-home")).status_code for _ in range(5)]
            assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
            limited = await client.get("/api/v1/installations/mx-home")
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limited.headers["content-type"] == "application/problem+json"
            served = await client.get("/api/v1/installations/mx-home", headers=auth(other))
            assert served.status_code == 200   # another principal has a bucket of its own
    finally:
        http_world.server.context.limiter = limiter


async def test_security_headers_and_no_cors_by_default(http_world: HttpWorld) -> None:
    async with http_world.client() as client:
        answer = await client.get("/api/v1/openapi.json", headers={"origin": "https://evil.example"})
        docs = await client.get("/docs")
        script = await client.get("/docs/swagger-ui/swagger-ui-bundle.js")
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "access-control-allow-origin" not in answer.headers
    assert "strict-transport-security" not in answer.headers   # plain HTTP here
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert script.status_code == 200 and len(script.content) > 100_000


async def test_cursor_paging_with_next_links(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.ADMIN)
    async with http_world.client(headers=auth(token)) as client:
        group = await client.post("/api/v1/groups", json={"path": "mx.paged"})
        assert group.status_code in (201, 409), group.text
        for i in range(2):
            created = await client.post("/api/v1/installations", json={
                "installation": {"installationId": f"mx-paged-{i}", "timeZone": "America/Los_Angeles",
                                 "location": {"longitudeDeg": -121.4, "latitudeDeg": 38.4}},
                "groupPaths": ["mx.paged"]})
            assert created.status_code in (201, 409), created.text
        seen: list[str] = []
        url: str | None = "/api/v1/groups/mx.paged/installations?pageSize=1"
        while url:
            page = await client.get(url)
            assert page.status_code == 200, page.text
            seen += page.json()["installationIds"]
            url = page.json()["next"]
            if url:
                assert page.headers["link"] == f'<{url}>; rel="next"'
            assert len(seen) <= 2
        assert sorted(seen) == ["mx-paged-0", "mx-paged-1"]
        # a list that gained paging with issue 15: groups below a path, one to a page
        for sub in ("mx.paged.a", "mx.paged.b"):
            assert (await client.post("/api/v1/groups", json={"path": sub})).status_code in (201, 409)
        paths: list[str] = []
        url = "/api/v1/groups?path=mx.paged&pageSize=1"
        while url:
            page = await client.get(url)
            assert page.status_code == 200, page.text
            paths += [g["path"] for g in page.json()["groups"]]
            url = page.json()["next"]
            assert len(paths) <= 3
        assert paths == ["mx.paged", "mx.paged.a", "mx.paged.b"]
        first = (await client.get("/api/v1/groups?path=mx.paged&pageSize=1")).json()["next"]
        token = first.split("pageToken=")[1]
        foreign = await client.get(f"/api/v1/groups?path=mx&pageSize=1&pageToken={token}")
        assert foreign.status_code == 400, foreign.text


async def test_cookie_writes_need_the_csrf_token(http_world: HttpWorld) -> None:
    """The session cookie authenticates; a write with it but without X-CSRF-Token is refused
    before the service sees it, whatever the credential is worth. (With a real session from
    POST /auth/login once the AccessService is served: test_http_people.)"""
    token = await http_world.token(Scope.ADMIN)
    cookies = {"gridtwin_session": token}
    async with http_world.client(cookies=cookies) as client:
        read = await client.get("/api/v1/installations/mx-home")
        assert read.status_code == 200, read.text   # the cookie's credential reaches the service
        body = {"stormwatchEnabled": True}
        refused = await client.patch("/api/v1/installations/mx-home", json=body)
        assert refused.status_code == 403 and refused.json()["type"] == "/problems/csrf"
        forged = await client.patch("/api/v1/installations/mx-home", json=body, headers={"x-csrf-token": "x"})
        assert forged.status_code == 403
        allowed = await client.patch("/api/v1/installations/mx-home", json=body,
                                     headers={"x-csrf-token": csrf_token(token)})
        assert allowed.status_code == 200, allowed.text
    async with http_world.client(headers=auth(token)) as client:   # Bearer: no CSRF needed
        assert (await client.patch("/api/v1/installations/mx-home", json=body)).status_code == 200


async def test_homeowner_scope_sees_only_its_group(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.READ, paths=(matrix.OUT,))
    async with http_world.client(headers=auth(token)) as client:
        assert (await client.get("/api/v1/installations/mx-home")).status_code == 403
        assert (await client.get("/api/v1/installations/mxo-home")).status_code == 200
        alerts = await client.get("/api/v1/alerts")
        assert alerts.status_code == 200 and "mx-home" not in json.dumps(alerts.json())


async def test_cors_when_configured(http_world: HttpWorld) -> None:
    from services.http.server import HttpApi
    from tests.integration.http.http_support import http_settings

    origin = "https://console.example"
    settings = http_settings(http_world.settings, cors_origins=[origin])
    async with HttpApi(settings, None) as api, http_world.client() as client:
        base = f"http://127.0.0.1:{api.port}"
        preflight = await client.options(f"{base}/api/v1/installations/mx-home", headers={
            "origin": origin, "access-control-request-method": "PATCH",
            "access-control-request-headers": "x-csrf-token, content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert preflight.headers["access-control-allow-credentials"] == "true"
        other = await client.get(f"{base}/api/v1/openapi.json", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_limits_and_methods_are_problems_too(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.ADMIN)
    async with http_world.client(headers=auth(token)) as client:
        huge = await client.post("/api/v1/customers", content=b'{"name": "' + b"x" * 2_000_000 + b'"}',
                                 headers={"content-type": "application/json"})
        assert huge.status_code == 413 and huge.headers["content-type"] == "application/problem+json"
        form = await client.post("/api/v1/customers", content=b"name=Ana",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415
        wrong = await client.delete("/api/v1/customers")
        assert wrong.status_code == 405 and wrong.headers["content-type"] == "application/problem+json"
