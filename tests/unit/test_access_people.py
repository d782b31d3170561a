"""The access context's pure parts: who may do what (people, tokens, machines, devices), password
hashing, login throttling and lockout, one-time codes, the error table."""

from __future__ import annotations

import grpc
import pytest

from gridtwin import errors
from services.access import codes, passwords, throttle
from services.access.audit import target_of
from services.access.model import ApiPrincipal, DevicePrincipal, Kind, Role, Scope, Visibility
from services.access.rules import ACCESS, AUDITED, Target, admit, check_path, visibility
from services.access.service import person_principal
from services.access.store import User
from services.assets.model import DeviceId, GroupPath, InstallationId, PrincipalId

HOME = InstallationId("site-1")


def user(kind: Kind, role: Role | None = None, paths: tuple[str, ...] = (), homes: tuple[str, ...] = ()) -> User:
    return User("usr-1", "ana", kind, role, tuple(GroupPath(p) for p in paths),
                tuple(InstallationId(h) for h in homes), "", False, 0)


HOMEOWNER = person_principal(user(Kind.HOMEOWNER, homes=("site-1",)))
INSTALLER = person_principal(user(Kind.INSTALLER, homes=("site-1",)))
VIEWER = person_principal(user(Kind.OPERATOR, Role.VIEWER, paths=("utility.pge",)))
ADMIN = person_principal(user(Kind.OPERATOR, Role.ADMIN, paths=("",)))
MACHINE = ApiPrincipal(PrincipalId("cli-1"), "ven", frozenset({Scope.READ}), (GroupPath("utility"),),
                       kind=Kind.MACHINE)
DEVICE = DevicePrincipal(DeviceId("dev-1"), HOME)


def allowed(principal: ApiPrincipal | DevicePrincipal, method: str) -> bool:
    full = next(name for name in ACCESS if name.endswith(f"/{method}") and (
        "AccessService" in name if method in ("CreateToken", "RevokeToken") else True))
    return admit(principal, full, ACCESS[full]) is None


def test_roles_map_to_scopes():
    assert VIEWER.scopes == {Scope.READ}
    assert person_principal(user(Kind.OPERATOR, Role.OPERATOR, paths=("",))).scopes == {Scope.READ, Scope.COMMAND}
    assert ADMIN.scopes == {Scope.READ, Scope.COMMAND, Scope.ADMIN}
    assert ADMIN.actor == "user:usr-1" and MACHINE.actor == "client:cli-1"


@pytest.mark.parametrize("method", ["GetTwin", "QueryRange", "GetEnergyReport", "ListAlerts", "SubmitCommand",
                                    "CancelCommand", "OptOutOfStorm", "OptOut", "UpdateInstallationSettings",
                                    "GetInstallation", "ListActiveAlerts", "WhoAmI", "CreateToken"])
def test_a_homeowner_reads_and_changes_their_home(method):
    assert allowed(HOMEOWNER, method)


@pytest.mark.parametrize("method", ["SubmitGroupCommand", "CreateEvent", "ListEvents", "ListGroups",
                                    "SearchInstallationsInBox", "RegisterDevice", "RevokeDevice", "CreateGroup",
                                    "ChangeEnrollment", "CreateUser", "InviteHomeowner", "ListAuditLog",
                                    "GetFanOutProgress", "CreateInstallation"])
def test_a_homeowner_does_nothing_else(method):
    assert not allowed(HOMEOWNER, method)


def test_an_installer_registers_devices_and_reads_their_sites_only():
    for method in ("RegisterDevice", "CreateDeviceClaim", "GetInstallation", "GetDevice", "ListDevices",
                   "GetLatestSample"):
        assert allowed(INSTALLER, method), method
    for method in ("RevokeDevice", "SubmitCommand", "GetTwin", "UpdateInstallationSettings", "QueryRange",
                   "CreateInstallation"):
        assert not allowed(INSTALLER, method), method


def test_a_read_only_token_of_a_homeowner_reads_only():
    reader = ApiPrincipal(HOMEOWNER.principal_id, "ana", frozenset({Scope.READ}), (), kind=Kind.HOMEOWNER,
                          installation_ids=(HOME,))
    assert allowed(reader, "GetTwin") and not allowed(reader, "SubmitCommand")


def test_people_bound_to_installations_see_exactly_those_and_no_groups():
    assert visibility(HOMEOWNER) == Visibility(installation_ids=(HOME,))
    assert visibility(DEVICE) == Visibility(installation_ids=(HOME,))
    assert visibility(ADMIN) == Visibility(everything=True)
    assert check_path(HOMEOWNER, GroupPath("utility")) is not None
    assert check_path(VIEWER, GroupPath("utility.pge.north")) is None
    assert check_path(VIEWER, GroupPath("utility.sce")) is not None


def test_machines_and_viewers_hold_their_scope():
    assert allowed(MACHINE, "GetTwin") and not allowed(MACHINE, "SubmitCommand")
    assert allowed(VIEWER, "ListEvents") and not allowed(VIEWER, "CreateEvent")
    assert not allowed(DEVICE, "SubmitCommand") and allowed(DEVICE, "WhoAmI")


def test_every_rule_names_a_target_and_writes_are_audited():
    assert all(isinstance(rule.target, Target) for rule in ACCESS.values())
    assert "/gridtwin.control.v1.ControlService/SubmitCommand" in AUDITED
    assert "/gridtwin.access.v1.AccessService/Login" in AUDITED
    assert "/gridtwin.access.v1.AccessService/CreateToken" in AUDITED
    assert "/gridtwin.twins.v1.TwinService/GetTwin" not in AUDITED
    assert "/gridtwin.access.v1.AccessService/ListAuditLog" in AUDITED       # admin scope: reading the log too
    assert "/gridtwin.access.v1.AccessService/WhoAmI" not in AUDITED


# ------------------------------------------------------------------ passwords, codes

def test_argon2_hashes_verify_and_refuse():
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "correct horse battery")
    assert not passwords.verify(hashed, "correct horse batterY")
    assert not passwords.verify(None, "correct horse battery")       # no account: the same work, refused
    assert not passwords.verify("not a hash", "x")
    assert not passwords.needs_rehash(hashed)


def test_password_policy_names_the_field():
    with pytest.raises(errors.InvalidArgument, match="new_password: at least 12") as caught:
        passwords.check_policy("short", "new_password")
    assert caught.value.pointer == "/new_password"
    with pytest.raises(errors.InvalidArgument):
        passwords.check_policy("x" * 1_000)


def test_codes_are_random_and_typed_forgivingly():
    code = codes.new_code()
    assert code != codes.new_code() and len(code.replace("-", "")) == 32
    assert codes.code_sha256(code.lower().replace("-", " ")) == codes.code_sha256(code)
    assert codes.new_secret(codes.SESSION_TOKEN).startswith("gts_")


# ------------------------------------------------------------------ throttling

POLICY = throttle.ThrottlePolicy(max_failures=5, window_s=900, lockout_s=900)


def fail(times: int, start_ms: int = 0, step_ms: int = 1_000) -> throttle.Failures:
    state = throttle.Failures()
    for i in range(times):
        state = throttle.after_failure(state, start_ms + i * step_ms, POLICY)
    return state


def test_the_fifth_failure_locks_for_fifteen_minutes():
    assert throttle.locked_for_s(fail(4), 4_000) is None
    state = fail(5)
    assert throttle.locked_for_s(state, 4_000) == 900.0
    assert throttle.locked_for_s(state, 4_000 + 899_999) is not None
    assert throttle.locked_for_s(state, 4_000 + 900_000) is None


def test_failures_outside_the_window_start_again():
    state = fail(4, step_ms=1_000)
    state = throttle.after_failure(state, 3_000 + 901_000, POLICY)
    assert state.count == 1 and throttle.locked_for_s(state, 904_001) is None


def test_after_a_lockout_the_count_starts_again():
    state = fail(5)
    state = throttle.after_failure(state, 4_000 + 900_001, POLICY)
    assert state.count == 1


# ------------------------------------------------------------------ errors, audit targets

def test_one_status_table_for_grpc_and_http():
    assert errors.NotFound("x").http_status == 404
    assert errors.Unavailable("db").retriable and errors.Unavailable("db").http_status == 503
    assert errors.ResourceExhausted("locked", retry_after_s=60).http_status == 429
    assert errors.json_pointer("center.latitude_deg") == "/center/latitude_deg"
    assert errors.json_pointer("scopes[2]") == "/scopes/2"
    assert not errors.InvalidArgument("f", "bad").retriable


def test_domain_errors_carry_their_status():
    from services.analytics.localtime import ZoneError
    from services.analytics.service import RangeError
    from services.control.model import Conflict, InvalidArgument
    from services.control.vpp.dispatch import UnknownTarget

    assert RangeError("reversed").grpc_status is grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(RangeError("reversed"), ValueError)
    assert ZoneError("Mars/Olympus").grpc_status is grpc.StatusCode.FAILED_PRECONDITION
    assert UnknownTarget("e").http_status == 404 and Conflict("k").http_status == 409
    assert InvalidArgument("ttl_s", "too long").pointer == "/ttl_s"


def test_the_audit_target_is_what_the_request_names():
    from gridtwin.api.control.v1 import control_pb2, vpp_pb2

    assert target_of(control_pb2.SubmitCommandRequest(installation_id="site-1")) == "site-1"
    assert target_of(vpp_pb2.CreateEventRequest(spec=vpp_pb2.GridEventSpec(program="p.vpp"))) == "p.vpp"
    assert target_of(control_pb2.ListCommandsRequest()) == ""


async def test_the_http_twin_admits_by_the_same_rules():
    from services.access.authentication import Authenticator
    from services.access.http import HttpAccess, problem

    class Tokens:
        async def principal_by_token(self, token_sha256: bytes) -> ApiPrincipal | None:
            return {codes.sha256("gts_home"): HOMEOWNER}.get(token_sha256)

        async def device_credential(self, device_id: str) -> None:
            return None

    http = HttpAccess(Authenticator(Tokens(), cache_s=0))
    get_twin, group_command = "/gridtwin.twins.v1.TwinService/GetTwin", "/gridtwin.control.v1.ControlService/" \
        "SubmitGroupCommand"
    assert await http.admit(get_twin, {}, {"gridtwin_session": "gts_home"}) == HOMEOWNER
    assert await http.admit(get_twin, {"authorization": "Bearer gts_home"}, {}) == HOMEOWNER
    assert await http.admit("/gridtwin.access.v1.AccessService/Login", {}, {}) is None
    with pytest.raises(errors.PermissionDenied) as denied:
        await http.admit(group_command, {"authorization": "Bearer gts_home"}, {})
    assert problem(denied.value)["status"] == 403
    with pytest.raises(errors.Unauthenticated):
        await http.admit(get_twin, {}, {})
    body = problem(errors.InvalidArgument("center.latitude_deg", "out of range"), instance="/api/v1/x")
    assert (body["status"], body["pointer"], body["instance"]) == (400, "/center/latitude_deg", "/api/v1/x")
