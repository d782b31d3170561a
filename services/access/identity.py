"""OpenID Connect ID tokens: the checks (pure) and the identity provider's keys (cached).

`check_id_token` is a function of the token, the provider's keys, what this platform expects
(issuer, client id, the login's nonce) and `now`: it returns the `Identity` the token asserts, or
a `Rejected` value saying which check failed (OIDC Core 1.0 §3.1.3.7): a signature by one of the
provider's keys with an asymmetric algorithm ("none" and HMAC are refused), `iss` equal to the
issuer, `aud` naming the client (and `azp` the client when there are several audiences), `exp`
not past and `iat`/`nbf` not ahead (each within `leeway_s`), `nonce` equal to the login's, `sub`
present.

`ProviderKeys` fetches the discovery document and the JWKS behind a one-function seam
(`FetchJson`); keys are kept for `cache_s` and fetched again at once (at most every
`min_refresh_s`) when a token names a key id they lack, so a provider's key rotation works without
a restart and a flood of made-up key ids cannot make this process hammer the provider.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from gridtwin.errors import Unavailable

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
MAX_TOKEN_BYTES = 16_384

FetchJson = Callable[[str], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    claims: Mapping[str, Any]

    def claim(self, name: str) -> str:
        value = self.claims.get(name)
        return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class Rejected:
    reason: str


@dataclass(frozen=True)
class UnknownKey:
    """The token names a key id the keys lack: fetch them again, then check once more."""

    kid: str


def check_id_token(id_token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str, now_s: float,
                   leeway_s: float) -> Identity | Rejected | UnknownKey:
    if not id_token or len(id_token) > MAX_TOKEN_BYTES:
        return Rejected("not an ID token")
    try:
        token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
    except InvalidKeyIdError:
        return UnknownKey(str(_header_kid(id_token)))
    except JoseError as error:
        return Rejected(f"the ID token's signature does not verify ({error.error})")
    except (ValueError, TypeError):
        return Rejected("not an ID token")
    claims = token.claims
    if claims.get("iss") != issuer:
        return Rejected("the ID token is from another issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if client_id not in audiences:
        return Rejected("the ID token is for another client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        return Rejected("the ID token is for another client (azp)")
    for name in ("exp", "iat"):
        if not isinstance(claims.get(name), int | float):
            return Rejected(f"the ID token has no {name}")
    if claims["exp"] + leeway_s <= now_s:
        return Rejected("the ID token has expired")
    if claims["iat"] - leeway_s > now_s or (isinstance(claims.get("nbf"), int | float)
                                            and claims["nbf"] - leeway_s > now_s):
        return Rejected("the ID token is not valid yet")
    presented = claims.get("nonce")
    if not nonce or not isinstance(presented, str) or not hmac.compare_digest(presented.encode(), nonce.encode()):
        return Rejected("the ID token's nonce is not this login's")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        return Rejected("the ID token has no subject")
    return Identity(issuer, subject, claims)


def _header_kid(id_token: str) -> object:
    try:
        return extract_compact(id_token.encode()).protected.get("kid", "")
    except (JoseError, ValueError):
        return ""


async def http_fetch_json(url: str, *, timeout_s: float) -> Mapping[str, Any]:
    """GET a JSON object; the provider being down or answering nonsense is Unavailable."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
            response = await client.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable("the identity provider is unavailable") from exc
    if not isinstance(body, dict):
        raise Unavailable("the identity provider answered no JSON object")
    return body


class ProviderKeys:
    """The issuer's signing keys, from its discovery document's `jwks_uri`."""

    def __init__(self, issuer: str, fetch: FetchJson, *, cache_s: float, min_refresh_s: float = 30.0,
                 clock: Callable[[], float]) -> None:
        self.issuer = issuer.rstrip("/")
        self._fetch, self._cache_s, self._min_refresh_s, self._clock = fetch, cache_s, min_refresh_s, clock
        self._keys: KeySet | None = None
        self._fetched_at_s = float("-inf")
        self._lock = asyncio.Lock()

    async def keys(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            age_s = self._clock() - self._fetched_at_s
            stale = self._keys is None or age_s >= self._cache_s
            if stale or (refresh and age_s >= self._min_refresh_s):
                self._keys = await self._load()
                self._fetched_at_s = self._clock()
            assert self._keys is not None
            return self._keys

    async def _load(self) -> KeySet:
        discovery = await self._fetch(self.issuer + "/.well-known/openid-configuration")
        # OIDC Discovery §4.3: the document must name the issuer it was fetched for
        if str(discovery.get("issuer", "")).rstrip("/") != self.issuer:
            raise Unavailable("the identity provider's discovery document names another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise Unavailable("the identity provider's discovery document has no jwks_uri")
        try:
            return KeySet.import_key_set(dict(await self._fetch(jwks_uri)))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise Unavailable("the identity provider's keys cannot be read") from exc


async def verify(id_token: str, keys: ProviderKeys, *, issuer: str, client_id: str, nonce: str, now_s: float,
                 leeway_s: float) -> Identity | Rejected:
    """`check_id_token` with the provider's current keys, fetched again once for an unknown key id."""
    outcome = check_id_token(id_token, await keys.keys(), issuer=issuer, client_id=client_id, nonce=nonce,
                             now_s=now_s, leeway_s=leeway_s)
    if isinstance(outcome, UnknownKey):
        outcome = check_id_token(id_token, await keys.keys(refresh=True), issuer=issuer, client_id=client_id,
                                 nonce=nonce, now_s=now_s, leeway_s=leeway_s)
    if isinstance(outcome, UnknownKey):
        return Rejected("the ID token is signed with a key the provider does not publish")
    return outcome
