"""Bad input through the AssetService: invalid ltree labels, coordinates out of range, duplicate
ids and serials, unknown ids. Each gets a clear gRPC error and leaves every table as it was."""

import math

import grpc
import pytest

from gridtwin.api.assets.v1 import assets_pb2 as pb
from services.assets import bulk
from services.assets.errors import FailedPrecondition, NotFound
from services.assets.model import (
    Customer,
    CustomerId,
    EnrollmentState,
    GeoPoint,
    GroupPath,
    Installation,
    InstallationId,
)

pytestmark = pytest.mark.integration

INVALID, NOT_FOUND, EXISTS, PRECONDITION = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                            grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION)


@pytest.fixture
async def world(assets):
    await assets.group("utility.pge")
    await assets.call("CreateProgram", pb.CreateProgramRequest(path="program.vpp"))
    await assets.call("CreateCustomer", pb.CreateCustomerRequest(customer_id="cust-1", name="Ana"))
    await assets.installation("site-1", -121.5, 38.5, "utility.pge", customer_id="cust-1")
    await assets.device("site-1", "SN-1")
    return assets


async def refused(assets, method, request, code, *fragments):
    before = await assets.counts()
    got, detail = await assets.outcome(method, request)
    assert got == code, (method, detail)
    for fragment in fragments:
        assert fragment in detail, (method, detail)
    assert await assets.counts() == before, method


def new_installation(installation_id="site-2", lon=-121.0, lat=38.0, time_zone="UTC", **fields):
    return pb.Installation(installation_id=installation_id, time_zone=time_zone,
                           location=pb.GeoPoint(longitude_deg=lon, latitude_deg=lat), **fields)


async def test_invalid_ltree_labels_are_named(world):
    cases = [
        ("CreateGroup", pb.CreateGroupRequest(path="utility.pg-e"), "path: invalid ltree label 'pg-e'"),
        ("CreateGroup", pb.CreateGroupRequest(path="utility..pge"), "invalid ltree label ''"),
        ("CreateGroup", pb.CreateGroupRequest(path="utility.pgé"), "'pgé'"),
        ("CreateGroup", pb.CreateGroupRequest(path=""), "at least one label"),
        ("ListGroups", pb.ListGroupsRequest(path="utility.*"), "'*'"),
        ("AddToGroup", pb.AddToGroupRequest(installation_id="site-1", path="a.b c"), "'b c'"),
        ("ListGroupInstallations", pb.ListGroupInstallationsRequest(path="x;DROP TABLE installations"), "DROP"),
        ("CreateInstallation", pb.CreateInstallationRequest(installation=new_installation(),
                                                            group_paths=["utility.pge", "utility.s-ce"]),
         "group_paths[1]: invalid ltree label 's-ce'"),
        ("CreateProgram", pb.CreateProgramRequest(path="program.ca-vpp"), "'ca-vpp'"),
        ("ChangeEnrollment", pb.ChangeEnrollmentRequest(installation_id="site-1", program="program.v pp",
                                                        target=pb.ENROLLMENT_STATE_ELIGIBLE), "program: "),
        ("CreateToken", pb.CreateTokenRequest(name="t", scopes=[pb.SCOPE_READ], allowed_paths=["a", "b-c"]),
         "allowed_paths[1]: invalid ltree label 'b-c'"),
    ]
    for method, request, fragment in cases:
        await refused(world, method, request, INVALID, fragment)


async def test_coordinates_and_values_out_of_range(world):
    cases = [
        (new_installation(lat=91), "location.latitude"),
        (new_installation(lon=-180.5), "location.longitude"),
        (new_installation(lon=math.nan), "location.longitude"),
        (new_installation(lat=math.inf), "location.latitude"),
        (pb.Installation(installation_id="site-2", time_zone="UTC"), "location: required"),
        (new_installation(time_zone="Europe/Atlantis"), "time_zone"),
        (new_installation(backup_reserve_pct=120), "backup_reserve_pct"),
        (new_installation(battery_nominal_energy_wh=-5), "battery_nominal_energy_wh"),
        (new_installation(priority=7), "priority: unknown"),
        (new_installation(installation_id="site 2"), "installation_id"),
    ]
    for installation, fragment in cases:
        await refused(world, "CreateInstallation", pb.CreateInstallationRequest(
            installation=installation, group_paths=["utility.pge"]), INVALID, fragment)
    await refused(world, "UpdateInstallationSettings", pb.UpdateInstallationSettingsRequest(
        installation_id="site-1", backup_reserve_pct=-1), INVALID, "backup_reserve_pct")
    await refused(world, "RegisterDevice", pb.RegisterDeviceRequest(installation_id="site-1", serial="SN-2", kind=9),
                  INVALID, "kind")
    await refused(world, "CreateToken", pb.CreateTokenRequest(name="t", scopes=[], allowed_paths=[""]), INVALID,
                  "scopes")
    await refused(world, "CreateToken", pb.CreateTokenRequest(name="t", scopes=[pb.SCOPE_READ], allowed_paths=[""],
                                                              expires_unix_ms=1), INVALID, "in the past")


async def test_duplicates(world):
    await refused(world, "RegisterDevice", pb.RegisterDeviceRequest(installation_id="site-1", serial="SN-1",
                                                                    device_id="other-device"),
                  EXISTS, "serial 'SN-1' is already registered")
    await refused(world, "RegisterDevice", pb.RegisterDeviceRequest(installation_id="site-1", serial="SN-9",
                                                                    device_id="SN-1"),
                  EXISTS, "device id 'SN-1' is already registered")
    await refused(world, "CreateInstallation", pb.CreateInstallationRequest(
        installation=new_installation("site-1"), group_paths=["utility.pge"]), EXISTS, "site-1")
    await refused(world, "CreateCustomer", pb.CreateCustomerRequest(customer_id="cust-1", name="Ben"), EXISTS,
                  "cust-1")
    await refused(world, "CreateGroup", pb.CreateGroupRequest(path="utility.pge"), EXISTS, "utility.pge")
    await refused(world, "CreateProgram", pb.CreateProgramRequest(path="program.vpp"), EXISTS, "program.vpp")


async def test_unknown_ids(world):
    cases = [
        ("GetInstallation", pb.GetInstallationRequest(installation_id="nope"), "installation 'nope' does not exist"),
        ("GetCustomer", pb.GetCustomerRequest(customer_id="nope"), "customer 'nope' does not exist"),
        ("GetDevice", pb.GetDeviceRequest(device_id="nope"), "device 'nope' does not exist"),
        ("RevokeDevice", pb.RevokeDeviceRequest(device_id="nope"), "device 'nope'"),
        ("ListDevices", pb.ListDevicesRequest(installation_id="nope"), "installation 'nope'"),
        ("RegisterDevice", pb.RegisterDeviceRequest(installation_id="nope", serial="SN-7"), "installation 'nope'"),
        ("UpdateInstallationSettings", pb.UpdateInstallationSettingsRequest(installation_id="nope",
                                                                            stormwatch_enabled=False), "'nope'"),
        ("AddToGroup", pb.AddToGroupRequest(installation_id="nope", path="utility.pge"), "installation 'nope'"),
        ("AddToGroup", pb.AddToGroupRequest(installation_id="site-1", path="utility.sce"), "group 'utility.sce'"),
        ("ListGroupInstallations", pb.ListGroupInstallationsRequest(path="utility.sce"), "group 'utility.sce'"),
        ("ListInstallationGroups", pb.ListInstallationGroupsRequest(installation_id="nope"), "'nope'"),
        ("GetEnrollment", pb.GetEnrollmentRequest(installation_id="site-1", program="program.none"),
         "program 'program.none' does not exist"),
        ("ListEnrollmentHistory", pb.ListEnrollmentHistoryRequest(installation_id="nope", program="program.vpp"),
         "installation 'nope'"),
        ("RevokeToken", pb.RevokeTokenRequest(principal_id="tok-nope"), "token 'tok-nope' does not exist"),
    ]
    for method, request, fragment in cases:
        await refused(world, method, request, NOT_FOUND, fragment)


async def test_nothing_half_written(world):
    # the first group exists, the second does not: no installation, no membership
    await refused(world, "CreateInstallation", pb.CreateInstallationRequest(
        installation=new_installation(), group_paths=["utility.pge", "utility.missing"]), NOT_FOUND, "utility.missing")
    await refused(world, "CreateInstallation", pb.CreateInstallationRequest(
        installation=new_installation(customer_id="cust-9"), group_paths=["utility.pge"]), NOT_FOUND, "cust-9")
    await refused(world, "CreateInstallation", pb.CreateInstallationRequest(
        installation=new_installation(), group_paths=["utility.pge", "program.vpp.enrolled"]), PRECONDITION,
        "ChangeEnrollment")
    # a new program nested in another: neither its ancestors nor its state groups appear
    await refused(world, "CreateProgram", pb.CreateProgramRequest(path="program.vpp.pilot.inner"), PRECONDITION,
                  "program.vpp")


async def test_a_bulk_load_with_one_bad_part_writes_nothing(world, assets_engine):
    installations = [Installation(InstallationId(f"bulk-{i}"), location=GeoPoint(-120, 37), time_zone="UTC")
                     for i in range(50)]
    before = await world.counts()
    with pytest.raises(NotFound, match="cust-missing"):
        await bulk.load(assets_engine, bulk.FleetData(
            customers=[Customer(CustomerId("cust-2"), "Ben")],
            installations=[*installations, Installation(InstallationId("bulk-x"), CustomerId("cust-missing"),
                                                        GeoPoint(0, 0))]), actor="test")
    with pytest.raises(FailedPrecondition, match="program"):
        await bulk.load(assets_engine, bulk.FleetData(
            installations=installations,
            memberships=[(InstallationId("bulk-1"), GroupPath("program.vpp.enrolled"))]), actor="test")
    duplicate_serial = bulk.DeviceRecord("dev-new", InstallationId("bulk-1"), "SN-1", "gateway", "", b"x" * 32)
    with pytest.raises(Exception, match="serial"):
        await bulk.load(assets_engine, bulk.FleetData(installations=installations, devices=[duplicate_serial]),
                        actor="test")
    assert await world.counts() == before
    # and a good one lands whole, enrollment with its legal history
    result = await bulk.load(assets_engine, bulk.FleetData(
        installations=installations, memberships=[(InstallationId("bulk-1"), GroupPath("utility.pge.new"))],
        enrollments=[(InstallationId("bulk-2"), GroupPath("program.vpp"), EnrollmentState.ENROLLED)]), actor="test")
    assert (result.installations, result.memberships, result.enrollments, result.audit_entries) == (50, 1, 1, 3)
