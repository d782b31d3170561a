"""CPU time per stored sample, per stage of the telemetry path, read from the processes' counters.

Wall-clock throughput on a shared 2-core machine says little about where the cost is; the CPU
time each process consumed over a measured interval, divided by the samples stored in it, does.
`CpuMeter.start()` reads user+system time of every process of every stage (all threads), `stop()`
reads them again; a process that ended in between counts what it had used when last read.

Stages that share a process with something outside the bench (the Ray system processes, the
Postgres cluster's background writers) are reported apart and kept out of the platform's total.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")

# Stages whose CPU is the platform's (the "gateway + broker + ingest + Postgres + twins").
PLATFORM_STAGES = ("gateway", "broker", "ingest", "postgres backends", "twin shards")


@dataclass(frozen=True)
class Stage:
    name: str
    pids: tuple[int, ...]
    shared: bool = False   # the processes also serve others: reported, never in the platform total


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of `pid` (every thread), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return parse_stat_cpu_s(stat)


def parse_stat_cpu_s(stat: str) -> float:
    """utime + stime of a /proc/<pid>/stat line, in seconds. The command name (field 2) may hold
    spaces and parentheses, so fields are counted from its closing parenthesis."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S   # fields 14 and 15 of proc(5)


@dataclass(frozen=True)
class StageCost:
    name: str
    cpu_s: float
    processes: int
    shared: bool
    idle_cores: float = 0.0   # what the stage used with no samples flowing (see CpuMeter.idle)

    def us_per_sample(self, samples: int) -> float:
        return self.cpu_s * 1e6 / samples if samples > 0 else float("nan")

    def net_us_per_sample(self, samples: int, elapsed_s: float) -> float:
        """Per sample above the idle rate: what a sample costs, apart from keepalives, timers and
        whatever else runs anyway (on a shared machine a slower run spreads more of that over
        each sample)."""
        return max(0.0, self.cpu_s - self.idle_cores * elapsed_s) * 1e6 / samples if samples > 0 else float("nan")


@dataclass
class CpuMeter:
    """Reads the stages' CPU counters at `start()` and `stop()`; `costs()` is the difference."""

    stages: Sequence[Stage]
    _before: dict[int, float] = field(default_factory=dict)
    _after: dict[int, float] = field(default_factory=dict)
    _idle_cores: dict[str, float] = field(default_factory=dict)

    async def idle(self, seconds: float) -> None:
        """Measures each stage's CPU rate over `seconds` with nothing flowing (call before start)."""
        import asyncio

        before = _read(pid for stage in self.stages for pid in stage.pids)
        await asyncio.sleep(seconds)
        after = _read(pid for stage in self.stages for pid in stage.pids)
        self._idle_cores = {
            stage.name: sum(max(0.0, after.get(p, before.get(p, 0.0)) - before.get(p, 0.0)) for p in stage.pids)
            / seconds for stage in self.stages}

    def start(self) -> None:
        self._before = _read(pid for stage in self.stages for pid in stage.pids)

    def stop(self) -> None:
        after = _read(pid for stage in self.stages for pid in stage.pids)
        # A process gone since start() used at least what start() saw; count nothing more for it.
        self._after = {pid: after.get(pid, before) for pid, before in self._before.items()}

    def costs(self) -> list[StageCost]:
        return [
            StageCost(stage.name, sum(max(0.0, self._after.get(p, 0.0) - self._before.get(p, 0.0))
                                      for p in stage.pids), len(stage.pids), stage.shared,
                      self._idle_cores.get(stage.name, 0.0))
            for stage in self.stages
        ]


def _read(pids: Iterable[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid in pids:
        value = cpu_s(pid)
        if value is not None:
            out[pid] = value
    return out


def per_sample_rows(costs: Sequence[StageCost], samples: int,
                    elapsed_s: float) -> list[tuple[str, str, str, str, str, str]]:
    """(stage, µs/sample, µs/sample above idle, cores, idle cores, processes) rows plus the
    platform's total. Pure."""
    rows = []
    for cost in costs:
        label = f"{cost.name} (shared)" if cost.shared else cost.name
        rows.append((label, f"{cost.us_per_sample(samples):.1f}", f"{cost.net_us_per_sample(samples, elapsed_s):.1f}",
                     f"{cost.cpu_s / elapsed_s:.2f}", f"{cost.idle_cores:.2f}", str(cost.processes)))
    platform = [c for c in costs if not c.shared and c.name in PLATFORM_STAGES]
    total_s = sum(c.cpu_s for c in platform)
    net = sum(c.net_us_per_sample(samples, elapsed_s) for c in platform)
    rows.append(("platform total", f"{total_s * 1e6 / samples:.1f}" if samples else "nan", f"{net:.1f}",
                 f"{total_s / elapsed_s:.2f}", f"{sum(c.idle_cores for c in platform):.2f}",
                 str(sum(c.processes for c in platform))))
    return rows


# ------------------------------------------------------------ finding the processes

def _cmdlines() -> Iterator[tuple[int, str]]:
    """(pid, command line with spaces between arguments) of every process now."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            yield int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace").strip()


def postgres_title_database(title: str) -> str | None:
    """The database of a backend's process title (`postgres: 15/main: user db 127.0.0.1(5) idle`)."""
    parts = title.split(": ", 2)
    if len(parts) != 3 or parts[0] != "postgres":
        return None
    words = parts[2].split(" ")
    return words[1] if len(words) >= 3 else None


def postgres_backends(database: str) -> list[int]:
    """Postgres backends connected to `database`, found by their process titles."""
    return [pid for pid, title in _cmdlines() if postgres_title_database(title) == database]


def postgres_background() -> list[int]:
    """The cluster's own processes (WAL writer, checkpointer, autovacuum …): shared by every database."""
    kinds = ("walwriter", "checkpointer", "background writer", "autovacuum")
    return [pid for pid, title in _cmdlines()
            if title.startswith("postgres: ") and any(f": {k}" in title for k in kinds)]


def ray_system() -> list[int]:
    """Ray's own processes (GCS, raylet, log monitor …): shared by every job of the cluster."""
    names = ("gcs_server", "/raylet", "log_monitor.py", "ray/autoscaler", "dashboard_agent", "runtime_env/agent")
    return [pid for pid, cmdline in _cmdlines() if any(n in cmdline for n in names)]


_ACTOR_PIDS = """
import json, sys
from gridtwin.ray_env import configure_ray_auth
configure_ray_auth()
import ray
from ray._private import state
from actors.runtime.cluster import COORDINATOR
ray.init(address=sys.argv[1], namespace=sys.argv[2], log_to_driver=False, configure_logging=False)
table = state.actors()
coordinator = table[ray.get_actor(COORDINATOR)._actor_id.hex()]
where = coordinator["Address"]
shards = [a for a in table.values() if a["State"] == "ALIVE" and a["OwnerAddress"]["Port"] == where["Port"]
          and a["OwnerAddress"]["IPAddress"] == where["IPAddress"]]
print(json.dumps([coordinator["Pid"], *(a["Pid"] for a in shards)]))
"""


_KILL_ACTORS = """
import sys
from gridtwin.ray_env import configure_ray_auth
configure_ray_auth()
import ray
from actors.runtime.cluster import COORDINATOR
ray.init(address=sys.argv[1], namespace=sys.argv[2], log_to_driver=False, configure_logging=False)
names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == sys.argv[2]]
for name in sorted(names, key=lambda n: n != COORDINATOR):   # the coordinator first: it restarts shards
    ray.kill(ray.get_actor(name), no_restart=True)
"""


def kill_twins(address: str, namespace: str) -> None:
    """Ends the named actors of `namespace` (coordinator, shards) for good, so that a finished run
    leaves no processes behind in the shared Ray cluster."""
    subprocess.run([sys.executable, "-c", _KILL_ACTORS, address, namespace], capture_output=True, timeout=120,
                   check=False)


def ray_actor_pids(address: str, namespace: str, env: dict[str, str] | None = None) -> list[int]:
    """Pids of the twin coordinator of `namespace` and the shards it owns. Asked in a child
    process, so that the measuring process never becomes a Ray driver."""
    out = subprocess.run([sys.executable, "-c", _ACTOR_PIDS, address, namespace], capture_output=True,
                         text=True, timeout=120, env=env, check=True)
    return [int(p) for p in json.loads(out.stdout.strip().splitlines()[-1])]
