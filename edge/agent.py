"""The agent: polls every source, makes a sample every `sample_interval_s`, streams the samples, and
carries out commands. The wiring of the pure parts (combine, control) and the I/O ones (adapters,
buffer, uplink); everything it runs is owned here and stopped with it.

Per source, a poller reads at the source's own interval; a failed read is counted and logged and
the poller goes on (its readings go stale, so its signals stop being reported) — one broken
device never stops another. Per tick, the samples of the installation are combined from the
freshest readings and written to the disk buffer before anything is sent. With `dry_run` the
samples are printed instead, and nothing is written or sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from edge import __version__, control, link
from edge.adapters import build
from edge.adapters.base import Adapter, SourceError
from edge.buffer import DiskBuffer
from edge.clock import Clock
from edge.combine import Combination, combine
from edge.config import EdgeConfig
from edge.control import ActivePlan, ApplyBatteryPower, ControlState, DeviceAction
from edge.counters import Counters
from edge.model import Command, CommandAck, DeviceState, Outcome, SampleValues, Snapshot
from edge.provision import Identity, resolve
from edge.uplink import Uplink, UplinkOptions

log = logging.getLogger("edge")

FIRMWARE = f"gridtwin-edge/{__version__}"
_REFRESH_SETPOINT_S = 30.0   # a held setpoint is written again this often (within the inverter's revert time)


class Agent:
    def __init__(self, config: EdgeConfig, *, clock: Clock | None = None, dry_run: bool = False,
                 out: Callable[[str], None] = print, adapters: list[Adapter] | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.dry_run = dry_run
        self.out = out
        self.counters = Counters()
        self.adapters = adapters if adapters is not None else [build(s, self.clock) for s in config.sources]
        self.latest: dict[str, Snapshot] = {}
        self.policy = Combination(
            order=tuple(a.name for a in self.adapters),
            max_age_ms={s.name: int(s.stale_after_s * 1_000) for s in config.sources},
            owners=dict(config.combine.owners), derive_load_from=config.combine.derive_load_from)
        self.controller = next((a for a in self.adapters if a.name == config.control_source), None)
        self.control_state = ControlState()
        self.buffer: DiskBuffer | None = None
        self.uplink: Uplink | None = None
        self.identity: Identity | None = None
        self._command_lock = asyncio.Lock()
        self._applied: tuple[float | None, float] | None = None   # (setpoint, monotonic time written)
        self._device_state = DeviceState()
        self._lock_file: IO[str] | None = None
        self.samples: list[SampleValues] = []    # dry runs keep what they printed (tests)

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Runs until cancelled; then stops every task and closes the buffer."""
        agent = self.config.agent
        if not self.dry_run:
            self._open_state(Path(agent.state_dir))
            assert self.buffer is not None
            self.identity = await asyncio.to_thread(resolve, self.config.identity, self.buffer)
            self._restore_control()
        if agent.metrics_port:
            self.counters.export(agent.metrics_port)
        for adapter in self.adapters:
            await adapter.start()
        tasks = [asyncio.create_task(self._poll(a, s.poll_interval_s), name=f"poll {a.name}")
                 for a, s in zip(self.adapters, self.config.sources, strict=True)]
        tasks.append(asyncio.create_task(self._tick_forever(), name="ticks"))
        tasks.append(asyncio.create_task(self._log_forever(), name="log"))
        if not self.dry_run:
            assert self.buffer is not None and self.identity is not None
            self.uplink = Uplink(UplinkOptions(
                url=agent.gateway_url, device_id=self.identity.device_id, credential=self.identity.credential,
                firmware_version=FIRMWARE, ca_file=agent.ca_file, connect_timeout_s=agent.connect_timeout_s,
                backoff_initial_s=agent.backoff_initial_s, backoff_max_s=agent.backoff_max_s,
                max_batch_bytes=agent.max_batch_bytes,
                skew_tolerance_ms=(int(agent.max_clock_skew_s * 1_000)
                                   if agent.correct_clock_skew and not self.clock.simulated else None)),
                self.buffer, self.clock, self.counters, on_command=self.on_command, on_welcome=self._on_welcome)
            tasks.append(asyncio.create_task(self.uplink.run(), name="uplink"))
        log.info("edge agent %s: %s%s", FIRMWARE, ", ".join(a.describe() for a in self.adapters),
                 " (dry run)" if self.dry_run else f" → {agent.gateway_url} as {self.identity.device_id}"
                 if self.identity else "")
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for adapter in self.adapters:
                with contextlib.suppress(Exception):
                    await adapter.stop()
            if self.buffer is not None:
                self.buffer.close()
            if self._lock_file is not None:
                self._lock_file.close()

    def _open_state(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(state_dir / "agent.lock", "w")  # noqa: SIM115 (held for the agent's life)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another edge agent runs on {state_dir}") from None
        agent = self.config.agent
        max_samples = max(1, math.ceil(agent.max_buffered_days * 86_400 / agent.sample_interval_s))
        self.buffer = DiskBuffer(state_dir / "buffer.sqlite3", max_samples=max_samples,
                                 synchronous=agent.durability.upper())

    # ------------------------------------------------------------ sources

    async def _poll(self, adapter: Adapter, interval_s: float) -> None:
        timeout_s = next(s.timeout_s for s in self.config.sources if s.name == adapter.name)
        while True:
            started_ms = self.clock.now_ms()
            try:
                snapshot = await asyncio.wait_for(adapter.read(), timeout_s + 1.0)
            except SourceError as error:
                self.counters.error(adapter.name, error.kind, str(error))
            except TimeoutError:
                self.counters.error(adapter.name, "timeout", f"{adapter.describe()}: no answer in {timeout_s:g} s")
            except Exception as exc:   # an adapter bug must not stop the other sources
                log.exception("%s: unexpected failure", adapter.name)
                self.counters.error(adapter.name, "internal", repr(exc))
            else:
                self.latest[adapter.name] = snapshot
                self.counters.read(adapter.name)
            for background in adapter.drain_errors():
                self.counters.error(adapter.name, background.kind, str(background))
            elapsed_s = (self.clock.now_ms() - started_ms) / 1_000
            await self.clock.sleep(interval_s - elapsed_s)

    # ------------------------------------------------------------ samples

    async def _tick_forever(self) -> None:
        interval_ms = int(self.config.agent.sample_interval_s * 1_000)
        last_ms = 0
        while True:
            now_ms = self.clock.now_ms()
            next_ms = (now_ms // interval_ms + 1) * interval_ms        # on the interval's boundaries
            await self.clock.sleep((next_ms - now_ms) / 1_000)
            tick_ms = max(next_ms, last_ms + 1)
            last_ms = tick_ms
            self.tick(tick_ms)
            await self._run_plan(tick_ms)

    def tick(self, now_ms: int) -> SampleValues | None:
        sample = combine(self.latest, now_ms, self.policy)
        if sample is None:
            return None
        self.counters.sample()
        if self.dry_run:
            self.samples.append(sample)
            self.out(describe(sample, self.latest, now_ms))
        else:
            assert self.buffer is not None
            self.buffer.add(sample.timestamp_ms, link.sample_bytes(sample))
            self.counters.buffered(self.buffer.pending + self.buffer.unacked_samples)
            if self.uplink is not None:
                self.uplink.wake()
        return sample

    async def _log_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.agent.log_every_s)
            buffered = "" if self.buffer is None else (
                f"; buffered {self.buffer.pending + self.buffer.unacked_samples}"
                + (f", dropped {self.buffer.dropped}" if self.buffer.dropped else ""))
            log.info("%s%s", self.counters.summary(), buffered)

    # ------------------------------------------------------------ commands

    async def on_command(self, command: Command) -> list[bytes]:
        """Carries out `command` at most once (a repeated id gets the ack it got); returns the frames
        to send: the ack and a state report."""
        async with self._command_lock:
            assert self.buffer is not None
            known = self.buffer.known_ack(command.command_id)
            if known is not None:
                return [known]
            now_ms = self.clock.now_ms()
            caps = self.controller.capabilities if self.controller is not None else control.NO_CONTROL
            decision = control.decide(command, caps, self.control_state, now_ms)
            ack = decision.ack
            for action in decision.actions:
                failure = await self._apply(action)
                if failure is not None:
                    ack = CommandAck(command.command_id, Outcome.REJECTED, failure)
                    break
            else:
                if decision.state is not None:
                    self._set_control(decision.state)
            frame = link.ack_frame(ack)
            self.buffer.remember_ack(command.command_id, frame)
            log.info("command %s (%s): %s %s", command.command_id, type(command.body).__name__, ack.outcome,
                     ack.detail)
            return [frame, await self._state_frame()]

    async def _apply(self, action: DeviceAction) -> str | None:
        """None when the device took `action`, else why not (for the REJECTED ack)."""
        if self.controller is None:
            return "no device takes commands"
        try:
            await self.controller.apply(action)
        except SourceError as error:
            self.counters.error(self.controller.name, error.kind, str(error))
            return f"{self.controller.describe()} refused: {error}"
        if isinstance(action, ApplyBatteryPower):
            self._applied = (action.power_w, time.monotonic())
        return None

    def _set_control(self, state: ControlState) -> None:
        self.control_state = state
        assert self.buffer is not None
        plan = state.plan
        self.buffer.put("plan", None if plan is None else link.plan_to_bytes(
            plan.command_id, plan.plan_id, plan.issued_ms, plan.steps))
        self.buffer.put("newest_plan", f"{state.newest_plan_issued_ms}:{state.newest_plan_id}".encode())

    def _restore_control(self) -> None:
        assert self.buffer is not None
        newest = (self.buffer.get("newest_plan") or b"0:").decode()
        issued, _, plan_id = newest.partition(":")
        stored = self.buffer.get("plan")
        plan = None
        if stored is not None:
            command = link.plan_from_bytes(stored)
            if isinstance(command.body, control.RunPlan):
                plan = ActivePlan(command.command_id, command.body.plan_id, command.issued_ms, command.body.steps)
        self.control_state = ControlState(plan, int(issued), plan_id)

    async def _run_plan(self, now_ms: int) -> None:
        plan = self.control_state.plan
        if plan is None or self.controller is None or self.uplink is None:
            return
        soc, max_power_w = self.controller.battery_limits()
        tick = control.plan_setpoint(plan, now_ms, soc_pct=soc, reserve_pct=self._device_state.backup_reserve_pct,
                                     max_power_w=max_power_w)
        if tick.done:
            await self._apply(ApplyBatteryPower(None))
            self._set_control(control.without_plan(self.control_state))
            self.uplink.post(link.ack_frame(control.completed(plan)))
            self.uplink.post(await self._state_frame())
            return
        stale = self._applied is None or time.monotonic() - self._applied[1] > _REFRESH_SETPOINT_S
        if stale or self._applied is None or self._applied[0] != tick.power_w:
            failure = await self._apply(ApplyBatteryPower(tick.power_w))
            if failure is not None:
                self.counters.control_errors += 1

    async def _on_welcome(self, welcomed: link.Welcomed) -> list[bytes]:
        if self.identity is not None and welcomed.installation_id and not self.identity.installation_id:
            log.info("connected as %s of installation %s", self.identity.device_id, welcomed.installation_id)
        return [await self._state_frame()]

    async def _state_frame(self) -> bytes:
        if self.controller is not None:
            try:
                self._device_state = await self.controller.device_state()
            except SourceError as error:
                self.counters.error(self.controller.name, error.kind, str(error))
        config = {**self._device_state.config,
                  "edge.sources": ", ".join(f"{a.name}:{a.kind}" for a in self.adapters)}
        state = DeviceState(self._device_state.mode, self._device_state.backup_reserve_pct,
                            self._device_state.battery_nominal_energy_wh, self._device_state.battery_max_power_w,
                            self._device_state.firmware, config)
        plan = self.control_state.plan
        return link.state_frame(state, self.clock.now_ms(), firmware_version=FIRMWARE,
                                active_plan_id=plan.plan_id if plan is not None else "")


def describe(sample: SampleValues, latest: dict[str, Snapshot], now_ms: int) -> str:
    """One line for `--dry-run`: the sample, then each source's age."""
    stamp = time.strftime("%H:%M:%S", time.localtime(sample.timestamp_ms / 1_000))
    names = {"site_power_w": "site", "battery_power_w": "battery", "solar_power_w": "solar",
             "load_power_w": "load", "state_of_charge_pct": "soc"}
    parts = [f"{names[s]} {v:,.1f} {'%' if s == 'state_of_charge_pct' else 'W'}" for s, v in sample.reported().items()]
    if sample.grid_status is not None:
        parts.append(f"grid {sample.grid_status}")
    parts += [f"{k} {v:g}" for k, v in sample.extra]
    ages = ", ".join(f"{n} {max(0, now_ms - s.at_ms) / 1_000:.1f} s ago" for n, s in sorted(latest.items()))
    return f"{stamp}  {'  '.join(parts)}   [{ages}]"
