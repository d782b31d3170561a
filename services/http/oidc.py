"""Login with an external OpenID Connect identity provider: the authorization-code flow with PKCE
(Authlib's Starlette client, configured from the provider's discovery document).

    GET /api/v1/auth/oidc/login     → 302 to the provider's authorization endpoint; state, nonce,
                                      PKCE verifier and redirect URL travel in a signed, HttpOnly,
                                      short-lived cookie (`gridtwin_oidc`, this path only)
    GET /api/v1/auth/oidc/callback  → the code exchanged for tokens at the provider; the ID token and
                                      the nonce go to AccessService.LoginWithIdentity, which checks
                                      the token and finds the linked local user; the answer sets the
                                      same session cookie and CSRF cookie as password login and
                                      sends the browser to `/` (303)

Nothing here decides who gets in: the access service checks the ID token (signature, issuer,
audience, expiry, nonce) and the link. Every refusal is a problem+json. The flow cookie is
SameSite=Lax: the provider sends the browser back with a cross-site top-level GET, which a Strict
cookie would miss; it works once (cleared by the callback, whatever the outcome). The session
cookie stays Strict: the front end's first API call from `/` is same-site and carries it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.starlette_client import OAuth
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gridtwin.api.access.v1 import access_pb2 as acc
from gridtwin.settings import OidcSettings
from services.http.app import Context, ProblemError, _guarded, _set_session, admit, caller_of
from services.http.openapi import API_PREFIX
from services.http.routes import ACCESS_SERVICE

FLOW_COOKIE = "gridtwin_oidc"
FLOW_PATH = API_PREFIX + "/auth/oidc"
CALLBACK_PATH = FLOW_PATH + "/callback"
MAX_COOKIE_BYTES = 3_000


# ------------------------------------------------------------------ the flow cookie (pure)

def flow_key(settings: OidcSettings) -> bytes:
    """The key that signs flow cookies: every replica derives the same one."""
    secret = settings.cookie_secret or settings.client_secret
    return hashlib.sha256(b"gridtwin-oidc-flow\x00" + secret.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def seal(data: Mapping[str, str], key: bytes, now_s: float) -> str:
    """`data` and the time, signed (HMAC-SHA256); readable by whoever holds the cookie (the
    browser that started the login), changeable by nobody."""
    payload = _b64(json.dumps({**data, "at": int(now_s)}, separators=(",", ":")).encode())
    return payload + "." + _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def unseal(value: str, key: bytes, now_s: float, max_age_s: float) -> dict[str, str] | None:
    """The sealed data, or None when the cookie is missing, forged or older than `max_age_s`."""
    payload, _, mac = value.partition(".")
    if not payload or len(value) > MAX_COOKIE_BYTES:
        return None
    if not hmac.compare_digest(mac, _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    at = data.pop("at", None) if isinstance(data, dict) else None
    if not isinstance(at, int) or not at - 5 <= now_s <= at + max_age_s:
        return None
    return {k: v for k, v in data.items() if isinstance(v, str)}


# ------------------------------------------------------------------ the routes

class Provider:
    """The identity provider as an Authlib client (its metadata is fetched at the first login)."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        oauth = OAuth()
        self.client: Any = oauth.register(
            "gridtwin", client_id=settings.client_id, client_secret=settings.client_secret or None,
            server_metadata_url=settings.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": " ".join(settings.scopes), "code_challenge_method": "S256",
                           "timeout": settings.http_timeout_s,
                           **({} if settings.client_secret else {"token_endpoint_auth_method": "none"})})

    async def authorization(self, redirect_url: str) -> dict[str, str]:
        """{url, state, nonce, code_verifier}: where to send the browser, and what to keep."""
        try:
            return dict(await self.client.create_authorization_url(redirect_url))
        except (httpx.HTTPError, ValueError, KeyError, RuntimeError) as exc:
            raise ProblemError(503, "the identity provider is unavailable; try again shortly",
                               kind="identity-provider-unavailable") from exc

    async def id_token(self, code: str, verifier: str, redirect_url: str) -> str:
        try:
            token = await self.client.fetch_access_token(redirect_uri=redirect_url, code=code,
                                                         code_verifier=verifier)
        except OAuthError as exc:
            raise ProblemError(401, f"the identity provider refused the code: {exc.error}",
                               kind="identity-provider-refused") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise ProblemError(503, "the identity provider is unavailable; try again shortly",
                               kind="identity-provider-unavailable") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise ProblemError(502, "the identity provider answered without an ID token",
                               kind="identity-provider-refused")
        return id_token


def router(ctx: Context) -> APIRouter:
    """The two routes, with `ctx.oidc`; with OIDC off they answer 404 (problem+json)."""
    settings = ctx.oidc
    provider = Provider(settings) if settings is not None and settings.enabled else None

    def redirect_url(request: Request) -> str:
        assert provider is not None
        return provider.settings.redirect_url or str(request.base_url).rstrip("/") + CALLBACK_PATH

    def configured() -> Provider:
        if provider is None:
            raise ProblemError(404, "login with an identity provider is not configured", kind="oidc-off")
        return provider

    async def login(request: Request) -> Response:
        async def run() -> Response:
            admit(request, ctx, caller_of(request, ctx))
            idp = configured()
            back = redirect_url(request)
            found = await idp.authorization(back)
            flow = {"state": found["state"], "nonce": found["nonce"], "verifier": found["code_verifier"],
                    "redirect": back}
            response = RedirectResponse(found["url"], status_code=302, headers={"Cache-Control": "no-store"})
            response.set_cookie(FLOW_COOKIE, seal(flow, flow_key(idp.settings), time.time()),
                                max_age=int(idp.settings.flow_timeout_s), path=FLOW_PATH, secure=ctx.cookie_secure,
                                httponly=True, samesite="lax")
            return response
        return await _guarded(request, run)

    async def callback(request: Request) -> Response:
        async def run() -> Response:
            admit(request, ctx, caller_of(request, ctx))
            idp = configured()
            query = request.query_params
            if query.get("error"):
                detail = query.get("error_description") or query["error"]
                raise ProblemError(401, f"the identity provider refused the login: {detail}"[:500],
                                   kind="identity-provider-refused")
            flow = unseal(request.cookies.get(FLOW_COOKIE, ""), flow_key(idp.settings), time.time(),
                          idp.settings.flow_timeout_s)
            if flow is None:
                raise ProblemError(400, "no login with the identity provider was started in this browser, or it "
                                        "took too long: start again", kind="oidc-flow-expired")
            if not hmac.compare_digest(query.get("state", "").encode(), flow.get("state", "").encode()):
                raise ProblemError(400, "the state does not match this browser's login", kind="oidc-state")
            if query.get("iss") and query["iss"] != idp.settings.issuer:   # RFC 9207: a mix-up attack
                raise ProblemError(400, "the answer comes from another issuer", kind="oidc-state")
            if not query.get("code"):
                raise ProblemError(400, "the identity provider sent no code", kind="oidc-state")
            id_token = await idp.id_token(query["code"], flow.get("verifier", ""), flow.get("redirect", ""))
            forwarded = (("x-forwarded-for", request.client.host),) if request.client else ()
            session = await ctx.upstream.unary(ACCESS_SERVICE + "LoginWithIdentity")(
                acc.LoginWithIdentityRequest(id_token=id_token, nonce=flow.get("nonce", "")),
                metadata=forwarded, timeout=ctx.settings.upstream_timeout_s)
            response = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
            max_age = max(0, int(session.expires_unix_ms / 1000 - time.time())) if session.expires_unix_ms else None
            _set_session(response, ctx, session.token, max_age)
            return response

        response = await _guarded(request, run)
        if request.cookies.get(FLOW_COOKIE):   # one use, whatever the outcome
            response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, secure=ctx.cookie_secure, httponly=True,
                                   samesite="lax")
        return response

    routes = APIRouter()
    routes.add_api_route(FLOW_PATH + "/login", login, methods=["GET"], include_in_schema=False)
    routes.add_api_route(CALLBACK_PATH, callback, methods=["GET"], include_in_schema=False)
    return routes


__all__ = ["FLOW_COOKIE", "router", "seal", "unseal"]
