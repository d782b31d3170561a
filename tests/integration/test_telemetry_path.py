"""Devices → gateway → broker → ingest consumer → Postgres, on the real components."""

import asyncio

import pytest
from websockets.asyncio.client import connect

from actors.handoff import NoTwins
from gridtwin.api.device.v1 import device_pb2 as pb
from services.assets.credentials import CredentialDirectory, register_devices
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(platform, clean_db):
    """A gateway and an ingest consumer in this process, against the real broker and Postgres."""
    gateway = Gateway(platform.gateway, platform.kafka, CredentialDirectory(clean_db))
    store = TelemetryStore(clean_db, platform.ingest.max_gap_s)
    consumer = IngestConsumer(platform.ingest, platform.kafka, store, NoTwins())
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
