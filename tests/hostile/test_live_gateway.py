"""A live gateway (real broker, real Postgres, started as the telemetry path tests start it)
hammered over real websockets by hostile devices — hypothesis-generated frame sequences, oversized
and text frames, silent connections — while a well-behaved simulated device streams beside them.

The gateway never lets an exception escape a connection, closes hostile sessions only with the
codes of close_codes.py (or the websocket layer's 1009), keeps the good device's every sample
flowing into the store exactly once, and its memory (this process's RSS) stays flat from one
barrage to the next."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from actors.handoff import NoTwins
from gridtwin.api.device.v1 import device_pb2 as pb
from services.access.credentials import CredentialDirectory, register_devices
from services.telemetry.close_codes import CloseCode
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations
from tests.hostile.strategies import HOSTILE, device_frames, telemetry_frames

pytestmark = pytest.mark.integration

MAX_SAMPLES = 50
# Codes a hostile device may see: the session's refusals, 1009 from the websocket layer for a
# frame over the limit, 4004 when another hostile connection took over its device id, 1000 when
# it closed first. 1011 (a crash) or 1013 (the broker or the directory failed) would be bugs.
ALLOWED = {1000, CloseCode.MALFORMED_FRAME, CloseCode.MESSAGE_TOO_BIG, CloseCode.PROTOCOL_VIOLATION,
           CloseCode.AUTHENTICATION_FAILED, CloseCode.HELLO_TIMEOUT, CloseCode.UNSUPPORTED_PROTOCOL,
           CloseCode.SESSION_REPLACED, CloseCode.EVENTS_RATE_LIMITED}
EVIL = FleetOptions(devices=4, fleet_secret="evil", id_prefix="evil")
GOOD = FleetOptions(devices=1, fleet_secret="good", id_prefix="good", sample_interval_s=0.1)


def collect(strategy: st.SearchStrategy[list[bytes]], n: int) -> list[list[bytes]]:
    """`n` derandomized examples of `strategy` (hypothesis drives an async barrage poorly; this
    keeps its generation, deterministic, and lets the test send them concurrently)."""
    examples: list[list[bytes]] = []

    @settings(HOSTILE, max_examples=n)
    @given(strategy)
    def gather(example: list[bytes]) -> None:
        examples.append(example)

    gather()
    return examples[:n]


def barrages() -> list[list[bytes]]:
    """Hostile frame sequences: some from the first frame on, most after a valid hello of one of
    the evil devices (so telemetry, acks and reports reach the open-session logic and the broker)."""
    evil = registrations(EVIL)
    anything = st.lists(device_frames(MAX_SAMPLES), min_size=1, max_size=10)
    wild_batches = st.lists(telemetry_frames(max_samples=20).map(lambda f: f.SerializeToString()), max_size=8)
    after_hello = st.builds(
        lambda i, rest, more: [pb.DeviceFrame(hello=pb.Hello(device_id=evil[i].device_id,
                                                             credential=evil[i].credential,
                                                             protocol_version=1)).SerializeToString(), *rest, *more],
        st.integers(0, len(evil) - 1), wild_batches, anything)
    return collect(anything, 40) + collect(after_hello, 80)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def hostile_connection(url: str, frames: list[bytes | str]) -> int | None:
    """Sends the frames (stopping when the gateway closes), returns the close code it got."""
    try:
        ws = await connect(url, max_size=None, open_timeout=10, close_timeout=2)
    except (InvalidStatus, OSError, TimeoutError) as exc:
        raise AssertionError(f"the gateway stopped accepting connections: {exc!r}") from exc
    with contextlib.suppress(ConnectionClosed):
        for frame in frames:
            await ws.send(frame)
            await asyncio.sleep(0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.3 if frames else 3):
                async for _ in ws:
                    pass   # acks and rejections, until the gateway closes or goes quiet
    await ws.close()
    return ws.close_code


@pytest.fixture
async def running(isolated, clean_db):
    settings_ = isolated.gateway.model_copy(update={"max_samples_per_batch": MAX_SAMPLES, "hello_timeout_s": 1.0})
    gateway = Gateway(settings_, isolated.kafka, CredentialDirectory(clean_db))
    consumer = IngestConsumer(isolated.ingest, isolated.kafka, TelemetryStore(clean_db, isolated.ingest.max_gap_s),
                              NoTwins())
    async with gateway, consumer:
        yield gateway


async def test_hostile_devices_beside_a_good_one(running, clean_db, caplog):
    gateway = running
    await register_devices(clean_db, registrations(EVIL) + registrations(GOOD))
    url = f"ws://127.0.0.1:{gateway.port}"
    sequences: list[list[bytes | str]] = [*barrages()]
    sequences += [
        ["a text frame"],
        [b"\x00" * (2 << 20)],                                              # over max_frame_bytes
        [pb.DeviceFrame(hello=pb.Hello(device_id="evil-dev-00000", credential="c")).SerializeToString(),
         b"\x00" * (2 << 20)],
        [],                                                                 # silent: hello timeout
        [pb.DeviceFrame(hello=pb.Hello(device_id="x" * 500_000, credential="y" * 400_000)).SerializeToString()],
        [pb.DeviceFrame(hello=pb.Hello(device_id="a.b'; DROP TABLE devices;--\x00", credential="c"))
         .SerializeToString()],
    ]
    fleet = Fleet(GOOD, DeviceOptions(url=url, backoff_initial_s=0.2, backoff_max_s=1))
    codes: list[int | None] = []
    rss: list[int] = []
    with caplog.at_level(logging.ERROR):
        async with fleet:
            await fleet.wait_connected(30)
            for _ in range(2):   # the same barrage twice: the second must not cost more memory
                rss.append(rss_bytes())
                for start in range(0, len(sequences), 16):   # 16 hostile connections at a time
                    codes += await asyncio.gather(*(hostile_connection(url, s) for s in sequences[start:start + 16]))
            rss.append(rss_bytes())
            await fleet.stop_streaming()
            await fleet.wait_drained(30)

    assert set(codes) <= ALLOWED, sorted({c for c in codes if c not in ALLOWED}, key=str)
    assert CloseCode.MESSAGE_TOO_BIG in codes and CloseCode.HELLO_TIMEOUT in codes
    assert CloseCode.MALFORMED_FRAME in codes and CloseCode.AUTHENTICATION_FAILED in codes
    # A NUL or a 500 kB device id is no device (4001), not "directory down, try again" (1013).
    assert codes[len(sequences) - 2: len(sequences)] == [CloseCode.AUTHENTICATION_FAILED] * 2
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not crashes, [r.getMessage() for r in crashes[:5]]

    ledger = fleet.ledger
    assert ledger.refused_total() == 0 and ledger.generated_total() > 20
    good_id = registrations(GOOD)[0].device_id
    async with asyncio.timeout(60):
        while await clean_db.fetchval("SELECT count(*) FROM telemetry_samples WHERE device_id = $1",
                                      good_id) < ledger.generated_total():
            await asyncio.sleep(0.1)
    stored = [r["ts"] // 1_000 for r in await clean_db.fetch(
        "SELECT ts FROM telemetry_samples WHERE device_id = $1 ORDER BY ts", good_id)]
    assert stored == sorted(ledger.generated[good_id])
    # Memory: the second barrage (same frames) may not grow RSS like the first warm-up did.
    assert rss[2] - rss[1] < 40 * 2**20, [r // 2**20 for r in rss]
    assert await clean_db.fetchval("SELECT count(*) FROM devices") == EVIL.devices + GOOD.devices
