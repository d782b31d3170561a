"""People, sessions, machine clients and the audit log against the real assets server (which
serves AccessService beside AssetService) on the real Postgres: login and logout, lockout after
repeated failures, idle sessions, password resets and invitations that work once, homeowners who
see only their home, OAuth 2.0 client credentials, and an audit entry for every write."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from gridtwin.api.access.v1 import access_pb2 as ac
from gridtwin.api.access.v1 import access_pb2_grpc as ac_grpc
from gridtwin.api.assets.v1 import assets_pb2 as pb
from gridtwin.settings import AccessSettings
from services.access.model import Scope
from services.access.service import LOCKOUTS
from services.assets.api import AssetApi
from tests.integration.assets_client import AssetsClient, bearer

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
PASSWORD = "correct horse battery staple"


class Access:
    """A client of AccessService on the assets server."""

    def __init__(self, channel: grpc.aio.Channel, root: str) -> None:
        self.stub = ac_grpc.AccessServiceStub(channel)
        self.root = root

    async def call(self, method: str, request: Any, metadata: Any = None) -> Any:
        return await getattr(self.stub, method)(request, metadata=bearer(self.root) if metadata is None else metadata)

    async def code(self, method: str, request: Any, metadata: Any = None) -> tuple[Code, str]:
        try:
            await self.call(method, request, metadata)
            return Code.OK, ""
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or ""

    async def user(self, kind: int = ac.Principal.OPERATOR, *, role: str = "viewer", paths: tuple[str, ...] = ("",),
                   homes: tuple[str, ...] = ()) -> str:
        username = f"u-{uuid.uuid4().hex[:10]}"
        if kind == ac.Principal.OPERATOR:
            request = ac.CreateUserRequest(username=username, password=PASSWORD, kind=kind, role=role,
                                           allowed_paths=list(paths))
        else:
            request = ac.CreateUserRequest(username=username, password=PASSWORD, kind=kind,
                                           installation_ids=list(homes))
        await self.call("CreateUser", request)
        return username

    async def login(self, username: str, password: str = PASSWORD, source: str = "") -> ac.Session:
        metadata = (("x-forwarded-for", source),) if source else ()
        return await self.stub.Login(ac.LoginRequest(username=username, password=password), metadata=metadata)


@pytest.fixture
async def access(assets: AssetsClient) -> AsyncIterator[Access]:
    assert assets.api.authenticator is not None and assets.api.authenticator.audit is not None
    await assets.api.authenticator.audit.flush()   # earlier tests' entries, before the slate is wiped
    await assets.pool.execute("TRUNCATE access_users, access_sessions, access_codes, access_clients, "
                              "access_client_tokens, access_audit, access_login_failures CASCADE")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{assets.api.port}") as channel:
        yield Access(channel, assets.root)


async def test_login_whoami_logout(access: Access):
    username = await access.user(role="operator", paths=("utility.pge",))
    session = await access.login(username)
    assert session.token.startswith("gts_") and session.idle_timeout_s == 1_800
    me = await access.call("WhoAmI", ac.WhoAmIRequest(), bearer(session.token))
    assert (me.kind, me.name, me.role, list(me.scopes), list(me.allowed_paths)) == (
        ac.Principal.OPERATOR, username, "operator", ["command", "read"], ["utility.pge"])
    await access.call("Logout", ac.LogoutRequest(), bearer(session.token))
    assert (await access.code("WhoAmI", ac.WhoAmIRequest(), bearer(session.token)))[0] is Code.UNAUTHENTICATED
    # a token is not a session: Logout says so and revokes nothing
    assert (await access.code("Logout", ac.LogoutRequest()))[0] is Code.FAILED_PRECONDITION


async def test_a_wrong_password_and_an_unknown_name_read_the_same(access: Access):
    username = await access.user()
    wrong = await access.code("Login", ac.LoginRequest(username=username, password="not the password!!"), ())
    unknown = await access.code("Login", ac.LoginRequest(username="nobody-here", password=PASSWORD), ())
    assert wrong == unknown == (Code.UNAUTHENTICATED, "wrong username or password")


async def test_five_failures_lock_the_name_whatever_the_source(access: Access):
    username = await access.user()
    before = LOCKOUTS.labels("user")._value.get()
    for attempt in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await access.login(username, "not the password!!", source=f"198.51.100.{attempt}")
        assert refused.value.code() is Code.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as locked:
        await access.login(username, PASSWORD, source="198.51.100.77")   # the right password, locked all the same
    assert locked.value.code() is Code.RESOURCE_EXHAUSTED
    assert "try again in 15 min" in (locked.value.details() or "")
    assert LOCKOUTS.labels("user")._value.get() == before + 1
    # a reset lifts it (below: the reset's own test); another name from another source is unaffected
    other = await access.user()
    assert (await access.login(other, source="198.51.100.78")).token


async def test_five_failures_lock_the_source_for_every_name(access: Access):
    names = [await access.user() for _ in range(6)]
    for name in names[:5]:
        with pytest.raises(grpc.aio.AioRpcError):
            await access.login(name, "not the password!!", source="203.0.113.9")
    with pytest.raises(grpc.aio.AioRpcError) as locked:
        await access.login(names[5], PASSWORD, source="203.0.113.9")
    assert locked.value.code() is Code.RESOURCE_EXHAUSTED
    assert (await access.login(names[5], PASSWORD, source="203.0.113.10")).token


async def test_an_idle_session_ends(assets: AssetsClient, access: Access, assets_engine: Any):
    settings = assets.api._settings.model_copy(update={"port": 0, "auth_cache_s": 0.0})
    async with AssetApi(settings, assets_engine, access=AccessSettings(session_idle_s=1)) as api, \
            grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        quick = Access(channel, assets.root)
        username = await quick.user()
        session = await quick.login(username)
        assert (await quick.code("WhoAmI", ac.WhoAmIRequest(), bearer(session.token)))[0] is Code.OK
        await asyncio.sleep(1.5)
        assert (await quick.code("WhoAmI", ac.WhoAmIRequest(), bearer(session.token))) == (
            Code.UNAUTHENTICATED, "token expired")


async def test_a_password_reset_works_once_and_ends_the_sessions(access: Access):
    username = await access.user()
    old = await access.login(username)
    reset = await access.call("CreatePasswordReset", ac.CreatePasswordResetRequest(username=username))
    assert reset.expires_unix_ms > 0
    new_password = "a much better passphrase"
    await access.stub.ResetPassword(ac.ResetPasswordRequest(code=reset.code, new_password=new_password))
    assert (await access.code("WhoAmI", ac.WhoAmIRequest(), bearer(old.token)))[0] is Code.UNAUTHENTICATED
    assert (await access.login(username, new_password)).token
    again = await access.code("ResetPassword", ac.ResetPasswordRequest(code=reset.code, new_password=PASSWORD), ())
    assert again == (Code.FAILED_PRECONDITION, "this reset code was used already")
    assert (await access.code("ResetPassword", ac.ResetPasswordRequest(code="AAAA-BBBB", new_password=PASSWORD),
                              ()))[0] is Code.UNAUTHENTICATED


async def test_an_invited_homeowner_sees_only_their_home(assets: AssetsClient, access: Access):
    await assets.group("utility.pge")
    await assets.installation("home-1", -121.5, 38.5, "utility.pge")
    await assets.installation("home-2", -121.6, 38.6, "utility.pge")
    invitation = await access.call("InviteHomeowner", ac.InviteHomeownerRequest(installation_id="home-1",
                                                                               email="ana@example.com"))
    session = await access.stub.AcceptInvitation(ac.AcceptInvitationRequest(
        code=invitation.code, username="ana", password=PASSWORD))
    assert (session.principal.kind, list(session.principal.installation_ids)) == (ac.Principal.HOMEOWNER, ["home-1"])
    reused = await access.code("AcceptInvitation", ac.AcceptInvitationRequest(
        code=invitation.code, username="ana-again", password=PASSWORD), ())
    assert reused == (Code.FAILED_PRECONDITION, "this invitation code was used already")

    mine = bearer(session.token)
    assert (await assets.outcome("GetInstallation", pb.GetInstallationRequest(installation_id="home-1"),
                                 metadata=mine))[0] is Code.OK
    assert (await assets.outcome("GetInstallation", pb.GetInstallationRequest(installation_id="home-2"),
                                 metadata=mine))[0] is Code.PERMISSION_DENIED
    assert (await assets.outcome("UpdateInstallationSettings", pb.UpdateInstallationSettingsRequest(
        installation_id="home-1", stormwatch_enabled=False), metadata=mine))[0] is Code.OK
    for method, request in [("SearchInstallationsInBox", pb.SearchInstallationsInBoxRequest(
            min_longitude_deg=-123, min_latitude_deg=37, max_longitude_deg=-120, max_latitude_deg=40)),
            ("ListGroups", pb.ListGroupsRequest(path="utility")),
            ("RegisterDevice", pb.RegisterDeviceRequest(installation_id="home-1", serial="s1"))]:
        assert (await assets.outcome(method, request, metadata=mine))[0] is Code.PERMISSION_DENIED, method
    # a token of their own acts as them, within the scopes it was given
    created = await access.call("CreateToken", ac.CreateTokenRequest(name="home assistant", scopes=["read"]), mine)
    reader = bearer(created.token)
    me = await access.call("WhoAmI", ac.WhoAmIRequest(), reader)
    assert (me.kind, list(me.scopes), list(me.installation_ids)) == (ac.Principal.HOMEOWNER, ["read"], ["home-1"])
    assert (await assets.outcome("UpdateInstallationSettings", pb.UpdateInstallationSettingsRequest(
        installation_id="home-1", stormwatch_enabled=True), metadata=reader))[0] is Code.PERMISSION_DENIED
    listed = await access.call("ListTokens", ac.ListTokensRequest(), mine)
    assert [t.token_id for t in listed.tokens] == [created.info.token_id]
    await access.call("RevokeToken", ac.RevokeTokenRequest(token_id=created.info.token_id), mine)
    assert (await access.code("WhoAmI", ac.WhoAmIRequest(), reader))[0] is Code.UNAUTHENTICATED


async def test_an_installer_registers_devices_at_their_sites_only(assets: AssetsClient, access: Access):
    await assets.group("utility.pge")
    await assets.installation("site-a", -121.5, 38.5, "utility.pge")
    await assets.installation("site-b", -121.6, 38.6, "utility.pge")
    username = await access.user(ac.Principal.INSTALLER, homes=("site-a",))
    mine = bearer((await access.login(username)).token)
    assert (await assets.outcome("RegisterDevice", pb.RegisterDeviceRequest(installation_id="site-a", serial="i-1"),
                                 metadata=mine))[0] is Code.OK
    assert (await assets.outcome("RegisterDevice", pb.RegisterDeviceRequest(installation_id="site-b", serial="i-2"),
                                 metadata=mine))[0] is Code.PERMISSION_DENIED
    assert (await assets.outcome("RevokeDevice", pb.RevokeDeviceRequest(device_id="i-1"),
                                 metadata=mine))[0] is Code.PERMISSION_DENIED


async def test_nobody_grants_more_than_they_hold(access: Access):
    viewer = bearer((await access.login(await access.user(role="admin", paths=("utility.pge",)))).token)
    code, detail = await access.code("CreateUser", ac.CreateUserRequest(
        username="too-wide", password=PASSWORD, kind=ac.Principal.OPERATOR, role="admin", allowed_paths=[""]), viewer)
    assert code is Code.PERMISSION_DENIED
    assert (await access.code("CreateUser", ac.CreateUserRequest(
        username="short-pw", password="short", kind=ac.Principal.OPERATOR, role="viewer",
        allowed_paths=["utility.pge"]), viewer)) == (Code.INVALID_ARGUMENT, "password: at least 12 characters")
    assert (await access.code("CreateUser", ac.CreateUserRequest(
        username="no-role", password=PASSWORD, kind=ac.Principal.OPERATOR, role="boss",
        allowed_paths=["utility.pge"]), viewer)) == (Code.INVALID_ARGUMENT, "role: viewer, operator or admin")


async def test_a_disabled_user_is_out_at_once(access: Access):
    username = await access.user()
    session = await access.login(username)
    users = await access.call("ListUsers", ac.ListUsersRequest())
    user_id = next(u.user_id for u in users.users if u.username == username)
    disabled = await access.call("DisableUser", ac.DisableUserRequest(user_id=user_id))
    assert disabled.disabled
    assert (await access.code("WhoAmI", ac.WhoAmIRequest(), bearer(session.token)))[0] is Code.UNAUTHENTICATED
    assert (await access.code("Login", ac.LoginRequest(username=username, password=PASSWORD), ())) == (
        Code.FAILED_PRECONDITION, "this account is disabled")


async def test_client_credentials(assets: AssetsClient, access: Access):
    await assets.group("utility.pge")
    await assets.installation("site-c", -121.5, 38.5, "utility.pge")
    client = await access.call("CreateClient", ac.CreateClientRequest(
        name="utility VEN", scopes=["read", "command"], allowed_paths=["utility.pge"]))
    assert client.client_secret.startswith("gtcs_")
    issued = await access.stub.IssueClientToken(ac.IssueClientTokenRequest(
        client_id=client.client_id, client_secret=client.client_secret, scope="read"))
    assert (issued.token_type, issued.scope, issued.expires_in_s) == ("Bearer", "read", 3_600)
    me = await access.call("WhoAmI", ac.WhoAmIRequest(), bearer(issued.access_token))
    assert (me.kind, me.principal_id, list(me.scopes)) == (ac.Principal.MACHINE, client.client_id, ["read"])
    assert (await assets.outcome("GetInstallation", pb.GetInstallationRequest(installation_id="site-c"),
                                 metadata=bearer(issued.access_token)))[0] is Code.OK
    assert (await assets.outcome("UpdateInstallationSettings", pb.UpdateInstallationSettingsRequest(
        installation_id="site-c", stormwatch_enabled=True), metadata=bearer(issued.access_token)))[0] \
        is Code.PERMISSION_DENIED
    wrong = await access.code("IssueClientToken", ac.IssueClientTokenRequest(
        client_id=client.client_id, client_secret="gtcs_guess"), ())
    assert wrong == (Code.UNAUTHENTICATED, "invalid client credentials")
    assert (await access.code("IssueClientToken", ac.IssueClientTokenRequest(
        client_id=client.client_id, client_secret=client.client_secret, scope="admin"), ()))[0] \
        is Code.INVALID_ARGUMENT


async def test_every_write_is_in_the_audit_log(assets: AssetsClient, access: Access):
    await assets.group("utility.pge")
    await assets.installation("site-d", -121.5, 38.5, "utility.pge")
    reader = await assets.token(Scope.READ)   # read scope: its write attempt is refused, and logged as such
    refused = await assets.outcome("UpdateInstallationSettings", pb.UpdateInstallationSettingsRequest(
        installation_id="site-d", stormwatch_enabled=False), token=reader)
    assert refused[0] is Code.PERMISSION_DENIED
    await assets.call("UpdateInstallationSettings", pb.UpdateInstallationSettingsRequest(
        installation_id="site-d", stormwatch_enabled=False))
    await assets.outcome("GetInstallation", pb.GetInstallationRequest(installation_id="site-d"))   # a read: not logged
    log = await access.call("ListAuditLog", ac.ListAuditLogRequest(
        method="/gridtwin.assets.v1.AssetService/UpdateInstallationSettings"))
    assert [(e.target, e.code) for e in log.entries] == [("site-d", "OK"), ("site-d", "PERMISSION_DENIED")]
    assert log.entries[0].actor.startswith("token:") and log.entries[0].time_unix_ms > 0
    everything = await access.call("ListAuditLog", ac.ListAuditLogRequest(page_size=2))
    assert len(everything.entries) == 2 and everything.next_page_token
    assert not any(e.method.endswith("/GetInstallation") for e in (await access.call(
        "ListAuditLog", ac.ListAuditLogRequest(page_size=1_000))).entries)
    # an admin over one group sees the entries about it only
    elsewhere = bearer(await assets.token(Scope.ADMIN, paths=("utility.sce",)))
    assert (await access.call("ListAuditLog", ac.ListAuditLogRequest(), elsewhere)).entries == []
    within = bearer(await assets.token(Scope.ADMIN, paths=("utility.pge",)))
    assert {e.target for e in (await access.call("ListAuditLog", ac.ListAuditLogRequest(), within)).entries} \
        >= {"site-d"}


async def test_the_demo_accounts_of_gridtwin_up_log_in(assets: AssetsClient, access: Access):
    from services.access.demo import seed_demo_accounts

    await assets.group("demo")
    for n in range(2):
        await assets.installation(f"demo-site-0000{n}", -121.5, 38.5, "demo")
    accounts = await seed_demo_accounts(assets.pool, ["demo-site-00000", "demo-site-00001"])
    assert await seed_demo_accounts(assets.pool, ["demo-site-00000", "demo-site-00001"]) == accounts   # idempotent
    who = {}
    for account in accounts:
        session = await access.login(account.username, account.password)
        who[account.username] = (session.principal.role, list(session.principal.installation_ids))
    assert who == {"operator": ("admin", []), "viewer": ("viewer", []), "homeowner1": ("", ["demo-site-00000"]),
                   "homeowner2": ("", ["demo-site-00001"])}
