"""Soak: a fleet streaming for a long time through the real services; is anything growing?

    python -m bench.soak [--devices 10000] [--minutes 10] [--warmup-min 2] [--sample-interval-s 5]

The stand of the fault cases (bench/fault_rig.py: own database, topics and Ray head): the gateway,
an ingest consumer that hands every committed batch to the twins (two shards on Ray) and the
control service, each a `gridtwin` process. N simulated devices stream for `--minutes`. Every
`--every-s` the soak records the resident memory (RSS) of every process tree — gateway, ingest,
control, the Ray head with its shard workers, and this process (the simulated fleet) — and the
ingest consumer lag (records, summed over partitions).

Prints per process: RSS after warm-up, at the end, and the growth per minute after warm-up and
over its last half (least squares over the samples; "flat" below 1 MiB/min; a process that grew
early and then levelled off shows it in the last half), the same for the Ray processes (GCS,
raylet, each shard worker) that grew most, the lag's
maximum and its last value after warm-up, and the ledger compared with the store once the fleet
is drained: samples generated, stored, lost (generated but not stored) and duplicated (stored
more than once: impossible by the table's key, so counted from the ledger's acknowledgements).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.common import fresh_database
from bench.fault_rig import Rig, isolated_kafka, run_suffix
from gridtwin import kafka_topics
from gridtwin.app import infra, processes
from gridtwin.observability import run_service
from gridtwin.settings import Settings
from services.access.credentials import register_devices
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations

console = Console(width=140)
PROCESSES = ("gateway", "ingest", "control", "ray-head")
LAG = "gridtwin_ingest_consumer_lag"
FLAT_MIB_PER_MIN = 1.0


def tree_rss_mib(pid: int | None) -> dict[str, float]:
    """Resident memory of a process and each descendant, MiB by "name (pid)" (from /proc)."""
    found: dict[str, float] = {}
    for p in infra.process_tree(pid) if pid is not None else []:
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{p}/status").read_text().splitlines()
                          if ":" in line)
            found[f"{status['Name'].strip()} ({p})"] = int(status.get("VmRSS", "0 kB").split()[0]) / 1024
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return found


def rss_mib(pid: int | None) -> float:
    """Resident memory of a process and all its descendants, MiB."""
    return sum(tree_rss_mib(pid).values()) if pid is not None else float("nan")


def ingest_lag(rig: Rig) -> float:
    """The ingest consumer's lag summed over its partitions (NaN while it cannot be read)."""
    try:
        return sum(v for (name, _), v in rig.metrics("ingest").items() if name == LAG)
    except OSError:
        return float("nan")


@dataclass
class Track:
    minutes: list[float] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)
    ray: dict[str, list[float]] = field(default_factory=dict)       # each process of the Ray head's tree
    lag: list[float] = field(default_factory=list)

    def record(self, minute: float, rss: dict[str, float], ray: dict[str, float], lag: float) -> None:
        self.minutes.append(minute)
        for series, values in ((self.rss, rss), (self.ray, ray)):
            for name, value in values.items():
                series.setdefault(name, [math.nan] * (len(self.minutes) - 1)).append(value)
            for known in series.values():   # a process gone this sample
                known.extend([math.nan] * (len(self.minutes) - len(known)))
        self.lag.append(lag)


@dataclass(frozen=True)
class Growth:
    first: float            # RSS after warm-up, MiB
    last: float             # at the end
    slope: float            # MiB per minute after warm-up (least squares)
    late_slope: float       # the same over the last half of the time after warm-up


def growth(minutes: list[float], values: list[float], warmup_min: float) -> Growth:
    t = np.array(minutes)
    v = np.array(values)

    def slope(keep: np.ndarray) -> float:
        return float(np.polyfit(t[keep], v[keep], 1)[0]) if keep.sum() >= 2 else math.nan

    keep = (t >= warmup_min) & np.isfinite(v)
    if keep.sum() < 2:
        return Growth(math.nan, math.nan, math.nan, math.nan)
    half = (t[keep][0] + t[keep][-1]) / 2
    return Growth(float(v[keep][0]), float(v[keep][-1]), slope(keep), slope(keep & (t >= half)))


async def soak(rig: Rig, pool: asyncpg.Pool, args: argparse.Namespace) -> None:
    options = FleetOptions(devices=args.devices, fleet_secret="soak", id_prefix="soak",
                           sample_interval_s=args.sample_interval_s, load_source="bdew")
    await register_devices(pool, registrations(options))
    fleet = Fleet(options, DeviceOptions(url=rig.gateway_url, backoff_initial_s=0.5, backoff_max_s=10))
    track = Track()
    started = time.monotonic()
    async with fleet:
        await fleet.wait_connected(300)
        console.print(f"{args.devices:,} devices connected in {time.monotonic() - started:.0f} s; soaking "
                      f"{args.minutes:g} min")
        started = time.monotonic()
        while (minute := (time.monotonic() - started) / 60) < args.minutes:
            rss = {name: rss_mib(processes.running_pid(rig.var_dir, name)) for name in PROCESSES}
            rss["fleet (this process)"] = rss_mib(os.getpid())
            lag = await asyncio.to_thread(ingest_lag, rig)
            track.record(minute, rss, tree_rss_mib(processes.running_pid(rig.var_dir, "ray-head")), lag)
            console.print(f"{minute:5.1f} min  " + "  ".join(f"{k} {v:.0f} MiB" for k, v in rss.items())
                          + f"  lag {lag:,.0f}")
            await asyncio.sleep(args.every_s)
        await fleet.stop_streaming()
        await fleet.wait_drained(300)
    generated = fleet.ledger.generated_total()
    async with asyncio.timeout(300):
        while (stored := await pool.fetchval("SELECT count(*) FROM telemetry_samples")) < generated:
            await asyncio.sleep(1)
    report(track, args, generated, stored)


def growth_table(title: str, series: dict[str, list[float]], track: Track, warmup_min: float) -> Table:
    table = Table(title=title)
    for column in ("process", "RSS after warm-up", "RSS at the end", "growth after warm-up", "over its last half",
                   "flat?"):
        table.add_column(column, justify="left" if column == "process" else "right")
    for name, values in series.items():
        g = growth(track.minutes, values, warmup_min)
        table.add_row(name, f"{g.first:.0f} MiB", f"{g.last:.0f} MiB", f"{g.slope:+.2f} MiB/min",
                      f"{g.late_slope:+.2f} MiB/min", "yes" if g.slope < FLAT_MIB_PER_MIN else "NO")
    return table


def report(track: Track, args: argparse.Namespace, generated: int, stored: int) -> None:
    console.print(growth_table(f"soak: {args.devices:,} devices, one sample every {args.sample_interval_s:g} s, "
                               f"{args.minutes:g} min (warm-up {args.warmup_min:g} min)",
                               track.rss, track, args.warmup_min))

    def grown(values: list[float]) -> float:
        g = growth(track.minutes, values, args.warmup_min)
        return g.last - g.first if math.isfinite(g.last - g.first) else -math.inf

    top = dict(sorted(track.ray.items(), key=lambda item: grown(item[1]), reverse=True)[:5])
    console.print(growth_table("the Ray processes that grew most after warm-up", top, track, args.warmup_min))
    after = [lag for minute, lag in zip(track.minutes, track.lag, strict=True) if minute >= args.warmup_min]
    console.print(f"ingest lag after warm-up: max {max(after, default=float('nan')):,.0f} records, last "
                  f"{after[-1] if after else float('nan'):,.0f}")
    console.print(f"samples generated {generated:,}, stored {stored:,}, lost {max(generated - stored, 0):,}, "
                  f"duplicated {max(stored - generated, 0):,}")


def soak_settings() -> Settings:
    """A fresh database and topics of this run (migrations run outside the event loop)."""
    base = Settings()
    settings = base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench_soak", pool_max_size=8),
        "kafka": isolated_kafka(base.kafka, run_suffix())})
    infra.ensure_broker(settings.kafka, settings.var_dir)
    return settings


async def main(settings: Settings, args: argparse.Namespace) -> None:
    await kafka_topics.ensure_topics(settings.kafka, kafka_topics.platform_topics(settings.kafka))
    rig = Rig(settings, Path(tempfile.mkdtemp(prefix="gridtwin-soak-")))
    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=4)
    assert pool is not None
    try:
        rig.start_ray()
        rig.start_gateway()
        rig.start_ingest()
        rig.start_control()
        await soak(rig, pool, args)
    finally:
        rig.stop_all()
        await pool.close()
    console.print(f"logs: {rig.var_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup-min", type=float, default=2.0)
    parser.add_argument("--sample-interval-s", type=float, default=5.0)
    parser.add_argument("--every-s", type=float, default=15.0)
    arguments = parser.parse_args()
    raise SystemExit(run_service(main(soak_settings(), arguments)))
