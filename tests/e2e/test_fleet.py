"""A simulated fleet of 100 devices for about a minute through the platform's own processes.

The gateway and two ingest consumers run as `gridtwin` processes (as `make run` starts them);
the fleet runs here so the test can read its ledger. Mid-run, a third of the devices lose their
connection for a few seconds and one ingest consumer stops (its partitions move to the other).
At the end every sample in the ledger is in Postgres exactly once, and the rollups count each.
"""

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from gridtwin.app import processes
from services.access.credentials import register_devices
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations
from tests.integration.twins_support import kill_namespace

pytestmark = pytest.mark.e2e

DEVICES = 100
SECONDS = float(os.environ.get("GRIDTWIN_E2E_SECONDS", "60"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def services(isolated, clean_db, ray_cluster, tmp_path: Path):
    platform = isolated
    gateway_port = free_port()
    env = {
        "GRIDTWIN_POSTGRES__URL": platform.postgres.url,
        "GRIDTWIN_KAFKA__BOOTSTRAP_SERVERS": platform.kafka.bootstrap_servers,
        "GRIDTWIN_KAFKA__TELEMETRY_TOPIC": platform.kafka.telemetry_topic,
        "GRIDTWIN_KAFKA__DEVICE_EVENTS_TOPIC": platform.kafka.device_events_topic,
        "GRIDTWIN_INGEST__GROUP_ID": platform.ingest.group_id,
        # The ingest processes hand committed batches to the twins on this session's Ray cluster.
        "GRIDTWIN_KAFKA__ALERTS_TOPIC": platform.kafka.alerts_topic,
        "GRIDTWIN_TWINS__RAY_ADDRESS": ray_cluster.twins.ray_address,
        "GRIDTWIN_TWINS__NAMESPACE": f"e2e-{platform.ingest.group_id}",
        "GRIDTWIN_GATEWAY__PORT": str(gateway_port),
        "GRIDTWIN_GATEWAY__METRICS_PORT": str(free_port()),
    }
    cli = [sys.executable, "-m", "gridtwin.app.cli"]
    processes.spawn(tmp_path, "gateway", [*cli, "gateway"], env)
    for member in ("ingest-a", "ingest-b"):
        processes.spawn(tmp_path, member, [*cli, "ingest"], {**env, "GRIDTWIN_INGEST__METRICS_PORT": str(free_port())})
    processes.wait_for_port("127.0.0.1", gateway_port, 30, "gateway")
    yield tmp_path, f"ws://127.0.0.1:{gateway_port}"
    for name in ("gateway", "ingest-a", "ingest-b"):
        processes.stop(tmp_path, name)
    kill_namespace(env["GRIDTWIN_TWINS__NAMESPACE"])   # the ingest processes' twins outlive them


async def test_fleet_of_100_streams_a_minute_and_every_sample_is_stored_once(services, clean_db):
    var_dir, url = services
    options = FleetOptions(devices=DEVICES, fleet_secret="e2e", id_prefix="e2e")
    await register_devices(clean_db, registrations(options))
    fleet = Fleet(options, DeviceOptions(url=url, backoff_initial_s=0.2, backoff_max_s=2))
    async with fleet:
        await fleet.wait_connected(60)
        await asyncio.sleep(SECONDS / 3)
        await fleet.disconnect(range(0, DEVICES, 3), offline_s=5)
        await asyncio.sleep(SECONDS / 3)
        assert processes.stop(var_dir, "ingest-b")  # graceful: finishes, commits, leaves the group
        await asyncio.sleep(SECONDS / 3)
        await fleet.stop_streaming()
        await fleet.wait_drained(60)

    ledger = fleet.ledger
    assert ledger.refused_total() == 0
    assert ledger.generated_total() >= DEVICES * SECONDS * 0.9
    async with asyncio.timeout(120):
        while await clean_db.fetchval("SELECT count(*) FROM telemetry_samples") < ledger.generated_total():
            await asyncio.sleep(0.5)
    rows = await clean_db.fetch("SELECT device_id, array_agg(ts ORDER BY ts) AS ts FROM telemetry_samples GROUP BY 1")
    stored = {r["device_id"]: [t // 1_000 for t in r["ts"]] for r in rows}
    assert stored == {d: sorted(ts) for d, ts in ledger.generated.items()}
    assert min(d.sessions for d in fleet.devices[::3]) >= 2
    counted = await clean_db.fetchval("SELECT sum(sample_count) FROM telemetry_rollups WHERE resolution_s = 3600")
    assert counted == ledger.generated_total()
