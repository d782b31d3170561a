"""API token expiry on every server that takes the AssetService's tokens — AssetService,
ControlService, AnalyticsService, VppService (gRPC) and the OpenADR 3 REST endpoint — each with its
credential cache on (60 s, longer than the token lives): a token that expires while cached is
refused from its expiry on, UNAUTHENTICATED / HTTP 401, and so is one that had expired before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp
import grpc
import pytest
from aiohttp import web

from gridtwin import unixtime
from gridtwin.api.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from gridtwin.api.assets.v1 import assets_pb2, assets_pb2_grpc
from gridtwin.api.control.v1 import control_pb2, control_pb2_grpc, vpp_pb2, vpp_pb2_grpc
from services.access.model import Scope
from services.analytics.api import AnalyticsApi
from services.assets.api import AssetApi
from services.control.api import ControlApi
from services.control.service import Control
from services.control.store import CommandStore
from services.control.vpp.api import VppApi
from services.control.vpp.contribution import ContributionTracker
from services.control.vpp.dispatch import VppDispatcher
from services.control.vpp.intents import IntentRelay
from services.control.vpp.rest import openadr_app
from services.control.vpp.vtn import VppEvents, token_authorizer
from tests.integration.assets_client import bearer

pytestmark = pytest.mark.integration

CACHE_S = 60.0
LIFETIME_MS = 2_500   # long enough to be admitted (and cached) everywhere first


# One call per service that gets past authentication with a valid token (its answer may still be a
# refusal of the request itself): (name, call(metadata) → status code).
Call = Callable[[tuple[tuple[str, str], ...]], Awaitable[grpc.StatusCode]]


@dataclass
class Servers:
    calls: dict[str, Call]
    rest_url: str


async def _code(rpc: Awaitable[object]) -> grpc.StatusCode:
    try:
        await rpc
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def servers(platform, pool, assets_engine, clean_db) -> AsyncIterator[Servers]:
    def port0(section: object) -> object:
        return section.model_copy(update={"port": 0, "metrics_port": 0, "auth_cache_s": CACHE_S})  # type: ignore[attr-defined]

    async with AsyncExitStack() as stack:
        assets = await stack.enter_async_context(AssetApi(port0(platform.assets), assets_engine))  # type: ignore[arg-type]
        control = await stack.enter_async_context(ControlApi(port0(platform.control), Control(CommandStore(pool)),  # type: ignore[arg-type]
                                                             assets_engine))
        analytics = await stack.enter_async_context(AnalyticsApi(port0(platform.analytics), pool, assets_engine,  # type: ignore[arg-type]
                                                                 max_gap_s=300))
        # Listing events reads Postgres only: the twins (Ray) and the live contribution are never reached.
        commands = CommandStore(pool)
        dispatcher = VppDispatcher(pool, None, commands, IntentRelay(pool, commands))  # type: ignore[arg-type]
        tracker = ContributionTracker(bootstrap_servers=platform.kafka.bootstrap_servers,
                                      topic=platform.kafka.telemetry_topic, group_id=None, pool=pool)
        vpp = await stack.enter_async_context(VppApi(port0(platform.vpp), dispatcher, tracker, pool,  # type: ignore[arg-type]
                                                     assets_engine))
        events = VppEvents(dispatcher, pool)
        runner = web.AppRunner(openadr_app(events, resolve_program=events.program, resolve_group=events.group,
                                           authorize=token_authorizer(vpp.authenticator)), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        rest_port = runner.addresses[0][1]

        channels = {name: await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))
                    for name, server in (("assets", assets), ("control", control), ("analytics", analytics),
                                         ("vpp", vpp))}
        asset_stub = assets_pb2_grpc.AssetServiceStub(channels["assets"])
        control_stub = control_pb2_grpc.ControlServiceStub(channels["control"])
        analytics_stub = analytics_pb2_grpc.AnalyticsServiceStub(channels["analytics"])
        vpp_stub = vpp_pb2_grpc.VppServiceStub(channels["vpp"])
        calls: dict[str, Call] = {
            "AssetService.ListDevices": lambda md: _code(asset_stub.ListDevices(
                assets_pb2.ListDevicesRequest(installation_id="nowhere"), metadata=md)),
            "ControlService.ListCommands": lambda md: _code(control_stub.ListCommands(
                control_pb2.ListCommandsRequest(installation_id="nowhere"), metadata=md)),
            "AnalyticsService.GetEnergyReport": lambda md: _code(analytics_stub.GetEnergyReport(
                analytics_pb2.EnergyReportRequest(), metadata=md)),
            "VppService.ListEvents": lambda md: _code(vpp_stub.ListEvents(vpp_pb2.ListEventsRequest(), metadata=md)),
        }
        yield Servers(calls, f"http://127.0.0.1:{rest_port}/openadr3/events")


async def _rest_status(session: aiohttp.ClientSession, url: str, token: str) -> int:
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status


async def test_expired_tokens_are_refused_everywhere_even_when_cached(servers, assets):
    now_ms = unixtime.now_ms()
    expiring = await assets.token(Scope.ADMIN, expires_unix_ms=now_ms + LIFETIME_MS, name="expiring")
    expired = await assets.token(Scope.ADMIN, expires_unix_ms=now_ms - 1, name="expired")
    lasting = await assets.token(Scope.ADMIN, expires_unix_ms=now_ms + 3_600_000, name="lasting")

    async with aiohttp.ClientSession() as http:
        # Valid: admitted everywhere (each server now holds the token in its cache).
        for name, call in servers.calls.items():
            assert await call(bearer(expiring)) != grpc.StatusCode.UNAUTHENTICATED, name
        assert await _rest_status(http, servers.rest_url, expiring) == 200
        assert unixtime.now_ms() < now_ms + LIFETIME_MS, "too slow to test a cached token"

        await asyncio.sleep((now_ms + LIFETIME_MS - unixtime.now_ms()) / 1_000 + 0.05)
        for token in (expiring, expired):
            for name, call in servers.calls.items():
                assert await call(bearer(token)) == grpc.StatusCode.UNAUTHENTICATED, name
            assert await _rest_status(http, servers.rest_url, token) == 401

        # The servers themselves go on: a token that has not expired is admitted as before.
        for name, call in servers.calls.items():
            assert await call(bearer(lasting)) != grpc.StatusCode.UNAUTHENTICATED, name
        assert await _rest_status(http, servers.rest_url, lasting) == 200
