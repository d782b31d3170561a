"""OIDC login's pure parts: the ID token checks (services/access/identity.py), the provider's keys
behind a fake fetch, and the HTTP API's signed flow cookie (services/http/oidc.py)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from gridtwin.errors import Unavailable
from services.access import identity
from services.access.identity import Identity, ProviderKeys, Rejected, UnknownKey, check_id_token
from services.http.oidc import seal, unseal

ISSUER = "https://idp.example.test/realms/grid"
CLIENT = "gridtwin"
NOW = 1_800_000_000.0
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)   # same kid, other key
KEYS = KeySet.import_key_set(KeySet([KEY]).as_dict(private=False))


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": CLIENT, "sub": "u-42", "exp": NOW + 300, "iat": NOW - 5, "nonce": "n-1",
            "preferred_username": "alice"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(body: dict[str, Any], key: Any = KEY, alg: str = "RS256", kid: str = "k1") -> str:
    return jwt.encode({"alg": alg, "kid": kid}, body, key)


def check(token: str, nonce: str = "n-1", now: float = NOW) -> Identity | Rejected | UnknownKey:
    return check_id_token(token, KEYS, issuer=ISSUER, client_id=CLIENT, nonce=nonce, now_s=now, leeway_s=60)


def test_a_good_token_asserts_the_identity() -> None:
    found = check(sign(claims()))
    assert isinstance(found, Identity)
    assert (found.issuer, found.subject, found.claim("preferred_username")) == (ISSUER, "u-42", "alice")
    several = check(sign(claims(aud=[CLIENT, "other"], azp=CLIENT)))
    assert isinstance(several, Identity)


@pytest.mark.parametrize(("token", "why"), [
    (sign(claims(aud="someone-else")), "another client"),
    (sign(claims(aud=["other", CLIENT])), "azp"),                 # several audiences, no azp
    (sign(claims(iss="https://evil.example.test")), "another issuer"),
    (sign(claims(exp=NOW - 61)), "expired"),
    (sign(claims(iat=NOW + 120)), "not valid yet"),
    (sign(claims(nbf=NOW + 120)), "not valid yet"),
    (sign(claims(nonce="n-2")), "nonce"),
    (sign(claims(nonce=None)), "nonce"),
    (sign(claims(sub=None)), "subject"),
    (sign(claims(exp=None)), "no exp"),
    (sign(claims(), key=OTHER), "signature"),
    (sign(claims(), key=OctKey.import_key("a-shared-secret-of-32-bytes-long!"), alg="HS256"), "signature"),
    ("not-a-token", "ID token"),
    ("", "not an ID token"),
])
def test_refused(token: str, why: str) -> None:
    outcome = check(token)
    assert isinstance(outcome, Rejected) and why in outcome.reason, outcome


def test_unsigned_tokens_are_refused() -> None:
    import base64
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    unsigned = f"{part({'alg': 'none', 'kid': 'k1'})}.{part(claims())}."
    assert isinstance(check(unsigned), Rejected)


def test_clock_leeway_and_a_login_without_nonce() -> None:
    assert isinstance(check(sign(claims(exp=NOW - 30))), Identity)       # within the 60 s leeway
    assert isinstance(check(sign(claims()), nonce=""), Rejected)          # a login always has a nonce


def test_an_unknown_key_id_asks_for_the_keys_again() -> None:
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)
    assert check(sign(claims(), key=rotated, kid="k2")) == UnknownKey("k2")


class FakeProvider:
    """Discovery and JWKS as the fetch seam sees them; counts fetches."""

    def __init__(self, keys: list[Any], issuer: str = ISSUER) -> None:
        self.keys, self.issuer, self.fetches = keys, issuer, 0
        self.now = 0.0

    async def fetch(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        if url == ISSUER + "/.well-known/openid-configuration":
            return {"issuer": self.issuer, "jwks_uri": ISSUER + "/jwks"}
        assert url == ISSUER + "/jwks"
        return dict(KeySet(self.keys).as_dict(private=False))


async def test_provider_keys_are_cached_and_fetched_again_for_a_rotation() -> None:
    fake = FakeProvider([KEY])
    keys = ProviderKeys(ISSUER, fake.fetch, cache_s=3_600, min_refresh_s=30, clock=lambda: fake.now)

    async def verify(token: str, keys: ProviderKeys) -> Identity | Rejected:
        return await identity.verify(token, keys, issuer=ISSUER, client_id=CLIENT, nonce="n-1", now_s=NOW,
                                     leeway_s=60)
    assert isinstance(await verify(sign(claims()), keys), Identity)
    assert isinstance(await verify(sign(claims()), keys), Identity)
    assert fake.fetches == 2                                     # discovery + JWKS, once
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2"}, private=True)
    fake.keys = [KEY, rotated]
    fake.now = 40.0
    token = sign(claims(), key=rotated, alg="ES256", kid="k2")
    assert isinstance(await verify(token, keys), Identity)
    assert fake.fetches == 4
    made_up = sign(claims(), key=RSAKey.generate_key(2048, parameters={"kid": "x"}, private=True), kid="x")
    refused = await verify(made_up, keys)
    assert isinstance(refused, Rejected) and "does not publish" in refused.reason
    assert fake.fetches == 4                                     # not again within min_refresh_s


async def test_a_discovery_document_of_another_issuer_is_refused() -> None:
    fake = FakeProvider([KEY], issuer="https://evil.example.test")
    keys = ProviderKeys(ISSUER, fake.fetch, cache_s=3_600, clock=lambda: 0.0)
    with pytest.raises(Unavailable):
        await keys.keys()


def test_flow_cookie_is_signed_and_short_lived() -> None:
    key, data = b"k" * 32, {"state": "s", "nonce": "n", "verifier": "v", "redirect": "http://x/cb"}
    sealed = seal(data, key, 1_000.0)
    assert unseal(sealed, key, 1_100.0, 600) == data
    assert unseal(sealed, key, 1_700.0, 600) is None             # too old
    assert unseal(sealed, b"j" * 32, 1_100.0, 600) is None       # another key
    payload, mac = sealed.split(".")
    forged = seal({**data, "nonce": "mine"}, b"j" * 32, 1_000.0).split(".")[0] + "." + mac
    assert unseal(forged, key, 1_100.0, 600) is None
    assert unseal("", key, 1_100.0, 600) is None and unseal("garbage", key, 1_100.0, 600) is None
