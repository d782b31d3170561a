"""Issue 15: a re-sent sample with other values is told to its device, per sample, on the real
components: device → gateway → broker → ingest → Postgres → notice on the commands topic →
gateway → the device's live session."""

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import ClientConnection, connect

from actors.handoff import NoTwins
from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.unixtime import now_ms
from services.access.credentials import CredentialDirectory, register_devices
from services.control.routing import SessionRegistry
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.notices import SampleNotices, SamplesNotStored
from services.telemetry.store import TelemetryStore
from simulator.fleet import FleetOptions, registrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def stack(isolated, clean_db):
    """A gateway that reads its commands partition (with a session registry), and ingest that
    publishes notices, on a commands topic and gateway id of this test's own."""
    suffix = uuid.uuid4().hex[:8]
    kafka = isolated.kafka.model_copy(update={"commands_topic": f"commands-{suffix}", "commands_partitions": 2})
    settings = isolated.gateway.model_copy(update={"gateway_id": f"gw-notices-{suffix}"})
    registry = SessionRegistry(clean_db, settings.gateway_id, heartbeat_interval_s=1.0)
    gateway = Gateway(settings, kafka, CredentialDirectory(clean_db), registry=registry)
    store = TelemetryStore(clean_db, isolated.ingest.max_gap_s)
    async with gateway, SampleNotices(kafka) as notices, \
            IngestConsumer(isolated.ingest, kafka, store, NoTwins(), notices=notices):
        yield gateway, notices, settings.gateway_id


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def recv(ws: ClientConnection, timeout_s: float = 30.0) -> pb.CloudFrame:
    async with asyncio.timeout(timeout_s):
        return pb.CloudFrame.FromString(await ws.recv(decode=False))


async def open_session(url: str, device_id: str, credential: str) -> ClientConnection:
    ws = await connect(url)
    await ws.send(pb.DeviceFrame(hello=pb.Hello(device_id=device_id, credential=credential,
                                                protocol_version=1)).SerializeToString())
    assert (await recv(ws)).WhichOneof("body") == "hello_reply"
    return ws


def telemetry(sequence: int, *samples: tuple[int, float]) -> bytes:
    return pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=sequence, samples=[
        pb.Sample(timestamp_unix_ms=ts, load_power_w=load_w, state_of_charge_pct=50) for ts, load_w in samples
    ])).SerializeToString()


async def test_a_conflicting_resend_is_told_to_the_device_and_counted_and_the_first_values_stay(stack, clean_db):
    gateway, _, _ = stack
    [device] = registrations(FleetOptions(devices=1, fleet_secret="notices", id_prefix="nt"))
    await register_devices(clean_db, [device])
    url = f"ws://127.0.0.1:{gateway.port}"
    t0 = now_ms() // 1_000 * 1_000 - 10_000
    conflicting_before = metric("gridtwin_ingest_samples_conflicting_total")
    sent_before = metric("gridtwin_gateway_sample_notices_total", {"result": "sent"})

    ws = await open_session(url, device.device_id, device.credential)
    await ws.send(telemetry(1, (t0, 500.0), (t0 + 1_000, 600.0)))
    assert (await recv(ws)).ack.accepted_samples == 2
    async with asyncio.timeout(30):
        while await clean_db.fetchval("SELECT count(*) FROM telemetry_samples WHERE device_id = $1",
                                      device.device_id) < 2:
            await asyncio.sleep(0.05)
    await ws.close()

    # Reconnected: t0 again with another value (a conflict), t0 + 1 s unchanged (a plain replay),
    # t0 + 2 s new. All three are acknowledged; only t0 is named in the notice that follows.
    ws = await open_session(url, device.device_id, device.credential)
    try:
        await ws.send(telemetry(2, (t0, 999.0), (t0 + 1_000, 600.0), (t0 + 2_000, 700.0)))
        assert (await recv(ws)).ack.accepted_samples == 3
        frame = await recv(ws)
        assert frame.WhichOneof("body") == "sample_notice"
        notice = frame.sample_notice
        assert list(notice.timestamps_unix_ms) == [t0]
        assert notice.reason == pb.REJECT_REASON_CONFLICTING_RESEND
        assert notice.detail == "conflicting re-send: the stored values differ"
    finally:
        await ws.close()

    stored = await clean_db.fetch("SELECT ts, load_power_w FROM telemetry_samples WHERE device_id = $1 ORDER BY ts",
                                  device.device_id)
    assert [(r["ts"] // 1_000, r["load_power_w"]) for r in stored] == [(t0, 500.0), (t0 + 1_000, 600.0),
                                                                        (t0 + 2_000, 700.0)]
    assert metric("gridtwin_ingest_samples_conflicting_total") - conflicting_before == 1
    assert metric("gridtwin_gateway_sample_notices_total", {"result": "sent"}) - sent_before == 1


async def test_a_notice_for_a_device_that_is_not_connected_is_counted_and_dropped(stack):
    _, notices, gateway_id = stack
    before = metric("gridtwin_gateway_sample_notices_total", {"result": "not_connected"})
    notices.publish([SamplesNotStored(gateway_id, "nt-gone", (1, 2, 3))])
    async with asyncio.timeout(30):
        while metric("gridtwin_gateway_sample_notices_total", {"result": "not_connected"}) - before < 3:
            await asyncio.sleep(0.05)
