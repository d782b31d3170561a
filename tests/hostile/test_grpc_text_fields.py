"""ltree, lquery and SQL injection, NUL bytes, huge and invalid-UTF-8 strings through every text
field of the gRPC APIs (assets, access, weather, control, vpp, telemetry, analytics), over real channels to
servers on the real Postgres. The fields come from the proto descriptors, so a new field is
attacked the day it is added. Each call ends OK or with a clear refusal — never INTERNAL or
UNKNOWN — and every table is intact afterwards; an oversized request is RESOURCE_EXHAUSTED and
the server goes on serving.

Twins (TwinService) are left out: they need a Ray cluster, and their text fields are installation
ids and alert ids that reach only parameterized queries through the same validators."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gridtwin.api.access.v1 import access_pb2
from gridtwin.api.analytics.v1 import analytics_pb2
from gridtwin.api.assets.v1 import assets_pb2
from gridtwin.api.control.v1 import control_pb2, vpp_pb2
from gridtwin.api.device.v1 import device_pb2
from gridtwin.api.telemetry.v1 import telemetry_service_pb2
from gridtwin.api.weather.v1 import weather_pb2
from gridtwin.grpc_server import MAX_RECEIVE_MESSAGE_BYTES
from gridtwin.unixtime import now_ms
from services.access.credentials import register_devices
from services.access.model import Scope
from services.analytics.api import AnalyticsApi
from services.control.api import ControlApi
from services.control.service import Control
from services.control.store import CommandStore
from services.control.vpp.api import VppApi
from services.control.vpp.contribution import ContributionTracker
from services.control.vpp.dispatch import VppDispatcher
from services.control.vpp.intents import IntentRelay
from services.telemetry.api import LiveHub, TelemetryApi
from services.weather.api import WeatherApi
from services.weather.store import AlertStore
from simulator.fleet import FleetOptions, registrations
from tests.hostile.strategies import HOSTILE_STRINGS
from tests.integration.access_support import authenticator
from tests.integration.assets_client import bearer
from tests.integration.twins_support import Twins

pytestmark = pytest.mark.integration

# A refusal a client can act on; anything else (INTERNAL, UNKNOWN, UNAVAILABLE, DATA_LOSS) is a bug.
CLEAR = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
         grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
         grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.RESOURCE_EXHAUSTED}
# A field that is itself a secret: anything but a valid one is a failed authentication.
SECRETS = {("ClaimDevice", "claim_code")}
# Requests that carry their own credential (a password, a one-time code, client credentials): with
# the base request's unknown account, code or client, any field ends UNAUTHENTICATED.
SECRET_REQUESTS = {"Login", "AcceptInvitation", "ResetPassword", "IssueClientToken"}
ATTACKS = (*HOSTILE_STRINGS, "x" * (1 << 20))     # 1 MiB: under the receive limit, so the service sees it
HUGE = "y" * (10 << 20)                             # 10 MiB: over it
INVALID_UTF8 = (b"\xff\xfe", b"a.b\xc0\xaf", b"\xed\xa0\x80")   # junk, overlong '/', a UTF-16 surrogate
PLACEHOLDER = "__hostile_placeholder__"
TABLES = ("customers", "installations", "devices", "hierarchy_groups", "programs", "group_memberships",
          "enrollment_audit", "api_principals", "telemetry_samples", "control_commands", "weather_alerts",
          "vpp_events", "vpp_program_terms")
MODULES = {"assets": assets_pb2, "access": access_pb2, "weather": weather_pb2, "control": control_pb2,
           "vpp": vpp_pb2, "telemetry": telemetry_service_pb2, "analytics": analytics_pb2}


# ------------------------------------------------------------------ string fields from the descriptors


def string_paths(message: Descriptor, prefix: str = "", depth: int = 0) -> Iterator[str]:
    """Every text field reachable from a request type, as a dotted path ("spec.update_firmware.url";
    "config{}" is a map's key, "config[]" its value; "[]" a repeated field's element)."""
    if depth > 4:
        return
    for field in message.fields:
        name = prefix + field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            if key.type == FieldDescriptor.TYPE_STRING:
                yield name + "{}"
            if value.type == FieldDescriptor.TYPE_STRING:
                yield name + "[]"
        elif field.type == FieldDescriptor.TYPE_STRING:
            yield name + ("[]" if field.is_repeated else "")
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.full_name.startswith("google."):
            yield from string_paths(field.message_type, name + ("[]" if field.is_repeated else "") + ".", depth + 1)


def set_path(message: Message, path: str, value: str) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        if head.endswith("{}"):
            getattr(message, head[:-2])[value] = "v"
        elif head.endswith("[]"):
            container = getattr(message, head[:-2])
            if hasattr(container, "keys"):     # a map of strings
                container["k"] = value
            else:
                del container[:]
                container.append(value)
        else:
            setattr(message, head, value)
        return
    if head.endswith("[]"):
        container = getattr(message, head[:-2])
        child = container[0] if len(container) else container.add()
    else:
        child = getattr(message, head)
    set_path(child, rest, value)


@dataclass(frozen=True)
class Target:
    service: str
    method: MethodDescriptor
    path: str


def targets() -> list[Target]:
    found = []
    for service_key, module in MODULES.items():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found += [Target(service_key, method, p) for p in string_paths(method.input_type)]
    return found


# Services this file does not start, each with why; any other service must be in MODULES.
NOT_ATTACKED_HERE = {
    "gridtwin.twins.v1.TwinService": "needs a Ray cluster; its ids go through the same validators",
}


def test_every_grpc_service_is_attacked_or_excused() -> None:
    import importlib
    import pkgutil

    import gridtwin.api

    found = set()
    for module_info in pkgutil.walk_packages(gridtwin.api.__path__, "gridtwin.api."):
        if module_info.name.endswith("_pb2"):
            module = importlib.import_module(module_info.name)
            found |= {s.full_name for s in module.DESCRIPTOR.services_by_name.values()}
    attacked = {s.full_name for m in MODULES.values() for s in m.DESCRIPTOR.services_by_name.values()}
    assert found - attacked <= set(NOT_ATTACKED_HERE), found - attacked - set(NOT_ATTACKED_HERE)


def test_the_attack_surface_is_every_text_field() -> None:
    """The descriptor walk finds the fields we know are there (a guard on the walk itself)."""
    found = {(t.method.name, t.path) for t in targets()}
    for expected in [("CreateGroup", "path"), ("AddToGroup", "path"), ("CreateToken", "allowed_paths[]"),
                     ("SearchInstallationsInPolygon", "polygon_wkt"), ("GetAlert", "alert_id"),
                     ("SubmitGroupCommand", "group_path"), ("SubmitCommand", "spec.change_configuration.config{}"),
                     ("SubmitCommand", "spec.update_firmware.url"), ("QueryRange", "installation_id"),
                     ("GetSeries", "channels[]"), ("GetEnergyReport", "tariff.windows[].name")]:
        assert expected in found
    assert len(found) > 80


# ------------------------------------------------------------------ the world and its servers


def base_requests() -> dict[str, Message]:
    """A valid request per method (built at call time: plans must lie in the future), so that the
    hostile field is what the service has to judge, not a missing sibling."""
    a, c, t, an = assets_pb2, control_pb2, telemetry_service_pb2, analytics_pb2
    plan = device_pb2.ControlPlan(plan_id="p", steps=[device_pb2.PlanStep(
        start_unix_ms=now_ms() + 60_000, end_unix_ms=now_ms() + 120_000,
        charge_to=device_pb2.ChargeTo(target_state_of_charge_pct=80))])
    spec = c.CommandSpec(control_plan=plan)
    event = vpp_pb2.GridEventSpec(program="program.vpp", target_group="utility.pge", start_unix_ms=now_ms() + 60_000,
                                  end_unix_ms=now_ms() + 120_000, target_power_w=1_000, name="n", external_id="")
    days = an.TimeRange(dates=an.LocalDateRange(first_date="2024-06-01", end_date="2024-06-02"))
    return {
        "CreateCustomer": a.CreateCustomerRequest(customer_id="c-new", name="n", email="e@example.com"),
        "GetCustomer": a.GetCustomerRequest(customer_id="cust-1"),
        "CreateInstallation": a.CreateInstallationRequest(installation=a.Installation(
            installation_id="site-new", time_zone="UTC", location=a.GeoPoint(longitude_deg=-121, latitude_deg=38)),
            group_paths=["utility.pge"]),
        "GetInstallation": a.GetInstallationRequest(installation_id="site-1"),
        "UpdateInstallationSettings": a.UpdateInstallationSettingsRequest(installation_id="site-1"),
        "SearchInstallationsInPolygon": a.SearchInstallationsInPolygonRequest(
            polygon_wkt="POLYGON((-122 37,-120 37,-120 39,-122 39,-122 37))"),
        "RegisterDevice": a.RegisterDeviceRequest(installation_id="site-1", serial="SN-new"),
        "GetDevice": a.GetDeviceRequest(device_id="hostile-dev-00000"),
        "ListDevices": a.ListDevicesRequest(installation_id="site-1"),
        "RevokeDevice": a.RevokeDeviceRequest(device_id="no-such-device"),
        "CreateGroup": a.CreateGroupRequest(path="utility.new", display_name="New"),
        "ListGroups": a.ListGroupsRequest(path="utility"),
        "AddToGroup": a.AddToGroupRequest(installation_id="site-1", path="utility.pge"),
        "RemoveFromGroup": a.RemoveFromGroupRequest(installation_id="site-1", path="utility.sce"),
        "ListGroupInstallations": a.ListGroupInstallationsRequest(path="utility"),
        "ListInstallationGroups": a.ListInstallationGroupsRequest(installation_id="site-1"),
        "CreateProgram": a.CreateProgramRequest(path="program.new", display_name="New"),
        "ChangeEnrollment": a.ChangeEnrollmentRequest(installation_id="site-1", program="program.vpp",
                                                      reason="r"),
        "GetEnrollment": a.GetEnrollmentRequest(installation_id="site-1", program="program.vpp"),
        "ListEnrollmentHistory": a.ListEnrollmentHistoryRequest(installation_id="site-1", program="program.vpp"),
        "CreateToken": a.CreateTokenRequest(name="t", allowed_paths=["utility"]),
        "RevokeToken": a.RevokeTokenRequest(principal_id="no-such-principal"),
        "GetAlert": weather_pb2.GetAlertRequest(alert_id="no-such-alert"),
        "ListAffectedInstallations": weather_pb2.ListAffectedInstallationsRequest(alert_id="no-such-alert"),
        "SubmitCommand": c.SubmitCommandRequest(installation_id="site-1", spec=spec, ttl_s=60,
                                                idempotency_key="k", source="operator"),
        "SubmitGroupCommand": c.SubmitGroupCommandRequest(group_path="utility.pge", spec=spec, ttl_s=60,
                                                          idempotency_key="g", source="operator"),
        "GetCommand": c.GetCommandRequest(command_id="no-such-command"),
        "ListCommands": c.ListCommandsRequest(installation_id="site-1"),
        "GetFanOutProgress": c.GetFanOutProgressRequest(fanout_id="no-such-fanout"),
        "StreamFanOutProgress": c.StreamFanOutProgressRequest(fanout_id="no-such-fanout"),
        "CancelCommand": c.CancelCommandRequest(command_id="no-such-command"),
        "CancelFanOut": c.CancelFanOutRequest(fanout_id="no-such-fanout"),
        "CreateEvent": vpp_pb2.CreateEventRequest(spec=event),
        "UpdateEvent": vpp_pb2.UpdateEventRequest(event_id="no-such-event", spec=event),
        "CancelEvent": vpp_pb2.CancelEventRequest(event_id="no-such-event"),
        "GetEvent": vpp_pb2.GetEventRequest(event_id="no-such-event"),
        "ListParticipants": vpp_pb2.ListParticipantsRequest(event_id="no-such-event"),
        "OptOut": vpp_pb2.OptOutRequest(event_id="no-such-event", installation_id="site-1"),
        "GetEventProgress": vpp_pb2.GetEventProgressRequest(event_id="no-such-event"),
        "GetEventReport": vpp_pb2.GetEventReportRequest(event_id="no-such-event"),
        "StreamContribution": vpp_pb2.StreamContributionRequest(path="utility", installation_id="site-1"),
        "GetLatestSample": t.GetLatestSampleRequest(installation_id="site-1"),
        "QueryRange": t.QueryRangeRequest(installation_id="site-1", start_unix_ms=0, end_unix_ms=now_ms()),
        "StreamLiveSamples": t.StreamLiveSamplesRequest(installation_id="site-1"),
        "GetEnergyReport": an.EnergyReportRequest(target=an.Target(installation_id="site-1"), range=days),
        "GetCapacityTrend": an.CapacityTrendRequest(installation_id="site-1", range=days),
        "GetSeries": an.SeriesRequest(target=an.Target(installation_id="site-1"), range=days),
    }


def access_base_requests() -> dict[str, Message]:
    """As base_requests, for AccessService (whose method names CreateToken and RevokeToken
    AssetService has too: a base is used only for its own request type)."""
    ac, password = access_pb2, "correct horse battery staple"
    return {
        "Login": ac.LoginRequest(username="nobody", password=password),
        "CreateUser": ac.CreateUserRequest(username="new-user", password=password, kind=ac.Principal.OPERATOR,
                                           role="viewer", allowed_paths=["utility.pge"]),
        "InviteHomeowner": ac.InviteHomeownerRequest(installation_id="site-1", email="a@example.com"),
        "AcceptInvitation": ac.AcceptInvitationRequest(code="ABCD-EFGH", username="new-owner", password=password),
        "CreatePasswordReset": ac.CreatePasswordResetRequest(username="nobody"),
        "ResetPassword": ac.ResetPasswordRequest(code="ABCD-EFGH", new_password=password),
        "CreateToken": ac.CreateTokenRequest(name="t", scopes=["read"], allowed_paths=["utility"], standalone=True),
        "RevokeToken": ac.RevokeTokenRequest(token_id="no-such-token"),
        "CreateClient": ac.CreateClientRequest(name="c", scopes=["read"], allowed_paths=["utility"]),
        "IssueClientToken": ac.IssueClientTokenRequest(client_id="no-such-client", client_secret="s"),
        "DisableUser": ac.DisableUserRequest(user_id="no-such-user"),
    }


@dataclass
class World:
    channels: dict[str, grpc.aio.Channel]
    metadata: dict[str, tuple[tuple[str, str], ...]]
    pool: Any


@pytest.fixture
async def world(assets, assets_api, assets_engine, platform, pool, twins: Twins) -> AsyncIterator[World]:
    await pool.execute("TRUNCATE control_commands, control_fanouts, control_device_sessions, control_gateways")
    await assets.group("utility.pge")
    await assets.group("utility.sce")
    await assets.call("CreateProgram", assets_pb2.CreateProgramRequest(path="program.vpp"))
    await assets.call("CreateCustomer", assets_pb2.CreateCustomerRequest(customer_id="cust-1", name="Ana"))
    await assets.installation("site-1", -121.5, 38.5, "utility.pge", customer_id="cust-1")
    await register_devices(pool, registrations(FleetOptions(devices=1, fleet_secret="s", id_prefix="hostile")))
    control = platform.control.model_copy(update={"port": 0, "metrics_port": 0, "auth_cache_s": 0.0})
    analytics = platform.analytics.model_copy(update={"port": 0, "metrics_port": 0, "auth_cache_s": 0.0})
    async with contextlib.AsyncExitStack() as stack:
        servers = {
            "assets": assets_api,
            "access": assets_api,     # the assets process serves AccessService beside AssetService
            "control": await stack.enter_async_context(
                ControlApi(control, Control(CommandStore(pool)), assets_engine)),
            "weather": await stack.enter_async_context(
                WeatherApi("127.0.0.1", 0, AlertStore(pool), authenticator=authenticator(assets_engine))),
            "analytics": await stack.enter_async_context(
                AnalyticsApi(analytics, pool, assets_engine, max_gap_s=300)),
        }
        commands = CommandStore(pool)
        tracker = await stack.enter_async_context(ContributionTracker(
            bootstrap_servers=twins.settings.kafka.bootstrap_servers, topic=twins.settings.kafka.telemetry_topic,
            group_id=None, pool=pool))
        vpp = platform.vpp.model_copy(update={"port": 0, "metrics_port": 0, "auth_cache_s": 0.0})
        servers["vpp"] = await stack.enter_async_context(VppApi(
            vpp, VppDispatcher(pool, twins.runtime.router, commands, IntentRelay(pool, commands)), tracker, pool,
            assets_engine))
        telemetry = TelemetryApi(platform, pool, authenticator=authenticator(assets_engine),
                                 hub=LiveHub(platform.kafka, queue_size=16))
        await telemetry.start()
        stack.push_async_callback(telemetry.stop, 0.5)
        servers["telemetry"] = telemetry
        channels = {k: await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{s.port}"))
                    for k, s in servers.items()}
        admin = bearer(await assets.token(Scope.ADMIN))
        yield World(channels, {k: admin for k in servers}, pool)


async def call(world: World, target: Target, request: bytes) -> grpc.StatusCode:
    """Sends serialized bytes (so invalid UTF-8 can be sent at all) and returns the status; for a
    server stream, the status of its first message."""
    path = f"/{target.method.containing_service.full_name}/{target.method.name}"
    channel = world.channels[target.service]
    metadata = world.metadata[target.service]
    try:
        if target.method.server_streaming:
            stream = channel.unary_stream(path)(request, metadata=metadata, timeout=2)
            try:
                async with _ended_at_first_message():
                    await stream.read()
            finally:
                stream.cancel()
        else:
            await channel.unary_unary(path)(request, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@contextlib.asynccontextmanager
async def _ended_at_first_message() -> AsyncIterator[None]:
    # A stream that has nothing to send yet was accepted: that is an answer too.
    try:
        yield
    except grpc.aio.AioRpcError as error:
        if error.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
            raise


def request_bytes(target: Target, value: str | bytes) -> bytes:
    bases = (base_requests().get(target.method.name), access_base_requests().get(target.method.name))
    request = next((b for b in bases if b is not None and b.DESCRIPTOR.full_name == target.method.input_type.full_name),
                   None) or target.method.input_type._concrete_class()
    request = type(request).FromString(request.SerializeToString())
    if isinstance(value, bytes):
        set_path(request, target.path, PLACEHOLDER)
        return request.SerializeToString().replace(PLACEHOLDER.encode(), value)
    set_path(request, target.path, value)
    return request.SerializeToString()


async def snapshot(pool: Any) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def test_hostile_strings_through_every_text_field(world: World) -> None:
    before = await snapshot(world.pool)
    unclear: list[tuple[str, str, str, str]] = []
    tried = 0
    for target, value in itertools.product(targets(), (*ATTACKS, *INVALID_UTF8)):
        code = await call(world, target, request_bytes(target, value))
        tried += 1
        secret = (target.method.name, target.path) in SECRETS or target.method.name in SECRET_REQUESTS
        if code not in CLEAR and not (secret and code is grpc.StatusCode.UNAUTHENTICATED):
            unclear.append((target.method.name, target.path, repr(value)[:40], code.name))
    assert not unclear, f"{len(unclear)} of {tried} calls unclear, e.g. {sorted(set(unclear), key=lambda u: u[3])[:40]}"
    after = await snapshot(world.pool)
    # Every table is there; nothing was deleted (creations with odd but legal names may add rows).
    assert all(after[t] >= before[t] for t in TABLES), (before, after)
    assert await world.pool.fetchval("SELECT count(*) FROM installations WHERE installation_id = 'site-1'") == 1


async def test_oversized_requests_are_resource_exhausted_and_the_servers_go_on(world: World) -> None:
    """One unary and one streaming call per service with a 10 MiB string (the limit is 4 MiB)."""
    for service, channel in world.channels.items():
        methods = next(iter(MODULES[service].DESCRIPTOR.services_by_name.values())).methods
        unary = next(m for m in methods if not m.server_streaming and any(string_paths(m.input_type)))
        streaming = [m for m in methods if m.server_streaming and any(string_paths(m.input_type))][:1]
        for method in [unary, *streaming]:
            target = Target(service, method, next(string_paths(method.input_type)))
            assert await call(world, target, request_bytes(target, HUGE)) is grpc.StatusCode.RESOURCE_EXHAUSTED, \
                (service, method.name)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING, service
        target = Target(service, unary, next(string_paths(unary.input_type)))
        assert await call(world, target, request_bytes(target, "ok")) in CLEAR   # still answering calls
    assert len(HUGE) > MAX_RECEIVE_MESSAGE_BYTES
