"""The fault cases: each streams a simulated fleet through the rig's processes, injects one
fault, lets the fleet drain, and audits the simulator's ledger against the store, the twins,
the alerts and the commands (bench/fault_audit.py). Shared by `python -m bench.faults` (full
size) and tests/integration/test_faults_*.py (a few hundred devices).

Every case returns a `CaseResult`: what was injected, and what was lost or duplicated.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench import fault_audit as audit
from bench.fault_rig import TWIN_RULES, Rig, kill_broker, restart_postgres
from gridtwin.app import infra
from gridtwin.unixtime import now_ms
from services.access.credentials import register_devices
from services.control.model import ChargeTo, ControlPlan, Discharge, PlanStep
from services.control.service import Control, PlanRequest, Submitted
from services.control.store import CommandStore
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, installation_id, registrations

FLEET_SECRET = "faults"


@dataclass
class CaseResult:
    case: str
    injected: str
    samples: audit.SampleAudit | None = None
    twins: audit.TwinAudit | None = None
    alerts: audit.AlertAudit | None = None
    commands: audit.CommandAudit | None = None
    figures: dict[str, Any] = field(default_factory=dict)   # case-specific measurements

    @property
    def ok(self) -> bool:
        parts = (self.samples, self.twins, self.alerts, self.commands)
        return all(p.ok for p in parts if p is not None)

    def lost(self) -> int:
        return sum(getattr(p, "lost", 0) + getattr(p, "missing", 0) + getattr(p, "under_applied", 0)
                   for p in (self.samples, self.twins, self.alerts, self.commands) if p is not None)

    def duplicated(self) -> int:
        return ((self.samples.duplicated if self.samples else 0) + (self.twins.over_applied if self.twins else 0)
                + (self.alerts.duplicated if self.alerts else 0)
                + (self.commands.executed_twice if self.commands else 0))


def _ms(seconds: float) -> int:
    return int(seconds * 1_000)


# ---------------------------------------------------------------------- the fleet and the audit


def fleet_for(rig: Rig, devices: int, prefix: str, *, backoff_max_s: float = 5.0,
              sample_interval_s: float = 1.0) -> Fleet:
    options = FleetOptions(devices=devices, fleet_secret=FLEET_SECRET, id_prefix=prefix,
                           sample_interval_s=sample_interval_s, load_source="bdew")
    return Fleet(options, DeviceOptions(url=rig.gateway_url, backoff_initial_s=0.5, backoff_max_s=backoff_max_s))


async def register(pool: asyncpg.Pool, fleet: Fleet) -> None:
    await register_devices(pool, registrations(fleet.options))


def installations(fleet: Fleet) -> list[str]:
    return [installation_id(fleet.options.id_prefix, i) for i in range(fleet.options.devices)]


async def fault_ray(rig: Rig, *args: str, stdin: Any = None, timeout_s: float = 180) -> Any:
    """Runs bench.fault_ray in the rig's cluster (see its docstring)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.fault_ray", *args, env={**os.environ, **rig._env("fault-ray")},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(stdin).encode() if stdin is not None else b""),
                                      timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.fault_ray {' '.join(args)} failed: {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def audit_all(rig: Rig, pool: asyncpg.Pool, fleet: Fleet, result: CaseResult, *, twins: bool = True,
                    settle_timeout_s: float = 120.0) -> CaseResult:
    """Samples against the ledger; with `twins`, every twin's applied count against the store,
    its state and the alerts against the pure model over the stored samples."""
    sites = installations(fleet)
    result.samples = await audit.audit_samples(pool, fleet.ledger, sites, settle_timeout_s)
    if not twins:
        return result
    counts = dict(await pool.fetch("SELECT installation_id, count(*) FROM telemetry_samples "
                                   "WHERE installation_id = ANY($1) GROUP BY installation_id", sites))
    # The ingest hands a batch to the twins after storing it: wait until they caught up.
    deadline = time.monotonic() + 60
    while True:
        figures = await fault_ray(rig, "views", stdin=sites)
        twins_now = {s: audit.TwinFigures(**f) if f else None for s, f in figures.items()}
        behind = sum(1 for s, n in counts.items() if (t := twins_now.get(s)) is None or t.applied < n)
        if behind == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    rows = await audit.stored_rows_by_installation(pool, sites)
    model, last = audit.model_twins(rows, TWIN_RULES, now_ms())
    result.twins = audit.compare_twins(counts, twins_now, model)
    await asyncio.sleep(2)   # alerts are stored by the shard after it applied the batch
    result.alerts = audit.compare_alerts(last, await audit.stored_alerts(pool, sites))
    return result


Injection = Callable[[Rig, Fleet], Awaitable[str]]


async def stream_with_fault(rig: Rig, pool: asyncpg.Pool, case: str, devices: int, prefix: str, inject: Injection,
                            *, before_s: float = 4.0, after_s: float = 6.0, twins: bool = True,
                            drain_timeout_s: float = 120.0) -> CaseResult:
    """The fleet streams at 1 Hz; after `before_s` the fault is injected; streaming goes on for
    `after_s`, then the fleet drains (every sample acknowledged) and the audit runs. A tenth of
    the devices report negative solar from the start, so the twins raise alerts before the fault;
    half of those recover midway through `after_s`, so their alerts clear after it."""
    fleet = fleet_for(rig, devices, prefix)
    await register(pool, fleet)
    fleet.inject_negative_solar(range(0, devices, 10))
    async with fleet:
        await fleet.wait_connected(120)
        await asyncio.sleep(before_s)
        injected = await inject(rig, fleet)
        await asyncio.sleep(after_s / 2)
        fleet.model.clear_faults(range(0, devices, 20))   # half of the alerts clear after the fault
        await asyncio.sleep(after_s / 2)
        await fleet.stop_streaming()
        await fleet.wait_drained(drain_timeout_s)
    sessions = sum(d.sessions for d in fleet.devices)
    result = CaseResult(case, injected, figures={"devices": devices, "sessions": sessions})
    return await audit_all(rig, pool, fleet, result, twins=twins)


# ---------------------------------------------------------------------- the cases


async def unacknowledged_batches(fleet: Fleet, timeout_s: float = 5.0) -> int:
    """Waits (briefly) for a moment when batches are on the wire, unacknowledged: a kill then
    has something to lose. Returns how many there are."""
    deadline = time.monotonic() + timeout_s
    while True:
        in_flight = sum(len(d._unacked) for d in fleet.devices)
        if in_flight >= max(1, len(fleet.devices) // 20) or time.monotonic() > deadline:
            return in_flight
        await asyncio.sleep(0.001)


async def gateway_kill(rig: Rig, pool: asyncpg.Pool, devices: int, prefix: str = "gwk",
                       down_s: float = 1.0) -> CaseResult:
    """kill -9 of the gateway while every device streams; it comes back on the same address after
    `down_s`; devices reconnect and replay what was never acknowledged."""
    async def inject(rig: Rig, fleet: Fleet) -> str:
        in_flight = await unacknowledged_batches(fleet)
        pid = rig.kill("gateway")
        await asyncio.sleep(down_s)
        rig.start_gateway()
        return f"SIGKILL gateway pid {pid} ({in_flight} batches unacknowledged), restarted after {down_s:g} s"

    return await stream_with_fault(rig, pool, "gateway kill -9", devices, prefix, inject)


def assigned_partitions(rig: Rig, member: str) -> set[str]:
    """The partitions a member reports lag for: those assigned to it now."""
    try:
        metrics = rig.metrics(member)
    except OSError:
        return set()
    return {dict(labels)["partition"] for (name, labels) in metrics if name == "gridtwin_ingest_consumer_lag"}


async def both_members_consuming(rig: Rig, members: tuple[str, ...], partitions: int, timeout_s: float = 60) -> None:
    """Until every member holds partitions and together they hold all: no rebalance under way."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = [assigned_partitions(rig, m) for m in members]
        if all(held) and len(set().union(*held)) == partitions and sum(map(len, held)) == partitions:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"ingest members {members} did not settle on {partitions} partitions")


async def ingest_kill(rig: Rig, pool: asyncpg.Pool, devices: int, prefix: str = "ink", *,
                      stall_s: float = 1.5) -> CaseResult:
    """Two ingest members share the partitions; one is SIGKILLed between storing a batch and
    committing its offsets, and restarted. To be sure the kill lands there, the twin shards are
    frozen (SIGSTOP) for `stall_s` first: the ingest hands a stored batch to the twins before it
    commits, so every member is then holding a batch stored and not committed. The partitions the
    victim held are consumed again from the last commit, so the store and the twins see that batch
    twice: nothing may be stored, counted in the rollups, or applied twice."""
    async def inject(rig: Rig, fleet: Fleet) -> str:
        await both_members_consuming(rig, ("ingest", "ingest-2"), rig.settings.kafka.telemetry_partitions)
        shards = await fault_ray(rig, "shard-pids")
        for pid in shards.values():
            os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(stall_s)
            victim = rig.kill("ingest")
        finally:
            for pid in shards.values():
                os.kill(pid, signal.SIGCONT)
        rig.start_ingest("ingest")
        return (f"SIGKILL of ingest member pid {victim} (1 of 2) holding a stored, uncommitted batch (the twin "
                f"shards frozen {stall_s:g} s), restarted")

    second_member_is_ours = not rig.running("ingest-2")
    if second_member_is_ours:
        rig.start_ingest("ingest-2")
    try:
        result = await stream_with_fault(rig, pool, "ingest kill -9", devices, prefix, inject, after_s=10)
        # Samples found already stored when consumed again: the victim's stored, uncommitted batch.
        result.figures["stored_again_absorbed"] = sum(
            rig.metric(n, "gridtwin_ingest_samples_duplicate_total") for n in ("ingest", "ingest-2"))
        return result
    finally:
        if second_member_is_ours:
            rig.stop("ingest-2")


async def postgres_restart(rig: Rig, pool: asyncpg.Pool, devices: int, prefix: str = "pgr") -> CaseResult:
    """pg_ctlcluster restart (fast: connections cut) of the rig's own Postgres cluster under load.
    The ingest retries its batch until the database is back; offsets are committed only after."""
    async def inject(rig: Rig, fleet: Fleet) -> str:
        started = time.monotonic()
        await asyncio.to_thread(restart_postgres, rig.settings.postgres)
        return f"pg_ctlcluster restart -m fast of the fault-owned cluster ({time.monotonic() - started:.1f} s)"

    result = await stream_with_fault(rig, pool, "Postgres restart", devices, prefix, inject, after_s=8)
    result.figures["write_retries"] = rig.metric("ingest", "gridtwin_ingest_write_retries_total")
    return result


async def broker_restart(rig: Rig, pool: asyncpg.Pool, devices: int, prefix: str = "bkr",
                         down_s: float = 2.0) -> CaseResult:
    """kill -9 of the durable broker (its S3 store keeps running), restarted after `down_s`:
    produced-and-acknowledged records must survive; gateways and consumers reconnect."""
    async def inject(rig: Rig, fleet: Fleet) -> str:
        await asyncio.to_thread(kill_broker, rig.var_dir)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(infra.ensure_broker, rig.settings.kafka, rig.var_dir)
        return f"SIGKILL of the durable broker, restarted after {down_s:g} s"

    return await stream_with_fault(rig, pool, "broker restart (durable)", devices, prefix, inject, after_s=10,
                                   drain_timeout_s=240)


async def shard_kill(rig: Rig, pool: asyncpg.Pool, devices: int, prefix: str = "shk") -> CaseResult:
    """SIGKILL of a twin shard's process mid-stream; Ray restarts it, its twins recover from
    snapshot + journal, the ingest's delivery retries the batch."""
    async def inject(rig: Rig, fleet: Fleet) -> str:
        killed = await fault_ray(rig, "kill-shard", "0")
        return f"SIGKILL of shard {killed['killed']} (pid {killed['pid']})"

    return await stream_with_fault(rig, pool, "twin shard kill -9", devices, prefix, inject)


async def poller_kill(rig: Rig) -> CaseResult:
    """SIGKILL of the StormWatch weather poller singleton; three callers race to make sure it runs."""
    outcome = await fault_ray(rig, "poller-kill")
    back = outcome["pids_after"]
    result = CaseResult("weather poller kill -9",
                        f"SIGKILL of the poller (pid {outcome['pid_before']}), 3 callers racing to ensure it",
                        figures={"pollers_after": outcome["named_pollers"], "back_s": round(outcome["back_s"], 2),
                                 "distinct_pids_after": len(back), "poll_after_ok": outcome["poll_after"] is not None})
    return result


@dataclass
class Rates:
    """Per-second peaks of a counter sampled while devices reconnect."""

    peak_per_s: float = 0.0
    total: float = 0.0


def peak_rate(samples: list[tuple[float, float]], window_s: float = 1.0) -> float:
    """The largest increase of a counter within any `window_s`, per second: for each sample, its
    value minus the last one at least `window_s` older. `samples`: (t, value), t rising."""
    best = 0.0
    k = 0
    for t, value in samples:
        while k + 1 < len(samples) and samples[k + 1][0] <= t - window_s:
            k += 1
        best = max(best, (value - samples[k][1]) / window_s)
    return best


def event_counter(times_s: list[float]) -> list[tuple[float, float]]:
    """Event times as a counter's samples, starting from zero before the first event."""
    ordered = sorted(times_s)
    return [(ordered[0] - 1.0, 0.0), *((t, float(k + 1)) for k, t in enumerate(ordered))] if ordered else []


async def reconnect_storm(rig: Rig, pool: asyncpg.Pool, devices: int, prefix: str = "rcs",
                          down_s: float = 2.0) -> CaseResult:
    """N connected devices lose their gateway at once (kill -9, back after `down_s`): how fast do
    they knock (attempts/s, from the devices), how hard is the database asked (credential lookups/s,
    from the gateway), how long until all are back, and was anything lost."""
    # Every 5 s: 10,000 devices at 1 Hz alone saturate this machine's two cores (bench.telemetry).
    fleet = fleet_for(rig, devices, prefix, backoff_max_s=30.0, sample_interval_s=5.0)
    await register(pool, fleet)
    async with fleet:
        await fleet.wait_connected(600)
        await asyncio.sleep(3)
        attempts_before = len(fleet.ledger.connection_attempts_ms)
        pid = rig.kill("gateway")
        killed_ms = now_ms()
        await asyncio.sleep(down_s)
        rig.start_gateway()
        lookups: list[tuple[float, float]] = []
        queries: list[tuple[float, float]] = []

        def scrape() -> None:
            now, metrics = time.monotonic(), rig.metrics("gateway")
            lookups.append((now, metrics.get(("gridtwin_gateway_credential_lookups_total", ()), 0.0)))
            queries.append((now, metrics.get(("gridtwin_gateway_credential_queries_total", ()), 0.0)))

        started = time.monotonic()
        while not all(d.connected.is_set() for d in fleet.devices) and time.monotonic() - started < 600:
            scrape()
            await asyncio.sleep(0.25)
        all_back_s = (now_ms() - killed_ms) / 1_000
        reconnected = sum(d.connected.is_set() for d in fleet.devices)
        scrape()
        await asyncio.sleep(3)
        await fleet.stop_streaming()
        await fleet.wait_drained(300)
    attempts = fleet.ledger.connection_attempts_ms[attempts_before:]
    attempt_series = event_counter([ts / 1_000 for ts in attempts])
    result = CaseResult("reconnect storm", f"{devices} connected devices lose their gateway (SIGKILL pid {pid}), "
                        f"back after {down_s:g} s", figures={
                            "devices": devices, "reconnected": reconnected,
                            "all_back_s": round(all_back_s, 1), "attempts": len(attempts),
                            "attempts_peak_per_s": round(peak_rate(attempt_series)),
                            "credential_lookups": lookups[-1][1], "lookups_peak_per_s": round(peak_rate(lookups)),
                            "db_queries": queries[-1][1], "db_queries_peak_per_s": round(peak_rate(queries))})
    return await audit_all(rig, pool, fleet, result, twins=False, settle_timeout_s=300)


def _plan(now_ms: int) -> ControlPlan:
    return ControlPlan((PlanStep(now_ms, now_ms + 600_000, ChargeTo(95)),
                        PlanStep(now_ms + 600_000, now_ms + 1_200_000, Discharge(3_000, 20))))


async def commands_during_gateway_kill(rig: Rig, pool: asyncpg.Pool, devices: int, prefix: str = "cgk",
                                       down_s: float = 1.0) -> CaseResult:
    """One plan per device submitted in one batch; the gateway is SIGKILLed while they are being
    delivered and acknowledged, and comes back. Every plan must end acknowledged (the dispatcher
    sends unacknowledged ones again) and no device may execute one twice."""
    fleet = fleet_for(rig, devices, prefix)
    await register(pool, fleet)
    control = Control(CommandStore(pool))
    ids = [d.device_id for d in fleet.devices]
    async with fleet:
        await fleet.wait_connected(120)
        async with asyncio.timeout(60):
            while await pool.fetchval("SELECT count(*) FROM control_device_sessions WHERE device_id = ANY($1)",
                                      ids) < devices:
                await asyncio.sleep(0.1)
        t0 = now_ms()
        fanout = await control.open_fanout(source="vpp")
        submitted = await control.submit_plans([PlanRequest(installation_id(prefix, i), _plan(t0))
                                                for i in range(devices)], source="vpp", ttl_s=300, fanout_id=fanout)
        assert all(isinstance(s, Submitted) for s in submitted)
        # Kill as the first plans reach their devices: the rest are in the gateway or on the wire,
        # the first acks on their way back: each of those is cut somewhere.
        async with asyncio.timeout(30):
            while not any(fleet.ledger.commands_received.get(d) for d in ids):
                await asyncio.sleep(0.001)
        received_at_kill = sum(1 for d in ids if fleet.ledger.commands_received.get(d))
        pid = rig.kill("gateway")
        await asyncio.sleep(down_s)
        rig.start_gateway()
        async with asyncio.timeout(120):
            while not (progress := await control.progress(fanout, max_failures=10)).done:
                await asyncio.sleep(0.2)
        await asyncio.sleep(2)   # late redeliveries, if any, would be executed now
        await fleet.stop_streaming()
        await fleet.wait_drained(120)
    executions = {d.device_id: int(fleet.controller.executions[i]) for i, d in enumerate(fleet.devices)}
    result = CaseResult("commands during gateway kill",
                        f"{devices} plans submitted; SIGKILL gateway pid {pid} when {received_at_kill} had "
                        f"reached their device, "
                        f"restarted after {down_s:g} s",
                        figures={"devices": devices, "failed": progress.unsuccessful})
    result.commands = audit.compare_commands(devices, progress.acknowledged, executions,
                                             fleet.ledger.commands_received)
    return await audit_all(rig, pool, fleet, result, twins=False)
