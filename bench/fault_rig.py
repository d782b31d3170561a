"""The stand every fault case runs on: the real services as processes, with parts of its own.

A `Rig` owns a database, topics, a Ray head, and the `gridtwin gateway` / `gridtwin ingest` /
`gridtwin control serve` processes it spawns (gridtwin/app/processes.py), each on ports picked free
once, so a killed process comes back at the same address and devices find it again. Killing is
SIGKILL of the process's group, never a clean stop: what a lost machine or an OOM kill does.

Cases that restart infrastructure get a fault-owned Postgres cluster (`fault_postgres`: its own
name and port, never the shared cluster on 55432 that other test runs use) or a fault-owned
durable broker (`fault_broker`: own port, own S3 folder store under the rig's var dir).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from bench.common import run_topics
from gridtwin import db, kafka_topics, ray_env
from gridtwin.app import infra, processes
from gridtwin.settings import KafkaSettings, PostgresSettings, Settings
from services.telemetry.store import init_connection

# Wall-clock rules off, quick lifecycle (as the twin runtime tests): the twins' alerts then depend
# on the telemetry alone, so the pure model replayed over the stored samples must agree with them.
TWIN_RULES: dict[str, dict[str, Any]] = {
    "telemetry_stale": {"enabled": False}, "solar_negative": {"raise_after": 2, "clear_after": 2},
    "power_balance": {"raise_after": 2, "clear_after": 2}}

FAULT_PG_CLUSTER = "gridtwin_faults"


def run_suffix() -> str:
    return uuid.uuid4().hex[:8]


def isolated_kafka(kafka: KafkaSettings, suffix: str) -> KafkaSettings:
    """`kafka` with topics of this run only."""
    return run_topics(kafka, suffix, "faults").model_copy(update={"telemetry_partitions": 4})


@dataclass
class Rig:
    """Processes of one fault run. `settings` name the rig's database, topics and broker."""

    settings: Settings
    var_dir: Path
    shards: int = 2
    gateway_port: int = 0
    ray: infra.RayNode | None = None
    namespace: str = field(default_factory=lambda: f"faults-{run_suffix()}")
    metrics_ports: dict[str, int] = field(default_factory=dict)
    control_port: int = 0
    weather_port: int = 0

    def __post_init__(self) -> None:
        self.gateway_port = self.gateway_port or infra.free_ports(1)[0]

    # ------------------------------------------------------------------ processes

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}"

    @property
    def ray_address(self) -> str:
        assert self.ray is not None, "start_ray() first"
        return self.ray.address

    def start_ray(self) -> None:
        self.ray = infra.start_ray_node(self.var_dir, "ray-head", num_cpus=2)

    def _env(self, name: str) -> dict[str, str]:
        s = self.settings
        metrics = self.metrics_ports.setdefault(name, infra.free_ports(1)[0])
        env = {
            "GRIDTWIN_POSTGRES__URL": s.postgres.url,
            "GRIDTWIN_POSTGRES__MANAGE_LOCAL_CLUSTER": "false",
            "GRIDTWIN_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
            "GRIDTWIN_KAFKA__MANAGE_LOCAL_BROKER": "false",
            "GRIDTWIN_KAFKA__LOCAL_BROKER_STORAGE": s.kafka.local_broker_storage,
            "GRIDTWIN_KAFKA__TELEMETRY_TOPIC": s.kafka.telemetry_topic,
            "GRIDTWIN_KAFKA__DEVICE_EVENTS_TOPIC": s.kafka.device_events_topic,
            "GRIDTWIN_KAFKA__ALERTS_TOPIC": s.kafka.alerts_topic,
            "GRIDTWIN_KAFKA__COMMANDS_TOPIC": s.kafka.commands_topic,
            "GRIDTWIN_GATEWAY__PORT": str(self.gateway_port),
            "GRIDTWIN_GATEWAY__METRICS_PORT": str(metrics),
            "GRIDTWIN_INGEST__GROUP_ID": f"{self.namespace}-ingest",
            "GRIDTWIN_INGEST__METRICS_PORT": str(metrics),
            "GRIDTWIN_CONTROL__PORT": str(self.control_port),
            "GRIDTWIN_CONTROL__METRICS_PORT": str(metrics),
            "GRIDTWIN_CONTROL__ACK_GROUP_ID": f"{self.namespace}-acks",
            # Unacknowledged commands are sent again soon: a command lost with a gateway is retried
            # within the case, not after the default 5 s base delay.
            "GRIDTWIN_CONTROL__RETRY_BASE_DELAY_S": "2",
            "GRIDTWIN_CONTROL__GATEWAY_STALE_S": "10",
            "GRIDTWIN_WEATHER__PORT": str(self.weather_port),
            "GRIDTWIN_WEATHER__METRICS_PORT": str(metrics),
            "GRIDTWIN_TWINS__NAMESPACE": self.namespace,
            "GRIDTWIN_TWINS__SHARDS": str(self.shards),
            "GRIDTWIN_TWINS__RULES": json.dumps(TWIN_RULES),
            "GRIDTWIN_TWINS__SNAPSHOT_INTERVAL_S": "2",
            "GRIDTWIN_LOG_LEVEL": os.environ.get("GRIDTWIN_LOG_LEVEL", "WARNING"),
            **ray_env.ray_auth_env(),
        }
        if self.ray is not None:
            env["GRIDTWIN_TWINS__RAY_ADDRESS"] = self.ray.address
        if s.ingest.fetch_max_wait_ms is not None:
            # Decided by the rig's settings (longer against the durable broker, whose fetches never
            # return with short waits), not again by the process, which manages no broker.
            env["GRIDTWIN_INGEST__FETCH_MAX_WAIT_MS"] = str(s.ingest.fetch_max_wait_ms)
        return env

    def spawn(self, name: str, *command: str) -> int:
        argv = [sys.executable, "-m", "gridtwin.app.cli", *command]
        return processes.spawn(self.var_dir, name, argv, self._env(name))

    def start_gateway(self, name: str = "gateway") -> None:
        self.spawn(name, "gateway")
        processes.wait_for_port("127.0.0.1", self.gateway_port, 60, name)
        processes.wait_for_port("127.0.0.1", self.metrics_ports[name], 10, f"{name} metrics")

    def start_ingest(self, name: str = "ingest") -> None:
        self.spawn(name, "ingest")
        processes.wait_for_port("127.0.0.1", self.metrics_ports[name], 120, f"{name} metrics")

    def start_control(self, name: str = "control") -> None:
        self.control_port = self.control_port or infra.free_ports(1)[0]
        self.spawn(name, "control", "serve")
        processes.wait_for_port("127.0.0.1", self.control_port, 60, name)

    def start_weather(self, name: str = "weather") -> None:
        """The WeatherService the StormWatch poller follows (no feeds: an empty change log)."""
        self.weather_port = self.weather_port or infra.free_ports(1)[0]
        self.spawn(name, "weather", "serve")
        processes.wait_for_port("127.0.0.1", self.weather_port, 60, name)

    def running(self, name: str) -> bool:
        return processes.running_pid(self.var_dir, name) is not None

    def kill(self, name: str) -> int:
        """SIGKILL to the process (and its group): no shutdown code runs. Returns its pid."""
        pid = processes.running_pid(self.var_dir, name)
        if pid is None:
            raise RuntimeError(f"{name} is not running; see {processes.log_file(self.var_dir, name)}")
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while processes.running_pid(self.var_dir, name) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        return pid

    def signal(self, name: str, signum: signal.Signals) -> None:
        pid = processes.running_pid(self.var_dir, name)
        if pid is None:
            raise RuntimeError(f"{name} is not running")
        os.killpg(pid, signum)

    def stop(self, name: str) -> None:
        processes.stop(self.var_dir, name)

    def stop_all(self) -> None:
        """Ends the rig's services and Ray head by SIGKILL: nothing of theirs outlives the run, and
        a fault rig has no state worth a graceful stop (seconds per process)."""
        for pid_file in sorted((self.var_dir / "run").glob("*.pid")):
            name = pid_file.stem
            if name == "ray-head" or name.startswith("broker"):
                continue
            if self.running(name):
                self.kill(name)
            pid_file.unlink(missing_ok=True)
        if self.ray is not None:
            infra.stop_ray_node(self.var_dir, "ray-head", graceful=False)
            self.ray = None

    def metrics(self, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The process's Prometheus samples now: (name, labels) → value."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5).read()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text.decode()) for s in family.samples}

    def metric(self, name: str, metric: str, **labels: str) -> float:
        with contextlib.suppress(OSError):
            return self.metrics(name).get((metric, tuple(sorted(labels.items()))), 0.0)
        return float("nan")

    def twin_settings(self) -> Settings:
        """The settings a process in this rig (the case's driver) joins the twins with."""
        return self.settings.model_copy(update={"twins": self.settings.twins.model_copy(update={
            "ray_address": self.ray_address, "namespace": self.namespace, "shards": self.shards,
            "rules": json.dumps(TWIN_RULES)})})


@contextlib.asynccontextmanager
async def running_rig(settings: Settings, var_dir: Path, *, control: bool = False, weather: bool = False,
                      ingest_members: int = 1) -> AsyncIterator[tuple[Rig, asyncpg.Pool]]:
    """A Ray head, a gateway and an ingest member (plus the control or weather service) of the
    rig's own, on `settings`' database and topics."""
    await kafka_topics.ensure_topics(settings.kafka, {**kafka_topics.platform_topics(settings.kafka),
                                               settings.kafka.commands_topic: settings.kafka.commands_partitions})
    rig = Rig(settings, var_dir)
    # min_size 0: no background reconnects (and their logged tracebacks) while a case restarts Postgres
    pool = await asyncpg.create_pool(settings.postgres.url, min_size=0, max_size=4, init=init_connection)
    assert pool is not None
    try:
        rig.start_ray()
        rig.start_gateway()
        rig.start_ingest()
        for member in range(2, ingest_members + 1):
            rig.start_ingest(f"ingest-{member}")
        if control:
            rig.start_control()
        if weather:
            rig.start_weather()
        yield rig, pool
    finally:
        await pool.close()
        rig.stop_all()


# ---------------------------------------------------------------------- fault-owned infrastructure


def _with_port(url: str, port: int, database: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    return urlunsplit(parts._replace(netloc=f"{netloc}:{port}", path=f"/{database}"))


def _cluster_port(name: str) -> int | None:
    out = infra._run(["pg_lsclusters", "--no-header"]).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields[:2] == [infra.PG_VERSION, name]:
            return int(fields[2])
    return None


@contextlib.contextmanager
def fault_postgres(base: PostgresSettings, database: str) -> Iterator[PostgresSettings]:
    """A Postgres cluster that only fault runs use (`gridtwin_faults`, created on a free port the
    first time, kept afterwards), started, with `database` fresh and migrated. Restarting it
    disturbs nobody else. At the end the database is dropped and the cluster stopped."""
    port = _cluster_port(FAULT_PG_CLUSTER) or infra.free_ports(1)[0]
    pg = base.model_copy(update={"url": _with_port(base.url, port, database), "local_cluster": FAULT_PG_CLUSTER,
                                 "manage_local_cluster": True, "pool_max_size": 4})
    infra.ensure_postgres(pg)
    infra.drop_database(pg)
    infra.ensure_database(pg)
    db.migrate(pg)
    try:
        yield pg
    finally:
        infra.drop_database(pg)
        infra.stop_postgres(pg)


def restart_postgres(pg: PostgresSettings) -> None:
    """`pg_ctlcluster restart` (fast shutdown: open connections are cut) of a fault-owned cluster."""
    if pg.local_cluster != FAULT_PG_CLUSTER:
        raise ValueError(f"refusing to restart cluster {pg.local_cluster!r}: only {FAULT_PG_CLUSTER} is ours")
    infra._run(["pg_ctlcluster", infra.PG_VERSION, pg.local_cluster, "restart", "-m", "fast"])


@contextlib.contextmanager
def fault_broker(base: KafkaSettings, var_dir: Path) -> Iterator[KafkaSettings]:
    """A durable Tansu broker of the fault run (own port, S3 folder store under `var_dir`)."""
    broker_port, s3_port = infra.free_ports(2)
    kafka = base.model_copy(update={"bootstrap_servers": f"127.0.0.1:{broker_port}", "manage_local_broker": True,
                                    "local_broker_storage": "durable", "local_s3_port": s3_port})
    infra.ensure_broker(kafka, var_dir)
    try:
        yield kafka
    finally:
        infra.stop_broker(var_dir)


def kill_broker(var_dir: Path) -> None:
    """SIGKILL of the broker process only; its S3 store (the durable part) keeps running."""
    pid = processes.running_pid(var_dir, "broker")
    if pid is not None:
        os.killpg(pid, signal.SIGKILL)
        while processes.running_pid(var_dir, "broker") is not None:
            time.sleep(0.02)
