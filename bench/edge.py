"""Edge agent benchmark on this machine: what the agent costs a small computer, and how fast it
empties a day of buffered samples once its network is back.

    python -m bench.edge [--seconds 60] [--buffer-hours 24]

1. Steady state: the agent (`python -m edge run`, its own process) polls three sources every second
   — a Powerwall (HTTPS with login), a Fronius (HTTP) and a SunSpec inverter (Modbus TCP), the fakes
   of tests/edge_fakes.py serving recorded answers — makes a sample every second and streams it
   to the real gateway (broker, Postgres for credentials). Prints the agent's CPU (% of one core,
   from /proc utime + stime over the window) and its resident memory (VmRSS at the end, VmHWM peak).
   Goal: < 2 % of a core, < 60 MiB.
2. Replay: a disk buffer holding `--buffer-hours` of 1-Hz samples (made by the agent's own buffer
   and converters from the three sources' readings) behind a cut network; the network comes back
   and the time until the gateway has acknowledged every sample gives the replay rate.

Uses its own database (gridtwin_bench_edge) and topics, so a running platform is left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from bench.common import fresh_database, run_topics
from edge import link
from edge.buffer import DiskBuffer
from edge.model import SampleValues
from gridtwin import kafka_topics
from gridtwin.app import infra
from gridtwin.settings import Settings
from gridtwin.unixtime import now_ms
from services.access.credentials import CredentialDirectory, DeviceRegistration, register_devices
from services.telemetry.gateway import Gateway
from tests.edge_fakes import FakeFronius, FakePowerwall, FakeSunSpec
from tests.integration.test_edge_platform import Cable

console = Console()
ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS      # utime + stime


def memory_mib(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1_024, int(status["VmHWM"].split()[0]) / 1_024


def config_text(gateway_port: int, state_dir: Path, credential: Path, powerwall: FakePowerwall,
                fronius: FakeFronius, inverter: FakeSunSpec) -> str:
    return f"""
[agent]
gateway_url = "ws://127.0.0.1:{gateway_port}"
state_dir = "{state_dir}"
sample_interval_s = 1.0
backoff_initial_s = 0.2
backoff_max_s = 1.0
[identity]
device_id = "bench-edge"
credential_file = "{credential}"
[[sources]]
name = "pw"
kind = "powerwall"
host = "127.0.0.1"
port = {powerwall.port}
password = "{powerwall.password}"
[[sources]]
name = "fr"
kind = "fronius"
url = "http://127.0.0.1:{fronius.port}"
[[sources]]
name = "inv"
kind = "sunspec"
host = "127.0.0.1"
port = {inverter.port}
"""


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"))  # noqa: SIM115


def buffered(path: Path) -> int:
    with sqlite3.connect(path, timeout=5) as db:
        return int(db.execute("SELECT count(*) FROM samples").fetchone()[0])


async def steady(settings: Settings, work: Path, fakes: tuple[FakePowerwall, FakeFronius, FakeSunSpec],
                 gateway_port: int, credential: Path, seconds: float) -> dict[str, float]:
    state = work / "steady"
    config = work / "steady.toml"
    config.write_text(config_text(gateway_port, state, credential, *fakes))
    agent = start_agent(config, work / "steady.log")
    try:
        await asyncio.sleep(10)                       # warm-up: imports, login, SunSpec scan, first batches
        cpu0, t0 = cpu_s(agent.pid), time.monotonic()
        reads0 = sum(len(f.requests) for f in fakes[:2])
        await asyncio.sleep(seconds)
        cpu1, t1 = cpu_s(agent.pid), time.monotonic()
        rss, peak = memory_mib(agent.pid)
        http_requests = sum(len(f.requests) for f in fakes[:2]) - reads0
    finally:
        agent.terminate()
        agent.wait(10)
    return {"cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0), "rss_mib": rss, "peak_mib": peak,
            "http_per_s": http_requests / (t1 - t0), "seconds": t1 - t0}


def fill_buffer(path: Path, hours: float) -> int:
    """`hours` of 1-Hz samples ending now, as the agent makes them from the three sources."""
    buffer = DiskBuffer(path)
    end_ms = now_ms() - 2_000
    n = int(hours * 3_600)
    rows = []
    for i in range(n):
        ts = end_ms - (n - i) * 1_000
        rows.append((ts, link.sample_bytes(SampleValues(
            ts, site_power_w=27.0 + i % 7, battery_power_w=-1_500.0, solar_power_w=216.43276786804199,
            load_power_w=866.25, state_of_charge_pct=65.5, extra=(("battery_temperature_c", 21.5),
                                                                   ("grid_frequency_hz", 50.01))))))
    buffer.add_many(rows)
    buffer.close()
    return n


async def replay(work: Path, fakes: tuple[FakePowerwall, FakeFronius, FakeSunSpec], gateway_port: int,
                 credential: Path, hours: float) -> dict[str, float]:
    state = work / "replay"
    state.mkdir()
    samples = fill_buffer(state / "buffer.sqlite3", hours)
    cable = Cable(gateway_port)
    await cable.plug()
    await cable.cut()
    config = work / "replay.toml"
    config.write_text(config_text(cable.port, state, credential, *fakes))
    agent = start_agent(config, work / "replay.log")
    try:
        await asyncio.sleep(5)                        # the agent runs, offline, its buffer full
        await cable.plug()
        started = time.monotonic()
        while buffered(state / "buffer.sqlite3") > 10:   # what is left: the live samples of the last seconds
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        agent.terminate()
        agent.wait(10)
        await cable.cut()
    return {"samples": samples, "seconds": elapsed, "rate": samples / elapsed}


async def main(settings: Settings, args: argparse.Namespace) -> None:
    await kafka_topics.ensure_topics(settings.kafka, kafka_topics.platform_topics(settings.kafka))
    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=4)
    assert pool is not None
    work = Path(tempfile.mkdtemp(prefix="gridtwin-bench-edge-"))
    credential = work / "credential"
    credential.write_text("bench-edge-secret")
    await register_devices(pool, [DeviceRegistration("bench-edge", "bench-home", "bench-edge-secret")])
    gateway = Gateway(settings.gateway.model_copy(update={"port": 0, "metrics_port": 0}), settings.kafka,
                      CredentialDirectory(pool))
    fakes = (FakePowerwall(), FakeFronius(), FakeSunSpec())
    for fake in fakes:
        await fake.start()
    try:
        async with gateway:
            console.print(f"steady state: three sources every second for {args.seconds:g} s …")
            s = await steady(settings, work, fakes, gateway.port, credential, args.seconds)
            console.print(f"replay: a {args.buffer_hours:g}-hour buffer after reconnecting …")
            r = await replay(work, fakes, gateway.port, credential, args.buffer_hours)
    finally:
        for fake in fakes:
            await fake.stop()
        await pool.close()
    table = Table(title="gridtwin edge agent (python -m edge run), this machine")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("goal", justify="right")
    table.add_row("CPU, 3 sources polled every 1 s, 1 sample/s streamed", f"{s['cpu_pct']:.2f} % of a core", "< 2 %")
    table.add_row("resident memory (end / peak)", f"{s['rss_mib']:.1f} / {s['peak_mib']:.1f} MiB", "< 60 MiB")
    table.add_row("HTTP requests answered by the fakes", f"{s['http_per_s']:.1f}/s", "")
    table.add_row(f"replay of {r['samples']:,} buffered samples ({args.buffer_hours:g} h at 1 Hz)",
                  f"{r['seconds']:.2f} s, {r['rate']:,.0f} samples/s", "")
    console.print(table)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="steady-state measuring window")
    parser.add_argument("--buffer-hours", type=float, default=24.0)
    args = parser.parse_args()
    base = Settings()
    run_id = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench_edge"),
        "kafka": run_topics(base.kafka, run_id, "bench-edge"),
    })
    infra.ensure_broker(settings.kafka, settings.var_dir)
    asyncio.run(main(settings, args))


if __name__ == "__main__":
    run()
