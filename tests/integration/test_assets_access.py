"""The access matrix: every AssetService RPC (read from the service descriptor, so a new RPC
cannot be forgotten) × principal (read, command, admin token scoped to groups; a device) ×
in-group / out-of-group, over a real channel. Refused calls change nothing. And every RPC
refuses missing, unknown, expired and revoked credentials."""

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from gridtwin.api.assets.v1 import assets_pb2 as pb
from gridtwin.unixtime import now_ms
from services.access.model import Scope
from services.access.rules import ACCESS
from tests.integration.assets_client import AssetsClient, bearer, device_auth

pytestmark = pytest.mark.integration

SERVICE = pb.DESCRIPTOR.services_by_name["AssetService"]
METHODS = [m.name for m in SERVICE.methods]

IN_GROUP, OUT_GROUP = "utility.pge.north_ca", "utility.sce.la_basin"
IN_PROGRAM, OUT_PROGRAM = "program.pge_vpp", "program.sce_vpp"
TOKEN_PATHS = ("utility.pge", IN_PROGRAM)
SACRAMENTO, LOS_ANGELES = (-121.4944, 38.5816), (-118.2437, 34.0522)
PRINCIPALS = ("read", "command", "admin", "device")
RANK = {"read": 1, "command": 2, "admin": 3}


@dataclass
class World:
    assets: AssetsClient
    metadata: dict[str, tuple[tuple[str, str], ...]]
    serial: itertools.count

    def fresh(self, stem: str) -> str:
        return f"{stem}{next(self.serial)}"

    async def root(self, method: str, request: Any) -> Any:
        return await self.assets.call(method, request)


@pytest.fixture
async def world(assets):
    for group in (IN_GROUP, OUT_GROUP):
        await assets.group(group)
    for program in (IN_PROGRAM, OUT_PROGRAM):
        await assets.call("CreateProgram", pb.CreateProgramRequest(path=program))
    for customer in ("cust-in", "cust-out"):
        await assets.call("CreateCustomer", pb.CreateCustomerRequest(customer_id=customer, name=customer))
    await assets.installation("site-in", *SACRAMENTO, IN_GROUP, customer_id="cust-in")
    await assets.installation("site-out", *LOS_ANGELES, OUT_GROUP, customer_id="cust-out")
    device = await assets.device("site-in", "dev-in")
    await assets.device("site-out", "dev-out")
    metadata = {name: bearer(await assets.token(Scope(name), paths=TOKEN_PATHS, name=name))
                for name in ("read", "command", "admin")}
    metadata["device"] = device_auth("dev-in", device.credential)
    return World(assets, metadata, itertools.count())


Build = Callable[[World, bool], Awaitable[Any]]


def side(inside: bool, a: Any, b: Any) -> Any:
    return a if inside else b


def box_around(point: tuple[float, float]) -> dict[str, float]:
    lon, lat = point
    return {"min_longitude_deg": lon - 0.1, "min_latitude_deg": lat - 0.1,
            "max_longitude_deg": lon + 0.1, "max_latitude_deg": lat + 0.1}


def square_around(point: tuple[float, float]) -> str:
    lon, lat = point
    return (f"POLYGON (({lon - 0.1} {lat - 0.1}, {lon + 0.1} {lat - 0.1}, {lon + 0.1} {lat + 0.1}, "
            f"{lon - 0.1} {lat + 0.1}, {lon - 0.1} {lat - 0.1}))")


async def fresh_installation(w: World, inside: bool) -> str:
    site = w.fresh("site-")
    await w.assets.installation(site, *side(inside, SACRAMENTO, LOS_ANGELES), side(inside, IN_GROUP, OUT_GROUP))
    return site


async def fresh_group(w: World, inside: bool) -> str:
    path = f"{side(inside, 'utility.pge', 'utility.sce')}.{w.fresh('g')}"
    await w.assets.group(path)
    return path


async def remove_case(w: World, inside: bool) -> pb.RemoveFromGroupRequest:
    path = await fresh_group(w, inside)
    site = side(inside, "site-in", "site-out")
    await w.root("AddToGroup", pb.AddToGroupRequest(installation_id=site, path=path))
    return pb.RemoveFromGroupRequest(installation_id=site, path=path)


async def revoke_device_case(w: World, inside: bool) -> pb.RevokeDeviceRequest:
    serial = w.fresh("dev-")
    await w.assets.device(side(inside, "site-in", "site-out"), serial)
    return pb.RevokeDeviceRequest(device_id=serial)


async def claim_device_case(w: World, inside: bool) -> pb.ClaimDeviceRequest:
    created = await w.root("CreateDeviceClaim", pb.CreateDeviceClaimRequest(
        installation_id=side(inside, "site-in", "site-out"), serial=w.fresh("claimed-")))
    return pb.ClaimDeviceRequest(claim_code=created.claim_code)


async def rotate_credential_case(w: World, inside: bool) -> pb.RotateDeviceCredentialRequest:
    serial = w.fresh("dev-")   # a fresh device: the world's device keeps its credential
    await w.assets.device(side(inside, "site-in", "site-out"), serial)
    return pb.RotateDeviceCredentialRequest(device_id=serial, grace_s=60)


async def enrollment_case(w: World, inside: bool) -> pb.ChangeEnrollmentRequest:
    return pb.ChangeEnrollmentRequest(installation_id=await fresh_installation(w, inside),
                                      program=side(inside, IN_PROGRAM, OUT_PROGRAM),
                                      target=pb.ENROLLMENT_STATE_ELIGIBLE)


async def revoke_token_case(w: World, inside: bool) -> pb.RevokeTokenRequest:
    name = w.fresh("victim-")
    await w.assets.token(Scope.READ, paths=(side(inside, IN_GROUP, OUT_GROUP),), name=name)
    principal_id = await w.assets.pool.fetchval("SELECT principal_id FROM api_principals WHERE name = $1", name)
    return pb.RevokeTokenRequest(principal_id=principal_id)


async def const(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Case:
    scope: str                  # the least scope the RPC needs (written out here, not taken from the code)
    build: Build
    kind: str = "refuses"       # refuses: out-of-group is PERMISSION_DENIED; filters: answered without it;
                                # unscoped: not about groups at all; anonymous: anyone (the request holds a secret)


CASES: dict[str, Case] = {
    "CreateCustomer": Case("admin", lambda w, i: const(pb.CreateCustomerRequest(
        customer_id=w.fresh("cust-"), name="New Customer")), kind="unscoped"),
    "GetCustomer": Case("read", lambda w, i: const(pb.GetCustomerRequest(customer_id=side(i, "cust-in", "cust-out")))),
    "CreateInstallation": Case("admin", lambda w, i: const(pb.CreateInstallationRequest(
        installation=pb.Installation(installation_id=w.fresh("new-"), time_zone="UTC",
                                     location=pb.GeoPoint(longitude_deg=-120, latitude_deg=37)),
        group_paths=[side(i, IN_GROUP, OUT_GROUP)]))),
    "GetInstallation": Case("read", lambda w, i: const(pb.GetInstallationRequest(
        installation_id=side(i, "site-in", "site-out")))),
    "UpdateInstallationSettings": Case("command", lambda w, i: const(pb.UpdateInstallationSettingsRequest(
        installation_id=side(i, "site-in", "site-out"), backup_reserve_pct=35))),
    "SearchInstallationsInBox": Case("read", lambda w, i: const(pb.SearchInstallationsInBoxRequest(
        **box_around(side(i, SACRAMENTO, LOS_ANGELES)))), kind="filters"),
    "SearchInstallationsInPolygon": Case("read", lambda w, i: const(pb.SearchInstallationsInPolygonRequest(
        polygon_wkt=square_around(side(i, SACRAMENTO, LOS_ANGELES)))), kind="filters"),
    "SearchInstallationsNear": Case("read", lambda w, i: const(pb.SearchInstallationsNearRequest(
        center=pb.GeoPoint(longitude_deg=side(i, SACRAMENTO, LOS_ANGELES)[0],
                           latitude_deg=side(i, SACRAMENTO, LOS_ANGELES)[1]), radius_m=10_000)), kind="filters"),
    "RegisterDevice": Case("admin", lambda w, i: const(pb.RegisterDeviceRequest(
        installation_id=side(i, "site-in", "site-out"), serial=w.fresh("serial-")))),
    "GetDevice": Case("read", lambda w, i: const(pb.GetDeviceRequest(device_id=side(i, "dev-in", "dev-out")))),
    "ListDevices": Case("read", lambda w, i: const(pb.ListDevicesRequest(
        installation_id=side(i, "site-in", "site-out")))),
    "RevokeDevice": Case("admin", revoke_device_case),
    "RotateDeviceCredential": Case("admin", rotate_credential_case),   # devices: their own only (not this one)
    "CreateDeviceClaim": Case("admin", lambda w, i: const(pb.CreateDeviceClaimRequest(
        installation_id=side(i, "site-in", "site-out"), serial=w.fresh("claim-")))),
    "ClaimDevice": Case("read", claim_device_case, kind="anonymous"),
    "CreateGroup": Case("admin", lambda w, i: const(pb.CreateGroupRequest(
        path=f"{side(i, 'utility.pge', 'utility.sce')}.{w.fresh('new')}"))),
    "ListGroups": Case("read", lambda w, i: const(pb.ListGroupsRequest(path=side(i, "utility.pge", "utility.sce")))),
    "AddToGroup": Case("admin", lambda w, i: fresh_group(w, i)),  # completed in `request_for`
    "RemoveFromGroup": Case("admin", remove_case),
    "ListGroupInstallations": Case("read", lambda w, i: const(pb.ListGroupInstallationsRequest(
        path=side(i, IN_GROUP, OUT_GROUP)))),
    "ListInstallationGroups": Case("read", lambda w, i: const(pb.ListInstallationGroupsRequest(
        installation_id=side(i, "site-in", "site-out")))),
    "CreateProgram": Case("admin", lambda w, i: const(pb.CreateProgramRequest(
        path=f"{side(i, 'utility.pge', 'utility.sce')}.{w.fresh('vpp')}"))),
    "ChangeEnrollment": Case("command", enrollment_case),
    "GetEnrollment": Case("read", lambda w, i: const(pb.GetEnrollmentRequest(
        installation_id=side(i, "site-in", "site-out"), program=side(i, IN_PROGRAM, OUT_PROGRAM)))),
    "ListEnrollmentHistory": Case("read", lambda w, i: const(pb.ListEnrollmentHistoryRequest(
        installation_id=side(i, "site-in", "site-out"), program=side(i, IN_PROGRAM, OUT_PROGRAM)))),
    "CreateToken": Case("admin", lambda w, i: const(pb.CreateTokenRequest(
        name=w.fresh("issued-"), scopes=[pb.SCOPE_READ], allowed_paths=[side(i, IN_GROUP, OUT_GROUP)]))),
    "RevokeToken": Case("admin", revoke_token_case),
}


async def request_for(method: str, w: World, inside: bool) -> Any:
    built = await CASES[method].build(w, inside)
    if method == "AddToGroup":
        return pb.AddToGroupRequest(installation_id=side(inside, "site-in", "site-out"), path=built)
    return built


def expected(method: str, principal: str, inside: bool) -> grpc.StatusCode:
    case = CASES[method]
    if case.kind == "anonymous":
        return grpc.StatusCode.OK
    if principal == "device":
        own = method in ("GetDevice", "GetInstallation") and inside
        return grpc.StatusCode.OK if own else grpc.StatusCode.PERMISSION_DENIED
    if RANK[principal] < RANK[case.scope]:
        return grpc.StatusCode.PERMISSION_DENIED
    if inside or case.kind in ("filters", "unscoped"):
        return grpc.StatusCode.OK
    return grpc.StatusCode.PERMISSION_DENIED


def test_every_rpc_has_a_case():
    assert set(CASES) == set(METHODS)


@pytest.mark.parametrize("method", METHODS)
async def test_access_matrix(world, method):
    w = world
    for principal, inside in itertools.product(PRINCIPALS, (True, False)):
        request = await request_for(method, w, inside)
        before = await w.assets.counts()
        code, answer = await w.assets.outcome(method, request, metadata=w.metadata[principal])
        want = expected(method, principal, inside)
        assert code == want, (method, principal, "in group" if inside else "out of group", answer)
        if code != grpc.StatusCode.OK:
            assert await w.assets.counts() == before, (method, principal, inside)
        elif CASES[method].kind == "filters":
            found = [getattr(i, "installation", i).installation_id for i in answer.installations]
            assert found == (["site-in"] if inside else []), (method, principal, found)


@pytest.mark.parametrize("method", METHODS)
async def test_every_rpc_refuses_bad_credentials(assets, method):
    request = getattr(pb, SERVICE.methods_by_name[method].input_type.name)()
    await assets.group("utility.x")
    await assets.installation("site-1", -120, 37, "utility.x")
    device = await assets.device("site-1", "dev-1")
    await assets.call("RevokeDevice", pb.RevokeDeviceRequest(device_id="dev-1"))
    expired = await assets.token(Scope.ADMIN, expires_unix_ms=now_ms() - 1_000)
    revoked = await assets.token(Scope.ADMIN, name="revoked")
    principal_id = await assets.pool.fetchval("SELECT principal_id FROM api_principals WHERE name = 'revoked'")
    await assets.repository.revoke_principal(principal_id)
    await assets.device("site-1", "dev-2")
    variants = {
        "none": (),
        "basic": (("authorization", "Basic dXNlcjpwdw=="),),
        "empty bearer": (("authorization", "Bearer "),),
        "unknown token": bearer("gta_not-a-token"),
        "expired token": bearer(expired),
        "revoked token": bearer(revoked),
        "wrong device credential": device_auth("dev-2", "guess"),
        "revoked device": device_auth("dev-1", device.credential),
        "unknown device": device_auth("dev-9", device.credential),
    }
    for name, metadata in variants.items():
        code, detail = await assets.outcome(method, request, metadata=metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (method, name, code, detail)
    code, detail = await assets.outcome(method, request, metadata=bearer(expired))
    # An anonymous method (ClaimDevice) ignores credentials: its request's own secret is refused.
    assert detail == ("token expired" if not ACCESS[f"/{SERVICE.full_name}/{method}"].anonymous
                      else "not a claim code (20 symbols such as 7KQ2-M9XD-3HFA-0RTW-PZ4C)")
