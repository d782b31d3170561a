"""The pure parts of credential rotation and token expiry: which credential a device presented and
until when it counts, the session's end when it stops counting, and the Authenticator's cache that
never keeps a credential or token past its end."""

from __future__ import annotations

import pytest

from services.access.authentication import Authenticator
from services.access.credentials import CredentialMatch, StoredCredentials, check_credential, hash_credential
from services.access.model import ApiPrincipal, Scope
from services.assets.errors import Unauthenticated
from services.assets.model import GroupPath, InstallationId, PrincipalId
from services.telemetry.close_codes import CloseCode
from services.telemetry.session import CloseConnection, DeviceIdentity, DeviceSession, Rejected
from tests.unit.test_session import CONFIG, NOW, hello

OLD, NEW, OTHER = hash_credential("old"), hash_credential("new"), hash_credential("guess")
ROTATED = StoredCredentials("site-1", NEW, OLD, NOW + 60_000)


def test_current_credential_always_counts():
    assert check_credential(StoredCredentials("site-1", NEW), NEW, NOW) is CredentialMatch.CURRENT
    assert check_credential(ROTATED, NEW, NOW + 10**9) is CredentialMatch.CURRENT


def test_previous_credential_counts_only_within_its_grace():
    assert check_credential(ROTATED, OLD, NOW) is CredentialMatch.PREVIOUS
    assert check_credential(ROTATED, OLD, NOW + 59_999) is CredentialMatch.PREVIOUS
    assert check_credential(ROTATED, OLD, NOW + 60_000) is None     # the deadline is exclusive
    assert check_credential(ROTATED, OTHER, NOW) is None
    assert check_credential(StoredCredentials("site-1", NEW, OLD, None), OLD, NOW) is None   # no deadline, no grace


def _open(identity: DeviceIdentity) -> DeviceSession:
    session = DeviceSession(CONFIG, "s-1")
    session.receive(hello(), NOW)
    session.authenticated(identity, NOW)
    return session


def test_a_session_ends_4001_when_its_credential_does():
    session = _open(DeviceIdentity("dev-1", "site-1", credential_valid_until_unix_ms=NOW + 60_000))
    decisions = session.credential_expired()
    assert decisions == [Rejected("auth_credential_expired"),
                         CloseConnection(CloseCode.AUTHENTICATION_FAILED, "credential expired")]
    assert session.credential_expired() == []   # closed once


def test_a_session_whose_credential_is_refused_when_checked_again_ends_4001():
    session = _open(DeviceIdentity("dev-1", "site-1"))
    assert session.credential_refused() == [
        Rejected("auth_credential_refused"),
        CloseConnection(CloseCode.AUTHENTICATION_FAILED, "credential no longer valid")]
    assert session.credential_refused() == [] and session.credential_expired() == []


class _Repository:
    """The two lookups the Authenticator makes, from a dict (the integration tests use Postgres)."""

    def __init__(self) -> None:
        self.devices: dict[str, StoredCredentials] = {}
        self.tokens: dict[bytes, ApiPrincipal] = {}
        self.reads = 0

    async def device_credential(self, device_id: str) -> StoredCredentials | None:
        self.reads += 1
        return self.devices.get(device_id)

    async def principal_by_token(self, token_sha256: bytes) -> ApiPrincipal | None:
        self.reads += 1
        return self.tokens.get(token_sha256)


def _device(credential: str) -> list[tuple[str, str]]:
    return [("authorization", f"Device dev-1 {credential}")]


async def test_the_authenticator_never_caches_a_credential_past_its_grace():
    clock = [NOW]
    repository = _Repository()
    repository.devices["dev-1"] = StoredCredentials(InstallationId("site-1"), NEW, OLD, NOW + 2_000)
    authenticator = Authenticator(repository, cache_s=3_600, clock_ms=lambda: clock[0])  # type: ignore[arg-type]

    assert (await authenticator.authenticate(_device("old"))).installation_id == "site-1"
    await authenticator.authenticate(_device("new"))
    reads = repository.reads
    await authenticator.authenticate(_device("new"))
    assert repository.reads == reads          # the current credential: from the cache

    # The old credential's entry is kept for its 2 s of grace, the new one's for the cache's hour.
    kept_s = sorted(deadline for deadline, _ in authenticator._cache.values())
    assert kept_s[-1] - kept_s[0] > 3_500
    clock[0] = NOW + 2_000
    authenticator._cache.clear()   # the 2 s have passed on the monotonic clock as well
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(_device("old"))


async def test_the_authenticator_refuses_a_cached_token_once_expired():
    clock = [NOW]
    repository = _Repository()
    principal = ApiPrincipal(PrincipalId("tok-1"), "ops", frozenset({Scope.READ}), (GroupPath(""),), NOW + 1_000)
    repository.tokens[hash_credential("gta_x")] = principal
    authenticator = Authenticator(repository, cache_s=3_600, clock_ms=lambda: clock[0])  # type: ignore[arg-type]
    bearer = [("authorization", "Bearer gta_x")]

    assert await authenticator.authenticate(bearer) == principal
    assert repository.reads == 1
    clock[0] = NOW + 999
    assert await authenticator.authenticate(bearer) == principal
    clock[0] = NOW + 1_000   # still in the cache, and refused
    with pytest.raises(Unauthenticated, match="token expired"):
        await authenticator.authenticate(bearer)
