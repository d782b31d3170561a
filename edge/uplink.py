"""The websocket to the gateway: moves the disk buffer's batches out and the cloud's frames in.

One connection at a time, kept forever: connect (jittered exponential backoff after a failure),
hello, then replay the batches that were sent but never acknowledged — in order, with their
original sequence numbers — before anything new; then send new batches as samples arrive, never
more unacknowledged than the gateway's window. Acknowledged batches leave the buffer; refused ones
are requeued (rate limited: after a pause) or dropped (the cloud will never take them). Device
events (command acks, state reports) go out as they come, or wait in the buffer's outbox until
the next connection. Commands are carried out one at a time, off the receive loop, so acks keep
flowing while a device is slow to answer.

The protocol decisions are `link.Session`'s; the storage is `buffer.DiskBuffer`'s; this module
only moves bytes and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from edge import link
from edge.backoff import backoff_s
from edge.buffer import DiskBuffer
from edge.clock import Clock, correction_ms
from edge.counters import Counters
from edge.model import Command

log = logging.getLogger(__name__)

# Close codes after which the same hello cannot succeed (services/telemetry/close_codes.py): the
# agent keeps trying, at the slowest pace, since an operator may fix the device's registration.
_HOPELESS = {4000, 4001, 4003, 1007, 1009}
_RATE_LIMIT_PAUSE_S = 1.0


@dataclass(frozen=True)
class UplinkOptions:
    url: str
    device_id: str
    credential: str
    firmware_version: str
    ca_file: str = ""
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0
    max_batch_bytes: int = 512 * 1024
    skew_tolerance_ms: int | None = 2_000     # None: measure the skew, never correct the clock


class Uplink:
    def __init__(self, options: UplinkOptions, buffer: DiskBuffer, clock: Clock, counters: Counters, *,
                 on_command: Callable[[Command], Awaitable[list[bytes]]],
                 on_welcome: Callable[[link.Welcomed], Awaitable[list[bytes]]]) -> None:
        self._options = options
        self._buffer = buffer
        self._clock = clock
        self._counters = counters
        self._on_command = on_command
        self._on_welcome = on_welcome
        self._wake = asyncio.Event()
        self._resume_at = 0.0
        self.connected = asyncio.Event()
        self.welcomed: link.Welcomed | None = None
        self.sessions = 0

    def wake(self) -> None:
        """New samples (or frames) are waiting."""
        self._wake.set()

    def post(self, frame: bytes) -> None:
        """Sends a device event now, or at the next connection (kept in the buffer's outbox)."""
        self._buffer.outbox_add(frame)
        self._wake.set()

    async def run(self) -> None:
        attempt = 0
        while True:
            hopeless = False
            try:
                async with connect(self._options.url, ssl=self._ssl(), open_timeout=self._options.connect_timeout_s,
                                   compression=None, max_size=2**22, ping_interval=20, ping_timeout=20,
                                   close_timeout=2) as ws:
                    if await self._hello(ws):
                        attempt = 0
                        await self._session(ws)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                hopeless = code in _HOPELESS
                level = logging.ERROR if hopeless else logging.INFO
                log.log(level, "gateway closed the connection (%s %s)", code, closed.rcvd.reason if closed.rcvd else "")
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                log.info("gateway unreachable: %s", exc)
            finally:
                self.connected.clear()
            self._counters.disconnected()
            attempt += 1
            wait_s = (self._options.backoff_max_s if hopeless else
                      backoff_s(attempt, initial_s=self._options.backoff_initial_s,
                                maximum_s=self._options.backoff_max_s))
            await asyncio.sleep(wait_s)

    def _ssl(self) -> ssl.SSLContext | None:
        if not self._options.url.startswith("wss://"):
            return None
        return ssl.create_default_context(cafile=self._options.ca_file or None)

    async def _hello(self, ws: ClientConnection) -> bool:
        self._session_state = link.Session(hello_sent_ms=self._clock.now_ms())
        await ws.send(link.hello_frame(self._options.device_id, self._options.credential,
                                       self._options.firmware_version))
        data = await asyncio.wait_for(ws.recv(decode=False), self._options.connect_timeout_s)
        event = self._session_state.receive(data, self._clock.now_ms())
        if not isinstance(event, link.Welcomed):
            log.warning("the gateway answered the hello with %s", event)
            return False
        self.welcomed = event
        self._buffer.advance_sequence(event.last_acknowledged_sequence)
        self.sessions += 1
        self._counters.connected(event.skew_ms)
        if abs(event.skew_ms) > (self._options.skew_tolerance_ms or 2_000):
            log.warning("the agent's clock is %+.1f s off the gateway's%s", -event.skew_ms / 1_000,
                        "; correcting it" if self._options.skew_tolerance_ms is not None else "")
        if self._options.skew_tolerance_ms is not None:
            self._clock.offset_ms += correction_ms(event.skew_ms, self._options.skew_tolerance_ms)
        for frame in await self._on_welcome(event):
            self._buffer.outbox_add(frame)
        self.connected.set()
        return True

    async def _session(self, ws: ClientConnection) -> None:
        session = self._session_state
        commands: asyncio.Queue[Command] = asyncio.Queue(maxsize=100)
        closed = asyncio.Event()
        receiver = asyncio.create_task(self._receive(ws, session, commands, closed))
        worker = asyncio.create_task(self._commands(ws, commands))
        try:
            for sequence in self._buffer.unacked():      # replay first, with the original numbers
                if not await self._send_when_room(ws, session, sequence, self._buffer.batch(sequence), closed):
                    break
            while not closed.is_set():
                for frame_id, frame in self._buffer.outbox():
                    await ws.send(frame)
                    self._buffer.outbox_remove(frame_id)
                pause_s = self._resume_at - time.monotonic()
                if pause_s > 0:
                    await asyncio.sleep(pause_s)
                if session.can_send() and self._buffer.pending:
                    taken = self._buffer.take_batch(session.max_batch, self._options.max_batch_bytes)
                    if taken is not None:
                        await self._send(ws, session, *taken)
                    continue
                self._wake.clear()
                if (session.can_send() and self._buffer.pending) or self._buffer.outbox():
                    continue
                await _first(self._wake.wait(), closed.wait())
        finally:
            for task in (worker, receiver):
                task.cancel()
            results = await asyncio.gather(receiver, worker, return_exceptions=True)
            failure = results[0]
            if isinstance(failure, ConnectionClosed):
                raise failure   # run() tells hopeless closes apart

    async def _send_when_room(self, ws: ClientConnection, session: link.Session, sequence: int,
                              samples: list[bytes], closed: asyncio.Event) -> bool:
        while not session.can_send():
            if closed.is_set():
                return False
            self._wake.clear()
            await _first(self._wake.wait(), closed.wait())
        if samples:
            await self._send(ws, session, sequence, samples)
        return True

    async def _send(self, ws: ClientConnection, session: link.Session, sequence: int, samples: list[bytes]) -> None:
        session.sent(sequence)
        await ws.send(link.telemetry_frame(sequence, samples))
        self._counters.batch_sent(len(samples))

    async def _receive(self, ws: ClientConnection, session: link.Session, commands: asyncio.Queue[Command],
                       closed: asyncio.Event) -> None:
        try:
            async for data in ws:
                event = session.receive(data, self._clock.now_ms())
                if isinstance(event, link.Acked):
                    self._buffer.ack(event.sequence)
                    self._counters.acked(event.accepted, event.refused)
                elif isinstance(event, link.BatchRefused):
                    self._refused(event)
                elif isinstance(event, link.SamplesNotStored):
                    self._counters.not_stored(event.reason, event.detail, event.timestamps_ms)
                elif isinstance(event, link.CommandArrived):
                    if commands.full():
                        log.warning("commands arrive faster than devices take them: %s dropped (the cloud resends)",
                                    event.command.command_id)
                    else:
                        commands.put_nowait(event.command)
                else:
                    self._counters.garbled(str(event))
                self._wake.set()
        finally:
            closed.set()
            self._wake.set()

    def _refused(self, event: link.BatchRefused) -> None:
        if event.requeue:
            self._buffer.requeue(event.sequence)
            if event.rate_limited:
                self._resume_at = time.monotonic() + _RATE_LIMIT_PAUSE_S
        else:
            dropped = self._buffer.drop(event.sequence)
            log.warning("the gateway refused batch %d for good (%s: %s): %d samples dropped", event.sequence,
                        event.reason, event.detail, dropped)
        self._counters.batch_refused(event.reason)

    async def _commands(self, ws: ClientConnection, commands: asyncio.Queue[Command]) -> None:
        while True:
            command = await commands.get()
            frames = await self._on_command(command)
            with contextlib.suppress(ConnectionClosed):   # the cloud resends; the stored ack answers it
                for frame in frames:
                    await ws.send(frame)


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
