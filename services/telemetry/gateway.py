"""The websocket gateway: moves bytes between device sockets, a `DeviceSession`, the credential
directory and the broker. All protocol decisions are the session's; this module only does I/O.

Backpressure: a connection reads its next frame only after the previous one was handed to the
producer and both the per-device and the gateway-wide in-flight bounds have room, so a slow
broker stops socket reads and TCP pushes back on devices instead of memory growing.

Commands (with a `SessionRegistry`): the gateway records which devices it holds in the session
registry and reads the partition of the `commands` topic its id hashes to, keeping the
GatewayCommandBatches addressed to it and sending each command to its device's socket (see
services/control/routing.py for why commands are routed this way). It starts reading at the end
of the partition: what was produced before it started belonged to sessions it does not hold, and
the control service sends a reconnected device's pending commands again. The same batches carry
ingest's SampleNotices (services/telemetry/notices.py) for the devices this gateway received the
samples from: sent if the device is still here, else counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import Counter, Gauge
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from gridtwin.aio import cancel_and_wait
from gridtwin.api.control.v1 import control_pb2 as control_pb
from gridtwin.settings import GatewaySettings, KafkaSettings, TlsSettings
from gridtwin.tls import server_ssl_context
from gridtwin.unixtime import now_ms
from services.telemetry import hotmetrics
from services.telemetry.capacity import Capacity
from services.telemetry.close_codes import CloseCode
from services.telemetry.hotmetrics import FastCounter, FastGauge, FastHistogram
from services.telemetry.session import (
    AuthenticateDevice,
    CloseConnection,
    Decision,
    DeviceIdentity,
    DeviceSession,
    ForwardDeviceEvent,
    ProduceBatch,
    Rejected,
    SendFrame,
    SessionConfig,
)
from services.telemetry.validation import Limits

if TYPE_CHECKING:
    from services.control.routing import SessionRegistry

log = logging.getLogger(__name__)

CONNECTIONS = Gauge("gridtwin_gateway_connections", "Open device sessions")
REJECTS = Counter("gridtwin_gateway_rejects_total", "Refused batches, samples and sessions", ["reason"])
CLOSES = Counter("gridtwin_gateway_closes_total", "Sessions closed by the gateway", ["code"])
COMMANDS = Counter("gridtwin_gateway_commands_total", "Commands from the control plane", ["result"])
SAMPLE_NOTICES = Counter("gridtwin_gateway_sample_notices_total",
                         "Samples named in notices from ingest, by delivery (sent, not_connected, session_not_open)",
                         ["result"])
# Updated for every frame: lock-free numbers collected at scrape time (services/telemetry/hotmetrics.py).
FRAMES = FastCounter("gridtwin_gateway_frames_total", "Frames received from devices")
BYTES = FastCounter("gridtwin_gateway_bytes_received_total", "Payload bytes received from devices")
SAMPLES = FastCounter("gridtwin_gateway_samples_accepted_total", "Samples produced to the broker")
ACKS = FastCounter("gridtwin_gateway_acks_total", "Batches acknowledged after the broker acknowledged them")
IN_FLIGHT = FastGauge("gridtwin_gateway_in_flight_batches", "Batches produced but not yet acknowledged by the broker")
PRODUCE_LATENCY = FastHistogram(
    "gridtwin_gateway_produce_latency_seconds", "Produce → broker acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SAMPLES = FastHistogram(
    "gridtwin_gateway_batch_samples", "Samples per accepted device batch",
    buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 2000),
)
hotmetrics.register(FRAMES, BYTES, SAMPLES, ACKS, IN_FLIGHT, PRODUCE_LATENCY, BATCH_SAMPLES)


# Devices whose last acknowledged sequence a gateway remembers (about 100 B each).
MAX_REMEMBERED_DEVICES = 1_000_000


class Authenticator(Protocol):
    async def authenticate(self, device_id: str, credential: str) -> DeviceIdentity | str: ...


class Gateway:
    """Serves device websockets until `stop()`; `async with Gateway(...)` does both."""

    def __init__(
        self,
        settings: GatewaySettings,
        kafka: KafkaSettings,
        authenticator: Authenticator,
        *,
        registry: SessionRegistry | None = None,
        clock_ms: Callable[[], int] = now_ms,
        tls: TlsSettings | None = None,
    ) -> None:
        """`registry`: record sessions and deliver commands (None: telemetry only); `tls`: serve
        wss:// when enabled."""
        self._ssl = server_ssl_context(tls)   # read now: a missing certificate fails at construction
        self._settings = settings
        self._registry = registry
        self._commands: AIOKafkaConsumer | None = None
        self._command_task: asyncio.Task[None] | None = None
        self._kafka = kafka
        self._authenticator = authenticator
        self._clock_ms = clock_ms
        self._session_config = SessionConfig(
            gateway_id=settings.gateway_id,
            max_samples_per_batch=settings.max_samples_per_batch,
            max_in_flight_batches=settings.max_in_flight_batches_per_device,
            rate_limit_batches_per_s=settings.rate_limit_batches_per_s,
            rate_limit_burst_batches=settings.rate_limit_burst_batches,
            limits=Limits(settings.max_clock_skew_s, settings.max_sample_age_s),
            max_frame_bytes=settings.max_frame_bytes,
        )
        # Device id → the highest sequence acknowledged to it, kept across its sessions (see
        # device.proto); beyond MAX_REMEMBERED_DEVICES the first remembered goes first.
        self._acknowledged: dict[str, int] = {}
        self._in_flight_total = Capacity(settings.max_in_flight_batches_total)
        self._connections: dict[str, _Connection] = {}  # by device id: one session per device
        self._producer: AIOKafkaProducer | None = None
        self._server: Server | None = None
        self._revalidation: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            linger_ms=self._settings.produce_linger_ms,
            max_batch_size=1 << 20,
            acks="all",
            client_id=self._settings.gateway_id,
        )
        await self._producer.start()
        if self._registry is not None:
            await self._start_commands()
        self._server = await serve(
            self._handle,
            self._settings.host,
            self._settings.port,
            max_size=self._settings.max_frame_bytes,
            ping_interval=self._settings.ping_interval_s,
            ping_timeout=self._settings.ping_timeout_s,
            compression=None,  # telemetry protobuf barely compresses; CPU is the scarce resource
            max_queue=4,
            ssl=self._ssl,
        )
        log.info("gateway listening on %s://%s:%d", "ws" if self._ssl is None else "wss", self._settings.host,
                 self.port)
        self._revalidation = asyncio.create_task(self._revalidate_loop(), name="gateway-revalidate")

    async def stop(self) -> None:
        await cancel_and_wait(self._revalidation)
        if self._server is not None:
            self._server.close(close_connections=True)  # 1001 going away: devices reconnect
            await self._server.wait_closed()
        if self._command_task is not None:
            self._command_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._command_task
        if self._commands is not None:
            await self._commands.stop()
        if self._registry is not None:
            await self._registry.stop()
        if self._producer is not None:
            await self._producer.stop()

    # ------------------------------------------------------------ commands from the control plane

    async def _start_commands(self) -> None:
        from services.control.dispatcher import ensure_commands_topic
        from services.control.routing import gateway_partition

        assert self._registry is not None
        await ensure_commands_topic(self._kafka)
        topic = self._kafka.commands_topic
        consumer = AIOKafkaConsumer(bootstrap_servers=self._kafka.bootstrap_servers, enable_auto_commit=False,
                                    fetch_max_wait_ms=20, client_id=f"{self._settings.gateway_id}-commands")
        await consumer.start()
        self._commands = consumer
        assert self._producer is not None
        partitions = await self._producer.partitions_for(topic)   # waits for the topic's metadata
        mine = TopicPartition(topic, gateway_partition(self._settings.gateway_id, len(partitions)))
        consumer.assign([mine])
        await consumer.seek_to_end(mine)
        await consumer.position(mine)   # resolve the end now, before any device can register
        await self._registry.start()
        self._command_task = asyncio.create_task(self._command_loop(), name="gateway-commands")

    async def _command_loop(self) -> None:
        consumer = self._commands
        assert consumer is not None
        me = self._settings.gateway_id.encode()
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=100)
            for records in batches.values():
                for record in records:
                    if dict(record.headers or ()).get("gateway") != me:
                        continue   # another gateway whose id hashes to the same partition
                    batch = control_pb.GatewayCommandBatch()
                    try:
                        batch.ParseFromString(record.value or b"")
                    except Exception:
                        log.warning("malformed command batch at offset %d", record.offset)
                        continue
                    await self._deliver(batch)

    async def _deliver(self, batch: control_pb.GatewayCommandBatch) -> None:
        now_ms = self._clock_ms()
        sends = []
        for entry in batch.commands:
            connection = self._connections.get(entry.device_id)
            if connection is None:
                COMMANDS.labels("not_connected").inc()   # the control service retries on reconnect
                continue
            decisions = connection.session.deliver_command(entry.command, now_ms)
            for decision in decisions:
                if isinstance(decision, Rejected):
                    COMMANDS.labels(decision.reason.removeprefix("command_")).inc()
            if decisions and isinstance(decisions[0], SendFrame):
                COMMANDS.labels("sent").inc()
                sends.append(connection.execute(decisions))
        for notice in batch.notices:
            samples = len(notice.notice.timestamps_unix_ms)
            connection = self._connections.get(notice.device_id)
            if connection is None:
                SAMPLE_NOTICES.labels("not_connected").inc(samples)   # best effort: never kept
                continue
            decisions = connection.session.deliver_notice(notice.notice)
            if decisions and isinstance(decisions[0], SendFrame):
                SAMPLE_NOTICES.labels("sent").inc(samples)
                sends.append(connection.execute(decisions))
            else:
                SAMPLE_NOTICES.labels("session_not_open").inc(samples)
        # Concurrently: one device's full socket buffer must not hold up the others' commands.
        await asyncio.gather(*sends, return_exceptions=True)

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ one connection

    async def _handle(self, ws: ServerConnection) -> None:
        session = DeviceSession(self._session_config, session_id=uuid.uuid4().hex)
        connection = _Connection(self, session, ws)
        CONNECTIONS.inc()
        try:
            await connection.run()
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG:
                REJECTS.labels("frame_too_big").inc()
                CLOSES.labels(str(CloseCode.MESSAGE_TOO_BIG.value)).inc()
        finally:
            CONNECTIONS.dec()
            await connection.drain()
            identity = session.identity
            if identity and self._connections.get(identity.device_id) is connection:
                del self._connections[identity.device_id]
                if self._registry is not None:
                    self._registry.closed(identity.device_id, session.session_id)

    async def _revalidate_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.revalidate_s)
            try:
                await self.revalidate()
            except Exception:   # the directory is down: sessions stay, the next round tries again
                log.exception("revalidating session credentials failed")

    async def revalidate(self) -> int:
        """Checks every open session's credential again; closes (4001) those refused now and
        schedules the end of those admitted by a rotation's grace. Returns how many it closed.
        The directory's lookups are coalesced: 10,000 sessions cost about ten queries."""
        admitted = list(self._connections.items())   # registered only once authenticated
        outcomes = await asyncio.gather(*(self._authenticator.authenticate(device_id, c.credential)
                                          for device_id, c in admitted))
        closed = 0
        for (_, connection), outcome in zip(admitted, outcomes, strict=True):
            if isinstance(outcome, str):
                closed += 1
                await connection.execute(connection.session.credential_refused())
            elif outcome.credential_valid_until_unix_ms is not None:
                connection.expire_at(outcome.credential_valid_until_unix_ms)
        return closed

    def acknowledged(self, device_id: str, sequence: int) -> None:
        """`sequence` was acknowledged to the device: later sessions refuse numbers up to it.
        One dict store per ack (this runs for every batch); numbers only grow within a session
        and a new session starts above the old one's, so the newest is the highest."""
        if device_id not in self._acknowledged and len(self._acknowledged) >= MAX_REMEMBERED_DEVICES:
            del self._acknowledged[next(iter(self._acknowledged))]   # the device remembered longest
        self._acknowledged[device_id] = sequence

    def last_acknowledged(self, device_id: str) -> int:
        return self._acknowledged.get(device_id, 0)

    async def _register(self, connection: _Connection, device_id: str) -> None:
        """Makes `connection` the device's only one, closing an older one (4004): commands for a
        device must have exactly one way to reach it."""
        older = self._connections.get(device_id)
        self._connections[device_id] = connection
        if self._registry is not None:
            self._registry.opened(device_id, connection.session.session_id)
        if older is not None and older is not connection:
            await older.execute(older.session.replaced())


class _Connection:
    """Carries out one session's decisions on its websocket."""

    def __init__(self, gateway: Gateway, session: DeviceSession, ws: ServerConnection) -> None:
        self._gw = gateway
        self.session = session
        self._ws = ws
        self._per_device = Capacity(gateway._settings.max_in_flight_batches_per_device)
        self._acks: set[asyncio.Task[None]] = set()
        self._partition: int | None = None  # of this installation's key; hashed once per session
        self._credential_expiry: asyncio.Task[None] | None = None
        self.credential = ""   # as admitted; checked again by Gateway.revalidate

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self._gw._settings.hello_timeout_s):
                first = await self._ws.recv()
        except TimeoutError:
            await self.execute(self.session.hello_timed_out())
            return
        await self._receive(first)
        async for data in self._ws:
            await self._receive(data)

    async def drain(self) -> None:
        """Waits for outstanding broker acknowledgements (their acks may no longer be sendable)."""
        if self._credential_expiry is not None:
            self._credential_expiry.cancel()
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)

    async def _receive(self, data: bytes | str) -> None:
        FRAMES.inc()
        BYTES.inc(len(data))
        await self.execute(self.session.receive(data, self._gw._clock_ms()))

    async def execute(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            match decision:
                case SendFrame(frame):
                    with contextlib.suppress(ConnectionClosed):
                        await self._ws.send(frame)
                case CloseConnection(code, reason):
                    CLOSES.labels(str(code.value)).inc()
                    log.info("closing session %s: %d %s", self.session.session_id, code, reason)
                    await self._ws.close(code, reason)
                case AuthenticateDevice(device_id, credential):
                    await self._authenticate(device_id, credential)
                case ProduceBatch():
                    await self._produce(decision)
                case ForwardDeviceEvent(kind, installation_id, payload, device_id):
                    await self._forward(kind, installation_id, payload, device_id)
                case Rejected(reason, samples):
                    REJECTS.labels(reason).inc(max(samples, 1))

    async def _authenticate(self, device_id: str, credential: str) -> None:
        try:
            outcome = await self._gw._authenticator.authenticate(device_id, credential)
        except Exception:  # the directory is down: the device retries later
            log.exception("credential lookup failed")
            await self.execute([CloseConnection(CloseCode.TRY_AGAIN_LATER, "authentication unavailable")])
            return
        if isinstance(outcome, str):
            log.info("device %r refused: %s", device_id[:128], outcome)
            await self.execute(self.session.authentication_failed(outcome))
            return
        await self.execute(self.session.authenticated(
            outcome, self._gw._clock_ms(), last_acknowledged_sequence=self._gw.last_acknowledged(outcome.device_id)))
        self.credential = credential
        await self._gw._register(self, outcome.device_id)
        if outcome.credential_valid_until_unix_ms is not None:
            self.expire_at(outcome.credential_valid_until_unix_ms)

    def expire_at(self, valid_until_unix_ms: int) -> None:
        """Admitted (or found again) with the old credential in a rotation's grace: the session
        ends with it."""
        if self._credential_expiry is None:
            self._credential_expiry = asyncio.create_task(self._expire_credential(valid_until_unix_ms))

    async def _expire_credential(self, valid_until_unix_ms: int) -> None:
        await asyncio.sleep(max(0.0, (valid_until_unix_ms - self._gw._clock_ms()) / 1_000))
        await self.execute(self.session.credential_expired())

    async def _produce(self, batch: ProduceBatch) -> None:
        producer = self._gw._producer
        assert producer is not None
        # Both bounds are taken before the next frame is read: this is where backpressure starts.
        await self._per_device.acquire()
        await self._gw._in_flight_total.acquire()
        IN_FLIGHT.inc()
        started = time.perf_counter()
        topic = self._gw._kafka.telemetry_topic
        key = batch.installation_id.encode()
        try:
            if self._partition is None:
                # The default partitioner (murmur2, as Java clients) decides; we only remember it.
                partitions = sorted(await producer.partitions_for(topic))
                self._partition = DefaultPartitioner()(key, partitions, partitions)
            delivery = await producer.send(topic, batch.record, key=key, partition=self._partition)
        except Exception as exc:
            self._release()
            await self.execute(self.session.produce_failed(batch.sequence, type(exc).__name__))
            return
        task = asyncio.create_task(self._acknowledge(batch, delivery, started))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _acknowledge(self, batch: ProduceBatch, delivery: asyncio.Future[object], started: float) -> None:
        try:
            await delivery
        except Exception as exc:
            log.warning("produce of %s seq %d failed: %s", batch.installation_id, batch.sequence, exc)
            await self.execute(self.session.produce_failed(batch.sequence, type(exc).__name__))
            return
        finally:
            self._release()
        PRODUCE_LATENCY.observe(time.perf_counter() - started)
        BATCH_SAMPLES.observe(batch.sample_count)
        SAMPLES.inc(batch.sample_count)
        ACKS.inc()
        decisions = self.session.produced(batch.sequence)
        if decisions and self.session.identity is not None:
            self._gw.acknowledged(self.session.identity.device_id, batch.sequence)
        await self.execute(decisions)

    def _release(self) -> None:
        IN_FLIGHT.dec()
        self._gw._in_flight_total.release()
        self._per_device.release()

    async def _forward(self, kind: str, installation_id: str, payload: bytes, device_id: str) -> None:
        producer = self._gw._producer
        assert producer is not None
        topic = self._gw._kafka.device_events_topic
        headers = [("kind", kind.encode()), ("device_id", device_id.encode()),
                   ("installation_id", installation_id.encode())]
        await producer.send(topic, payload, key=installation_id.encode(), headers=headers)
