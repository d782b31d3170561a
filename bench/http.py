"""The HTTP API against gRPC: the same reads both ways, and 1,000 Server-Sent Events clients on
one HTTP process.

Runs the AssetService and the WeatherService (their real entry points) in this process on a
fresh database, and the HTTP API as a process of its own (its real entry point, configured by
environment variables as in production), so its memory is its own.

1. Reads, one at a time and 16 at a time: GetInstallation and a page of ListGroupInstallations
   over gRPC, then the same resources over HTTP (goal: HTTP p99 ≤ 1.5 × gRPC p99).
2. `--clients` SSE clients (one principal) follow the weather alert changes; `--updates` alerts
   are ingested, one every `--update-interval-s`. Memory per client is the HTTP process's RSS
   growth divided by the clients; delivery is from the change's time (its `atUnixMs`) to each
   client's receipt (goal p99 < 1 s). One gRPC client of the same stream shows the upstream's
   own share (the weather service looks for changes every `--stream-poll-s`).

    python -m bench.http [--reads 2000] [--clients 1000] [--updates 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import shapely
from rich.console import Console
from rich.table import Table

from bench.common import fresh_database
from gridtwin.api.assets.v1 import assets_pb2 as a
from gridtwin.api.assets.v1 import assets_pb2_grpc as a_grpc
from gridtwin.api.weather.v1 import weather_pb2 as w
from gridtwin.api.weather.v1 import weather_pb2_grpc as w_grpc
from gridtwin.app import wiring
from gridtwin.observability import run_service
from gridtwin.settings import Settings
from gridtwin.unixtime import now_ms
from services.access.model import Scope
from services.access.service_tokens import mint_service_token
from services.weather import nws
from services.weather.store import AlertStore

console = Console(width=150)
GROUP = "bench.http"
INSTALLATIONS = 200
PAGE = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_settings(stream_poll_s: float) -> Settings:
    base = Settings()
    return base.model_copy(update={
        "postgres": fresh_database(base.postgres, "gridtwin_bench_http"),
        "assets": base.assets.model_copy(update={"port": free_port(), "metrics_port": 0}),
        "weather": base.weather.model_copy(update={"port": free_port(), "metrics_port": 0,
                                                   "stream_poll_s": stream_poll_s}),
        "http": base.http.model_copy(update={"port": free_port(), "metrics_port": 0}),
    })


@dataclass
class Timing:
    name: str
    seconds: list[float]

    def p(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1_000


async def timed(name: str, runs: int, concurrency: int, call: Callable[[int], Awaitable[object]]) -> Timing:
    for i in range(min(50, runs)):   # warm: channels, connections, caches
        await call(i)
    seconds: list[float] = []

    async def worker(offset: int) -> None:
        for i in range(offset, runs, concurrency):
            started = time.perf_counter()
            await call(i)
            seconds.append(time.perf_counter() - started)
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return Timing(name, seconds)


# ------------------------------------------------------------------ the HTTP process

@contextlib.asynccontextmanager
async def http_process(settings: Settings) -> Any:
    env = {**os.environ, "GRIDTWIN_POSTGRES__URL": settings.postgres.url,
           "GRIDTWIN_ASSETS__PORT": str(settings.assets.port), "GRIDTWIN_WEATHER__PORT": str(settings.weather.port),
           "GRIDTWIN_HTTP__PORT": str(settings.http.port), "GRIDTWIN_HTTP__METRICS_PORT": "0",
           "GRIDTWIN_HTTP__RATE_LIMIT_PER_S": "1000000", "GRIDTWIN_HTTP__RATE_LIMIT_BURST": "1000000",
           "GRIDTWIN_LOG_LEVEL": "WARNING"}
    code = ("from gridtwin.app import wiring; from gridtwin.settings import Settings; s = Settings(); "
            "wiring.configure(s); wiring.run_until_signalled(lambda: wiring.http(s))")
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{settings.http.port}/api/v1/openapi.json") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the HTTP API did not start")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------ reads

async def seed(settings: Settings, token: str) -> list[str]:
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.assets.port}") as channel:
        assets = a_grpc.AssetServiceStub(channel)
        await assets.CreateGroup(a.CreateGroupRequest(path=GROUP), metadata=metadata)
        ids = [f"bench-http-{i:04d}" for i in range(INSTALLATIONS)]
        for i, installation_id in enumerate(ids):
            await assets.CreateInstallation(a.CreateInstallationRequest(installation=a.Installation(
                installation_id=installation_id, time_zone="America/Chicago",
                location=a.GeoPoint(longitude_deg=-91.6 + i * 1e-3, latitude_deg=41.9),
                battery_nominal_energy_wh=13_500, max_charge_power_w=5_000, max_discharge_power_w=5_000),
                group_paths=[GROUP]), metadata=metadata)
    return ids


async def reads(settings: Settings, token: str, ids: list[str], runs: int) -> list[tuple[Timing, Timing]]:
    metadata = (("authorization", f"Bearer {token}"),)
    base = f"http://127.0.0.1:{settings.http.port}/api/v1"
    headers = {"authorization": f"Bearer {token}"}
    pairs = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.assets.port}") as channel, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64), headers=headers) as session:
        assets = a_grpc.AssetServiceStub(channel)

        async def grpc_get(i: int) -> object:
            return await assets.GetInstallation(a.GetInstallationRequest(installation_id=ids[i % len(ids)]),
                                                metadata=metadata)

        async def http_get(i: int) -> object:
            async with session.get(f"{base}/installations/{ids[i % len(ids)]}") as response:
                assert response.status == 200, await response.text()
                return await response.read()

        async def grpc_page(_: int) -> object:
            return await assets.ListGroupInstallations(a.ListGroupInstallationsRequest(path=GROUP, page_size=PAGE),
                                                       metadata=metadata)

        async def http_page(_: int) -> object:
            async with session.get(f"{base}/groups/{GROUP}/installations", params={"pageSize": PAGE}) as response:
                assert response.status == 200, await response.text()
                return await response.read()

        for concurrency in (1, 16):
            pairs.append((await timed(f"GetInstallation ×{concurrency}", runs, concurrency, grpc_get),
                          await timed(f"GET /installations/{{id}} ×{concurrency}", runs, concurrency, http_get)))
            pairs.append((await timed(f"ListGroupInstallations({PAGE}) ×{concurrency}", runs, concurrency, grpc_page),
                          await timed(f"GET /groups/{{path}}/installations ×{concurrency}", runs, concurrency,
                                      http_page)))
    return pairs


# ------------------------------------------------------------------ Server-Sent Events

@dataclass
class SseResult:
    clients: int
    connected_s: float
    rss_before: int
    rss_after: int
    delivered: int
    expected: int
    latencies_s: list[float]
    grpc_latencies_s: list[float]


async def sse_client(session: aiohttp.ClientSession, url: str, ready: asyncio.Event, counter: list[int],
                     want: int, latencies: list[float], stop: asyncio.Event) -> None:
    async with session.get(url, headers={"accept": "text/event-stream"}) as response:
        assert response.status == 200, await response.text()
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        got = 0
        while got < want and not stop.is_set():
            line = await response.content.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                at_ms = int(json.loads(line[6:])["atUnixMs"])
                latencies.append((now_ms() - at_ms) / 1_000)
                got += 1


async def grpc_follower(settings: Settings, token: str, after: int, want: int, latencies: list[float]) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.weather.port}") as channel:
        stream = w_grpc.WeatherServiceStub(channel).StreamAlertChanges(
            w.StreamAlertChangesRequest(after_seq=after), metadata=(("authorization", f"Bearer {token}"),))
        got = 0
        async for change in stream:
            latencies.append((now_ms() - change.at_unix_ms) / 1_000)
            got += 1
            if got >= want:
                stream.cancel()
                return


async def newest_seq(settings: Settings, token: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.weather.port}") as channel:
        page = await w_grpc.WeatherServiceStub(channel).ListAlertChanges(
            w.ListAlertChangesRequest(after_seq=0, limit=5000), metadata=(("authorization", f"Bearer {token}"),))
    return max((c.seq for c in page.changes), default=0)


async def sse(settings: Settings, token: str, pool: asyncpg.Pool, pid: int, clients: int, updates: int,
              interval_s: float) -> SseResult:
    """The SSE clients run in a process of their own, so that reading 1,000 streams does not
    compete with the weather service's event loop here."""
    after = await newest_seq(settings, token)
    url = f"http://127.0.0.1:{settings.http.port}/api/v1/weather/alert-changes/stream?afterSeq={after}"
    rss_before = rss_bytes(pid)
    grpc_latencies: list[float] = []
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.http", "--sse-clients", url, "--clients", str(clients), "--updates",
        str(updates), stdout=asyncio.subprocess.PIPE, env={**os.environ, "BENCH_HTTP_TOKEN": token}, limit=2**26)
    assert child.stdout is not None
    ready = (await asyncio.wait_for(child.stdout.readline(), 180)).decode().split()
    assert ready and ready[0] == "READY", ready
    connected_s = float(ready[1])
    follower = asyncio.create_task(grpc_follower(settings, token, after, updates, grpc_latencies))
    await asyncio.sleep(2.0)
    rss_after = rss_bytes(pid)
    store = AlertStore(pool)
    for i in range(updates):
        now = dt.datetime.now(dt.UTC)
        feature = _alert(f"bench-http-{i}", now)
        await store.ingest(nws.parse_feed(json.dumps({"type": "FeatureCollection",
                                                      "features": [feature]}).encode(), now=now).alerts, now)
        await asyncio.sleep(interval_s)
    latencies = json.loads(await asyncio.wait_for(child.stdout.readline(), 120))
    await child.wait()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(follower, 10)
    return SseResult(clients, connected_s, rss_before, rss_after, len(latencies), clients * updates, latencies,
                     grpc_latencies)


async def sse_clients(url: str, clients: int, updates: int) -> None:
    """The client process: connects, says `READY <seconds>`, then prints every delivery latency
    (seconds) as one JSON list once each client has `updates` events (or 60 s passed)."""
    latencies: list[float] = []
    ready, stop = asyncio.Event(), asyncio.Event()
    counter = [0, clients]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    headers = {"authorization": f"Bearer {os.environ['BENCH_HTTP_TOKEN']}"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        started = time.perf_counter()
        tasks = [asyncio.create_task(sse_client(session, url, ready, counter, updates, latencies, stop))
                 for _ in range(clients)]
        await asyncio.wait_for(ready.wait(), 170)
        print(f"READY {time.perf_counter() - started:.3f}", flush=True)
        done, pending = await asyncio.wait(tasks, timeout=60 + updates)
        stop.set()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        failed = [t.exception() for t in done if t.exception() is not None]
        if failed:
            print(f"{len(failed)} clients failed, e.g. {failed[0]!r}", file=sys.stderr)
    print(json.dumps(latencies), flush=True)


def _alert(alert_id: str, now: dt.datetime) -> dict[str, Any]:
    area = shapely.box(-92.0, 41.5, -91.0, 42.5)
    return {"type": "Feature", "id": alert_id, "geometry": shapely.geometry.mapping(area), "properties": {
        "id": alert_id, "event": "Severe Thunderstorm Warning", "messageType": "Alert", "status": "Actual",
        "severity": "Severe", "urgency": "Immediate", "certainty": "Observed", "sent": now.isoformat(),
        "effective": now.isoformat(), "expires": (now + dt.timedelta(hours=1)).isoformat(),
        "headline": alert_id, "geocode": {"UGC": []}, "references": []}}


# ------------------------------------------------------------------ main

async def main(settings: Settings, args: argparse.Namespace) -> None:
    async with wiring.assets(settings) as _, wiring.weather(settings) as _:
        pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=4)
        try:
            token = await mint_service_token(pool, "bench-http", frozenset({Scope.ADMIN}))
            ids = await seed(settings, token)
            async with http_process(settings) as process:
                console.print(f"HTTP API pid {process.pid} on :{settings.http.port}; {len(ids)} installations")
                pairs = await reads(settings, token, ids, args.reads)
                result = await sse(settings, token, pool, process.pid, args.clients, args.updates,
                                   args.update_interval_s) if args.clients else None
        finally:
            await pool.close()

    table = Table(title=f"HTTP vs gRPC reads ({args.reads} calls each)")
    for column in ("gRPC", "p50 ms", "p99 ms", "HTTP", "p50 ms", "p99 ms", "HTTP/gRPC p99"):
        table.add_column(column, justify="left" if column in ("gRPC", "HTTP") else "right")
    for g, h in pairs:
        ratio = h.p(0.99) / g.p(0.99)
        table.add_row(g.name, f"{g.p(0.5):.2f}", f"{g.p(0.99):.2f}", h.name, f"{h.p(0.5):.2f}", f"{h.p(0.99):.2f}",
                      f"[{'green' if ratio <= 1.5 else 'red'}]{ratio:.2f}")
    console.print(table)
    if result is None:
        return

    per_client = (result.rss_after - result.rss_before) / result.clients
    lat = Timing("sse", result.latencies_s or [0.0])
    upstream = Timing("grpc", result.grpc_latencies_s or [0.0])
    sse_table = Table(title=f"Server-Sent Events: {result.clients} clients, one HTTP process, one principal")
    for column in ("what", "value"):
        sse_table.add_column(column, justify="left" if column == "what" else "right")
    sse_table.add_row("clients connected in", f"{result.connected_s:.2f} s")
    sse_table.add_row("HTTP process RSS before / with the clients",
                      f"{result.rss_before / 2**20:.1f} / {result.rss_after / 2**20:.1f} MiB")
    sse_table.add_row("memory per client", f"{per_client / 1024:.1f} KiB")
    sse_table.add_row("updates delivered", f"{result.delivered:,} of {result.expected:,}")
    sse_table.add_row("delivery p50 / p99 / max (change → SSE client)",
                      f"{lat.p(0.5):.0f} / {lat.p(0.99):.0f} / {max(lat.seconds) * 1000:.0f} ms")
    sse_table.add_row("upstream alone p50 / p99 (change → gRPC client)",
                      f"{upstream.p(0.5):.0f} / {upstream.p(0.99):.0f} ms")
    sse_table.add_row("weather stream poll interval", f"{args.stream_poll_s * 1000:.0f} ms")
    console.print(sse_table)
    if statistics.fmean(result.latencies_s or [0.0]) and lat.p(0.99) >= 1_000:
        console.print("[red]delivery p99 misses the 1 s goal")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--update-interval-s", type=float, default=0.5)
    parser.add_argument("--stream-poll-s", type=float, default=0.1)
    parser.add_argument("--sse-clients", metavar="URL", help=argparse.SUPPRESS)   # the client process
    args = parser.parse_args()
    if args.sse_clients:
        run_service(sse_clients(args.sse_clients, args.clients, args.updates))
        return
    settings = bench_settings(args.stream_poll_s)   # migrates with a loop of its own: before ours
    run_service(main(settings, args))


if __name__ == "__main__":
    cli()
