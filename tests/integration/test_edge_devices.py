"""Each edge adapter against a fake local device serving the real recorded answers (a Powerwall over
HTTPS with its login, a Fronius datalogger, a SunSpec inverter on pymodbus's simulated server, a
P1 meter on a pseudo-terminal, a real Mosquitto broker), and the whole agent in dry-run mode while
the devices misbehave: every failure is counted and the other sources keep flowing."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from edge.adapters.base import BadAnswer, DeviceRefused, LoginRefused, TimedOut
from edge.adapters.dsmr import DsmrAdapter
from edge.adapters.fronius import FroniusAdapter
from edge.adapters.mqtt import MqttAdapter, TopicMapping
from edge.adapters.powerwall import PowerwallAdapter
from edge.adapters.sunspec import SunSpecAdapter
from edge.agent import Agent
from edge.clock import Clock
from edge.config import parse
from edge.control import ApplyBatteryPower, ApplyMode, ApplyReserve
from edge.discover import discover
from edge.model import BATTERY, LOAD, SITE, SOC, SOLAR, GridStatus, OperationMode, Snapshot
from tests.edge_fakes import FakeFronius, FakePowerwall, FakeSunSpec, Mosquitto, PtyMeter, free_port, publish

pytestmark = pytest.mark.integration


def values(snapshot: Snapshot) -> dict[str, float]:
    return {r.signal: r.value for r in snapshot.readings}


@pytest.fixture(scope="module")
def mosquitto():
    broker = Mosquitto()
    broker.start()
    yield broker
    broker.stop()


async def test_powerwall_login_readings_and_control():
    fake = FakePowerwall()
    await fake.start()
    adapter = PowerwallAdapter("pw", Clock(), host="127.0.0.1", port=fake.port, password=fake.password, control=True,
                               timeout_s=2)
    try:
        await adapter.start()
        snapshot = await adapter.read()
        got = values(snapshot)
        assert {k: got[k] for k in (SITE, BATTERY, SOLAR, LOAD)} == {SITE: 27, BATTERY: -990, SOLAR: 1840,
                                                                     LOAD: 866.25}
        assert got[SOC] == pytest.approx(20.109166592431226) and snapshot.grid_status is GridStatus.CONNECTED
        await adapter.read()
        assert fake.logins == 1                                 # the session's token is reused
        fake.tokens.clear()                                     # the gateway forgot it: log in again, once
        await adapter.read()
        assert fake.logins == 2

        await adapter.apply(ApplyMode(OperationMode.BACKUP))
        await adapter.apply(ApplyReserve(42))
        assert fake.operation["real_mode"] == "backup" and fake.operation["backup_reserve_percent"] == 42
        assert fake.committed == 2
        state = await adapter.device_state()
        assert state.mode is OperationMode.BACKUP and state.backup_reserve_pct == 42
        with pytest.raises(DeviceRefused):
            await adapter.apply(ApplyBatteryPower(1_000))
        fake.faults.add("read_only")                            # newer firmware: no local changes
        with pytest.raises(DeviceRefused, match="HTTP 403"):
            await adapter.apply(ApplyReserve(50))
        fake.faults.clear()

        fake.faults.add("bad_json")
        with pytest.raises(BadAnswer):
            await adapter.read()
        fake.faults.clear()
        fake.tokens.clear()
        fake.faults.add("login_refused")
        with pytest.raises(LoginRefused):
            await adapter.read()
    finally:
        await adapter.stop()
        await fake.stop()


async def test_fronius_power_flow_storage_and_a_device_that_does_not_answer():
    fake = FakeFronius()
    await fake.start()
    adapter = FroniusAdapter("pv", Clock(), url=f"http://127.0.0.1:{fake.port}", timeout_s=0.5)
    try:
        await adapter.start()
        got = values(await adapter.read())
        assert got == pytest.approx({SITE: 2274.9, LOAD: 2459.3092254638673, BATTERY: 0.15907810628414154,
                                     SOLAR: 216.43276786804199, SOC: 4.6, "battery_temperature_c": 21.5})
        assert adapter.drain_errors() == []
        fake.faults.add("slow")
        with pytest.raises(TimedOut):
            await adapter.read()
        fake.faults = {"bad_json"}
        with pytest.raises(BadAnswer):
            await adapter.read()
    finally:
        await adapter.stop()
        await fake.stop()


async def test_sunspec_scan_readings_setpoints_and_modbus_exceptions():
    fake = FakeSunSpec()
    await fake.start()
    adapter = SunSpecAdapter("inv", Clock(), host="127.0.0.1", port=fake.port, control=True, revert_s=90, timeout_s=1)
    try:
        got = values(await adapter.read())
        assert sorted(adapter.models) == [1, 103, 124, 203, 802]
        # inverter W 31250 × 10^-1, meter W −850 (export), battery −1500 (charging), SoC 65.5 %
        assert got == pytest.approx({SITE: -850, SOLAR: 3_125, BATTERY: -1_500, SOC: 65.5, "grid_frequency_hz": 50.01})
        assert adapter.capabilities.power_setpoints

        await adapter.apply(ApplyBatteryPower(2_000))            # discharge at 2 kW = 40 % of WChaMax
        assert fake.point(124, "StorCtl_Mod") == 3 and fake.point(124, "OutWRte") == pytest.approx(40)
        assert fake.point(124, "InWRte") == pytest.approx(-40) and fake.point(124, "InOutWRte_RvrtTms") == 90
        await adapter.apply(ApplyReserve(30))
        assert fake.point(124, "MinRsvPct") == pytest.approx(30)
        await adapter.apply(ApplyBatteryPower(None))
        assert fake.point(124, "StorCtl_Mod") == 0

        fake.faults.add("exception")
        with pytest.raises(DeviceRefused, match="Modbus exception 6"):
            await adapter.read()
        fake.faults.clear()
        assert values(await adapter.read())[SOLAR] == pytest.approx(3_125)
    finally:
        await adapter.stop()
        await fake.stop()


async def test_p1_telegrams_from_a_pseudo_terminal_and_a_bad_crc():
    meter = PtyMeter(interval_s=0.1)
    await meter.start()
    adapter = DsmrAdapter("p1", Clock(), version="5", serial_port=meter.path)
    try:
        await adapter.start()
        async with asyncio.timeout(5):
            while adapter.telegrams < 2:
                await asyncio.sleep(0.05)
        got = values(await adapter.read())
        assert got[SITE] == pytest.approx(244.0) and got["site_power_l1_w"] == pytest.approx(70.0)
        meter.corrupt = 2
        async with asyncio.timeout(5):
            while len(errors := adapter.drain_errors()) == 0:
                await asyncio.sleep(0.05)
        assert errors[0].kind == "crc"
        before = adapter.telegrams
        async with asyncio.timeout(5):
            while adapter.telegrams <= before:
                await asyncio.sleep(0.05)                       # good telegrams keep coming
    finally:
        await adapter.stop()
        await meter.stop()


async def test_mqtt_topics_from_a_real_broker(mosquitto):
    topics = {"home/grid/power": TopicMapping(SITE, "kW"), "home/battery/soc": TopicMapping(SOC, "%", "value")}
    adapter = MqttAdapter("ha", Clock(), host="127.0.0.1", port=mosquitto.port, topics=topics)
    try:
        await adapter.start()
        await asyncio.wait_for(adapter.subscribed.wait(), 10)
        await publish(mosquitto.port, "home/grid/power", "1.25")
        await publish(mosquitto.port, "home/battery/soc", json.dumps({"value": 77.5}))
        async with asyncio.timeout(10):
            while adapter.messages < 2:
                await asyncio.sleep(0.05)
        assert values(await adapter.read()) == {SITE: 1_250.0, SOC: 77.5}
        await publish(mosquitto.port, "home/grid/power", "unavailable")
        async with asyncio.timeout(10):
            while not (errors := adapter.drain_errors()):
                await asyncio.sleep(0.05)
        assert errors[0].kind == "bad_answer"
        assert values(await adapter.read())[SITE] == 1_250.0   # the last good value stands (until it goes stale)
    finally:
        await adapter.stop()


async def test_the_agent_keeps_every_other_source_flowing_while_each_misbehaves(mosquitto, tmp_path):
    """Dry run over five devices; one after another returns bad JSON, a wrong-CRC telegram, Modbus
    exceptions, no answer, a refused login: each failure is counted, the agent keeps running, and
    the samples keep the other sources' signals."""
    powerwall, fronius, inverter, meter = FakePowerwall(), FakeFronius(), FakeSunSpec(), PtyMeter(interval_s=0.1)
    for fake in (powerwall, fronius, inverter, meter):
        await fake.start()
    password = tmp_path / "pw"
    password.write_text(powerwall.password)
    config = parse({
        "agent": {"sample_interval_s": 0.2},
        "combine": {"owners": {SITE: "p1"}},
        "sources": [
            {"kind": "powerwall", "name": "pw", "host": "127.0.0.1", "port": powerwall.port,
             "password_file": str(password), "poll_interval_s": 0.2, "stale_after_s": 0.6, "timeout_s": 0.5},
            {"kind": "fronius", "name": "fr", "url": f"http://127.0.0.1:{fronius.port}", "poll_interval_s": 0.2,
             "stale_after_s": 0.6, "timeout_s": 0.5},
            {"kind": "sunspec", "name": "inv", "host": "127.0.0.1", "port": inverter.port, "poll_interval_s": 0.2,
             "stale_after_s": 0.6, "timeout_s": 0.5},
            {"kind": "dsmr", "name": "p1", "serial_port": meter.path, "version": "5", "poll_interval_s": 0.2,
             "stale_after_s": 0.6},
            {"kind": "mqtt", "name": "ha", "host": "127.0.0.1", "port": mosquitto.port, "stale_after_s": 3600,
             "topics": {"edge-test/ev/power": {"signal": "ev_power_w", "unit": "W"}}},
        ]})
    lines: list[str] = []
    agent = Agent(config, dry_run=True, out=lines.append)
    task = asyncio.create_task(agent.run())

    def extras() -> dict[str, float]:
        return dict(agent.samples[-1].extra) if agent.samples else {}

    async def wait_for(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(0.05)

    try:
        await publish(mosquitto.port, "edge-test/ev/power", "7400")
        await wait_for(lambda: agent.samples and "ev_power_w" in extras() and agent.samples[-1].site_power_w
                       is not None and agent.samples[-1].solar_power_w is not None)
        assert agent.samples[-1].site_power_w == pytest.approx(244.0)      # the P1 meter owns the site power
        errors = agent.counters.errors

        faults = [("bad_json", "pw", "bad_answer", powerwall), ("slow", "fr", "timeout", fronius),
                  ("exception", "inv", "refused", inverter)]
        for fault, source, kind, fake in faults:
            fake.faults.add(fault)
            await wait_for(lambda s=source, k=kind: errors[(s, k)] >= 2)
            count = len(agent.samples)
            await wait_for(lambda c=count: len(agent.samples) >= c + 3)     # samples keep coming
            assert agent.samples[-1].site_power_w == pytest.approx(244.0) and "ev_power_w" in extras()
            fake.faults.clear()
        meter.corrupt = 3
        await wait_for(lambda: errors[("p1", "crc")] >= 1)
        powerwall.tokens.clear()
        powerwall.faults.add("login_refused")
        await wait_for(lambda: errors[("pw", "login_refused")] >= 2)
        count = len(agent.samples)
        await wait_for(lambda: len(agent.samples) >= count + 3)
        latest = agent.samples[-1]
        assert latest.site_power_w == pytest.approx(244.0) and latest.solar_power_w == pytest.approx(216.43276786804199)
        assert not task.done() and lines and "site 244.0 W" in lines[-1]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for fake in (powerwall, fronius, inverter, meter):
            await fake.stop()


async def test_discover_finds_each_kind_and_nothing_where_nothing_answers(mosquitto):
    powerwall, fronius, inverter = FakePowerwall(), FakeFronius(), FakeSunSpec()
    for fake in (powerwall, fronius, inverter):
        await fake.start()
    bridge_port = free_port()
    telegram = (await asyncio.to_thread(lambda: __import__("tests.edge_fakes").edge_fakes.p1_telegram("V4_2")))

    async def serve_p1(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(telegram)
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    bridge = await asyncio.start_server(serve_p1, "127.0.0.1", bridge_port)
    try:
        found = await discover("127.0.0.1", timeout_s=1, p1_wait_s=1, ports={
            "powerwall": (powerwall.port,), "fronius": (fronius.port,), "sunspec": (inverter.port,),
            "mqtt": (mosquitto.port,), "dsmr": (bridge_port,)})
        by_kind = {f.kind: f for f in found}
        assert set(by_kind) == {"powerwall", "fronius", "sunspec", "mqtt", "dsmr"}
        assert "1232100-00-E--TG1234567890G1" in by_kind["powerwall"].description
        assert "models 1, 103, 124, 203, 802" in by_kind["sunspec"].description
        assert 'version = "4"' in by_kind["dsmr"].config
        for snippet in by_kind.values():   # every suggestion is a valid source (with a password added)
            password = {"password": "x"} if snippet.kind == "powerwall" else {}
            parse({"sources": [{**_toml(snippet.config), **password}]})
        assert await discover("127.0.0.1", timeout_s=0.5, ports={k: (free_port(),) for k in by_kind}) == []
    finally:
        bridge.close()
        for fake in (powerwall, fronius, inverter):
            await fake.stop()


def _toml(snippet: str) -> dict:  # type: ignore[type-arg]
    import tomllib

    source = tomllib.loads(snippet)["sources"][0]
    source.pop("password_file", None)
    return source
