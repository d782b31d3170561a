"""Devices → gateway → broker → ingest consumer → Postgres, on the real components."""

import asyncio

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect

from actors.handoff import NoTwins
from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.unixtime import now_ms
from services.access.credentials import CredentialDirectory, register_devices
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(isolated, clean_db):
    """A gateway and an ingest consumer in this process, against the real broker and Postgres."""
    gateway = Gateway(isolated.gateway, isolated.kafka, CredentialDirectory(clean_db))
    store = TelemetryStore(clean_db, isolated.ingest.max_gap_s)
    consumer = IngestConsumer(isolated.ingest, isolated.kafka, store, NoTwins())
    async with gateway, consumer:
        yield gateway, consumer


async def stored_timestamps(pool) -> dict[str, list[int]]:
    rows = await pool.fetch("SELECT device_id, ts FROM telemetry_samples ORDER BY device_id, ts")
    out: dict[str, list[int]] = {}
    for r in rows:
        out.setdefault(r["device_id"], []).append(r["ts"] // 1_000)
    return out


async def wait_stored(pool, expected: int, timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while await pool.fetchval("SELECT count(*) FROM telemetry_samples") < expected:
            await asyncio.sleep(0.1)


async def test_fleet_samples_are_stored_exactly_once_across_a_disconnect(running, clean_db):
    gateway, _ = running
    options = FleetOptions(devices=20, fleet_secret="test-fleet", id_prefix="it")
    await register_devices(clean_db, registrations(options))
    fleet = Fleet(options, DeviceOptions(url=f"ws://127.0.0.1:{gateway.port}", backoff_initial_s=0.2, backoff_max_s=1))
    async with fleet:
        await fleet.wait_connected(30)
        await asyncio.sleep(3)
        await fleet.disconnect(range(0, 20, 2), offline_s=2)  # half the fleet goes dark for 2 s
        await asyncio.sleep(4)
        await fleet.stop_streaming()
        await fleet.wait_drained(30)
    ledger = fleet.ledger
    assert ledger.refused_total() == 0
    await wait_stored(clean_db, ledger.generated_total())
    stored = await stored_timestamps(clean_db)
    assert stored == {d: sorted(ts) for d, ts in ledger.generated.items()}
    assert min(d.sessions for d in fleet.devices[0:20:2]) >= 2  # they really reconnected
    rollup_count = await clean_db.fetchval("SELECT sum(sample_count) FROM telemetry_rollups WHERE resolution_s = 60")
    assert rollup_count == ledger.generated_total()


async def hello(ws, device_id: str, credential: str) -> None:
    frame = pb.DeviceFrame(hello=pb.Hello(device_id=device_id, credential=credential, protocol_version=1))
    await ws.send(frame.SerializeToString())


async def test_unknown_device_and_bad_credential_are_closed_4001(running, clean_db):
    gateway, _ = running
    await register_devices(clean_db, registrations(FleetOptions(devices=1, fleet_secret="s", id_prefix="auth")))
    url = f"ws://127.0.0.1:{gateway.port}"
    for device_id, credential in [("nobody", "x"), ("auth-dev-00000", "wrong")]:
        async with connect(url) as ws:
            await hello(ws, device_id, credential)
            await ws.wait_closed()
            assert ws.close_code == 4001


async def recv_cloud(ws) -> pb.CloudFrame:
    out = pb.CloudFrame()
    out.ParseFromString(await ws.recv())
    return out


async def test_hostile_devices_are_refused_while_others_keep_streaming(running, clean_db, platform):
    gateway, _ = running
    options = FleetOptions(devices=4, fleet_secret="hostile", id_prefix="hx")
    regs = registrations(options)
    await register_devices(clean_db, regs)
    url = f"ws://127.0.0.1:{gateway.port}"
    fleet = Fleet(FleetOptions(devices=2, fleet_secret="hostile", id_prefix="hx"),
                  DeviceOptions(url=url, backoff_initial_s=0.2))
    async with fleet:  # hx-dev-00000 and -00001 stream normally throughout
        await fleet.wait_connected(30)

        # malformed protobuf after a good hello → 1007
        async with connect(url) as ws:
            await hello(ws, regs[2].device_id, regs[2].credential)
            assert (await recv_cloud(ws)).WhichOneof("body") == "hello_reply"
            await ws.send(b"\xff\xfe\xfd\xfc")
            await ws.wait_closed()
            assert ws.close_code == 1007

        # a frame beyond the size limit → 1009
        async with connect(url, max_size=None) as ws:
            await hello(ws, regs[2].device_id, regs[2].credential)
            await recv_cloud(ws)
            await ws.send(b"\x12" + b"\x00" * (platform.gateway.max_frame_bytes + 10))
            await ws.wait_closed()
            assert ws.close_code == 1009

        # NaN, far future, duplicate sequence: refused with reasons, the valid sample stored
        async with connect(url) as ws:
            await hello(ws, regs[3].device_id, regs[3].credential)
            await recv_cloud(ws)
            now = now_ms()
            samples = [
                pb.Sample(timestamp_unix_ms=now - 1_000, load_power_w=500, state_of_charge_pct=50),
                pb.Sample(timestamp_unix_ms=now, load_power_w=float("nan"), state_of_charge_pct=50),
                pb.Sample(timestamp_unix_ms=now + 86_400_000, load_power_w=1, state_of_charge_pct=50),
            ]
            await ws.send(pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=7, samples=samples)).SerializeToString())
            ack = (await recv_cloud(ws)).ack
            assert ack.accepted_samples == 1
            assert [r.reason for r in ack.rejections] == [pb.REJECT_REASON_NOT_FINITE,
                                                          pb.REJECT_REASON_TIMESTAMP_IN_FUTURE]
            again = pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=7, samples=samples[:1]))
            await ws.send(again.SerializeToString())
            assert (await recv_cloud(ws)).batch_rejected.reason == pb.REJECT_REASON_SEQUENCE_NOT_INCREASING

        await asyncio.sleep(2)
        await fleet.stop_streaming()
        await fleet.wait_drained(30)

    assert fleet.ledger.refused_total() == 0 and fleet.ledger.generated_total() > 0
    await wait_stored(clean_db, fleet.ledger.generated_total() + 1)
    stored = await stored_timestamps(clean_db)
    assert stored.pop(regs[3].device_id) == [samples[0].timestamp_unix_ms]
    assert stored == {d: sorted(ts) for d, ts in fleet.ledger.generated.items()}
    def rejects(reason: str) -> float:
        return REGISTRY.get_sample_value("gridtwin_gateway_rejects_total", {"reason": reason}) or 0

    assert rejects("not_finite") >= 1 and rejects("frame_too_big") >= 1
    assert rejects("sequence_not_increasing") >= 1 and rejects("timestamp_in_future") >= 1


async def test_a_second_session_of_a_device_replaces_the_first_with_4004(running, clean_db):
    gateway, _ = running
    [reg] = registrations(FleetOptions(devices=1, fleet_secret="twice", id_prefix="twice"))
    await register_devices(clean_db, [reg])
    url = f"ws://127.0.0.1:{gateway.port}"
    async with connect(url) as first, connect(url) as second:
        await hello(first, reg.device_id, reg.credential)
        assert (await recv_cloud(first)).WhichOneof("body") == "hello_reply"
        await hello(second, reg.device_id, reg.credential)
        assert (await recv_cloud(second)).WhichOneof("body") == "hello_reply"
        await first.wait_closed()
        assert first.close_code == 4004
        sample = pb.Sample(timestamp_unix_ms=now_ms(), state_of_charge_pct=50)
        await second.send(pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=1, samples=[sample])).SerializeToString())
        assert (await recv_cloud(second)).ack.accepted_samples == 1


async def test_sequence_numbers_are_checked_across_reconnects(running, clean_db):
    """device.proto: a device's numbers go on across reconnects. The next session is told the last
    acknowledged number and refuses numbers up to it; the samples sent again under a new number
    are stored once."""
    gateway, _ = running
    [reg] = registrations(FleetOptions(devices=1, fleet_secret="seq", id_prefix="seq"))
    await register_devices(clean_db, [reg])
    url = f"ws://127.0.0.1:{gateway.port}"
    sample = pb.Sample(timestamp_unix_ms=now_ms() - 1_000, state_of_charge_pct=50)

    def telemetry(sequence: int) -> bytes:
        return pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=sequence, samples=[sample])).SerializeToString()

    async with connect(url) as ws:
        await hello(ws, reg.device_id, reg.credential)
        assert (await recv_cloud(ws)).hello_reply.last_acknowledged_sequence == 0
        await ws.send(telemetry(5))
        assert (await recv_cloud(ws)).ack.sequence == 5
    async with connect(url) as ws:
        await hello(ws, reg.device_id, reg.credential)
        reply = (await recv_cloud(ws)).hello_reply
        assert reply.last_acknowledged_sequence == 5
        assert (reply.max_clock_skew_s, reply.max_sample_age_s) == (300, 30 * 86_400)
        assert reply.max_frame_bytes == gateway._settings.max_frame_bytes
        await ws.send(telemetry(5))
        refused = (await recv_cloud(ws)).batch_rejected
        assert (refused.sequence, refused.reason) == (5, pb.REJECT_REASON_SEQUENCE_NOT_INCREASING)
        await ws.send(telemetry(6))
        assert (await recv_cloud(ws)).ack.accepted_samples == 1
    await wait_stored(clean_db, 1)
    await asyncio.sleep(1)
    assert await clean_db.fetchval("SELECT count(*) FROM telemetry_samples") == 1
