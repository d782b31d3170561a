"""Server-Sent Events of the HTTP API against the real services: many clients on one upstream
stream, a slow client dropped and a disconnecting one gone while the others get everything,
Last-Event-ID resumption, heartbeats, and refusals as problems before the stream starts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
from typing import Any

import httpx
import pytest

from services.access.model import Scope
from services.weather import nws
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.http.http_support import HttpWorld

pytestmark = pytest.mark.integration

BURST = 120    # weather alerts of ~25 kB each: megabytes, more than socket buffers hold


async def events(response: httpx.Response, until: int, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The events of an SSE response (id and parsed data) until one with id `until` (or `limit`)."""
    got: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and current:
            got.append(current)
            if current.get("id") == str(until) or current.get("event") == "error" or (limit and len(got) >= limit):
                return got
            current = {}
    return got


async def newest_seq(client: httpx.AsyncClient) -> int:
    page = await client.get("/api/v1/weather/alert-changes", params={"afterSeq": 0, "limit": 5000})
    assert page.status_code == 200, page.text
    return max((int(c["seq"]) for c in page.json()["changes"]), default=0)


async def burst(pool: Any, prefix: str) -> None:
    now = dt.datetime.now(dt.UTC)
    area = wd.hurricane()
    features = [wd.alert_feature(f"{prefix}-{i}", "Alert", area, now) for i in range(BURST)]
    await AlertStore(pool).ingest(nws.parse_feed(wd.feed_doc(*features), now=now).alerts, now)


def slow_client(port: int, path: str, token: str) -> socket.socket:
    """A client that asks for the stream and then never reads (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
                 f"Accept: text/event-stream\r\n\r\n".encode())
    return sock


async def test_slow_and_disconnecting_clients_leave_the_others_unaffected(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.READ)
    hub = http_world.server.hub
    headers = {"authorization": f"Bearer {token}"}
    async with http_world.client(headers=headers) as client, http_world.client(headers=headers) as quitter:
        after = await newest_seq(client)
        path = f"/api/v1/weather/alert-changes/stream?afterSeq={after}"
        async with client.stream("GET", path) as fast, quitter.stream("GET", path) as leaving:
            assert fast.status_code == 200 and fast.headers["content-type"].startswith("text/event-stream")
            slow = slow_client(int(http_world.base_url.rsplit(":", 1)[1]), path, token)
            await asyncio.sleep(0.5)
            assert hub.topics >= 1
            before = hub.subscribers
            await burst(http_world.world.pool, "sse-burst")
            last = after + BURST
            partial = await events(leaving, last, limit=3)
            assert len(partial) == 3
            await leaving.aclose()     # disconnects mid-stream
            received = await asyncio.wait_for(events(fast, last), 60)
        ids = [int(e["id"]) for e in received]
        assert ids == list(range(after + 1, last + 1)), "the fast client got every change, in order"
        assert all(e["data"]["alert"]["alertId"].startswith("sse-burst") for e in received)
        for _ in range(50):
            if hub.subscribers <= before - 2:
                break
            await asyncio.sleep(0.1)
        assert hub.subscribers <= before - 2, "the slow and the leaving client are gone"
        # the slow client's response ended with an error event, after what fitted in its buffers
        slow.setblocking(False)
        seen = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := slow.recv(1 << 20):
                seen += chunk
                await asyncio.sleep(0.01)
        slow.close()
        assert b"200 OK" in seen[:200]
        # and the service still serves everyone
        assert (await client.get("/api/v1/weather/alerts")).status_code == 200


async def test_last_event_id_resumes_where_the_client_left(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.READ)
    async with http_world.client(headers={"authorization": f"Bearer {token}"}) as client:
        after = await newest_seq(client)
        await burst(http_world.world.pool, "sse-resume")
        last = after + BURST
        path = f"/api/v1/weather/alert-changes/stream?afterSeq={after}"
        async with client.stream("GET", path) as first:
            head = await events(first, after + 10)
        assert [int(e["id"]) for e in head] == list(range(after + 1, after + 11))
        for resume_at in (after + 10, last - 5):   # far back: its own stream; recent: the shared one's buffer
            async with client.stream("GET", path, headers={"last-event-id": str(resume_at)}) as again:
                rest = await events(again, last)
            assert [int(e["id"]) for e in rest] == list(range(resume_at + 1, last + 1))


async def test_snapshot_streams_heartbeats_and_refusals(http_world: HttpWorld) -> None:
    token = await http_world.token(Scope.READ)
    fanout = http_world.world.ids["fanout"]
    async with http_world.client(headers={"authorization": f"Bearer {token}"}) as client:
        async with client.stream("GET", f"/api/v1/fan-outs/{fanout}/stream") as progress:
            assert progress.status_code == 200
            lines = []
            async for line in progress.aiter_lines():
                lines.append(line)
                if line.startswith("data: ") and any(x.startswith(": heartbeat") for x in lines):
                    break
                if len(lines) > 200:
                    break
        first = next(json.loads(x[6:]) for x in lines if x.startswith("data: "))
        assert first["fanoutId"] == fanout
        denied = await client.get("/api/v1/installations/mx-home/twin/stream", headers={"authorization": ""})
        assert denied.status_code == 401 and denied.headers["content-type"] == "application/problem+json"
        missing = await client.get("/api/v1/fan-outs/no-such-fanout/stream")
        assert missing.status_code in (400, 403, 404) and missing.headers["content-type"] == "application/problem+json"
