"""VPP benchmark on this machine, every component real and local.

    python -m bench.vpp [--devices 10000] [--rounds 2] [--sample-interval-s 5]

N simulated batteries, enrolled in one program, connect to a gateway process and stream telemetry
(every `--sample-interval-s`). The control service (`gridtwin control serve`: dispatcher and
acknowledgement consumer) and the VPP service (`gridtwin vpp serve`: dispatcher of grid events,
twins on a Ray head of the benchmark's own, live contribution) run as their own processes.

Each round creates one grid event for the whole program through the VppService (gRPC) and waits
until every participant's plan is acknowledged by its device. Prints, per round: the CreateEvent
call (participants resolved, every twin's decision, the plans stored as commands), event created
→ plan acknowledged p50 / p99 / max over the devices, and failures. Round 1 activates the twins
(cold), later rounds find them resident; each round's event supersedes the previous plans.

Meanwhile a StreamContribution client watches the program: the lag of the live contribution
behind the telemetry is, per message, its time minus the newest sample it includes (p50 / p99),
next to the tracker's own histogram (device timestamp → applied to the sums).

Uses its own database (gridtwin_bench_vpp), topics and Ray head, so a running platform is left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from bench.common import fresh_database, run_topics
from gridtwin import kafka_topics, ray_env
from gridtwin.api.control.v1 import vpp_pb2 as pb
from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc
from gridtwin.app import infra, processes
from gridtwin.observability import run_service
from gridtwin.settings import PostgresSettings, Settings
from gridtwin.unixtime import now_ms
from services.access.credentials import register_devices
from services.access.model import Scope
from services.access.service_tokens import issue_token
from services.assets.database import create_engine
from services.assets.model import GroupPath
from services.assets.repository import AssetRepository
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations

console = Console(width=140)
PROGRAM = "bench.vpp"
SAMPLE_AGE = "gridtwin_vpp_contribution_sample_age_seconds"
STAGES = "gridtwin_vpp_dispatch_stage_seconds"


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    values = sorted(values)
    if len(values) < 2:
        return (values[0],) * 3 if values else (float("nan"),) * 3
    q = statistics.quantiles(values, n=100)
    return q[49], q[98], values[-1]


class Platform:
    """A Ray head, the gateway, the control service and the VPP service as processes."""

    def __init__(self, settings: Settings, var_dir: Path) -> None:
        self.settings = settings
        self.var_dir = var_dir
        self.gateway_port, self.vpp_port, self.vpp_metrics_port, *self._other = infra.free_ports(7)
        self.ray: infra.RayNode | None = None

    def start(self) -> None:
        s = self.settings
        self.ray = infra.start_ray_node(self.var_dir, "bench-ray", num_cpus=2)
        rest, gateway_metrics, control_port, control_metrics = self._other
        env = {
            "GRIDTWIN_POSTGRES__URL": s.postgres.url,
            "GRIDTWIN_KAFKA__TELEMETRY_TOPIC": s.kafka.telemetry_topic,
            "GRIDTWIN_KAFKA__DEVICE_EVENTS_TOPIC": s.kafka.device_events_topic,
            "GRIDTWIN_KAFKA__COMMANDS_TOPIC": s.kafka.commands_topic,
            "GRIDTWIN_KAFKA__ALERTS_TOPIC": s.kafka.alerts_topic,
            "GRIDTWIN_GATEWAY__PORT": str(self.gateway_port),
            "GRIDTWIN_GATEWAY__METRICS_PORT": str(gateway_metrics),
            "GRIDTWIN_CONTROL__PORT": str(control_port),
            "GRIDTWIN_CONTROL__METRICS_PORT": str(control_metrics),
            "GRIDTWIN_CONTROL__ACK_GROUP_ID": f"bench-acks-{uuid.uuid4().hex[:6]}",
            "GRIDTWIN_VPP__PORT": str(self.vpp_port),
            "GRIDTWIN_VPP__REST_PORT": str(rest),
            "GRIDTWIN_VPP__METRICS_PORT": str(self.vpp_metrics_port),
            "GRIDTWIN_VPP__STREAM_INTERVAL_S": "0.25",
            "GRIDTWIN_TWINS__RAY_ADDRESS": self.ray.address,
            "GRIDTWIN_TWINS__NAMESPACE": f"bench-vpp-{uuid.uuid4().hex[:6]}",
            "GRIDTWIN_TWINS__SHARDS": "2",
            "GRIDTWIN_LOG_LEVEL": os.environ.get("GRIDTWIN_LOG_LEVEL", "WARNING"),
            **ray_env.ray_auth_env(),
        }
        cli = [sys.executable, "-m", "gridtwin.app.cli"]
        processes.spawn(self.var_dir, "gateway", [*cli, "gateway"], env)
        processes.spawn(self.var_dir, "control", [*cli, "control", "serve"], env)
        processes.spawn(self.var_dir, "vpp", [*cli, "vpp", "serve"], env)
        processes.wait_for_port("127.0.0.1", self.gateway_port, 60, "gateway")
        processes.wait_for_port("127.0.0.1", control_port, 60, "control")
        processes.wait_for_port("127.0.0.1", self.vpp_port, 120, "vpp")

    def stop(self) -> None:
        for name in ("vpp", "control", "gateway"):
            processes.stop(self.var_dir, name)
        if self.ray is not None:
            infra.stop_ray_node(self.var_dir, "bench-ray")

    def _metrics(self) -> list[Any]:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.vpp_metrics_port}/metrics", timeout=5).read().decode()
        return list(text_string_to_metric_families(text))

    def sample_age_buckets(self) -> dict[float, float]:
        """The tracker's histogram now: upper bound (s) → cumulative count."""
        return {float(s.labels["le"]): s.value for f in self._metrics() if f.name == SAMPLE_AGE
                for s in f.samples if s.name == f"{SAMPLE_AGE}_bucket"}

    def dispatch_stages(self) -> dict[str, tuple[float, float]]:
        """Where an event's dispatch spent its time: stage → (seconds in total, chunks)."""
        values = {(s.name, s.labels.get("stage")): s.value for f in self._metrics() if f.name == STAGES
                  for s in f.samples}
        return {stage: (values[(f"{STAGES}_sum", stage)], values[(f"{STAGES}_count", stage)])
                for _, stage in values if stage}


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """The q-quantile (s) of what the histogram counted between two scrapes, interpolated linearly
    inside the bucket, as PromQL's histogram_quantile does."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return float("nan")
    rank, lower, below = q * counts[-1], 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(cumulative - below, 1e-12)
        lower, below = bound, cumulative
    return bounds[-1]


async def enroll(pool: asyncpg.Pool, pg: PostgresSettings, options: FleetOptions) -> str:
    """The fleet's installations enrolled in the program, with batteries; returns a command token."""
    ids = [r.installation_id for r in registrations(options)]
    await pool.execute("INSERT INTO hierarchy_groups (path) VALUES ('bench'), ('bench.vpp'), "
                       "('bench.vpp.enrolled') ON CONFLICT DO NOTHING")
    await pool.execute("INSERT INTO programs (path) VALUES ($1::text::ltree) ON CONFLICT DO NOTHING", PROGRAM)
    await pool.execute("INSERT INTO vpp_program_terms (program, rate_per_kwh) VALUES ($1::text::ltree, 2.0) "
                       "ON CONFLICT DO NOTHING", PROGRAM)
    await pool.execute(
        "INSERT INTO group_memberships (installation_id, path, program, enrollment_state) "
        "SELECT i, $2::text::ltree || 'enrolled', $2::text::ltree, 'enrolled' FROM unnest($1::text[]) AS i "
        "ON CONFLICT DO NOTHING",
        ids, PROGRAM)
    await pool.execute("UPDATE installations SET battery_nominal_energy_wh = 13500, max_discharge_power_w = 5000, "
                       "backup_reserve_pct = 20 WHERE installation_id = ANY($1)", ids)
    token, principal = issue_token("bench", frozenset({Scope.COMMAND}), (GroupPath(""),), None)
    engine = create_engine(pg)
    try:
        await AssetRepository(engine).create_principal(principal, hashlib.sha256(token.encode()).digest(), "bench")
    finally:
        await engine.dispose()
    return token


async def watch_contribution(stub: pb_grpc.VppServiceStub, metadata: list[tuple[str, str]],
                             lags_ms: list[float], stop: asyncio.Event) -> None:
    stream = stub.StreamContribution(pb.StreamContributionRequest(path=PROGRAM, interval_ms=250), metadata=metadata)
    async for message in stream:
        if message.newest_sample_unix_ms:
            lags_ms.append(message.at_unix_ms - message.newest_sample_unix_ms)
        if stop.is_set():
            stream.cancel()
            return


def fleet_options(args: argparse.Namespace) -> FleetOptions:
    return FleetOptions(devices=args.devices, fleet_secret="bench", id_prefix=f"vpp{args.devices}",
                        sample_interval_s=args.sample_interval_s, load_source="bdew")


async def run(platform: Platform, pool: asyncpg.Pool, token: str, args: argparse.Namespace) -> None:
    n = args.devices
    options = fleet_options(args)
    metadata = [("authorization", f"Bearer {token}")]
    fleet = Fleet(options, DeviceOptions(url=f"ws://127.0.0.1:{platform.gateway_port}", backoff_initial_s=0.5,
                                         backoff_max_s=5))
    rounds = []
    lags_ms: list[float] = []
    stop = asyncio.Event()
    async with fleet, grpc.aio.insecure_channel(f"127.0.0.1:{platform.vpp_port}") as channel:
        stub = pb_grpc.VppServiceStub(channel)
        await fleet.wait_connected(300)
        ids = [d.device_id for d in fleet.devices]
        async with asyncio.timeout(120):
            while await pool.fetchval("SELECT count(*) FROM control_device_sessions WHERE device_id = ANY($1)",
                                      ids) < n:
                await asyncio.sleep(0.2)
        await asyncio.sleep(max(2 * args.sample_interval_s, 5))   # the connection storm settles
        watcher = asyncio.create_task(watch_contribution(stub, metadata, lags_ms, stop))
        ages_before = platform.sample_age_buckets()
        for r in range(args.rounds):
            t0 = now_ms()
            start = t0 + 120_000
            spec = pb.GridEventSpec(program=PROGRAM, start_unix_ms=start, end_unix_ms=start + 600_000,
                                    target_power_w=n * 3_000.0, precharge_s=60, name=f"bench round {r + 1}")
            event = await stub.CreateEvent(pb.CreateEventRequest(spec=spec), metadata=metadata, timeout=300)
            created_ms = now_ms() - t0
            async with asyncio.timeout(300):
                while (progress := await stub.GetEventProgress(pb.GetEventProgressRequest(event_id=event.event_id),
                                                               metadata=metadata)).pending:
                    await asyncio.sleep(0.1)
            done_ms = now_ms() - t0
            acked = [float(row[0] - t0) for row in await pool.fetch(
                "SELECT control_ms(acked_at) FROM control_commands WHERE fanout_id = $1 AND acked_at IS NOT NULL",
                event.fanout_id)]
            p50, p99, worst = _quantiles(acked)
            rounds.append({"round": r + 1, "participants": event.participants, "create_ms": created_ms,
                           "p50_ms": p50, "p99_ms": p99, "max_ms": worst, "observed_ms": done_ms,
                           "acked": progress.acknowledged, "failed": progress.unsuccessful})
            console.print(rounds[-1])
            await asyncio.sleep(2)
        await asyncio.sleep(max(2 * args.sample_interval_s, 5))   # steady telemetry while the plans run
        stop.set()
        await asyncio.wait_for(watcher, 10)
        ages = platform.sample_age_buckets()
        stages = platform.dispatch_stages()
    lag50, lag99, lag_max = _quantiles(lags_ms)
    age50, age99 = (histogram_quantile(q, ages_before, ages) * 1_000 for q in (0.5, 0.99))
    applied = ages.get(float("inf"), 0.0) - ages_before.get(float("inf"), 0.0)

    table = Table(title=f"gridtwin VPP benchmark: {n:,} enrolled, connected batteries (telemetry every "
                        f"{args.sample_interval_s:g} s), one event for the whole program per round")
    for column in ("round", "participants", "CreateEvent", "created → acked p50", "p99", "max", "acked", "failed"):
        table.add_column(column, justify="right")
    for f in rounds:
        table.add_row(str(f["round"]), f"{f['participants']:,}", f"{f['create_ms']:.0f} ms", f"{f['p50_ms']:.0f} ms",
                      f"{f['p99_ms']:.0f} ms", f"{f['max_ms']:.0f} ms", f"{f['acked']:,}", str(f["failed"]))
    console.print(table)
    console.print("dispatch stages over all rounds (chunks of twins deciding, overlapped with storing the previous "
                  "chunk's commands): " + ", ".join(f"{stage} {total:.2f} s in {count:.0f} chunks"
                                                    for stage, (total, count) in sorted(stages.items())))
    console.print(f"live contribution behind telemetry (goal < 2 s), while the rounds ran:\n"
                  f"  StreamContribution, message time − newest sample in it ({len(lags_ms)} messages every 250 ms): "
                  f"p50 {lag50:.0f} ms, p99 {lag99:.0f} ms, max {lag_max:.0f} ms\n"
                  f"  tracker, device timestamp → in the sums ({applied:,.0f} samples): p50 {age50:.0f} ms, "
                  f"p99 {age99:.0f} ms")


def bench_settings() -> Settings:
    base = Settings()
    run_id = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench_vpp", pool_max_size=8),
        "kafka": run_topics(base.kafka, run_id),
    })
    infra.ensure_broker(settings.kafka, settings.var_dir)
    return settings


async def main(settings: Settings, args: argparse.Namespace) -> None:
    await kafka_topics.ensure_topics(settings.kafka, kafka_topics.platform_topics(settings.kafka))
    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=8)
    assert pool is not None
    var_dir = Path(tempfile.mkdtemp(prefix="gridtwin-bench-vpp-"))
    # Enrolled before the VPP service starts: its contribution tracker loads memberships at start
    # (then every GRIDTWIN_VPP__CONTRIBUTION_RELOAD_S).
    await register_devices(pool, registrations(fleet_options(args)))
    token = await enroll(pool, settings.postgres, fleet_options(args))
    platform = Platform(settings, var_dir)
    platform.start()
    try:
        await run(platform, pool, token, args)
    finally:
        platform.stop()
        await pool.close()
    console.print(f"logs: {var_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample-interval-s", type=float, default=5.0)
    arguments = parser.parse_args()
    raise SystemExit(run_service(main(bench_settings(), arguments)))
