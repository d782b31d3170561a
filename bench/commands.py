"""Command path benchmark on this machine, every component real and local.

    python -m bench.commands [--devices 1000,5000,10000] [--rounds 2] [--sample-interval-s 10]

For each fleet size N: N simulated devices connect to a gateway process (`gridtwin gateway`)
and stream telemetry (every `--sample-interval-s`); the control service runs as its own process
(`gridtwin control serve`: dispatcher and acknowledgement consumer). The benchmark then submits
one control plan to every installation in one fan-out through the in-process API the VPP uses
(`Control.submit_plans`, one batch) and waits until every plan is acknowledged by its device.
Prints, per round: submit time, submit → acknowledged p50 / p99 / max (acknowledgement time as
stored by the control service), and throughput (plans acknowledged per second).

Uses its own database (gridtwin_bench_commands) and topics, so a running platform is left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from bench.common import fresh_database, run_topics
from gridtwin import kafka_topics
from gridtwin.app import infra, processes
from gridtwin.observability import run_service
from gridtwin.settings import Settings
from gridtwin.unixtime import now_ms
from services.access.credentials import register_devices
from services.control.model import ChargeTo, ControlPlan, Discharge, PlanStep
from services.control.service import Control, PlanRequest, Submitted
from services.control.store import CommandStore
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, installation_id, registrations

console = Console()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Platform:
    """The gateway and the control service as `gridtwin` processes."""

    def __init__(self, settings: Settings, var_dir: Path) -> None:
        self.settings = settings
        self.var_dir = var_dir
        self.gateway_port = _free_port()
        self.control_port = _free_port()

    def start(self) -> None:
        s = self.settings
        env = {
            "GRIDTWIN_POSTGRES__URL": s.postgres.url,
            "GRIDTWIN_KAFKA__TELEMETRY_TOPIC": s.kafka.telemetry_topic,
            "GRIDTWIN_KAFKA__DEVICE_EVENTS_TOPIC": s.kafka.device_events_topic,
            "GRIDTWIN_KAFKA__COMMANDS_TOPIC": s.kafka.commands_topic,
            "GRIDTWIN_GATEWAY__PORT": str(self.gateway_port),
            "GRIDTWIN_GATEWAY__METRICS_PORT": str(_free_port()),
            "GRIDTWIN_CONTROL__PORT": str(self.control_port),
            "GRIDTWIN_CONTROL__METRICS_PORT": str(_free_port()),
            "GRIDTWIN_CONTROL__ACK_GROUP_ID": f"bench-acks-{uuid.uuid4().hex[:6]}",
            "GRIDTWIN_LOG_LEVEL": "WARNING",
        }
        cli = [sys.executable, "-m", "gridtwin.app.cli"]
        processes.spawn(self.var_dir, "gateway", [*cli, "gateway"], env)
        processes.spawn(self.var_dir, "control", [*cli, "control", "serve"], env)
        processes.wait_for_port("127.0.0.1", self.gateway_port, 60, "gateway")
        processes.wait_for_port("127.0.0.1", self.control_port, 60, "control")

    def stop(self) -> None:
        for name in ("control", "gateway"):
            processes.stop(self.var_dir, name)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}"


def _plan(now_ms: int) -> ControlPlan:
    # Charge for ten minutes, then discharge: what a VPP event's pre-charge looks like.
    return ControlPlan((PlanStep(now_ms, now_ms + 600_000, ChargeTo(95)),
                        PlanStep(now_ms + 600_000, now_ms + 1_200_000, Discharge(3_000, 20))))


async def one_size(platform: Platform, pool: asyncpg.Pool, n: int, rounds: int, interval_s: float) -> list[dict]:
    prefix = f"cmd{n}"
    options = FleetOptions(devices=n, fleet_secret="bench", id_prefix=prefix, sample_interval_s=interval_s,
                           load_source="bdew")
    await register_devices(pool, registrations(options))
    control = Control(CommandStore(pool))
    figures = []
    fleet = Fleet(options, DeviceOptions(url=platform.url, backoff_initial_s=0.5, backoff_max_s=5))
    async with fleet:
        await fleet.wait_connected(300)
        ids = [d.device_id for d in fleet.devices]
        async with asyncio.timeout(60):
            while await pool.fetchval("SELECT count(*) FROM control_device_sessions WHERE device_id = ANY($1)",
                                      ids) < n:
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)   # let the connection storm settle
        for r in range(rounds):
            t0 = now_ms()
            fanout = await control.open_fanout(source="vpp")
            results = await control.submit_plans(
                [PlanRequest(installation_id(prefix, i), _plan(t0)) for i in range(n)],
                source="vpp", ttl_s=300, fanout_id=fanout)
            submitted_ms = now_ms() - t0
            assert all(isinstance(x, Submitted) for x in results)
            async with asyncio.timeout(300):
                while True:
                    progress = await control.progress(fanout, max_failures=10)
                    if progress.done:
                        break
                    await asyncio.sleep(0.05)
            all_done_ms = now_ms() - t0
            acked = [c.record.acked_ms - t0 for c in await control.fanout_commands(fanout) if c.record.acked_ms]
            acked.sort()
            q = statistics.quantiles(acked, n=100) if len(acked) > 1 else acked * 99
            figures.append({
                "devices": n, "round": r + 1, "submit_ms": submitted_ms,
                "p50_ms": q[49], "p99_ms": q[98], "max_ms": acked[-1] if acked else float("nan"),
                "acked": progress.acknowledged, "failed": progress.unsuccessful,
                "per_s": len(acked) / max(acked[-1] / 1000, 1e-9) if acked else 0.0, "observed_ms": all_done_ms,
                "redeliveries": sum(len(v) for v in fleet.ledger.commands_received.values()) - (r + 1) * n,
            })
            console.print(figures[-1])
            await asyncio.sleep(1)
    return figures


def bench_settings() -> Settings:
    base = Settings()
    run = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench_commands", pool_max_size=8),
        "kafka": run_topics(base.kafka, run),
    })
    infra.ensure_broker(settings.kafka, settings.var_dir)
    return settings


async def main(settings: Settings, args: argparse.Namespace) -> None:
    await kafka_topics.ensure_topics(settings.kafka, kafka_topics.platform_topics(settings.kafka))
    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=8)
    assert pool is not None
    var_dir = Path(tempfile.mkdtemp(prefix="gridtwin-bench-commands-"))
    platform = Platform(settings, var_dir)
    platform.start()
    figures: list[dict] = []
    try:
        for n in [int(x) for x in args.devices.split(",")]:
            console.print(f"[bold]{n} devices[/] …")
            figures += await one_size(platform, pool, n, args.rounds, args.sample_interval_s)
    finally:
        platform.stop()
        await pool.close()
    table = Table(title=f"gridtwin command benchmark (one plan per device, one fan-out; telemetry every "
                        f"{args.sample_interval_s:g} s)")
    for column in ("devices", "round", "submit", "→ acked p50", "p99", "max", "plans acked/s", "failed",
                   "redelivered"):
        table.add_column(column, justify="right")
    for f in figures:
        table.add_row(str(f["devices"]), str(f["round"]), f"{f['submit_ms']:.0f} ms", f"{f['p50_ms']:.0f} ms",
                      f"{f['p99_ms']:.0f} ms", f"{f['max_ms']:.0f} ms", f"{f['per_s']:,.0f}", str(f["failed"]),
                      str(f["redeliveries"]))
    console.print(table)
    console.print(f"logs: {var_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="1000,5000,10000", help="comma-separated fleet sizes")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample-interval-s", type=float, default=10.0)
    arguments = parser.parse_args()
    raise SystemExit(run_service(main(bench_settings(), arguments)))
