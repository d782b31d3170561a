"""Device credential rotation, live: AssetService.RotateDeviceCredential, a real gateway (its
credential cache as in production, shortened) with an ingest consumer, simulated devices.

One device rotates its own credential and reconnects with the new one, losing nothing. Another is
rotated by an operator and keeps presenting the old credential: accepted while the grace lasts,
closed 4001 when it ends, refused at every later Hello and on gRPC (UNAUTHENTICATED)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from websockets.asyncio.client import connect

from actors.handoff import NoTwins
from gridtwin.api.assets.v1 import assets_pb2 as pb
from gridtwin.api.device.v1 import device_pb2 as device_pb
from gridtwin.unixtime import now_ms
from services.access.credentials import CredentialDirectory, register_devices
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations
from tests.integration.assets_client import device_auth

pytestmark = pytest.mark.integration

CACHE_S = 2.0    # the gateway's credential cache (60 s by default): rotations elsewhere act within it
GRACE_S = 4.0


@pytest.fixture
async def gateway(isolated, clean_db):
    gateway = Gateway(isolated.gateway, isolated.kafka, CredentialDirectory(clean_db, cache_s=CACHE_S))
    consumer = IngestConsumer(isolated.ingest, isolated.kafka, TelemetryStore(clean_db, isolated.ingest.max_gap_s),
                              NoTwins())
    async with gateway, consumer:
        yield gateway


async def hello_outcome(url: str, device_id: str, credential: str) -> str | int:
    """"hello_reply" when the gateway admits the credential, else its close code."""
    async with connect(url) as ws:
        hello = device_pb.Hello(device_id=device_id, credential=credential, protocol_version=1)
        await ws.send(device_pb.DeviceFrame(hello=hello).SerializeToString())
        try:
            reply = device_pb.CloudFrame()
            reply.ParseFromString(await ws.recv())
            return reply.WhichOneof("body") or ""
        except Exception:
            await ws.wait_closed()
            return ws.close_code or 0


def outstanding(fleet: Fleet, device_id: str) -> int:
    ledger = fleet.ledger
    return len(ledger.generated[device_id]) - ledger.acknowledged[device_id] - len(ledger.refused[device_id])


async def test_rotation_with_grace_live(gateway, assets, clean_db):
    options = FleetOptions(devices=2, fleet_secret="rotation", id_prefix="rot")
    regs = registrations(options)
    await register_devices(clean_db, regs)
    url = f"ws://127.0.0.1:{gateway.port}"
    fleet = Fleet(options, DeviceOptions(url=url, backoff_initial_s=0.1, backoff_max_s=0.3))
    rotating, lagging = fleet.devices
    async with fleet:
        await fleet.wait_connected(20)
        await asyncio.sleep(1.5)   # streaming; the gateway's cached reads are older than its recheck interval

        # The device rotates its own credential, authenticating with the current one.
        own = await assets.call("RotateDeviceCredential", pb.RotateDeviceCredentialRequest(
            device_id=rotating.device_id, grace_s=GRACE_S),
            metadata=device_auth(rotating.device_id, regs[0].credential))
        # An operator rotates the other device's; that device never learns the new credential.
        operator = await assets.call("RotateDeviceCredential", pb.RotateDeviceCredentialRequest(
            device_id=lagging.device_id, grace_s=GRACE_S))
        grace_ends_ms = operator.previous_valid_until_unix_ms
        assert grace_ends_ms - now_ms() > (GRACE_S - 1) * 1_000
        assert own.credential and operator.credential and own.credential != regs[0].credential

        # The new credential is admitted at once (not only after the cache expires).
        rotating.use_credential(own.credential)
        await rotating.disconnect()
        async with asyncio.timeout(5):
            while rotating.sessions < 2 or not rotating.connected.is_set():
                await asyncio.sleep(0.05)

        # Within the grace, once the gateway's cache has seen the rotation, the old credential still
        # opens a session — one that the gateway closes (4001) when the grace ends.
        await asyncio.sleep(CACHE_S + 0.2)
        assert now_ms() < grace_ends_ms - 500
        await lagging.disconnect()
        async with asyncio.timeout(GRACE_S + 5):
            while lagging.fatal is None:
                await asyncio.sleep(0.05)
        assert now_ms() >= grace_ends_ms
        assert lagging.sessions == 2, "the old credential was accepted within the grace"
        assert lagging.fatal.startswith("closed 4001: credential expired")

        # After the grace: the old credential is refused at every Hello; the new ones are admitted.
        assert await hello_outcome(url, lagging.device_id, regs[1].credential) == 4001
        assert await hello_outcome(url, lagging.device_id, operator.credential) == "hello_reply"
        assert rotating.connected.is_set() and rotating.fatal is None

        # The same on the AssetService's device authentication.
        get = pb.GetDeviceRequest(device_id=lagging.device_id)
        code, detail = await assets.outcome("GetDevice", get, metadata=device_auth(lagging.device_id,
                                                                                    regs[1].credential))
        assert code == grpc.StatusCode.UNAUTHENTICATED, detail
        device = await assets.call("GetDevice", get, metadata=device_auth(lagging.device_id, operator.credential))
        assert device.device_id == lagging.device_id and not device.revoked

        await fleet.stop_streaming()
        async with asyncio.timeout(20):
            while outstanding(fleet, rotating.device_id) > 0:
                await asyncio.sleep(0.05)

    # Nothing the rotating device sent across its reconnect was lost or stored twice.
    generated = sorted(fleet.ledger.generated[rotating.device_id])
    async with asyncio.timeout(20):
        while await clean_db.fetchval("SELECT count(*) FROM telemetry_samples WHERE device_id = $1",
                                      rotating.device_id) < len(generated):
            await asyncio.sleep(0.1)
    stored = [r["ts"] // 1_000 for r in await clean_db.fetch(
        "SELECT ts FROM telemetry_samples WHERE device_id = $1 ORDER BY ts", rotating.device_id)]
    assert stored == generated


async def test_open_sessions_end_when_their_credential_does(isolated, assets, clean_db):
    """Sessions opened before a revocation or a rotation without grace are closed (4001) by the
    gateway's periodic check; everyone else streams on."""
    settings = isolated.gateway.model_copy(update={"revalidate_s": 0.5})
    options = FleetOptions(devices=3, fleet_secret="revalidate", id_prefix="rev")
    await register_devices(clean_db, registrations(options))
    async with Gateway(settings, isolated.kafka, CredentialDirectory(clean_db, cache_s=0.3)) as gateway:
        fleet = Fleet(options, DeviceOptions(url=f"ws://127.0.0.1:{gateway.port}", backoff_initial_s=0.1,
                                             backoff_max_s=0.3))
        revoked, rotated, bystander = fleet.devices
        async with fleet:
            await fleet.wait_connected(20)
            await assets.call("RevokeDevice", pb.RevokeDeviceRequest(device_id=revoked.device_id))
            await assets.call("RotateDeviceCredential", pb.RotateDeviceCredentialRequest(
                device_id=rotated.device_id, grace_s=0))
            async with asyncio.timeout(10):
                while revoked.fatal is None or rotated.fatal is None:
                    await asyncio.sleep(0.05)
            assert revoked.fatal.startswith("closed 4001: credential no longer valid")
            assert rotated.fatal.startswith("closed 4001: credential no longer valid")
            assert revoked.sessions == rotated.sessions == 1
            assert bystander.connected.is_set() and bystander.fatal is None and bystander.sessions == 1
            assert await gateway.revalidate() == 0     # nothing left to close


async def test_rotation_refusals(assets, clean_db):
    await assets.installation("site-r", -120, 37)
    a = await assets.device("site-r", "rot-a")
    b = await assets.device("site-r", "rot-b")
    request = pb.RotateDeviceCredentialRequest

    # A device may rotate only its own credential.
    code, _ = await assets.outcome("RotateDeviceCredential", request(device_id="rot-b"),
                                   metadata=device_auth("rot-a", a.credential))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    for grace_s in (-1.0, float("nan"), float("inf"), 31 * 86_400.0):
        code, detail = await assets.outcome("RotateDeviceCredential", request(device_id="rot-a", grace_s=grace_s))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "grace_s" in detail, (grace_s, detail)

    # Without grace the old credential ends at once; rotating again ends the one in its grace.
    first = await assets.call("RotateDeviceCredential", request(device_id="rot-a"))
    assert first.previous_valid_until_unix_ms <= now_ms()
    code, _ = await assets.outcome("GetDevice", pb.GetDeviceRequest(device_id="rot-a"),
                                   metadata=device_auth("rot-a", a.credential))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    second = await assets.call("RotateDeviceCredential", request(device_id="rot-a", grace_s=600),
                               metadata=device_auth("rot-a", first.credential))
    third = await assets.call("RotateDeviceCredential", request(device_id="rot-a", grace_s=600))
    outcomes = {}
    for name, credential in (("first", first.credential), ("second", second.credential),
                             ("third", third.credential)):
        outcomes[name], _ = await assets.outcome("GetDevice", pb.GetDeviceRequest(device_id="rot-a"),
                                                 metadata=device_auth("rot-a", credential))
    assert outcomes == {"first": grpc.StatusCode.UNAUTHENTICATED, "second": grpc.StatusCode.OK,
                        "third": grpc.StatusCode.OK}

    # A revoked device cannot be given a new credential.
    await assets.call("RevokeDevice", pb.RevokeDeviceRequest(device_id="rot-b"))
    code, _ = await assets.outcome("RotateDeviceCredential", request(device_id="rot-b", grace_s=60))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = await assets.outcome("GetDevice", pb.GetDeviceRequest(device_id="rot-b"),
                                   metadata=device_auth("rot-b", b.credential))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_rotate_from_the_command_line(assets, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from gridtwin.app.cli import app

    await assets.installation("site-c", -120, 37)
    old = await assets.device("site-c", "rot-cli")
    monkeypatch.setenv("GRIDTWIN_ASSETS__PORT", str(assets.api.port))
    monkeypatch.setenv("GRIDTWIN_CONFIG", str(tmp_path / "no-config.toml"))
    result = await asyncio.to_thread(CliRunner().invoke, app, ["--token", assets.root, "assets", "device", "rotate",
                                                               "rot-cli", "--grace-s", "0"])
    assert result.exit_code == 0, result.output
    new = result.stdout.strip().splitlines()[-1]
    codes = {}
    for name, credential in (("old", old.credential), ("new", new)):
        codes[name], _ = await assets.outcome("GetDevice", pb.GetDeviceRequest(device_id="rot-cli"),
                                              metadata=device_auth("rot-cli", credential))
    assert codes == {"old": grpc.StatusCode.UNAUTHENTICATED, "new": grpc.StatusCode.OK}
