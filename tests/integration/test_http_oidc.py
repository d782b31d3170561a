"""OIDC login end to end: the real assets process (AccessService) and the real HTTP API, started by
their entry points (`gridtwin.app.wiring`) with OIDC on, against a tiny identity provider this test
runs on a loopback port (it stands in for an external one): a discovery document, a JWKS, an
authorization endpoint that sends the browser straight back with a code, and a token endpoint that
checks the client, the redirect URL and PKCE and returns an ID token signed with joserfc.

Login → provider → callback → session cookie → `GET /api/v1/me` is the linked local user; an
identity linked to no local user, a forged state, a wrong nonce and a provider's refusal are
problem+json answers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gridtwin.app import wiring
from gridtwin.settings import OidcSettings, Settings
from services.access.model import Kind, Role
from services.access.service import ensure_user
from services.access.store import AccessStore

pytestmark = pytest.mark.integration
CLIENT_ID, CLIENT_SECRET = "gridtwin-web", "a-client-secret-for-tests"


@dataclass
class LoopbackIdp:
    """Who is 'logged in' at the provider is what the test sets in `subject` and `username`."""

    issuer: str = ""
    subject: str = "sub-alice"
    username: str = ""
    nonce_override: str | None = None    # sign a nonce other than the login's
    refuse: bool = False                 # the authorization endpoint answers error=access_denied
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-1"},
                                                                    private=True))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        return app

    async def discovery(self, _: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"]})

    async def jwks(self, _: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.authorize_requests.append(q)
        assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID and "openid" in q["scope"].split()
        assert q["code_challenge_method"] == "S256" and q["nonce"] and q["state"]
        if self.refuse:
            raise web.HTTPFound(q["redirect_uri"] + "?" + urlencode(
                {"error": "access_denied", "error_description": "the user said no", "state": q["state"]}))
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                            "subject": self.subject, "username": self.username}
        raise web.HTTPFound(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"],
                                                                 "iss": self.issuer}))

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        basic = request.headers.get("authorization", "")
        assert basic == "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        grant = self.codes.pop(str(form.get("code")), None)   # a code works once
        if grant is None or form.get("grant_type") != "authorization_code" \
                or form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if challenge != grant["challenge"]:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": grant["subject"], "iat": now, "exp": now + 300,
                  "nonce": self.nonce_override or grant["nonce"], "preferred_username": grant["username"]}
        id_token = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, self.key)
        return web.json_response({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                  "expires_in": 300, "id_token": id_token})


@dataclass
class OidcWorld:
    idp: LoopbackIdp
    base_url: str
    store: AccessStore

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30)

    async def login(self, client: httpx.AsyncClient) -> httpx.Response:
        """The browser's trip: the API → the provider → the API's callback (its answer returned)."""
        start = await client.get("/api/v1/auth/oidc/login")
        assert start.status_code == 302, start.text
        assert start.headers["location"].startswith(self.idp.issuer + "/authorize?")
        async with httpx.AsyncClient(timeout=30) as browser_at_idp:
            back = await browser_at_idp.get(start.headers["location"])
        assert back.status_code == 302
        callback = urlsplit(back.headers["location"])
        assert callback.path == "/api/v1/auth/oidc/callback"
        return await client.get(callback.path + "?" + callback.query)


@pytest.fixture(scope="module")
async def oidc_world(platform: Settings, pool: asyncpg.Pool) -> AsyncIterator[OidcWorld]:
    idp = LoopbackIdp()
    runner = web.AppRunner(idp.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]   # type: ignore[union-attr]
    idp.issuer = f"http://127.0.0.1:{port}"
    oidc = OidcSettings(enabled=True, issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    settings = platform.model_copy(update={
        "access": platform.access.model_copy(update={"oidc": oidc}),
        "assets": platform.assets.model_copy(update={"port": 0, "metrics_port": 0})})
    try:
        async with contextlib.AsyncExitStack() as stack:
            assets: Any = await stack.enter_async_context(wiring.assets(settings))
            settings = settings.model_copy(update={
                "assets": settings.assets.model_copy(update={"port": assets.port}),
                "http": settings.http.model_copy(update={"port": 0, "metrics_port": 0, "cookie_secure": False})})
            http: Any = await stack.enter_async_context(wiring.http(settings))
            yield OidcWorld(idp, f"http://127.0.0.1:{http.port}", AccessStore(pool))
    finally:
        await runner.cleanup()


async def test_login_links_the_local_user_and_sets_the_session_cookie(oidc_world: OidcWorld) -> None:
    name = f"oidc-{uuid.uuid4().hex[:8]}"
    await ensure_user(oidc_world.store, name, "a password nobody types", Kind.OPERATOR, role=Role.VIEWER, paths=[""])
    oidc_world.idp.subject, oidc_world.idp.username = f"sub-{name}", name
    async with oidc_world.client() as client:
        done = await oidc_world.login(client)
        assert done.status_code == 303 and done.headers["location"] == "/", done.text
        cookies = done.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("gridtwin_session="))
        assert "HttpOnly" in session and "strict" in session.lower()     # as password login sets it
        assert any(c.startswith("gridtwin_csrf=") for c in cookies)
        assert any(c.startswith("gridtwin_oidc=") and "Max-Age=0" in c for c in cookies)   # the flow ends
        me = await client.get("/api/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["name"] == name and me.json()["role"] == "viewer"
        csrf = client.cookies["gridtwin_csrf"]
        assert (await client.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf})).status_code == 204
    # Linked by (issuer, subject): a new name at the provider still finds the same local user.
    oidc_world.idp.username = "renamed-at-the-provider"
    async with oidc_world.client() as client:
        assert (await oidc_world.login(client)).status_code == 303
        assert (await client.get("/api/v1/me")).json()["name"] == name
    # …and another identity claiming the linked user's name is refused, not linked.
    oidc_world.idp.subject, oidc_world.idp.username = f"impostor-{name}", name
    async with oidc_world.client() as client:
        refused = await oidc_world.login(client)
        assert refused.status_code == 403 and "linked to another identity" in refused.json()["detail"]


async def test_an_identity_of_no_local_user_is_refused(oidc_world: OidcWorld) -> None:
    oidc_world.idp.subject, oidc_world.idp.username = "sub-stranger", f"nobody-{uuid.uuid4().hex[:6]}"
    async with oidc_world.client() as client:
        refused = await oidc_world.login(client)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == "no local account is linked to this identity"
        assert not any(c.startswith("gridtwin_session=") for c in refused.headers.get_list("set-cookie"))
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_forged_state_wrong_nonce_and_refusals(oidc_world: OidcWorld) -> None:
    name = f"oidc-{uuid.uuid4().hex[:8]}"
    await ensure_user(oidc_world.store, name, "a password nobody types", Kind.OPERATOR, role=Role.VIEWER, paths=[""])
    oidc_world.idp.subject, oidc_world.idp.username = f"sub-{name}", name
    async with oidc_world.client() as client:
        start = await client.get("/api/v1/auth/oidc/login")
        async with httpx.AsyncClient() as at_idp:
            back = urlsplit((await at_idp.get(start.headers["location"])).headers["location"])
        query = {k: v[0] for k, v in parse_qs(back.query).items()}
        forged = await client.get(back.path + "?" + urlencode({**query, "state": "attacker"}))
        assert forged.status_code == 400 and forged.json()["type"] == "/problems/oidc-state"
        # the flow cookie went with the failed attempt: the real answer finds no login now
        late = await client.get(back.path + "?" + back.query)
        assert late.status_code == 400 and late.json()["type"] == "/problems/oidc-flow-expired"
    async with oidc_world.client() as client:   # a callback this browser never started
        assert (await client.get("/api/v1/auth/oidc/callback?code=x&state=y")).status_code == 400
    oidc_world.idp.nonce_override = "a-nonce-of-another-login"
    try:
        async with oidc_world.client() as client:
            replayed = await oidc_world.login(client)
            assert replayed.status_code == 401, replayed.text
            assert replayed.headers["content-type"] == "application/problem+json"
            assert "nonce" in replayed.json()["detail"]
    finally:
        oidc_world.idp.nonce_override = None
    oidc_world.idp.refuse = True
    try:
        async with oidc_world.client() as client:
            denied = await oidc_world.login(client)
            assert denied.status_code == 401 and "the user said no" in denied.json()["detail"]
    finally:
        oidc_world.idp.refuse = False


async def test_new_identities_as_viewers_and_disabled_accounts(oidc_world: OidcWorld, pool: asyncpg.Pool) -> None:
    """The access service alone (its store on the real database), with the provider's keys from
    the loopback provider: `new_identities="viewer"` creates a read-only operator over the
    configured paths at the first login, and a disabled account gets no session."""
    from gridtwin.errors import FailedPrecondition
    from gridtwin.settings import AccessSettings
    from services.access.authentication import Authenticator
    from services.access.service import Access

    idp = oidc_world.idp
    oidc = OidcSettings(enabled=True, issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                        new_identities="viewer", viewer_paths=["mx"])
    access = Access(oidc_world.store, Authenticator(pool, cache_s=0), AccessSettings(oidc=oidc))
    name = f"new-{uuid.uuid4().hex[:8]}"

    def id_token(subject: str, username: str, nonce: str) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "RS256", "kid": "idp-1"}, {
            "iss": idp.issuer, "aud": CLIENT_ID, "sub": subject, "iat": now, "exp": now + 60, "nonce": nonce,
            "preferred_username": username, "email": f"{username}@example.test"}, idp.key)

    session = await access.login_with_identity(id_token(f"sub-{name}", name, "n1"), "n1")
    principal = session.principal
    assert (principal.name, principal.kind, principal.role, principal.allowed_paths) == \
        (name, Kind.OPERATOR, Role.VIEWER, ("mx",))
    user = await oidc_world.store.user_by_name(name)
    assert user is not None and user.email == f"{name}@example.test"
    again = await access.login_with_identity(id_token(f"sub-{name}", "whatever", "n2"), "n2")
    assert again.principal.principal_id == principal.principal_id
    await oidc_world.store.disable_user(user.user_id)
    with pytest.raises(FailedPrecondition):
        await access.login_with_identity(id_token(f"sub-{name}", name, "n3"), "n3")
