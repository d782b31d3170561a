"""The HTTP API as a running server: uvicorn on the app, the upstream channels, the SSE hub and
the idempotency store, started and stopped together (`async with HttpApi(...)`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Self

import asyncpg
import uvicorn

from gridtwin.settings import Settings
from services.http import sse
from services.http.app import Context, cookie_secure, create_app, sweep_idempotency
from services.http.idempotency import IdempotencyStore
from services.http.limits import RateLimiter
from services.http.upstream import Upstream, service_addresses

log = logging.getLogger(__name__)


class HttpApi:
    """Serves until stopped. `port` is the bound port (settings may say 0). `pool` (optional)
    keeps Idempotency-Key answers; without it the header is ignored."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool | None, *,
                 addresses: dict[str, str] | None = None) -> None:
        hs = settings.http
        self.settings = settings
        self.upstream = Upstream(addresses or service_addresses(settings), settings)
        self.hub = sse.Hub(queue_events=hs.sse_queue_events, replay_events=hs.sse_replay_events)
        store = IdempotencyStore(pool, hs.idempotency_ttl_s) if pool is not None else None
        self.context = Context(hs, self.upstream, self.hub, RateLimiter(hs.rate_limit_per_s, hs.rate_limit_burst),
                               store, cookie_secure(hs, settings.tls.enabled), settings.tls.enabled,
                               settings.access.oidc)
        self.app = create_app(self.context)
        tls = settings.tls
        config = uvicorn.Config(
            self.app, host=hs.host, port=hs.port, log_config=None, access_log=False, lifespan="off",
            ssl_certfile=tls.cert_file if tls.enabled else None, ssl_keyfile=tls.key_file if tls.enabled else None,
            timeout_graceful_shutdown=5, backlog=4096, http="auto")   # httptools when installed
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.port = hs.port
        self.failed: asyncio.Future[None] = asyncio.get_event_loop().create_future()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()   # raises why it could not start
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        if self.context.idempotency is not None:
            self._sweeper = asyncio.create_task(sweep_idempotency(self.context.idempotency, 600.0))
        self._task.add_done_callback(self._ended)
        log.info("HTTP API on %s:%d", self.settings.http.host, self.port)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not self.failed.done() and not self._server.should_exit:
            self.failed.set_result(None)

    async def stop(self) -> None:
        await self.hub.close()   # ends every SSE response, so the server need not wait for them
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.upstream.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()
