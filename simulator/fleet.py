"""A fleet of simulated devices: one physical model for all, one websocket session each.

Every `sample_interval_s` the fleet steps the vectorized `FleetModel` and hands each device its
sample at the device's own phase within the interval; devices stream, buffer and replay on their
own (simulator/device.py). A device's timestamps are unique, so the ledger can be compared with
the store exactly. Commands are executed by one `FleetController` for the fleet
(simulator/control.py), which sets the model's control arrays before every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gridtwin import unixtime
from gridtwin.api.device.v1 import device_pb2 as pb
from services.access.credentials import DeviceRegistration, fleet_credential
from simulator.control import FleetController
from simulator.device import DeviceOptions, SimulatedDevice
from simulator.ledger import Ledger
from simulator.physics import FleetConfig, FleetModel, default_household_trace_csv

log = logging.getLogger(__name__)

SLICE_MS = 100  # the fleet's samples are handed out in steps this long: no sample waits longer to be sent


@dataclass(frozen=True)
class FleetOptions:
    devices: int
    fleet_secret: str
    sample_interval_s: float = 1.0
    id_prefix: str = "sim"
    seed: int = 0
    load_source: str = "household_trace"


def device_id(prefix: str, index: int) -> str:
    return f"{prefix}-dev-{index:05d}"


def installation_id(prefix: str, index: int) -> str:
    return f"{prefix}-site-{index:05d}"


def registrations(options: FleetOptions) -> list[DeviceRegistration]:
    """What `gridtwin devices provision` stores so that the fleet can authenticate."""
    return [
        DeviceRegistration(device_id(options.id_prefix, i), installation_id(options.id_prefix, i),
                           fleet_credential(options.fleet_secret, device_id(options.id_prefix, i)))
        for i in range(options.devices)
    ]


class Fleet:
    """`async with Fleet(...)` streams until the block ends (then stops without draining)."""

    def __init__(self, options: FleetOptions, device_options: DeviceOptions, ledger: Ledger | None = None) -> None:
        self.options = options
        self.ledger = ledger or Ledger()
        load_source = options.load_source
        if load_source == "household_trace" and not default_household_trace_csv().exists():
            # The real trace ships in the team's shared data, not in the package.
            log.warning("household trace not found; simulating load with the BDEW standard profile")
            load_source = "bdew"
        self.model = FleetModel(
            FleetConfig(n_devices=options.devices, seed=options.seed, load_source=load_source),  # type: ignore[arg-type]
            dt.datetime.now(dt.UTC),
        )
        self.controller = FleetController(self.model)
        self.devices = [
            SimulatedDevice(r.device_id, r.credential, device_options, self.ledger, _DeviceCommands(self.controller, i))
            for i, r in enumerate(registrations(options))
        ]
        self._interval_ms = int(options.sample_interval_s * 1_000)
        # Device i samples at this offset into every interval (evenly spread, fixed per device).
        self._phase_ms = [i * self._interval_ms // options.devices for i in range(options.devices)]
        self._last_ts_ms = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._ticker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self, *, stream: bool = True) -> None:
        """Connects every device; with `stream`, also starts generating samples each interval."""
        self._tasks = [asyncio.create_task(d.run(), name=d.device_id) for d in self.devices]
        if stream:
            await self.start_streaming()

    async def start_streaming(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_loop())

    async def stop_streaming(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def stop(self) -> None:
        await self.stop_streaming()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def wait_connected(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(d.connected.wait() for d in self.devices))

    async def wait_drained(self, timeout_s: float) -> None:
        """Until every generated sample is acknowledged or refused."""
        async with asyncio.timeout(timeout_s):
            while self.ledger.outstanding() > 0:
                await asyncio.sleep(0.05)

    # ------------------------------------------------------------ samples

    def _step(self, start_ms: int) -> list[tuple[float, float, float, float, float]]:
        """Advances the physics to `start_ms`; one (site, battery, solar, load, soc) per device."""
        now = dt.datetime.fromtimestamp(start_ms / 1_000, dt.UTC)
        dt_s = (start_ms - self._last_ts_ms) / 1_000 if self._last_ts_ms else self.options.sample_interval_s
        self._last_ts_ms = start_ms
        for index, ack in self.controller.apply(start_ms):
            device = self.devices[index]
            device.post(pb.DeviceFrame(command_ack=ack))
            device.post(pb.DeviceFrame(state_report=self.controller.state_report(index, start_ms)))
        snap = self.model.step(now, dt_s)
        return list(zip(
            snap.site_power_w.tolist(), snap.battery_power_w.tolist(), snap.solar_power_w.tolist(),
            snap.load_power_w.tolist(), snap.state_of_charge_pct.tolist(), strict=True,
        ))

    def _emit(self, start_ms: int, rows: list[tuple[float, float, float, float, float]], lo: int, hi: int) -> None:
        for i in range(lo, hi):
            self.devices[i].add_sample((start_ms + self._phase_ms[i], *rows[i]))

    def generate(self, start_ms: int) -> None:
        """One sample for every device in the interval starting at `start_ms` (later than the last)."""
        self._emit(start_ms, self._step(start_ms), 0, len(self.devices))

    def backfill(self, samples_per_device: int) -> None:
        """History for a backlog: one sample per interval per device, ending one interval ago."""
        now_ms = unixtime.now_ms() // self._interval_ms * self._interval_ms
        for k in range(samples_per_device, 0, -1):
            self.generate(now_ms - k * self._interval_ms)

    async def _tick_loop(self) -> None:
        """Each device samples at its own phase within the interval, as unsynchronized real devices
        do, so the fleet's load is spread over the interval instead of arriving in one burst. A
        slice is handed out once its last phase has passed: no sample is sent before its time."""
        n = len(self.devices)
        while True:
            start_ms = unixtime.now_ms() // self._interval_ms * self._interval_ms
            if start_ms > self._last_ts_ms:
                rows = self._step(start_ms)
                slices = max(1, self._interval_ms // SLICE_MS)
                for k in range(slices):
                    slice_ms = start_ms + (k + 1) * self._interval_ms // slices
                    await asyncio.sleep(max(0.0, (slice_ms - unixtime.now_ms()) / 1_000))
                    self._emit(start_ms, rows, k * n // slices, (k + 1) * n // slices)
            next_ms = start_ms + self._interval_ms
            await asyncio.sleep(max(0.0, (next_ms - unixtime.now_ms()) / 1_000))

    # ------------------------------------------------------------ faults

    async def disconnect(self, indices: Iterable[int], offline_s: float = 0.0) -> None:
        """Cuts the connections of these devices; they buffer and replay on reconnect."""
        await asyncio.gather(*(self.devices[i].disconnect(offline_s) for i in indices))

    def inject_negative_solar(self, indices: Sequence[int]) -> None:
        self.model.inject_negative_solar(list(indices))

    def inject_stuck_sensor(self, indices: Sequence[int]) -> None:
        self.model.inject_stuck_sensor(list(indices))


@dataclass(frozen=True)
class _DeviceCommands:
    """One device's view of the fleet controller (simulator.device.CommandHandler)."""

    controller: FleetController
    index: int

    def handle(self, command: pb.Command, now_ms: int) -> pb.CommandAck:
        return self.controller.handle(self.index, command, now_ms)

    def state_report(self, now_ms: int) -> pb.StateReport:
        return self.controller.state_report(self.index, now_ms)
