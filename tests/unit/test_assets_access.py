"""Access decisions as pure values: scopes per RPC, devices, visibility, paths, delegation."""

import pytest

from gridtwin.api.assets.v1 import assets_pb2 as pb
from services.access.model import ApiPrincipal, Denied, DevicePrincipal, Scope, Visibility, effective_scopes
from services.access.rules import (
    DEVICE_METHODS,
    REQUIRED_SCOPE,
    authorize,
    check_grant,
    check_path,
    is_expired,
    visibility,
)
from services.assets.model import DeviceId, GroupPath, InstallationId, PrincipalId

METHODS = [m.name for m in pb.DESCRIPTOR.services_by_name["AssetService"].methods]
RANK = {Scope.READ: 1, Scope.COMMAND: 2, Scope.ADMIN: 3}


def token(*scopes: Scope, paths: tuple[str, ...] = ("utility.pge",), expires: int | None = None) -> ApiPrincipal:
    return ApiPrincipal(PrincipalId("tok-1"), "test", frozenset(scopes), tuple(GroupPath(p) for p in paths), expires)


DEVICE = DevicePrincipal(DeviceId("dev-1"), InstallationId("site-1"))


def test_every_rpc_of_the_service_has_a_required_scope():
    assert set(REQUIRED_SCOPE) == set(METHODS)
    assert set(METHODS) >= DEVICE_METHODS


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scope", list(Scope))
def test_scopes_nest(method, scope):
    allowed = authorize(token(scope), method) is None
    assert allowed == (RANK[scope] >= RANK[REQUIRED_SCOPE[method]])


@pytest.mark.parametrize("method", METHODS)
def test_devices_may_only_read_themselves(method):
    decision = authorize(DEVICE, method)
    assert (decision is None) == (method in {"GetDevice", "GetInstallation", "RotateDeviceCredential"})


def test_unknown_method_and_denial_reason():
    assert authorize(token(Scope.ADMIN), "DropEverything") == Denied("DropEverything is not an assets operation")
    assert authorize(token(Scope.READ), "CreateGroup") == Denied("CreateGroup needs the admin scope")


def test_effective_scopes():
    assert effective_scopes([Scope.ADMIN]) == {Scope.READ, Scope.COMMAND, Scope.ADMIN}
    assert effective_scopes([Scope.COMMAND]) == {Scope.READ, Scope.COMMAND}
    assert effective_scopes([]) == frozenset()


def test_visibility():
    assert visibility(token(Scope.READ, paths=("",))) == Visibility(everything=True)
    assert visibility(token(Scope.READ, paths=("utility.pge", "program.vpp"))) == Visibility(
        paths=(GroupPath("utility.pge"), GroupPath("program.vpp")))
    assert visibility(DEVICE) == Visibility(installation_ids=(InstallationId("site-1"),))


def test_paths():
    reader = token(Scope.READ, paths=("utility.pge",))
    assert check_path(reader, GroupPath("utility.pge")) is None
    assert check_path(reader, GroupPath("utility.pge.north_ca.sacramento")) is None
    assert check_path(reader, GroupPath("utility.sce")) is not None
    assert check_path(reader, GroupPath("utility")) is not None          # a parent is wider, not within
    assert check_path(reader, GroupPath("utility.pge_x")) is not None
    assert check_path(token(Scope.READ, paths=("",)), GroupPath("anything.at.all")) is None
    assert check_path(DEVICE, GroupPath("utility.pge")) is not None


def test_a_token_grants_no_more_than_it_holds():
    admin = token(Scope.ADMIN, paths=("utility.pge",))
    assert check_grant(admin, [Scope.READ, Scope.COMMAND], [GroupPath("utility.pge.north_ca")]) is None
    assert check_grant(admin, [Scope.ADMIN], [GroupPath("utility.pge")]) is None
    assert check_grant(admin, [Scope.READ], [GroupPath("utility.sce")]) is not None
    assert check_grant(admin, [Scope.READ], [GroupPath("")]) is not None      # the root is wider than any path
    commander = token(Scope.COMMAND, paths=("",))
    denied = check_grant(commander, [Scope.ADMIN], [GroupPath("x")])
    assert denied == Denied("cannot grant scopes this token lacks: admin")
    assert check_grant(DEVICE, [Scope.READ], [GroupPath("x")]) is not None


def test_expiry():
    assert not is_expired(token(Scope.READ), 10**15)
    assert not is_expired(token(Scope.READ, expires=1_000), 999)
    assert is_expired(token(Scope.READ, expires=1_000), 1_000)
    assert not is_expired(DEVICE, 10**15)
