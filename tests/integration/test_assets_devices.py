"""Devices and their credentials: the websocket gateway authenticates against the assets
service's device registry; devices see only themselves; the simulator's provisioning path
(`register_devices`, `gridtwin devices provision`) keeps working and meets the demo seed."""

import grpc
import pytest

from gridtwin.api.assets.v1 import assets_pb2 as pb
from gridtwin.app.cli import _provision
from services.access.credentials import CredentialDirectory, DeviceRegistration, fleet_credential, register_devices
from services.assets import bulk
from services.assets.seed import FleetPlan, demo_fleet
from services.telemetry.session import DeviceIdentity
from tests.integration.assets_client import device_auth

pytestmark = pytest.mark.integration


async def test_the_gateway_authenticates_devices_registered_through_the_api(assets):
    await assets.group("utility.pge")
    await assets.installation("site-1", -121.5, 38.5, "utility.pge")
    registered = await assets.call("RegisterDevice", pb.RegisterDeviceRequest(
        installation_id="site-1", serial="TG123", kind=pb.DEVICE_KIND_GATEWAY, firmware="23.44.0"))
    assert registered.device.device_id == "TG123"       # the serial, unless a device id is given
    assert len(registered.credential) >= 43              # 256 random bits
    stored = await assets.pool.fetchrow("SELECT * FROM devices WHERE device_id = 'TG123'")
    assert registered.credential.encode() not in bytes(stored["credential_sha256"])
    assert (stored["serial"], stored["kind"], stored["firmware"]) == ("TG123", "gateway", "23.44.0")

    directory = CredentialDirectory(assets.pool, cache_s=0)
    assert await directory.authenticate("TG123", registered.credential) == DeviceIdentity("TG123", "site-1")
    assert await directory.authenticate("TG123", "guess") == "bad_credential"
    revoked = await assets.call("RevokeDevice", pb.RevokeDeviceRequest(device_id="TG123"))
    assert revoked.revoked
    assert await directory.authenticate("TG123", registered.credential) == "unknown_device"


async def test_devices_see_only_themselves(assets):
    await assets.group("utility.pge")
    await assets.installation("site-1", -121.5, 38.5, "utility.pge")
    await assets.installation("site-2", -121.6, 38.6, "utility.pge")
    me = await assets.device("site-1", "dev-me")
    await assets.device("site-1", "dev-sibling")        # same installation, still not mine
    await assets.device("site-2", "dev-other")
    mine = device_auth("dev-me", me.credential)

    answer = await assets.call("GetDevice", pb.GetDeviceRequest(device_id="dev-me"), metadata=mine)
    assert (answer.device_id, answer.installation_id) == ("dev-me", "site-1")
    answer = await assets.call("GetInstallation", pb.GetInstallationRequest(installation_id="site-1"), metadata=mine)
    assert answer.installation_id == "site-1"
    for method, request in [
        ("GetDevice", pb.GetDeviceRequest(device_id="dev-sibling")),
        ("GetDevice", pb.GetDeviceRequest(device_id="dev-other")),
        ("GetInstallation", pb.GetInstallationRequest(installation_id="site-2")),
        ("ListDevices", pb.ListDevicesRequest(installation_id="site-1")),
        ("ListInstallationGroups", pb.ListInstallationGroupsRequest(installation_id="site-1")),
    ]:
        code, _ = await assets.outcome(method, request, metadata=mine)
        assert code == grpc.StatusCode.PERMISSION_DENIED, (method, request)


async def test_devices_of_an_installation_page_by_id(assets):
    await assets.group("utility.pge")
    await assets.installation("site-1", -121.5, 38.5, "utility.pge")
    await assets.installation("site-2", -121.6, 38.6, "utility.pge")
    for i in range(11):
        await assets.device("site-1", f"dev-{(i * 7) % 11:02d}")
    await assets.device("site-2", "dev-elsewhere")
    request, walked, pages = pb.ListDevicesRequest(installation_id="site-1", page_size=4), [], 0
    while True:
        answer = await assets.call("ListDevices", request)
        assert len(answer.devices) <= 4
        walked.extend(d.device_id for d in answer.devices)
        pages += 1
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    assert walked == [f"dev-{i:02d}" for i in range(11)] and pages == 3   # all, once, by id
    whole = await assets.call("ListDevices", pb.ListDevicesRequest(installation_id="site-1"))
    assert [d.device_id for d in whole.devices] == walked and whole.next_page_token == ""

    token = (await assets.call("ListDevices", pb.ListDevicesRequest(installation_id="site-1", page_size=4))
             ).next_page_token
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    for request in (pb.ListDevicesRequest(installation_id="site-2", page_token=token),     # another query
                    pb.ListDevicesRequest(installation_id="site-1", page_token=tampered),
                    pb.ListDevicesRequest(installation_id="site-1", page_token="dev-03"),
                    pb.ListDevicesRequest(installation_id="site-1", page_size=10_001)):
        code, detail = await assets.outcome("ListDevices", request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, detail)


async def test_register_devices_creates_minimal_installations_and_rotates(assets):
    regs = [DeviceRegistration(f"sim-dev-{i}", f"sim-site-{i}", f"secret-{i}") for i in range(3)]
    assert await register_devices(assets.pool, regs) == 3
    rows = await assets.pool.fetch("SELECT installation_id, location, customer_id FROM installations ORDER BY 1")
    assert [(r["installation_id"], r["location"], r["customer_id"]) for r in rows] == [
        (f"sim-site-{i}", None, None) for i in range(3)]
    devices = await assets.pool.fetch("SELECT device_id, serial, kind FROM devices ORDER BY 1")
    assert [tuple(d) for d in devices] == [(f"sim-dev-{i}", f"sim-dev-{i}", "gateway") for i in range(3)]
    # an installation without location is readable but never found by geosearch
    answer = await assets.call("GetInstallation", pb.GetInstallationRequest(installation_id="sim-site-0"))
    assert not answer.HasField("location") and not answer.HasField("battery_nominal_energy_wh")
    found = await assets.call("SearchInstallationsInBox", pb.SearchInstallationsInBoxRequest(
        min_longitude_deg=-180, min_latitude_deg=-90, max_longitude_deg=180, max_latitude_deg=90))
    assert list(found.installations) == []

    # rotation: a new credential replaces the old one, and the device is un-revoked
    await assets.pool.execute("UPDATE devices SET revoked_at = now() WHERE device_id = 'sim-dev-0'")
    await register_devices(assets.pool, [DeviceRegistration("sim-dev-0", "sim-site-0", "rotated")])
    directory = CredentialDirectory(assets.pool, cache_s=0)
    assert await directory.authenticate("sim-dev-0", "rotated") == DeviceIdentity("sim-dev-0", "sim-site-0")
    assert await directory.authenticate("sim-dev-0", "secret-0") == "bad_credential"


async def test_provisioning_and_the_demo_seed_meet(assets, assets_engine, platform):
    """`gridtwin up` provisions demo devices; the seed then places their installations (and the
    other way round), and the simulator's credentials keep working either way."""
    secret = platform.simulator.fleet_secret
    assert await _provision(platform, 5, "demo") == 5
    data = demo_fleet(FleetPlan(installations=20, prefix="demo", fleet_secret=secret))
    result = await bulk.load(assets_engine, data, actor="test")
    assert (result.installations, result.devices) == (20, 20)
    placed = await assets.call("GetInstallation", pb.GetInstallationRequest(installation_id="demo-site-00003"))
    assert placed.HasField("location") and placed.time_zone.startswith("America/")
    assert await _provision(platform, 5, "demo") == 5   # again, after the seed: keeps the seeded serial
    assert await assets.pool.fetchval("SELECT serial FROM devices WHERE device_id = 'demo-dev-00003'") == \
        "DEMO-GW-000003"
    directory = CredentialDirectory(assets.pool, cache_s=0)
    for i in (0, 3, 19):
        device = f"demo-dev-{i:05d}"
        assert await directory.authenticate(device, fleet_credential(secret, device)) == DeviceIdentity(
            device, f"demo-site-{i:05d}")
