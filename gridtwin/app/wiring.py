"""Entry points of the service processes: each builds its parts from settings and runs until
SIGTERM or SIGINT, then stops cleanly (finishing in-flight work)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg

from gridtwin.observability import configure_logging, run_service, serve_metrics
from gridtwin.settings import Settings

if TYPE_CHECKING:
    from services.access.authentication import Authenticator

log = logging.getLogger(__name__)


def run_until_signalled(service: Callable[[], AbstractAsyncContextManager[object]]) -> None:
    """Runs the service until SIGTERM/SIGINT, or until it reports failure through a `failed`
    future (then the process exits with status 1 so that its supervisor restarts it)."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with service() as running:
            failed = getattr(running, "failed", loop.create_future())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([stopping, failed], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        log.info("stopped")
        return 1 if failed.done() else 0

    raise SystemExit(run_service(main()))


@asynccontextmanager
async def _postgres(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The service's connection pool (integer-microsecond timestamps, staging tables)."""
    from services.telemetry.store import init_connection

    pool = await asyncpg.create_pool(
        settings.postgres.url, min_size=settings.postgres.pool_min_size,
        max_size=settings.postgres.pool_max_size, init=init_connection,
    )
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def _authenticator(settings: Settings, pool: asyncpg.Pool, *, cache_s: float | None = None
                         ) -> AsyncIterator[Authenticator]:
    """The access context's authenticator (tokens, sessions, client tokens, device credentials)
    on the process's own asyncpg pool; closing it flushes the audit log of the writes it saw."""
    from services.access.authentication import Authenticator

    authenticator = Authenticator(pool, cache_s=settings.assets.auth_cache_s if cache_s is None else cache_s,
                                  max_entries=settings.assets.auth_cache_entries)
    try:
        yield authenticator
    finally:
        await authenticator.close()


@asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[object]:
    from services.access.credentials import CredentialDirectory
    from services.control.routing import SessionRegistry
    from services.telemetry.gateway import Gateway

    serve_metrics(settings.gateway.metrics_port)
    async with _postgres(settings) as pool:
        directory = CredentialDirectory(pool, settings.gateway.auth_cache_s)
        registry = SessionRegistry(pool, settings.gateway.gateway_id,
                                   flush_interval_s=settings.gateway.registry_flush_interval_s,
                                   heartbeat_interval_s=settings.gateway.heartbeat_interval_s)
        async with Gateway(settings.gateway, settings.kafka, directory, registry=registry, tls=settings.tls) as gw:
            yield gw


@asynccontextmanager
async def ingest(settings: Settings) -> AsyncIterator[object]:
    from actors.runtime.cluster import start_runtime
    from services.telemetry.device_state import StateReportConsumer
    from services.telemetry.ingest import IngestConsumer
    from services.telemetry.notices import SampleNotices
    from services.telemetry.store import TelemetryStore

    serve_metrics(settings.ingest.metrics_port)
    twins = await start_runtime(settings)   # joins the Ray cluster; committed batches go to the twins
    async with _postgres(settings) as pool:
        store = TelemetryStore(pool, settings.ingest.max_gap_s)
        async with SampleNotices(settings.kafka, max_pending_notices=settings.ingest.max_pending_notices) as notices, \
                IngestConsumer(settings.ingest, settings.kafka, store, twins.router, notices=notices) as consumer, \
                StateReportConsumer(settings.kafka, f"{settings.ingest.group_id}-state", twins.router):
            yield consumer


@asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[object]:
    from services.telemetry.api import TelemetryApi

    serve_metrics(settings.api.metrics_port)
    async with _postgres(settings) as pool, _authenticator(settings, pool) as authenticator, \
            TelemetryApi(settings, pool, authenticator=authenticator) as server:
        yield server


@asynccontextmanager
async def assets(settings: Settings) -> AsyncIterator[object]:
    from services.assets.api import AssetApi
    from services.assets.database import create_engine

    serve_metrics(settings.assets.metrics_port)
    engine = create_engine(settings.postgres)
    try:
        async with _postgres(settings) as pool, AssetApi(settings.assets, engine, pool=pool, access=settings.access,
                                                         tls=settings.tls) as server:
            yield server
    finally:
        await engine.dispose()


@asynccontextmanager
async def analytics(settings: Settings) -> AsyncIterator[object]:
    from services.analytics.api import AnalyticsApi
    from services.assets.database import create_engine

    serve_metrics(settings.analytics.metrics_port)
    engine = create_engine(settings.postgres)
    try:
        async with _postgres(settings) as pool, \
                _authenticator(settings, pool, cache_s=settings.analytics.auth_cache_s) as authenticator, \
                AnalyticsApi(settings.analytics, pool, engine, max_gap_s=settings.ingest.max_gap_s,
                             authenticator=authenticator, tls=settings.tls) as server:
            yield server
    finally:
        await engine.dispose()


@asynccontextmanager
async def twins(settings: Settings) -> AsyncIterator[object]:
    """The twin runtime's own process: the coordinator and shards (Ray), their supervision and
    the TwinService gRPC API."""
    from actors.api import TwinApi
    from actors.runtime.cluster import start_runtime
    from actors.runtime.store import create_pool
    from actors.runtime.supervisor import ShardSupervisor

    serve_metrics(settings.twins.metrics_port)
    runtime = await start_runtime(settings, with_poller=True)
    supervisor = ShardSupervisor(runtime.router, poller=runtime.poller)
    pool = await create_pool(settings.postgres.url, settings.postgres.pool_max_size)
    try:
        await supervisor.start()
        async with _authenticator(settings, pool) as authenticator, \
                TwinApi(settings.twins, pool, runtime.router, authenticator=authenticator, tls=settings.tls) as server:
            yield server
    finally:
        await supervisor.stop()
        await pool.close()


@asynccontextmanager
async def weather(settings: Settings) -> AsyncIterator[object]:
    """WeatherService gRPC plus the feed ingest loop (providers → alert store) and the expiry sweep
    (always, feeds or not); StormWatch delivery to twins is the twin runtime's poller
    (services/weather/poller.py)."""
    from services.weather.api import WeatherApi
    from services.weather.expiry import ExpirySweeper
    from services.weather.poller import PollerSettings, WeatherPoller
    from services.weather.providers import AlertProvider, Backoff, FileProvider, HttpProvider
    from services.weather.store import AlertStore

    ws = settings.weather
    serve_metrics(ws.metrics_port)
    providers: list[AlertProvider] = []
    if ws.feed_url:
        providers.append(HttpProvider(ws.feed_url, timeout_s=ws.http_timeout_s, user_agent=ws.user_agent,
                                      backoff=Backoff(ws.backoff_base_s, ws.backoff_max_s)))
    if ws.feed_dir:
        from pathlib import Path

        providers.append(FileProvider(Path(ws.feed_dir)))
    async with _postgres(settings) as pool, _authenticator(settings, pool) as authenticator:
        store = AlertStore(pool)
        poller = WeatherPoller(store, None, providers, None, PollerSettings(interval_s=ws.poll_interval_s))
        async with WeatherApi(ws.host, ws.port, store, authenticator=authenticator, stream_poll_s=ws.stream_poll_s,
                              tls=settings.tls) as server, poller, ExpirySweeper(store, interval_s=ws.expiry_sweep_s):
            yield server


@asynccontextmanager
async def control(settings: Settings) -> AsyncIterator[object]:
    """ControlService gRPC, the dispatcher (store → commands topic → gateways) and the consumer
    of device acknowledgements (device-events → store)."""
    from services.control.api import ControlApi
    from services.control.dispatcher import AckConsumer, Dispatcher, DispatcherOptions
    from services.control.lifecycle import RetryPolicy
    from services.control.service import Control
    from services.control.store import CommandStore

    cs = settings.control
    serve_metrics(cs.metrics_port)
    async with _postgres(settings) as pool, _authenticator(settings, pool, cache_s=cs.auth_cache_s) as authenticator:
        store = CommandStore(pool, retry=RetryPolicy(cs.retry_base_delay_s, cs.retry_max_delay_s, cs.max_attempts))
        options = DispatcherOptions(claim_batch=cs.claim_batch, idle_poll_s=cs.idle_poll_s,
                                    max_commands_per_message=cs.max_commands_per_message,
                                    gateway_stale_s=cs.gateway_stale_s)
        async with Dispatcher(store, settings.kafka, settings.postgres.url, options), \
                AckConsumer(store, settings.kafka, cs.ack_group_id), \
                ControlApi(cs, Control(store), authenticator=authenticator, tls=settings.tls) as server:
            yield server


@asynccontextmanager
async def vpp(settings: Settings) -> AsyncIterator[object]:
    """VppService gRPC and the OpenADR 3 REST endpoint over one dispatcher (grid events → twins on
    Ray → commands), the relay sweeping the twins' outbox, and the live contribution tracker."""
    from aiohttp import web

    from actors.runtime.cluster import start_runtime
    from gridtwin.tls import server_ssl_context
    from services.control.store import CommandStore
    from services.control.vpp.api import VppApi
    from services.control.vpp.contribution import ContributionTracker
    from services.control.vpp.dispatch import VppDispatcher
    from services.control.vpp.intents import IntentRelay
    from services.control.vpp.rest import openadr_app
    from services.control.vpp.vtn import VppEvents, token_authorizer

    vs = settings.vpp
    serve_metrics(vs.metrics_port)
    runtime = await start_runtime(settings)
    async with _postgres(settings) as pool, \
            _authenticator(settings, pool, cache_s=vs.auth_cache_s) as authenticator, AsyncExitStack() as stack:
        commands = CommandStore(pool)
        relay = IntentRelay(pool, commands, sweep_s=vs.intent_sweep_s)
        dispatcher = VppDispatcher(pool, runtime.router, commands, relay)
        # Every replica sums every partition: no consumer group (see ContributionTracker).
        tracker = await stack.enter_async_context(ContributionTracker(
            bootstrap_servers=settings.kafka.bootstrap_servers, topic=settings.kafka.telemetry_topic,
            group_id=None, pool=pool, stale_after_s=vs.contribution_stale_s,
            reload_interval_s=vs.contribution_reload_s))
        await relay.start()
        stack.push_async_callback(relay.stop)
        events = VppEvents(dispatcher, pool)
        runner = web.AppRunner(openadr_app(events, resolve_program=events.program, resolve_group=events.group,
                                           authorize=token_authorizer(authenticator)), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, vs.rest_host, vs.rest_port, ssl_context=server_ssl_context(settings.tls)).start()
        yield await stack.enter_async_context(VppApi(vs, dispatcher, tracker, pool, None, authenticator,
                                                     tls=settings.tls))


@asynccontextmanager
async def http(settings: Settings) -> AsyncIterator[object]:
    """The HTTP API (JSON, Server-Sent Events, OpenAPI, docs) over every gRPC service; its own
    Postgres pool keeps Idempotency-Key answers only."""
    from services.http.server import HttpApi

    serve_metrics(settings.http.metrics_port)
    pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=2)
    try:
        async with HttpApi(settings, pool) as server:
            yield server
    finally:
        await pool.close()


@asynccontextmanager
async def simulator(settings: Settings, devices: int, prefix: str) -> AsyncIterator[object]:
    from simulator.device import DeviceOptions
    from simulator.fleet import Fleet, FleetOptions

    options = FleetOptions(devices=devices, fleet_secret=settings.simulator.fleet_secret, id_prefix=prefix,
                           sample_interval_s=settings.simulator.sample_interval_s)
    # wss:// URLs verify the gateway against the platform's CA (GRIDTWIN_TLS__CA_FILE; empty: the system's)
    device_options = DeviceOptions(url=settings.simulator.gateway_url, ca_file=settings.tls.ca_file)
    async with Fleet(options, device_options) as fleet:
        yield fleet


def configure(settings: Settings) -> None:
    configure_logging(settings.log_level)
