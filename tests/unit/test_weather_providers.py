"""Feed providers: files and directories, and HTTP against a local server on 127.0.0.1 started
here (conditional requests, timeouts, backoff with jitter)."""

from __future__ import annotations

import http.server
import random
import threading
import time
from collections.abc import Iterator

import pytest

from services.weather.providers import Backoff, FileProvider, HttpProvider, ProviderError
from tests import weather_data as wd


async def test_file_provider_returns_changed_files_only(tmp_path):
    (tmp_path / "a.json").write_bytes(wd.ZONE_ONLY.read_bytes())
    (tmp_path / "b.json").write_bytes(wd.PHOENIX.read_bytes())
    (tmp_path / "notes.txt").write_text("not a feed")
    provider = FileProvider(tmp_path)
    assert [d.source.rsplit("/", 1)[-1] for d in await provider.fetch()] == ["a.json", "b.json"]
    assert await provider.fetch() == []
    (tmp_path / "b.json").write_bytes(wd.PHOENIX.read_bytes() + b"\n")
    assert [d.source.rsplit("/", 1)[-1] for d in await provider.fetch()] == ["b.json"]
    single = FileProvider(wd.IOWA)
    assert len(await single.fetch()) == 1 and await single.fetch() == []
    with pytest.raises(ProviderError, match="no such file"):
        await FileProvider(tmp_path / "missing").fetch()


class Feed:
    """What the local server serves, and what it saw."""

    def __init__(self) -> None:
        self.body = wd.IOWA.read_bytes()
        self.etag = '"v1"'
        self.status = 200
        self.delay_s = 0.0
        self.requests: list[dict[str, str]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Feed]]:
    feed = Feed()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            feed.requests.append(dict(self.headers.items()))
            time.sleep(feed.delay_s)
            if feed.status != 200:
                self.send_response(feed.status)
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == feed.etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", feed.etag)
            self.send_header("Last-Modified", "Tue, 21 May 2024 19:35:00 GMT")
            self.send_header("Content-Type", "application/geo+json")
            self.end_headers()
            self.wfile.write(feed.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/alerts/active", feed
    httpd.shutdown()
    httpd.server_close()


async def test_conditional_requests(server):
    url, feed = server
    provider = HttpProvider(url, timeout_s=2)
    [document] = await provider.fetch()
    assert document.body == feed.body and document.source == url
    assert await provider.fetch() == []       # 304
    assert feed.requests[1]["If-None-Match"] == '"v1"'
    assert feed.requests[1]["If-Modified-Since"] == "Tue, 21 May 2024 19:35:00 GMT"
    assert "gridtwin" in feed.requests[0]["User-Agent"]
    feed.etag, feed.body = '"v2"', wd.ZONE_ONLY.read_bytes()
    [document] = await provider.fetch()
    assert document.body == feed.body


async def test_errors_back_off_with_jitter_then_recover(server):
    url, feed = server
    now = [100.0]
    provider = HttpProvider(url, timeout_s=2, backoff=Backoff(base_s=10, max_s=40), clock=lambda: now[0],
                            rng=random.Random(1))
    feed.status = 503
    with pytest.raises(ProviderError, match="HTTP 503"):
        await provider.fetch()
    assert 100 <= provider.retry_at <= 110
    requests = len(feed.requests)
    assert await provider.fetch() == [] and len(feed.requests) == requests   # waiting: no request
    delays = []
    for _ in range(4):
        now[0] = provider.retry_at
        with pytest.raises(ProviderError):
            await provider.fetch()
        delays.append(provider.retry_at - now[0])
    assert all(0 <= d <= 40 for d in delays) and provider.failures == 5
    feed.status = 200
    now[0] = provider.retry_at
    assert len(await provider.fetch()) == 1 and provider.failures == 0


async def test_timeout_is_a_provider_error(server):
    url, feed = server
    feed.delay_s = 1.5
    provider = HttpProvider(url, timeout_s=0.3)
    with pytest.raises(ProviderError, match="request failed"):
        await provider.fetch()
    assert provider.failures == 1


async def test_unreachable_server_is_a_provider_error():
    provider = HttpProvider("http://127.0.0.1:9/alerts", timeout_s=1)
    with pytest.raises(ProviderError):
        await provider.fetch()


def test_backoff_is_bounded_and_grows():
    rng = random.Random(0)
    backoff = Backoff(base_s=1, max_s=8)
    assert all(0 <= backoff.delay_s(n, rng) <= min(8, 2 ** (n - 1)) for n in range(1, 20) for _ in range(20))
