"""Telemetry path benchmark on this machine, every component real and local.

    python -m bench.telemetry [--devices 10000] [--seconds 60] [--backlog-devices 1000]
                              [--backlog-samples 1000] [--ingest-members 1]

1. Live: N devices at one sample per second each for S seconds through the gateway process,
   the broker and the ingest process(es) into Postgres and the twins on Ray. Prints samples/s, consumer lag over
   time, and device timestamp → stored-and-committed latency (p50/p99 from the ingest histogram).
2. Backlog drain: devices with buffered history connect and replay; prints stored samples/s and
   checks the store against the simulator's ledger (lost, duplicated).
3. Raw produce throughput of one Python producer (100-byte messages) and the ratio of the
   end-to-end ingest throughput (2.) to it.

For 1. and 2. it also prints the CPU time every stage consumed per stored sample (µs/sample, from
the processes' CPU counters over the measured interval, bench/cpu.py): gateway, broker, ingest,
Postgres backends of the bench database, twin shards (the Ray actors of the bench's namespace),
the simulator (this process), and, apart, what is shared with others on the machine (Ray's own
processes, the Postgres cluster's background writers). On a shared 2-core machine the µs/sample
figures are the ones to compare; throughput and latency move with whatever else runs.

Uses its own database (gridtwin_bench), topics and broker (on a free port), so a running platform
is left alone. `--profile DIR` runs gateway and ingest under cProfile and writes their profiles
there when they stop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from bench import cpu
from bench.common import fresh_database, run_topics
from gridtwin import kafka_topics
from gridtwin.app import infra, processes
from gridtwin.observability import run_service
from gridtwin.settings import Settings
from services.access.credentials import register_devices
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations

console = Console()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[str, float]:
    """Prometheus text → {series: value} (labels kept in the key)."""
    from urllib.request import urlopen

    out: dict[str, float] = {}
    for line in urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _sum(metrics: list[dict[str, float]], prefix: str) -> float:
    return sum(v for m in metrics for k, v in m.items() if k.startswith(prefix))


def _quantile(before: dict[str, float], after: dict[str, float], name: str, q: float) -> float:
    """histogram_quantile over the observations between two scrapes (linear within a bucket)."""
    buckets = []
    for key, value in after.items():
        if key.startswith(name + "_bucket{"):
            le = key.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), value - before.get(key, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


class Platform:
    """Gateway and ingest processes against the bench database and topics."""

    def __init__(self, settings: Settings, var_dir: Path, ingest_members: int, profile_dir: Path | None = None) -> None:
        self.settings = settings
        self.var_dir = var_dir
        self.profile_dir = profile_dir
        self.gateway_port = _free_port()
        self.gateway_metrics = _free_port()
        self.ingest_metrics = [_free_port() for _ in range(ingest_members)]

    def start(self) -> None:
        s = self.settings
        env = {
            "GRIDTWIN_POSTGRES__URL": s.postgres.url,
            "GRIDTWIN_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
            "GRIDTWIN_KAFKA__TELEMETRY_TOPIC": s.kafka.telemetry_topic,
            "GRIDTWIN_KAFKA__DEVICE_EVENTS_TOPIC": s.kafka.device_events_topic,
            "GRIDTWIN_KAFKA__ALERTS_TOPIC": s.kafka.alerts_topic,
            "GRIDTWIN_INGEST__GROUP_ID": s.ingest.group_id,
            "GRIDTWIN_TWINS__NAMESPACE": s.twins.namespace,
            "GRIDTWIN_GATEWAY__PORT": str(self.gateway_port),
            "GRIDTWIN_GATEWAY__METRICS_PORT": str(self.gateway_metrics),
            "GRIDTWIN_GATEWAY__MAX_IN_FLIGHT_BATCHES_TOTAL": "50000",
            "GRIDTWIN_LOG_LEVEL": "WARNING",
        }
        def cli(name: str) -> list[str]:
            if self.profile_dir is None:
                return [sys.executable, "-m", "gridtwin.app.cli"]
            # cProfile writes when the interpreter exits normally (SIGTERM → graceful stop).
            return [sys.executable, "-m", "cProfile", "-o", str(self.profile_dir / f"{name}.prof"),
                    "-m", "gridtwin.app.cli"]

        processes.spawn(self.var_dir, "gateway", [*cli("gateway"), "gateway"], env)
        for i, port in enumerate(self.ingest_metrics):
            processes.spawn(self.var_dir, f"ingest-{i}", [*cli(f"ingest-{i}"), "ingest"],
                            {**env, "GRIDTWIN_INGEST__METRICS_PORT": str(port)})
        processes.wait_for_port("127.0.0.1", self.gateway_port, 60, "gateway")
        for port in self.ingest_metrics:
            processes.wait_for_port("127.0.0.1", port, 60, "ingest metrics")

    def stop(self) -> None:
        for name in ("gateway", *(f"ingest-{i}" for i in range(len(self.ingest_metrics)))):
            processes.stop(self.var_dir, name)
        cpu.kill_twins(self.settings.twins.ray_address, self.settings.twins.namespace)

    def ingest(self) -> list[dict[str, float]]:
        return [_scrape(p) for p in self.ingest_metrics]

    def _pid(self, name: str) -> list[int]:
        pid = processes.running_pid(self.var_dir, name)
        return [pid] if pid is not None else []

    def stages(self) -> list[cpu.Stage]:
        """Every process of the path, by stage, as they are now (call after the warm-up: the
        twin shards and the database connections exist by then)."""
        s = self.settings
        database = s.postgres.url.rsplit("/", 1)[1].split("?")[0]
        shards: list[int] = []
        for _ in range(5):   # the coordinator and every shard (they may still be starting)
            try:
                shards = cpu.ray_actor_pids(s.twins.ray_address, s.twins.namespace)
            except Exception as exc:   # the table then says 0 processes for the twins
                console.print(f"[yellow]twin shard pids not found: {exc}[/]")
            if len(shards) > s.twins.shards:
                break
            time.sleep(2)
        return [
            cpu.Stage("gateway", tuple(self._pid("gateway"))),
            cpu.Stage("broker", tuple(self._pid("broker"))),
            cpu.Stage("ingest", tuple(p for i in range(len(self.ingest_metrics)) for p in self._pid(f"ingest-{i}"))),
            cpu.Stage("postgres backends", tuple(cpu.postgres_backends(database))),
            cpu.Stage("twin shards", tuple(shards)),
            cpu.Stage("simulator", (os.getpid(),)),
            cpu.Stage("ray system", tuple(cpu.ray_system()), shared=True),
            cpu.Stage("postgres background", tuple(cpu.postgres_background()), shared=True),
        ]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}"


async def _stored(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM telemetry_samples"))


async def live(platform: Platform, pool: asyncpg.Pool, devices: int, seconds: float) -> dict[str, object]:
    options = FleetOptions(devices=devices, fleet_secret=platform.settings.simulator.fleet_secret, id_prefix="live")
    await register_devices(pool, registrations(options))
    fleet = Fleet(options, DeviceOptions(url=platform.url, backoff_initial_s=1, backoff_max_s=10))
    console.print(f"[bold]1. live[/]: connecting {devices} devices …")
    started = time.monotonic()
    await fleet.start(stream=False)
    await fleet.wait_connected(600)
    connect_s = time.monotonic() - started
    console.print(f"   connected in {connect_s:.1f} s; idle for 10 s, then streaming {seconds:.0f} s")
    meter = cpu.CpuMeter(platform.stages())
    await asyncio.sleep(5.0)   # the hellos' state reports and session records settle first
    await meter.idle(5.0)      # devices connected, nothing sent: keepalives, timers, polls
    await fleet.start_streaming()
    await asyncio.sleep(min(10.0, seconds / 4))  # warm-up: group join, partitions, caches
    before, stored_before, t0 = platform.ingest(), await _stored(pool), time.monotonic()
    meter.start()
    lags: list[tuple[float, float]] = []
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(5)
        lags.append((time.monotonic() - t0, _sum(platform.ingest(), "gridtwin_ingest_consumer_lag{")))
    meter.stop()
    after, stored_after, elapsed = platform.ingest(), await _stored(pool), time.monotonic() - t0
    await fleet.stop()
    _print_cpu("live", meter, stored_after - stored_before, elapsed)
    merged_before = {k: sum(m.get(k, 0) for m in before) for m in before for k in m}
    merged_after = {k: sum(m.get(k, 0) for m in after) for m in after for k in m}
    half = len(lags) // 2
    return {
        "devices": devices,
        "connect all (s)": round(connect_s, 1),
        "stored samples/s": round((stored_after - stored_before) / elapsed),
        "offered samples/s": devices,
        "lag first half (records)": round(sum(v for _, v in lags[:half]) / max(half, 1)),
        "lag second half (records)": round(sum(v for _, v in lags[half:]) / max(len(lags) - half, 1)),
        "lag samples": " ".join(f"{v:.0f}" for _, v in lags),
        "latency p50 (s)": round(_quantile(merged_before, merged_after, "gridtwin_ingest_sample_age_seconds", 0.5), 3),
        "latency p99 (s)": round(_quantile(merged_before, merged_after, "gridtwin_ingest_sample_age_seconds", 0.99), 3),
    }


async def backlog(platform: Platform, pool: asyncpg.Pool, devices: int, samples: int) -> dict[str, object]:
    options = FleetOptions(devices=devices, fleet_secret=platform.settings.simulator.fleet_secret, id_prefix="backlog")
    await register_devices(pool, registrations(options))
    fleet = Fleet(options, DeviceOptions(url=platform.url, max_samples_per_batch=1_000, backoff_initial_s=1))
    console.print(f"[bold]2. backlog[/]: {devices} devices × {samples} buffered samples")
    fleet.backfill(samples)
    total = fleet.ledger.generated_total()
    base = await _stored(pool)
    meter = cpu.CpuMeter(platform.stages())
    await meter.idle(5.0)
    t0 = time.monotonic()
    meter.start()
    await fleet.start(stream=False)
    await fleet.wait_drained(1_800)
    acked_s = time.monotonic() - t0
    while await _stored(pool) - base < total and time.monotonic() - t0 < 1_800:
        await asyncio.sleep(0.2)
    meter.stop()
    elapsed = time.monotonic() - t0
    await fleet.stop()
    _print_cpu("backlog drain", meter, await _stored(pool) - base, elapsed)
    rows = await pool.fetch(
        "SELECT count(*) AS n, count(DISTINCT (device_id, ts)) AS distinct_n FROM telemetry_samples "
        "WHERE device_id LIKE 'backlog-%'")
    stored = rows[0]["n"]
    expected = {(d, t) for d, ts in fleet.ledger.generated.items() for t in ts}
    present = await pool.fetchval(
        "SELECT count(*) FROM telemetry_samples s JOIN unnest($1::text[], $2::bigint[]) AS l(d, t) "
        "ON s.device_id = l.d AND s.ts = to_timestamp(l.t / 1000.0)",
        [d for d, _ in expected], [t for _, t in expected])
    return {
        "samples": total,
        "acknowledged after (s)": round(acked_s, 1),
        "stored after (s)": round(elapsed, 1),
        "stored samples/s": round(total / elapsed),
        "lost": total - present,
        "duplicated": stored - rows[0]["distinct_n"],
        "refused": fleet.ledger.refused_total(),
    }


def _print_cpu(phase: str, meter: cpu.CpuMeter, samples: int, elapsed_s: float) -> None:
    table = Table(title=f"CPU per stored sample, {phase}: {samples:,} samples in {elapsed_s:.1f} s")
    for column in ("stage", "µs/sample", "above idle", "cores", "idle cores", "processes"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in cpu.per_sample_rows(meter.costs(), samples, elapsed_s):
        table.add_row(*row)
    console.print(table)


async def raw_produce(settings: Settings, messages: int = 300_000) -> float:
    from aiokafka import AIOKafkaProducer

    topic = f"bench-raw-{uuid.uuid4().hex[:6]}"
    await kafka_topics.ensure_topics(settings.kafka, {topic: settings.kafka.telemetry_partitions})
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, linger_ms=5,
                                max_batch_size=1 << 20, acks="all")
    await producer.start()
    payload = b"x" * 100
    t0 = time.perf_counter()
    futures = [await producer.send(topic, payload, key=str(i % 1000).encode()) for i in range(messages)]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - t0
    await producer.stop()
    return messages / elapsed


def bench_settings(var_dir: Path) -> Settings:
    base = Settings()
    run = uuid.uuid4().hex[:6]
    # A broker of its own (in memory, on a free port): its CPU counters then measure this run only.
    kafka = run_topics(base.kafka, run).model_copy(update={
        "bootstrap_servers": f"127.0.0.1:{_free_port()}", "local_broker_storage": "memory",
        "manage_local_broker": True})
    settings = base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench"),
        "kafka": kafka,
        "ingest": base.ingest.model_copy(update={"group_id": f"bench-ingest-{run}"}),
        "twins": base.twins.model_copy(update={"namespace": f"bench-{run}"}),
    })
    infra.ensure_broker(settings.kafka, var_dir)
    # Ingest hands every committed batch to the twins, so the path runs through the Ray cluster.
    infra.ensure_ray(settings.twins, settings.var_dir)
    return settings


async def main(settings: Settings, var_dir: Path, args: argparse.Namespace) -> None:
    await kafka_topics.ensure_topics(settings.kafka, kafka_topics.platform_topics(settings.kafka))

    console.print("[bold]3. raw produce[/] (one Python producer, 100 B messages) …")
    produce_rate = await raw_produce(settings)

    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=4)
    assert pool is not None
    platform = Platform(settings, var_dir, args.ingest_members, args.profile_dir)
    platform.start()
    try:
        live_figures = await live(platform, pool, args.devices, args.seconds) if args.devices else {}
        backlog_figures = (await backlog(platform, pool, args.backlog_devices, args.backlog_samples)
                           if args.backlog_devices else {})
    finally:
        platform.stop()
        await pool.close()

    table = Table(title="gridtwin telemetry benchmark")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in live_figures.items():
        table.add_row(f"live: {name}", str(value))
    for name, value in backlog_figures.items():
        table.add_row(f"backlog: {name}", str(value))
    table.add_row("raw produce msg/s (100 B)", f"{produce_rate:,.0f}")
    if backlog_figures:
        table.add_row("ingest / raw produce", f"{float(str(backlog_figures['stored samples/s'])) / produce_rate:.2f}")
    console.print(table)
    console.print(f"logs: {var_dir}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--backlog-devices", type=int, default=1_000)
    parser.add_argument("--backlog-samples", type=int, default=1_000)
    parser.add_argument("--ingest-members", type=int, default=1)
    parser.add_argument("--profile", default="", help="write cProfile output of gateway and ingest to this folder")
    args = parser.parse_args()
    args.profile_dir = Path(args.profile).resolve() if args.profile else None
    if args.profile_dir is not None:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="gridtwin-bench-"))
    try:
        run_service(main(bench_settings(var_dir), var_dir, args))
    finally:
        infra.stop_broker(var_dir)


if __name__ == "__main__":
    cli()
