"""The access matrix: every gRPC method of every gridtwin service × every kind of caller, against
the real servers, each started by its real entry point (`gridtwin.app.wiring`) on the real
Postgres, broker and Ray.

The methods come from the generated descriptors (every `gridtwin.api` module), so a new RPC fails
here until it has a rule (services/access/rules.py ACCESS) and a sample request (SAMPLES). The
expected status of each call is derived from the rule alone:

- no token, an expired token                          → UNAUTHENTICATED
- a token over every group with read / command / admin → the permitted outcome when the scope
                                                         suffices, else PERMISSION_DENIED
- a token with the method's scope over the world's group ("mx") → the permitted outcome
- the same over another group ("mxo")                  → PERMISSION_DENIED when the target is an
  installation or a group; the permitted outcome for global methods and for lists, whose answers
  must then hold nothing of group "mx" (and, in group, must show it)
- the device of the world's installation               → the permitted outcome where the rule lets
                                                         devices call, else PERMISSION_DENIED
- a homeowner of the world's installation ("homeowner") and of the other one ("homeowner-away"),
  an installer of each likewise, each with a personal access token of their own
                                                       → PERMISSION_DENIED where the rule does not let
  homeowners (installers) call; else the permitted outcome, except PERMISSION_DENIED for the away
  one when the target is an installation; lists must show group "mx" to the world's homeowner only

The permitted outcome is the sample's (OK, or a domain status such as NOT_FOUND for a twin that
never reported). `pytest -s` prints the matrix; a failure shows it too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import pkgutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import pytest
import shapely
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

import gridtwin.api
from gridtwin.api.access.v1 import access_pb2 as ac
from gridtwin.api.analytics.v1 import analytics_pb2 as an
from gridtwin.api.assets.v1 import assets_pb2 as a
from gridtwin.api.control.v1 import control_pb2 as c
from gridtwin.api.control.v1 import vpp_pb2 as v
from gridtwin.api.device.v1 import device_pb2
from gridtwin.api.telemetry.v1 import telemetry_service_pb2 as t
from gridtwin.api.twins.v1 import twin_service_pb2 as tw
from gridtwin.api.weather.v1 import weather_pb2 as w
from gridtwin.app import wiring as services
from gridtwin.settings import Settings
from services.access.model import Scope
from services.access.rules import ACCESS, Rule, Target
from services.weather import nws
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.access_support import bearer, mint
from tests.integration.twins_support import kill_namespace

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
OK, DENIED, UNAUTHENTICATED = Code.OK, Code.PERMISSION_DENIED, Code.UNAUTHENTICATED
IN, OUT = "mx", "mxo"                          # the world's group, and another one
HOME, AWAY = "mx-home", "mxo-home"             # an installation in each
IN_MARKERS = (b"mx-home", b"mx.")              # what only group "mx" holds, as it shows in answers
STREAM_WAIT_S = 0.5                            # a stream that sends nothing so long was accepted
PRINCIPALS = ("none", "expired", "read", "command", "admin", "in-group", "out-of-group", "device",
              "homeowner", "homeowner-away", "installer", "installer-away")
# people: (the rule's flag that lets their kind call, whether bound to the world's installation)
PEOPLE = {"homeowner": ("homeowners", True), "homeowner-away": ("homeowners", False),
          "installer": ("installers", True), "installer-away": ("installers", False)}
PASSWORD = "correct horse battery staple"
RANK = {Scope.READ: 1, Scope.COMMAND: 2, Scope.ADMIN: 3}


def gridtwin_services() -> list[ServiceDescriptor]:
    """Every service of every generated module under gridtwin.api."""
    found = []
    for module in pkgutil.walk_packages(gridtwin.api.__path__, "gridtwin.api."):
        if module.name.endswith("_pb2"):
            found += importlib.import_module(module.name).DESCRIPTOR.services_by_name.values()
    return sorted(found, key=lambda s: s.full_name)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def full_name(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


METHODS = [m for s in gridtwin_services() for m in s.methods]


# ------------------------------------------------------------ the world and sample requests

@dataclass
class World:
    channels: dict[str, grpc.aio.Channel]     # by service full name
    metadata: dict[str, tuple[tuple[str, str], ...]]  # by principal; in/out-of-group by scope below
    scoped: dict[tuple[str, Scope], tuple[tuple[str, str], ...]]
    root: tuple[tuple[str, str], ...]
    pool: asyncpg.Pool
    ids: dict[str, str] = field(default_factory=dict)

    async def call(self, service: str, method: str, request: Message,
                   metadata: tuple[tuple[str, str], ...] | None = None) -> Any:
        """A call as the root token, or with `metadata` (to build what a sample needs); the
        response message."""
        channel = self.channels[service]
        response_type = next(m for s in gridtwin_services() if s.full_name == service
                             for m in s.methods if m.name == method).output_type._concrete_class
        return await channel.unary_unary(f"/{service}/{method}", request_serializer=_serialize,
                                         response_deserializer=response_type.FromString)(
            request, metadata=self.root if metadata is None else metadata, timeout=30)


Build = Callable[[World, str], Awaitable[Message]]   # (world, the caller's name) → request


@dataclass(frozen=True)
class Sample:
    build: Build
    permitted: Code = OK     # the outcome of an admitted call


def fixed(request: Message, permitted: Code = OK) -> Sample:
    async def build(_: World, principal: str) -> Message:
        return request
    return Sample(build, permitted)


def built(permitted: Code = OK) -> Callable[[Build], Sample]:
    def wrap(fn: Build) -> Sample:
        return Sample(fn, permitted)
    return wrap


def _fresh(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000)


def _event_spec() -> v.GridEventSpec:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    return v.GridEventSpec(program=f"{IN}.vpp", target_group=f"{IN}.site", start_unix_ms=_ms(start),
                           end_unix_ms=_ms(start + dt.timedelta(hours=1)), target_power_w=1_000.0)


def _plan() -> c.CommandSpec:
    return c.CommandSpec(set_mode=device_pb2.SetMode(mode=device_pb2.OPERATION_MODE_BACKUP))


ASSETS, TELEMETRY, TWINS = "gridtwin.assets.v1.AssetService", "gridtwin.telemetry.v1.TelemetryService", \
    "gridtwin.twins.v1.TwinService"
ANALYTICS, WEATHER = "gridtwin.analytics.v1.AnalyticsService", "gridtwin.weather.v1.WeatherService"
ACCESS_SVC = "gridtwin.access.v1.AccessService"
CONTROL, VPP = "gridtwin.control.v1.ControlService", "gridtwin.control.v1.VppService"


@built()
async def _register_device(_: World, principal: str = "") -> Message:
    return a.RegisterDeviceRequest(installation_id=HOME, serial=_fresh("mx-ser-"))


@built()
async def _revoke_device(world: World, principal: str = "") -> Message:
    registered = await world.call(ASSETS, "RegisterDevice", await _register_device.build(world, ""))
    return a.RevokeDeviceRequest(device_id=registered.device.device_id)


@built()
async def _rotate_credential(world: World, principal: str = "") -> Message:
    """A device rotates its own credential (keeping the old one for a day: the matrix goes on using
    it); anyone else rotates a device registered for the call."""
    if principal == "device":
        return a.RotateDeviceCredentialRequest(device_id="mx-dev", grace_s=86_400)
    registered = await world.call(ASSETS, "RegisterDevice", await _register_device.build(world, ""))
    return a.RotateDeviceCredentialRequest(device_id=registered.device.device_id, grace_s=0)


@built()
async def _create_device_claim(_: World, principal: str = "") -> Message:
    return a.CreateDeviceClaimRequest(installation_id=HOME, serial=_fresh("mx-claim-"))


@built()
async def _claim_device(world: World, principal: str = "") -> Message:
    """A code of its own for every caller (a code works once); anyone holding one may claim."""
    created = await world.call(ASSETS, "CreateDeviceClaim", await _create_device_claim.build(world, ""))
    return a.ClaimDeviceRequest(claim_code=created.claim_code)


@built()
async def _create_group(_: World, principal: str = "") -> Message:
    return a.CreateGroupRequest(path=_fresh(f"{IN}.g"))


@built()
async def _remove_from_group(world: World, principal: str = "") -> Message:
    group = await world.call(ASSETS, "CreateGroup", await _create_group.build(world, ""))
    await world.call(ASSETS, "AddToGroup", a.AddToGroupRequest(installation_id=HOME, path=group.path))
    return a.RemoveFromGroupRequest(installation_id=HOME, path=group.path)


@built()
async def _create_program(_: World, principal: str = "") -> Message:
    return a.CreateProgramRequest(path=_fresh(f"{IN}.p"))


@built()
async def _change_enrollment(world: World, principal: str = "") -> Message:
    program = await world.call(ASSETS, "CreateProgram", await _create_program.build(world, ""))
    return a.ChangeEnrollmentRequest(installation_id=HOME, program=program.path, target=a.ENROLLMENT_STATE_ELIGIBLE)


@built()
async def _revoke_token(world: World, principal: str = "") -> Message:
    created = await world.call(ASSETS, "CreateToken", a.CreateTokenRequest(
        name="victim", scopes=[a.SCOPE_READ], allowed_paths=[IN]))
    return a.RevokeTokenRequest(principal_id=created.principal_id)


@built()
async def _cancel_command(world: World, principal: str = "") -> Message:
    submitted = await world.call(CONTROL, "SubmitCommand", c.SubmitCommandRequest(
        installation_id=HOME, spec=_plan(), ttl_s=600))
    return c.CancelCommandRequest(command_id=submitted.command.command_id)


@built()
async def _cancel_fanout(world: World, principal: str = "") -> Message:
    submitted = await world.call(CONTROL, "SubmitGroupCommand", c.SubmitGroupCommandRequest(
        group_path=f"{IN}.site", spec=_plan(), ttl_s=600))
    return c.CancelFanOutRequest(fanout_id=submitted.fanout_id)


@built()
async def _cancel_event(world: World, principal: str = "") -> Message:
    event = await world.call(VPP, "CreateEvent", v.CreateEventRequest(spec=_event_spec()))
    return v.CancelEventRequest(event_id=event.event_id)


def _by_id(make: Callable[[str], Message], key: str, permitted: Code = OK) -> Sample:
    async def build(world: World, principal: str) -> Message:
        return make(world.ids[key])
    return Sample(build, permitted)


@built()
async def _create_event(_: World, principal: str = "") -> Message:
    return v.CreateEventRequest(spec=_event_spec())


@built()
async def _update_event(world: World, principal: str = "") -> Message:
    return v.UpdateEventRequest(event_id=world.ids["event"], spec=_event_spec())


def _own_paths(principal: str) -> list[str]:
    return [OUT] if principal == "out-of-group" else [IN]


@built()
async def _create_own_token(_: World, principal: str = "") -> Message:
    """People make tokens of their own (their reach); tokens standalone ones within their paths."""
    if principal in PEOPLE:
        return ac.CreateTokenRequest(name="mine", scopes=["read"])
    return ac.CreateTokenRequest(name="minted", scopes=["read"], allowed_paths=_own_paths(principal), standalone=True)


@built()
async def _revoke_own_token(world: World, principal: str = "") -> Message:
    """A token the caller made itself (root makes one for callers that cannot)."""
    metadata = None
    if principal in PEOPLE or principal in ("read", "command", "admin", "in-group", "out-of-group"):
        metadata = caller_metadata(world, principal, ACCESS[f"/{ACCESS_SVC}/RevokeToken"])
    created = await world.call(ACCESS_SVC, "CreateToken", await _create_own_token.build(world, principal), metadata)
    return ac.RevokeTokenRequest(token_id=created.info.token_id)


def _operator(path: str = f"{IN}.site") -> ac.CreateUserRequest:
    return ac.CreateUserRequest(username=_fresh("op-"), password=PASSWORD, kind=ac.Principal.OPERATOR, role="viewer",
                                allowed_paths=[path])


@built()
async def _disable_user(world: World, principal: str = "") -> Message:
    user = await world.call(ACCESS_SVC, "CreateUser", _operator())
    return ac.DisableUserRequest(user_id=user.user_id)


@built()
async def _create_reset(world: World, principal: str = "") -> Message:
    user = await world.call(ACCESS_SVC, "CreateUser", _operator())
    return ac.CreatePasswordResetRequest(username=user.username)


@built()
async def _reset_password(world: World, principal: str = "") -> Message:
    reset = await world.call(ACCESS_SVC, "CreatePasswordReset", ac.CreatePasswordResetRequest(username="mx-reset"))
    return ac.ResetPasswordRequest(code=reset.code, new_password=PASSWORD)


@built()
async def _accept_invitation(world: World, principal: str = "") -> Message:
    invitation = await world.call(ACCESS_SVC, "InviteHomeowner", ac.InviteHomeownerRequest(installation_id=HOME))
    return ac.AcceptInvitationRequest(code=invitation.code, username=_fresh("invited-"), password=PASSWORD)


@built()
async def _issue_client_token(world: World, principal: str = "") -> Message:
    client = await world.call(ACCESS_SVC, "CreateClient", ac.CreateClientRequest(
        name="ven", scopes=["read"], allowed_paths=[IN]))
    return ac.IssueClientTokenRequest(client_id=client.client_id, client_secret=client.client_secret)


DAYS = an.TimeRange(dates=an.LocalDateRange(first_date="2024-06-01", end_date="2024-06-02"))
NOW_MS = int(time.time() * 1_000)

SAMPLES: dict[str, Sample] = {f"/{service}/{method}": sample for service, samples in {
    ACCESS_SVC: {
        "Login": fixed(ac.LoginRequest(username="mx-login", password=PASSWORD)),
        # OIDC is off in the matrix's settings: everyone gets the same refusal (tests/integration/
        # test_http_oidc.py logs in through a provider)
        "LoginWithIdentity": fixed(ac.LoginWithIdentityRequest(id_token="not.an.id-token", nonce="n"),
                                   Code.FAILED_PRECONDITION),
        "Logout": fixed(ac.LogoutRequest(), Code.FAILED_PRECONDITION),   # the callers hold tokens, not sessions
        "WhoAmI": fixed(ac.WhoAmIRequest()),
        "CreateUser": Sample(lambda _, __: _async(_operator())),
        "ListUsers": fixed(ac.ListUsersRequest(page_size=1_000)),
        "DisableUser": _disable_user,
        "InviteHomeowner": fixed(ac.InviteHomeownerRequest(installation_id=HOME)),
        "AcceptInvitation": _accept_invitation,
        "CreatePasswordReset": _create_reset,
        "ResetPassword": _reset_password,
        "CreateToken": _create_own_token,
        "ListTokens": fixed(ac.ListTokensRequest()),
        "RevokeToken": _revoke_own_token,
        "CreateClient": fixed(ac.CreateClientRequest(name="ven", scopes=["read"], allowed_paths=[IN])),
        "IssueClientToken": _issue_client_token,
        "ListAuditLog": fixed(ac.ListAuditLogRequest(page_size=1_000)),
    },
    ASSETS: {
        "CreateCustomer": fixed(a.CreateCustomerRequest(name="Ana")),
        "GetCustomer": fixed(a.GetCustomerRequest(customer_id="mx-cust")),
        "CreateInstallation": fixed(a.CreateInstallationRequest(installation=a.Installation(
            location=a.GeoPoint(longitude_deg=-121.5, latitude_deg=38.5), time_zone="America/Los_Angeles"),
            group_paths=[f"{IN}.site"])),
        "GetInstallation": fixed(a.GetInstallationRequest(installation_id=HOME)),
        "UpdateInstallationSettings": fixed(a.UpdateInstallationSettingsRequest(installation_id=HOME,
                                                                                stormwatch_enabled=True)),
        "SearchInstallationsInBox": fixed(a.SearchInstallationsInBoxRequest(
            min_longitude_deg=-123, min_latitude_deg=37, max_longitude_deg=-120, max_latitude_deg=40)),
        "SearchInstallationsInPolygon": fixed(a.SearchInstallationsInPolygonRequest(
            polygon_wkt="POLYGON((-123 37, -120 37, -120 40, -123 40, -123 37))")),
        "SearchInstallationsNear": fixed(a.SearchInstallationsNearRequest(
            center=a.GeoPoint(longitude_deg=-121.5, latitude_deg=38.5), radius_m=50_000)),
        "RegisterDevice": _register_device,
        "GetDevice": fixed(a.GetDeviceRequest(device_id="mx-dev")),
        "ListDevices": fixed(a.ListDevicesRequest(installation_id=HOME)),
        "RevokeDevice": _revoke_device,
        "RotateDeviceCredential": _rotate_credential,
        "CreateDeviceClaim": _create_device_claim,
        "ClaimDevice": _claim_device,
        "CreateGroup": _create_group,
        "ListGroups": fixed(a.ListGroupsRequest(path=IN, relation=a.RELATION_DESCENDANTS)),
        "AddToGroup": fixed(a.AddToGroupRequest(installation_id=HOME, path=f"{IN}.site")),
        "RemoveFromGroup": _remove_from_group,
        "ListGroupInstallations": fixed(a.ListGroupInstallationsRequest(path=f"{IN}.site")),
        "ListInstallationGroups": fixed(a.ListInstallationGroupsRequest(installation_id=HOME)),
        "CreateProgram": _create_program,
        "ChangeEnrollment": _change_enrollment,
        "GetEnrollment": fixed(a.GetEnrollmentRequest(installation_id=HOME, program=f"{IN}.vpp")),
        "ListEnrollmentHistory": fixed(a.ListEnrollmentHistoryRequest(installation_id=HOME, program=f"{IN}.vpp")),
        "CreateToken": fixed(a.CreateTokenRequest(name="delegate", scopes=[a.SCOPE_READ], allowed_paths=[IN])),
        "RevokeToken": _revoke_token,
    },
    TELEMETRY: {
        "GetLatestSample": fixed(t.GetLatestSampleRequest(installation_id=HOME), Code.NOT_FOUND),
        "QueryRange": fixed(t.QueryRangeRequest(installation_id=HOME, start_unix_ms=NOW_MS - 3_600_000,
                                                end_unix_ms=NOW_MS)),
        "StreamLiveSamples": fixed(t.StreamLiveSamplesRequest(installation_id=HOME)),
    },
    TWINS: {
        "GetTwin": fixed(tw.GetTwinRequest(installation_id=HOME), Code.NOT_FOUND),
        "StreamTwin": fixed(tw.StreamTwinRequest(installation_id=HOME), Code.NOT_FOUND),
        "ListAlerts": fixed(tw.ListAlertsRequest()),
        "ExportAlertLog": fixed(tw.ExportAlertLogRequest(installation_id=HOME, start_unix_ms=0, end_unix_ms=NOW_MS)),
        "OptOutOfStorm": fixed(tw.OptOutOfStormRequest(installation_id=HOME, alert_id="mx-storm")),
        "ListNotifications": fixed(tw.ListNotificationsRequest(installation_id=HOME)),
    },
    ANALYTICS: {
        "GetEnergyReport": fixed(an.EnergyReportRequest(target=an.Target(installation_id=HOME), range=DAYS)),
        "GetCapacityTrend": fixed(an.CapacityTrendRequest(installation_id=HOME, range=DAYS)),
        "GetSeries": fixed(an.SeriesRequest(target=an.Target(installation_id=HOME), range=DAYS)),
    },
    WEATHER: {
        "ListActiveAlerts": fixed(w.ListActiveAlertsRequest()),
        "StreamAlertChanges": fixed(w.StreamAlertChangesRequest()),
        "ListAlertChanges": fixed(w.ListAlertChangesRequest()),
        "GetAlert": fixed(w.GetAlertRequest(alert_id="no-such-alert"), Code.NOT_FOUND),
        "ListAffectedInstallations": fixed(w.ListAffectedInstallationsRequest(alert_id="mx-storm")),
    },
    CONTROL: {
        "SubmitCommand": Sample(lambda _, __: _async(c.SubmitCommandRequest(installation_id=HOME, spec=_plan(),
                                                                        ttl_s=600))),
        "SubmitGroupCommand": Sample(lambda _, __: _async(c.SubmitGroupCommandRequest(
            group_path=f"{IN}.site", spec=_plan(), ttl_s=600))),
        "GetCommand": _by_id(lambda i: c.GetCommandRequest(command_id=i), "command"),
        "ListCommands": fixed(c.ListCommandsRequest(installation_id=HOME)),
        "GetFanOutProgress": _by_id(lambda i: c.GetFanOutProgressRequest(fanout_id=i), "fanout"),
        "StreamFanOutProgress": _by_id(lambda i: c.StreamFanOutProgressRequest(fanout_id=i), "fanout"),
        "CancelCommand": _cancel_command,
        "CancelFanOut": _cancel_fanout,
    },
    VPP: {
        "CreateEvent": _create_event,
        "UpdateEvent": _update_event,
        "CancelEvent": _cancel_event,
        "GetEvent": _by_id(lambda i: v.GetEventRequest(event_id=i), "event"),
        "ListEvents": fixed(v.ListEventsRequest()),
        "ListParticipants": _by_id(lambda i: v.ListParticipantsRequest(event_id=i), "event"),
        "OptOut": _by_id(lambda i: v.OptOutRequest(event_id=i, installation_id=HOME), "event", Code.NOT_FOUND),
        "GetEventProgress": _by_id(lambda i: v.GetEventProgressRequest(event_id=i), "event"),
        "StreamContribution": fixed(v.StreamContributionRequest(path=IN)),
        "GetEventReport": _by_id(lambda i: v.GetEventReportRequest(event_id=i), "event"),
    },
}.items() for method, sample in samples.items()}


async def _async(request: Message) -> Message:
    return request


# ------------------------------------------------------------ what the rule says

def expected(rule: Rule, principal: str, permitted: Code) -> Code:
    if rule.anonymous:   # the request carries its own secret: whoever calls, the same outcome
        return permitted
    if principal in ("none", "expired"):
        return UNAUTHENTICATED
    if principal == "device":
        return permitted if rule.devices else DENIED
    if principal in PEOPLE:
        flag, home = PEOPLE[principal]
        if not getattr(rule, flag):
            return DENIED
        return DENIED if not home and rule.target is Target.INSTALLATION else permitted
    if principal in ("read", "command", "admin"):
        return permitted if RANK[Scope(principal)] >= RANK[rule.scope] else DENIED
    if principal == "out-of-group" and rule.target in (Target.INSTALLATION, Target.GROUP):
        return DENIED
    return permitted


# ------------------------------------------------------------ servers and calls

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _matrix_settings(base: Settings) -> Settings:
    ephemeral = {"port": 0, "metrics_port": 0}
    quick_auth = {**ephemeral, "auth_cache_s": 0.0}   # revoked and expired credentials act at once
    return base.model_copy(update={
        "assets": base.assets.model_copy(update=quick_auth),
        "analytics": base.analytics.model_copy(update=quick_auth),
        # A consumer group of this run's own: one shared with another test session on the same
        # broker rebalances without end, and the control service would never finish starting.
        "control": base.control.model_copy(update={**quick_auth,
                                                   "ack_group_id": f"control-acks-{uuid.uuid4().hex[:8]}"}),
        "vpp": base.vpp.model_copy(update={**quick_auth, "rest_port": _free_port()}),
        "weather": base.weather.model_copy(update=ephemeral),
        "api": base.api.model_copy(update=ephemeral),
        "twins": base.twins.model_copy(update={**ephemeral, "namespace": f"matrix-{uuid.uuid4().hex[:8]}",
                                               "stormwatch_poller": False}),
    })


@pytest.fixture(scope="module")
async def world(ray_cluster: Settings, pool: asyncpg.Pool) -> AsyncIterator[World]:
    """Every service started by its entry point, one group of the world ("mx": an installation
    with a customer, a device, a program, an alert, a command, a fan-out and a grid event) and
    another group ("mxo") with an installation of its own."""
    settings = _matrix_settings(ray_cluster)
    await pool.execute("TRUNCATE installations, customers, devices, hierarchy_groups, programs, group_memberships, "
                       "enrollment_audit, api_principals, twin_alerts, vpp_events, vpp_program_terms, "
                       "control_commands, control_fanouts, weather_alerts, weather_alert_changes, access_users, "
                       "access_sessions, access_codes, access_clients, access_client_tokens, access_audit, "
                       "access_login_failures CASCADE")
    # The assets the entry points' Authenticator reads are the AssetService's, in the same database.
    entry_points: dict[str, Callable[[Settings], contextlib.AbstractAsyncContextManager[Any]]] = {
        ASSETS: services.assets, TELEMETRY: services.api, TWINS: services.twins, ANALYTICS: services.analytics,
        WEATHER: services.weather, CONTROL: services.control, VPP: services.vpp}
    async with contextlib.AsyncExitStack() as stack:
        channels = {}
        for name, entry_point in entry_points.items():
            server = await stack.enter_async_context(entry_point(settings))
            channels[name] = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))
        channels[ACCESS_SVC] = channels[ASSETS]   # the assets process serves access beside assets
        root = bearer(await mint(pool, Scope.ADMIN, name="matrix-root"))
        world = World(channels, {}, {}, root, pool)
        await _populate(world)
        world.metadata = {
            "none": (),
            "expired": bearer(await mint(pool, Scope.ADMIN, expires_unix_ms=NOW_MS - 60_000)),
            **{s.value: bearer(await mint(pool, s)) for s in Scope},
            "device": (("authorization", f"Device mx-dev {world.ids['credential']}"),),
        }
        world.scoped = {**{("in-group", s): bearer(await mint(pool, s, paths=(IN,))) for s in Scope},
                        **{("out-of-group", s): bearer(await mint(pool, s, paths=(OUT,))) for s in Scope}}
        world.metadata.update(await _people(world))
        yield world
    kill_namespace(settings.twins.namespace)


async def _populate(world: World) -> None:
    for path in (IN, f"{IN}.site", OUT, f"{OUT}.site"):
        await world.call(ASSETS, "CreateGroup", a.CreateGroupRequest(path=path))
    await world.call(ASSETS, "CreateProgram", a.CreateProgramRequest(path=f"{IN}.vpp"))
    await world.pool.execute("INSERT INTO vpp_program_terms (program, rate_per_kwh) VALUES ($1, 2.0)", f"{IN}.vpp")
    await world.call(ASSETS, "CreateCustomer", a.CreateCustomerRequest(customer_id="mx-cust", name="Ana"))
    for installation, group, customer in ((HOME, IN, "mx-cust"), (AWAY, OUT, "")):
        await world.call(ASSETS, "CreateInstallation", a.CreateInstallationRequest(
            installation=a.Installation(
                installation_id=installation, customer_id=customer,
                location=a.GeoPoint(longitude_deg=-121.5, latitude_deg=38.5), time_zone="America/Los_Angeles",
                battery_nominal_energy_wh=13_500, max_charge_power_w=5_000, max_discharge_power_w=5_000),
            group_paths=[f"{group}.site"]))
    device = await world.call(ASSETS, "RegisterDevice", a.RegisterDeviceRequest(
        installation_id=HOME, serial="mx-dev", kind=a.DEVICE_KIND_BATTERY))
    world.ids["credential"] = device.credential
    await world.pool.execute(
        "INSERT INTO twin_alerts (alert_id, installation_id, rule, severity, state, first_seen, last_seen) "
        "VALUES ('mx-home-alert', $1, 'soc_out_of_range', 2, 'raised', now(), now())", HOME)
    command = await world.call(CONTROL, "SubmitCommand", c.SubmitCommandRequest(
        installation_id=HOME, spec=_plan(), ttl_s=600))
    world.ids["command"] = command.command.command_id
    fanout = await world.call(CONTROL, "SubmitGroupCommand", c.SubmitGroupCommandRequest(
        group_path=f"{IN}.site", spec=_plan(), ttl_s=600))
    world.ids["fanout"] = fanout.fanout_id
    event = await world.call(VPP, "CreateEvent", v.CreateEventRequest(spec=_event_spec()))
    world.ids["event"] = event.event_id
    # A storm over both installations (ListAffectedInstallations: each group sees only its own).
    now = dt.datetime.now(dt.UTC)
    storm = wd.alert_feature("mx-storm", "Alert", shapely.box(-122, 38, -121, 39), now)
    await AlertStore(world.pool).ingest(nws.parse_feed(wd.feed_doc(storm), now=now).alerts, now)


async def _people(world: World) -> dict[str, tuple[tuple[str, str], ...]]:
    """The homeowners and installers of each installation, each holding a personal access token
    made through their own login; and the accounts the Login and ResetPassword samples use."""
    for name in ("mx-login", "mx-reset"):
        await world.call(ACCESS_SVC, "CreateUser", ac.CreateUserRequest(
            username=name, password=PASSWORD, kind=ac.Principal.OPERATOR, role="viewer", allowed_paths=[IN]))
    found = {}
    for principal, (flag, home) in PEOPLE.items():
        kind = ac.Principal.HOMEOWNER if flag == "homeowners" else ac.Principal.INSTALLER
        username = principal.replace("-away", "-elsewhere") + "-user"   # never "mx-home" nor "mx."
        await world.call(ACCESS_SVC, "CreateUser", ac.CreateUserRequest(
            username=username, password=PASSWORD, kind=kind, installation_ids=[HOME if home else AWAY]))
        session = await world.call(ACCESS_SVC, "Login", ac.LoginRequest(username=username, password=PASSWORD))
        scopes = ["read", "command", "admin"] if kind == ac.Principal.INSTALLER else ["read", "command"]
        created = await world.call(ACCESS_SVC, "CreateToken", ac.CreateTokenRequest(name="matrix", scopes=scopes),
                                   bearer(session.token))
        found[principal] = bearer(created.token)
    return found


async def outcome(world: World, method: MethodDescriptor, request: Message,
                  metadata: tuple[tuple[str, str], ...]) -> tuple[Code, bytes]:
    """The call's status and its (first) response as bytes; a stream still silent after
    STREAM_WAIT_S was accepted (OK)."""
    channel = world.channels[method.containing_service.full_name]
    try:
        if method.server_streaming:
            stream = channel.unary_stream(full_name(method), request_serializer=_serialize)(
                request, metadata=metadata, timeout=STREAM_WAIT_S)
            try:
                first = await stream.read()
            except grpc.aio.AioRpcError as error:
                if error.code() is Code.DEADLINE_EXCEEDED:
                    return OK, b""
                raise
            finally:
                stream.cancel()
            return OK, b"" if first is grpc.aio.EOF else bytes(first)
        answer = await channel.unary_unary(full_name(method), request_serializer=_serialize)(
            request, metadata=metadata, timeout=30)
        return OK, bytes(answer)
    except grpc.aio.AioRpcError as error:
        return error.code(), (error.details() or "").encode()


def caller_metadata(world: World, principal: str, rule: Rule) -> tuple[tuple[str, str], ...]:
    if principal in ("in-group", "out-of-group"):
        return world.scoped[(principal, rule.scope)]
    return world.metadata[principal]


def render(rows: dict[str, dict[str, str]]) -> str:
    width = max(len(m) for m in rows) + 2
    lines = ["method".ljust(width) + "".join(p.ljust(20) for p in PRINCIPALS)]
    lines += [m.ljust(width) + "".join(cells[p].ljust(20) for p in PRINCIPALS) for m, cells in rows.items()]
    return "\n".join(lines)


# ------------------------------------------------------------ the tests

def test_every_method_of_every_service_has_a_rule_and_a_sample() -> None:
    names = {full_name(m) for m in METHODS}
    assert {s.full_name for s in gridtwin_services()} >= {ASSETS, ACCESS_SVC, TELEMETRY, TWINS, ANALYTICS, WEATHER,
                                                          CONTROL, VPP}
    assert sorted(names - set(ACCESS)) == [], "methods without an access rule (services/access/rules.py ACCESS)"
    assert sorted(set(ACCESS) - names) == [], "rules for methods that do not exist"
    assert sorted(names - set(SAMPLES)) == [], "methods without a sample request (SAMPLES here)"


@pytest.mark.parametrize("service", [s.full_name for s in gridtwin_services()])
async def test_access_matrix(world: World, service: str) -> None:
    rows: dict[str, dict[str, str]] = {}
    wrong: list[str] = []
    for method in (m for m in METHODS if m.containing_service.full_name == service):
        rule, sample = ACCESS[full_name(method)], SAMPLES[full_name(method)]
        cells = rows.setdefault(method.name, {})
        for principal in PRINCIPALS:
            want = expected(rule, principal, sample.permitted)
            request = await sample.build(world, principal)
            code, body = await outcome(world, method, request, caller_metadata(world, principal, rule))
            cells[principal] = code.name if code is want else f"{code.name}≠{want.name}"
            if code is not want:
                wrong.append(f"{method.name} as {principal}: {code.name}, expected {want.name} ({body[:120]!r})")
            if rule.target is Target.FILTERED and code is OK and principal in (
                    "in-group", "out-of-group", "homeowner", "homeowner-away"):
                shows = any(marker in body for marker in IN_MARKERS)
                if shows != (principal in ("in-group", "homeowner")):
                    cells[principal] += " (leak)" if shows else " (hides)"
                    wrong.append(f"{method.name} as {principal}: the answer {'shows' if shows else 'hides'} "
                                 f"group {IN!r}")
    table = render(rows)
    print(f"\n{service}: {len(rows)} methods × {len(PRINCIPALS)} principals\n{table}")
    assert not wrong, "\n".join(wrong) + "\n" + table
