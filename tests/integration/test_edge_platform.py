"""The edge agent end to end on the real platform: fake home devices (recorded answers) → the agent
→ the real gateway → broker → ingest → Postgres; commands from the control store → dispatcher →
gateway → agent → the fake device's endpoint or register → the acknowledgement stored; provisioning
by a claim code through the real AssetService; and an agent SIGKILLed while its network was cut for
an hour of readings (a simulated clock at 150× real time) loses nothing once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from edge.agent import Agent
from edge.config import parse
from gridtwin.api.assets.v1 import assets_pb2, assets_pb2_grpc
from gridtwin.unixtime import now_ms
from services.access.credentials import DeviceRegistration, register_devices
from services.control.model import (
    CommandState,
    ControlPlan,
    Discharge,
    OperationMode,
    Outcome,
    PlanStep,
    SetBackupReserve,
    SetMode,
)
from services.control.service import NewCommand
from tests.edge_fakes import FakeFronius, FakePowerwall, FakeSunSpec, Mosquitto, PtyMeter, publish
from tests.integration.test_control_delivery import Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mosquitto():
    broker = Mosquitto()
    broker.start()
    yield broker
    broker.stop()


async def registered(pool, tmp_path: Path, device_id: str, installation_id: str) -> str:
    credential = f"secret-{device_id}"
    await register_devices(pool, [DeviceRegistration(device_id, installation_id, credential)])
    path = tmp_path / f"{device_id}.credential"
    path.write_text(credential)
    return str(path)


@contextlib.asynccontextmanager
async def running(agent: Agent):
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(condition, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.1)


def agent_settings(stack: Stack, state_dir: Path, credential_file: str, device_id: str, sources: list[dict],
                   **combine: object) -> dict:  # type: ignore[type-arg]
    return {"agent": {"gateway_url": stack.url(), "state_dir": str(state_dir), "sample_interval_s": 0.5,
                      "backoff_initial_s": 0.2, "backoff_max_s": 1.0},
            "identity": {"device_id": device_id, "credential_file": credential_file},
            "combine": combine, "sources": sources}


async def test_every_adapters_readings_are_stored_with_the_devices_values_and_signs(isolated, clean_db, tmp_path,
                                                                                     mosquitto):
    powerwall, fronius, inverter = FakePowerwall(), FakeFronius(), FakeSunSpec()
    meter, meter_b = PtyMeter(interval_s=0.2), PtyMeter(interval_s=0.2)   # a serial port has one reader
    for fake in (powerwall, fronius, inverter, meter, meter_b):
        await fake.start()
    await publish(mosquitto.port, "e2e/battery/soc", '{"value": 77.5}')
    fast = {"poll_interval_s": 0.25}
    async with Stack(isolated, clean_db, ingest=True, acks=False) as stack:
        sources = [
            {"kind": "powerwall", "name": "pw", "host": "127.0.0.1", "port": powerwall.port,
             "password": powerwall.password, **fast},
            {"kind": "fronius", "name": "fr", "url": f"http://127.0.0.1:{fronius.port}", **fast},
            {"kind": "sunspec", "name": "inv", "host": "127.0.0.1", "port": inverter.port, **fast},
            {"kind": "dsmr", "name": "p1", "serial_port": meter.path, "version": "5", **fast},
            {"kind": "mqtt", "name": "ha", "host": "127.0.0.1", "port": mosquitto.port, "stale_after_s": 3600,
             "topics": {"e2e/battery/soc": {"signal": "state_of_charge_pct", "unit": "%", "json_key": "value"}}},
        ]
        # each signal from a different family: site from the P1 meter (kW), battery from SunSpec (int16,
        # charging), solar from Fronius, load from the Powerwall, state of charge from MQTT
        owners = {"site_power_w": "p1", "battery_power_w": "inv", "solar_power_w": "fr", "load_power_w": "pw",
                  "state_of_charge_pct": "ha"}
        credential_a = await registered(clean_db, tmp_path, "edge-a", "home-a")
        credential_b = await registered(clean_db, tmp_path, "edge-b", "home-b")
        everything = parse(agent_settings(stack, tmp_path / "a", credential_a, "edge-a", sources, owners=owners))
        meter_only = parse(agent_settings(stack, tmp_path / "b", credential_b, "edge-b",
                                          [{**sources[3], "serial_port": meter_b.path}]))
        async with running(Agent(everything)), running(Agent(meter_only)):
            async def stored() -> bool:
                rows = await clean_db.fetch("SELECT device_id, count(*) AS n FROM telemetry_samples "
                                            "WHERE state_of_charge_pct IS NOT NULL OR device_id = 'edge-b' "
                                            "GROUP BY device_id")
                return len(rows) == 2 and min(r["n"] for r in rows) >= 3
            await wait_for(stored)
    rows = await clean_db.fetch("SELECT * FROM telemetry_samples WHERE device_id = 'edge-a' "
                                "AND state_of_charge_pct IS NOT NULL ORDER BY ts DESC LIMIT 1")
    row = rows[0]
    assert row["installation_id"] == "home-a"
    assert row["site_power_w"] == pytest.approx(244.0)           # 1-0:1.7.0(00.244*kW) − 2.7.0(00.000*kW)
    assert row["battery_power_w"] == pytest.approx(-1_500.0)     # model 802 W −1500: charging
    assert row["solar_power_w"] == pytest.approx(216.43276786804199)   # Fronius P_PV
    assert row["load_power_w"] == pytest.approx(866.25)          # Powerwall load meter
    assert row["state_of_charge_pct"] == pytest.approx(77.5)     # MQTT
    assert row["grid_status"] == 1                                # Powerwall: SystemGridConnected
    extra = __import__("json").loads(row["extra"])
    assert extra["site_power_l1_w"] == pytest.approx(70.0) and extra["battery_temperature_c"] == pytest.approx(21.5)
    only = await clean_db.fetchrow("SELECT * FROM telemetry_samples WHERE device_id = 'edge-b' LIMIT 1")
    assert only["site_power_w"] == pytest.approx(244.0)
    assert [only[c] for c in ("battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct")] == [
        None, None, None, None]                                   # not reported: NULL, never 0
    for fake in (powerwall, fronius, inverter, meter, meter_b):
        await fake.stop()


async def test_commands_change_the_devices_and_their_acknowledgements_are_stored(isolated, clean_db, tmp_path):
    powerwall, inverter = FakePowerwall(), FakeSunSpec()
    await powerwall.start()
    await inverter.start()
    async with Stack(isolated, clean_db) as stack:
        pw_config = parse(agent_settings(
            stack, tmp_path / "pw", await registered(clean_db, tmp_path, "edge-pw", "home-pw"), "edge-pw",
            [{"kind": "powerwall", "name": "pw", "host": "127.0.0.1", "port": powerwall.port,
              "password": powerwall.password, "control": True}]))
        inv_config = parse(agent_settings(
            stack, tmp_path / "inv", await registered(clean_db, tmp_path, "edge-inv", "home-inv"), "edge-inv",
            [{"kind": "sunspec", "name": "inv", "host": "127.0.0.1", "port": inverter.port, "control": True,
              "revert_s": 90}]))
        async with running(Agent(pw_config)), running(Agent(inv_config)):
            await stack.wait_registered(["edge-pw", "edge-inv"])
            mode, reserve, plan_for_powerwall = await stack.control.submit([
                NewCommand(SetMode(OperationMode.BACKUP), ttl_s=60, device_id="edge-pw"),
                NewCommand(SetBackupReserve(35), ttl_s=60, device_id="edge-pw"),
                NewCommand(ControlPlan((PlanStep(now_ms(), now_ms() + 60_000, Discharge(2_000)),)), ttl_s=60,
                           device_id="edge-pw"),
            ], source="operator")
            for submitted in (mode, reserve):
                acked = await stack.wait_state(submitted.command.record.command_id, CommandState.ACKNOWLEDGED)
                assert acked.record.outcome is Outcome.COMPLETED
            assert powerwall.operation["real_mode"] == "backup" and powerwall.operation["backup_reserve_percent"] == 35
            refused = await stack.wait_state(plan_for_powerwall.command.record.command_id, CommandState.FAILED)
            assert refused.record.outcome is Outcome.REJECTED
            assert "takes no battery power setpoints" in refused.record.detail

            start = now_ms()
            plan = await stack.control.submit_one(NewCommand(
                ControlPlan((PlanStep(start, start + 120_000, Discharge(2_000, 10)),)),
                ttl_s=60, device_id="edge-inv"), source="operator")
            acked = await stack.wait_state(plan.command.record.command_id, CommandState.ACKNOWLEDGED)
            assert acked.record.outcome is Outcome.ACCEPTED

            async def discharging() -> bool:     # 2 kW of WChaMax 5 kW: the window squeezed to +40 %
                return inverter.point(124, "StorCtl_Mod") == 3 and inverter.point(124, "OutWRte") == 40
            await wait_for(discharging)
            assert inverter.point(124, "InWRte") == -40 and inverter.point(124, "InOutWRte_RvrtTms") == 90
            state = await stack.store.device_state("edge-inv")
            assert state is not None and state["active_plan_id"]
    await powerwall.stop()
    await inverter.stop()


async def test_an_agent_claims_its_credential_once_with_the_code_an_operator_created(isolated, clean_db, assets_api,
                                                                                      tmp_path):
    from services.access.model import Scope
    from tests.integration.access_support import bearer, mint

    fronius = FakeFronius()
    await fronius.start()
    await clean_db.execute("INSERT INTO installations (installation_id) VALUES ('home-claim') ON CONFLICT DO NOTHING")
    admin = bearer(await mint(clean_db, Scope.ADMIN, name="operator"))
    assets_url = f"127.0.0.1:{assets_api.port}"
    async with grpc.aio.insecure_channel(assets_url) as channel:
        created = await assets_pb2_grpc.AssetServiceStub(channel).CreateDeviceClaim(
            assets_pb2.CreateDeviceClaimRequest(installation_id="home-claim", serial="EDGE-0042"), metadata=admin)
    assert len(created.claim_code) == 24 and created.device.device_id == "EDGE-0042"
    async with Stack(isolated, clean_db, ingest=True, acks=False) as stack:
        settings = parse({"agent": {"gateway_url": stack.url(), "state_dir": str(tmp_path / "state"),
                                    "sample_interval_s": 0.5},
                          "identity": {"claim_code": created.claim_code.lower(), "assets_url": assets_url},
                          "sources": [{"kind": "fronius", "name": "fr", "url": f"http://127.0.0.1:{fronius.port}"}]})
        async with running(Agent(settings)) as agent:
            async def stored() -> bool:
                return bool(await clean_db.fetchval(
                    "SELECT count(*) FROM telemetry_samples WHERE device_id = 'EDGE-0042' "
                    "AND installation_id = 'home-claim'"))
            await wait_for(stored)
            assert agent.identity is not None and agent.identity.installation_id == "home-claim"
    async with grpc.aio.insecure_channel(assets_url) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await assets_pb2_grpc.AssetServiceStub(channel).ClaimDevice(
                assets_pb2.ClaimDeviceRequest(claim_code=created.claim_code))
    assert again.value.code() is grpc.StatusCode.UNAUTHENTICATED     # a code works once
    await fronius.stop()


class Cable:
    """A TCP proxy in front of the gateway: `cut` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def plug(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65_536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


def buffered_timestamps(state_dir: Path) -> set[int]:
    with contextlib.closing(sqlite3.connect(state_dir / "buffer.sqlite3")) as db:
        return {r[0] for r in db.execute("SELECT ts FROM samples")}


async def test_sigkill_during_an_hour_offline_loses_nothing(isolated, clean_db, tmp_path):
    rate = 150.0                      # the agent's clock runs 150× real time: an hour in 24 s
    fronius = FakeFronius()
    await fronius.start()
    state_dir = tmp_path / "state"
    credential = await registered(clean_db, tmp_path, "edge-kill", "home-kill")
    async with Stack(isolated, clean_db, ingest=True, acks=False) as stack:
        cable = Cable(stack.gateway.port)
        await cable.plug()
        config = tmp_path / "edge.toml"
        config.write_text(f"""
[agent]
gateway_url = "ws://127.0.0.1:{cable.port}"
state_dir = "{state_dir}"
sample_interval_s = 1.0
backoff_initial_s = 0.2
backoff_max_s = 1.0
log_every_s = 5
[identity]
device_id = "edge-kill"
credential_file = "{credential}"
[[sources]]
name = "fr"
kind = "fronius"
url = "http://127.0.0.1:{fronius.port}"
stale_after_s = 30
detail_interval_s = 600
""")

        def start(clock: str) -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config),
                                     f"--simulated-clock={clock}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=open(tmp_path / "agent.log", "ab"))  # noqa: SIM115

        async def stored() -> set[int]:
            rows = await clean_db.fetch("SELECT ts FROM telemetry_samples WHERE device_id = 'edge-kill'")
            return {r["ts"] // 1_000 for r in rows}

        offline_start_ms = now_ms() - 3_700_000
        agent = start(f"{offline_start_ms}:{rate}")
        try:
            async def some_stored() -> bool:
                return len(await stored()) >= 30
            await wait_for(some_stored, 30)
            await cable.cut()
            cut_at = time.monotonic()
            before = await stored()
            # An hour of readings on the agent's clock (24 s of real time; longer when a loaded
            # machine keeps the agent from sampling every simulated second).
            def offline_now() -> list[int]:
                return sorted(t for t in buffered_timestamps(state_dir) if t > max(before))

            async def an_hour_buffered() -> bool:
                offline = offline_now()
                return len(offline) >= 3_000 and offline[-1] - offline[0] >= 3_590_000
            await asyncio.sleep(3_600 / rate)
            await wait_for(an_hour_buffered, 120)
            agent.send_signal(signal.SIGKILL)                      # mid-stream, with no warning
            agent.wait(10)
            kept = buffered_timestamps(state_dir)                  # what the dead agent's disk holds
            offline = sorted(t for t in kept if t > max(before))
            assert offline[-1] - offline[0] >= 3_590_000 and len(offline) >= 3_000, (len(offline), cut_at)

            agent = start("+0:1")                                 # back with the real clock, still cut off
            await asyncio.sleep(1.0)
            await cable.plug()                                     # the network is back

            async def drained() -> bool:
                return not buffered_timestamps(state_dir) and (kept | before) <= await stored()
            await wait_for(drained, 60)
            final = await stored()
            assert kept <= final and before <= final
            assert await clean_db.fetchval("SELECT count(*) FROM telemetry_samples WHERE device_id = 'edge-kill'") \
                == len(final)                                      # once each
            row = await clean_db.fetchrow("SELECT * FROM telemetry_samples WHERE device_id = 'edge-kill' "
                                          "AND ts = to_timestamp($1 / 1000.0)", offline[len(offline) // 2])
            assert row["solar_power_w"] == pytest.approx(216.43276786804199) and row["site_power_w"] == pytest.approx(
                2274.9)
        finally:
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
                try:
                    agent.wait(10)
                except subprocess.TimeoutExpired:
                    agent.kill()
            with contextlib.suppress(Exception):
                await cable.cut()
    await fronius.stop()
