"""People over HTTP against the real AccessService: login sets a Secure-unless-loopback, HttpOnly,
SameSite=Strict session cookie and answers a CSRF token; cookie writes need it; logout ends the
session; OAuth 2.0 client credentials at /oauth/token (RFC 6749 §4.4, form-encoded)."""

from __future__ import annotations

import uuid

import pytest

from gridtwin.api.access.v1 import access_pb2 as ac
from services.access.model import Scope
from tests.integration import test_access_matrix as matrix
from tests.integration.http.http_support import HttpWorld

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


async def operator(http_world: HttpWorld, role: str = "admin") -> str:
    username = f"op-{uuid.uuid4().hex[:8]}"
    await http_world.world.call(matrix.ACCESS_SVC, "CreateUser", ac.CreateUserRequest(
        username=username, password=PASSWORD, kind=ac.Principal.OPERATOR, role=role, allowed_paths=[matrix.IN]))
    return username


async def test_login_cookie_csrf_and_logout(http_world: HttpWorld) -> None:
    username = await operator(http_world)
    async with http_world.client() as client:
        wrong = await client.post("/api/v1/auth/login", json={"username": username, "password": "nope"})
        assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"
        login = await client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        cookie = next(c for c in login.headers.get_list("set-cookie") if c.startswith("gridtwin_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Secure" not in cookie   # plain HTTP on loopback, as these settings say
        assert "token" not in login.json() and login.json()["principal"]["name"] == username
        csrf = login.json()["csrfToken"]
        me = await client.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["name"] == username
        body = {"stormwatchEnabled": True}
        refused = await client.patch("/api/v1/installations/mx-home", json=body)
        assert refused.status_code == 403 and refused.json()["type"] == "/problems/csrf"
        allowed = await client.patch("/api/v1/installations/mx-home", json=body, headers={"x-csrf-token": csrf})
        assert allowed.status_code == 200, allowed.text
        assert (await client.post("/api/v1/auth/logout")).status_code == 403   # logout is a write too
        out = await client.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf})
        assert out.status_code == 204
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_oauth_client_credentials(http_world: HttpWorld) -> None:
    admin = await http_world.token(Scope.ADMIN)
    async with http_world.client() as client:
        created = await client.post("/api/v1/clients", json={"name": "vtn", "scopes": ["read"],
                                                              "allowedPaths": [matrix.IN]},
                                    headers={"authorization": f"Bearer {admin}"})
        assert created.status_code == 201, created.text
        client_id, secret = created.json()["clientId"], created.json()["clientSecret"]
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        issued = await client.post("/oauth/token", data=form)
        assert issued.status_code == 200, issued.text
        assert issued.headers["cache-control"] == "no-store" and issued.json()["token_type"].lower() == "bearer"
        bearer = {"authorization": f"Bearer {issued.json()['access_token']}"}
        assert (await client.get("/api/v1/installations/mx-home", headers=bearer)).status_code == 200
        assert (await client.get("/api/v1/installations/mxo-home", headers=bearer)).status_code == 403
        basic = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
        assert basic.status_code == 200, basic.text
        bad = await client.post("/oauth/token", data={**form, "client_secret": "wrong"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        grant = await client.post("/oauth/token", data={**form, "grant_type": "password"})
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
        as_json = await client.post("/oauth/token", json=form)
        assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
