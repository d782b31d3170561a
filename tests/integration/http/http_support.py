"""One platform for every HTTP API test of a session: the seven gRPC services, each started by
its real entry point (`gridtwin.app.wiring`), the world of the access matrix (group "mx" with an
installation, a device, an alert, a command, a fan-out, a grid event and a storm; group "mxo"
with an installation of its own) and the HTTP API in front of them, started by its entry point
too. Started once for the package (it costs seconds and a Ray namespace), shared by every test in
tests/integration/http/ and stopped after the last of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx
import pytest

from gridtwin.app import wiring
from gridtwin.settings import Settings
from services.access.model import Scope
from tests.integration import test_access_matrix as matrix
from tests.integration.access_support import bearer, mint
from tests.integration.twins_support import kill_namespace


@dataclass
class HttpWorld:
    world: matrix.World
    base_url: str
    settings: Settings
    server: Any        # services.http.server.HttpApi

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30, **kwargs)

    async def token(self, *scopes: Scope, paths: tuple[str, ...] = ("",)) -> str:
        return await mint(self.world.pool, *scopes, paths=paths)


def http_settings(base: Settings, **http: Any) -> Settings:
    return base.model_copy(update={"http": base.http.model_copy(update={
        "port": 0, "metrics_port": 0, "cookie_secure": False, "rate_limit_per_s": 1_000.0,
        "rate_limit_burst": 100_000, "sse_heartbeat_s": 0.5, **http})})


@pytest.fixture(scope="package")
async def http_world(ray_cluster: Settings, pool: asyncpg.Pool) -> AsyncIterator[HttpWorld]:
    settings = matrix._matrix_settings(ray_cluster)   # its own consumer groups, ports, namespace
    await pool.execute(
        "TRUNCATE installations, customers, devices, hierarchy_groups, programs, group_memberships, "
        "enrollment_audit, api_principals, twin_alerts, vpp_events, vpp_program_terms, control_commands, "
        "control_fanouts, weather_alerts, weather_alert_changes, access_users, access_sessions, access_codes, "
        "access_clients, access_client_tokens, access_audit, access_login_failures, http_idempotency CASCADE")
    entry_points: dict[str, Callable[[Settings], contextlib.AbstractAsyncContextManager[Any]]] = {
        matrix.ASSETS: wiring.assets, matrix.TELEMETRY: wiring.api, matrix.TWINS: wiring.twins,
        matrix.ANALYTICS: wiring.analytics, matrix.WEATHER: wiring.weather, matrix.CONTROL: wiring.control,
        matrix.VPP: wiring.vpp}
    async with contextlib.AsyncExitStack() as stack:
        channels, ports = {}, {}
        for name, entry_point in entry_points.items():
            server = await stack.enter_async_context(entry_point(settings))
            ports[name] = server.port
            channels[name] = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))
        # The HTTP service reads the services' addresses from its settings, as in production.
        by_setting = {"assets": matrix.ASSETS, "api": matrix.TELEMETRY, "twins": matrix.TWINS,
                      "analytics": matrix.ANALYTICS, "weather": matrix.WEATHER, "control": matrix.CONTROL,
                      "vpp": matrix.VPP}
        settings = http_settings(settings.model_copy(update={
            key: getattr(settings, key).model_copy(update={"port": ports[service]})
            for key, service in by_setting.items()}))
        channels[matrix.ACCESS_SVC] = channels[matrix.ASSETS]   # the assets process serves access too
        root = bearer(await mint(pool, Scope.ADMIN, name="http-root"))
        world = matrix.World(channels, {}, {}, root, pool)
        await matrix._populate(world)
        world.metadata = {
            "none": (),
            "expired": bearer(await mint(pool, Scope.ADMIN, expires_unix_ms=matrix.NOW_MS - 60_000)),
            **{s.value: bearer(await mint(pool, s)) for s in Scope},
            "device": (("authorization", f"Device mx-dev {world.ids['credential']}"),),
        }
        world.scoped = {**{("in-group", s): bearer(await mint(pool, s, paths=(matrix.IN,))) for s in Scope},
                        **{("out-of-group", s): bearer(await mint(pool, s, paths=(matrix.OUT,))) for s in Scope}}
        world.metadata.update(await matrix._people(world))   # homeowners and installers, logged in
        http = await stack.enter_async_context(wiring.http(settings))
        yield HttpWorld(world, f"http://127.0.0.1:{http.port}", settings, http)
    kill_namespace(settings.twins.namespace)
