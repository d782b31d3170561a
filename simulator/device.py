"""One simulated device: a websocket session that streams, buffers and replays.

Behaves as the device protocol asks a real gateway device to (see proto/gridtwin/device/v1):
samples are kept until a batch holding them is acknowledged; after a disconnect the device
reconnects with jittered exponential backoff and replays unacknowledged batches in order, with
their original sequence numbers, before sending anything new. Sequence numbers keep increasing
across reconnects.

Commands: a Command frame goes to the device's `CommandHandler` (simulator/control.py executes it
at most once per command id); the device answers with its CommandAck and a StateReport (active
plan, mode, reserve, firmware). Frames the fleet posts later (a plan's COMPLETED ack) wait in an
outbox until the device is connected. After every hello the device reports its state.

SampleNotices (acknowledged samples the store did not take) are logged and recorded in the
ledger (`Ledger.not_stored`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from gridtwin import unixtime
from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.tls import client_ssl_context
from services.telemetry.close_codes import CloseCode
from simulator.ledger import Ledger

log = logging.getLogger(__name__)

# Close codes after which retrying with the same credential or frames cannot help.
FATAL_CLOSE_CODES = {CloseCode.AUTHENTICATION_FAILED, CloseCode.UNSUPPORTED_PROTOCOL, CloseCode.PROTOCOL_VIOLATION}

SampleRow = tuple[int, float, float, float, float, float]  # ts_ms, site, battery, solar, load, soc


class CommandHandler(Protocol):
    def handle(self, command: pb.Command, now_ms: int) -> pb.CommandAck: ...

    def state_report(self, now_ms: int) -> pb.StateReport: ...


@dataclass(frozen=True)
class DeviceOptions:
    url: str
    max_samples_per_batch: int = 1_000
    max_buffered_samples: int = 7 * 86_400  # a week at 1 Hz; older samples are dropped first
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 10.0
    ca_file: str = ""     # wss:// URLs: the CA the gateway's certificate must chain to (empty: the system's)

    def ssl_context(self) -> ssl.SSLContext | None:
        return _ssl_context(self.ca_file) if self.url.startswith("wss://") else None


@functools.cache
def _ssl_context(ca_file: str) -> ssl.SSLContext:
    """One context per CA for the whole fleet: 10,000 devices need not read the CA file each."""
    return client_ssl_context(ca_file)


class SimulatedDevice:
    def __init__(self, device_id: str, credential: str, options: DeviceOptions, ledger: Ledger,
                 commands: CommandHandler | None = None, *, clock_ms: Callable[[], int] = unixtime.now_ms) -> None:
        self.device_id = device_id
        self._commands = commands
        self._clock_ms = clock_ms
        self._outbox: deque[bytes] = deque(maxlen=1_000)
        self._credential = credential
        self._options = options
        self._ledger = ledger
        self._new: deque[SampleRow] = deque()          # generated, not yet in a batch
        self._unacked: dict[int, pb.TelemetryBatch] = {}  # sent or to resend, by sequence
        self._next_sequence = 1
        self._wakeup = asyncio.Event()
        self._window = 8
        self._max_batch = options.max_samples_per_batch
        self._resume_at = 0.0  # after RATE_LIMITED, when sending may go on
        self._closed = False     # the current connection ended
        self._window_free = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._offline_until = 0.0
        self.connected = asyncio.Event()
        self.sessions = 0
        self.fatal: str | None = None

    # ------------------------------------------------------------ fleet-facing

    def add_sample(self, row: SampleRow) -> None:
        self._ledger.generated[self.device_id].append(row[0])
        self._new.append(row)
        if len(self._new) > self._options.max_buffered_samples:
            dropped = self._new.popleft()
            self._ledger.refused[self.device_id].append((dropped[0], "device_buffer_full"))
        self._wakeup.set()

    def post(self, frame: pb.DeviceFrame) -> None:
        """Sends `frame` (an ack or state report) as soon as the device is connected."""
        self._outbox.append(frame.SerializeToString())
        self._wakeup.set()

    @property
    def backlog(self) -> int:
        return len(self._new) + sum(len(b.samples) for b in self._unacked.values())

    def use_credential(self, credential: str) -> None:
        """Presents `credential` from the next Hello on (after a rotation; the session that is
        open stays as it is until it ends)."""
        self._credential = credential

    async def disconnect(self, offline_s: float = 0.0) -> None:
        """Drops the connection (as a network failure would); stays offline for `offline_s`."""
        self._offline_until = time.monotonic() + offline_s
        if self._ws is not None:
            self._ws.transport.abort()

    # ------------------------------------------------------------ the connection loop

    async def run(self) -> None:
        """Connects, streams and reconnects until cancelled or refused for good."""
        attempt = 0
        while self.fatal is None:
            wait_s = self._offline_until - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            self._ledger.connection_attempts_ms.append(self._clock_ms())
            try:
                async with connect(
                    self._options.url, compression=None, open_timeout=self._options.connect_timeout_s,
                    max_size=2**22, ping_interval=20, ping_timeout=20, ssl=self._options.ssl_context(),
                ) as ws:
                    self._ws = ws
                    if await self._hello(ws):
                        attempt = 0
                        await self._session(ws)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                if code in FATAL_CLOSE_CODES:
                    self.fatal = f"closed {code}: {closed.rcvd.reason if closed.rcvd else ''}"
                    log.warning("device %s gives up: %s", self.device_id, self.fatal)
                    return
            except (OSError, InvalidHandshake, TimeoutError):
                pass
            finally:
                self._ws = None
                self.connected.clear()
            attempt += 1
            # Full jitter: 10,000 devices that lost one gateway do not come back in lockstep.
            cap = min(self._options.backoff_max_s, self._options.backoff_initial_s * 2 ** min(attempt, 10))
            await asyncio.sleep(random.uniform(0.1 * cap, cap))

    async def _hello(self, ws: ClientConnection) -> bool:
        hello = pb.DeviceFrame(hello=pb.Hello(device_id=self.device_id, credential=self._credential,
                                              firmware_version="sim-1", protocol_version=1))
        await ws.send(hello.SerializeToString())
        reply = pb.CloudFrame()
        reply.ParseFromString(await ws.recv(decode=False))
        if reply.WhichOneof("body") != "hello_reply":
            return False
        self._window = max(1, reply.hello_reply.max_in_flight_batches)
        # Numbering goes on above what the gateway acknowledged in an earlier session.
        self._next_sequence = max(self._next_sequence, reply.hello_reply.last_acknowledged_sequence + 1)
        self._max_batch = min(self._options.max_samples_per_batch, reply.hello_reply.max_samples_per_batch or 10**9)
        self.sessions += 1
        self.connected.set()
        if self._commands is not None:
            self.post(pb.DeviceFrame(state_report=self._commands.state_report(self._clock_ms())))
        return True

    async def _session(self, ws: ClientConnection) -> None:
        """Sends until the connection ends; the receiver task's end wakes the sender, and
        awaiting the receiver re-raises how the connection closed."""
        in_flight: set[int] = set()
        self._closed = False
        receiver = asyncio.create_task(self._receive(ws, in_flight))
        try:
            # Replay first: batches the previous session never saw acknowledged, in order.
            for sequence in sorted(self._unacked):
                await self._send(ws, sequence, in_flight)
            while not self._closed:
                while self._outbox and not self._closed:
                    await ws.send(self._outbox.popleft())
                if not self._new:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if (pause_s := self._resume_at - time.monotonic()) > 0:
                    await asyncio.sleep(pause_s)
                sequence = self._next_sequence
                self._next_sequence += 1
                n = min(len(self._new), self._max_batch)
                rows = [self._new.popleft() for _ in range(n)]
                self._unacked[sequence] = pb.TelemetryBatch(sequence=sequence, samples=[
                    pb.Sample(timestamp_unix_ms=r[0], site_power_w=r[1], battery_power_w=r[2], solar_power_w=r[3],
                              load_power_w=r[4], state_of_charge_pct=r[5], grid_status=pb.GRID_STATUS_CONNECTED)
                    for r in rows
                ])
                await self._send(ws, sequence, in_flight)
        finally:
            if not receiver.done():
                receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver  # re-raises ConnectionClosed, so run() can tell fatal closes

    async def _send(self, ws: ClientConnection, sequence: int, in_flight: set[int]) -> None:
        while len(in_flight) >= self._window and not self._closed:
            self._window_free.clear()
            await self._window_free.wait()
        if self._closed:
            return
        in_flight.add(sequence)
        await ws.send(pb.DeviceFrame(telemetry=self._unacked[sequence]).SerializeToString())

    async def _receive(self, ws: ClientConnection, in_flight: set[int]) -> None:
        try:
            await self._handle_frames(ws, in_flight)
        finally:
            self._closed = True
            self._wakeup.set()
            self._window_free.set()

    async def _handle_frames(self, ws: ClientConnection, in_flight: set[int]) -> None:
        async for data in ws:
            frame = pb.CloudFrame()
            frame.ParseFromString(data)  # type: ignore[arg-type]
            kind = frame.WhichOneof("body")
            if kind == "ack":
                self._on_ack(frame.ack)
                in_flight.discard(frame.ack.sequence)
                self._window_free.set()
            elif kind == "batch_rejected":
                self._on_rejected(frame.batch_rejected)
                in_flight.discard(frame.batch_rejected.sequence)
                self._window_free.set()
            elif kind == "sample_notice":
                self._on_notice(frame.sample_notice)
            elif kind == "command":
                self._ledger.commands_received[self.device_id].append(frame.command.command_id)
                if self._commands is None:
                    ack = pb.CommandAck(command_id=frame.command.command_id, outcome=pb.COMMAND_OUTCOME_REJECTED,
                                        detail="this device takes no commands")
                    await ws.send(pb.DeviceFrame(command_ack=ack).SerializeToString())
                    continue
                now_ms = self._clock_ms()
                ack = self._commands.handle(frame.command, now_ms)
                await ws.send(pb.DeviceFrame(command_ack=ack).SerializeToString())
                report = self._commands.state_report(now_ms)
                await ws.send(pb.DeviceFrame(state_report=report).SerializeToString())

    def _on_ack(self, ack: pb.Ack) -> None:
        batch = self._unacked.pop(ack.sequence, None)
        if batch is None:
            return
        refused = {r.index: pb.RejectReason.Name(r.reason) for r in ack.rejections}
        for index, reason in refused.items():
            self._ledger.refused[self.device_id].append((batch.samples[index].timestamp_unix_ms, reason))
        self._ledger.acknowledged[self.device_id] += len(batch.samples) - len(refused)
        now_ms = unixtime.now_ms()
        self._ledger.ack_latency_ms.append(now_ms - batch.samples[-1].timestamp_unix_ms)

    def _on_notice(self, notice: pb.SampleNotice) -> None:
        """Acknowledged samples the store did not take: logged and counted in the ledger; not
        sent again (the store keeps what it has)."""
        reason = pb.RejectReason.Name(notice.reason)
        self._ledger.not_stored[self.device_id].extend((ts, reason) for ts in notice.timestamps_unix_ms)
        log.warning("device %s: %d samples not stored (%s: %s), first at %d", self.device_id,
                    len(notice.timestamps_unix_ms), reason, notice.detail, notice.timestamps_unix_ms[0]
                    if notice.timestamps_unix_ms else 0)

    def _on_rejected(self, rejected: pb.BatchRejected) -> None:
        batch = self._unacked.pop(rejected.sequence, None)
        if batch is None:
            return
        if rejected.reason in (pb.REJECT_REASON_RATE_LIMITED, pb.REJECT_REASON_SEQUENCE_NOT_INCREASING):
            # Later batches may already be accepted, so this one's sequence is spent: its samples
            # go back to the front of the queue and leave in a new batch (after a pause when rate
            # limited). A number at or below the last acknowledged one (an ack lost with its
            # connection) is refused this way too; the store keeps each sample once.
            self._new.extendleft(
                (s.timestamp_unix_ms, s.site_power_w, s.battery_power_w, s.solar_power_w, s.load_power_w,
                 s.state_of_charge_pct) for s in reversed(batch.samples)
            )
            if rejected.reason == pb.REJECT_REASON_RATE_LIMITED:
                self._resume_at = time.monotonic() + 1.0
            self._wakeup.set()
        else:
            reason = pb.RejectReason.Name(rejected.reason)
            self._ledger.refused[self.device_id].extend((s.timestamp_unix_ms, reason) for s in batch.samples)
