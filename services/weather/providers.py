"""Where alert feeds come from: one interface, a file/directory provider and an HTTP provider.

A provider returns the feed documents that are new since its previous `fetch` (an empty list when
nothing changed); parsing and normalization happen after it (nws.py), so every provider of the
same format shares them. A provider raises ProviderError for a failed fetch; the caller logs it
and carries on (the poller never stops over a provider).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class ProviderError(RuntimeError):
    """A fetch failed (network, HTTP status, unreadable file); the message says what and where."""


@dataclass(frozen=True)
class FeedDocument:
    source: str            # a path or URL, for logs and rejections
    body: bytes
    # The `now` that "date:now" placeholders of a recorded feed stand for; None: the fetch time.
    placeholder_now: dt.datetime | None = None


class AlertProvider(Protocol):
    name: str

    async def fetch(self) -> list[FeedDocument]: ...


@dataclass
class FileProvider:
    """A feed file, or every `*.json` file of a directory (in name order). A file is returned again
    only when its size or modification time changed."""

    path: Path
    placeholder_now: dt.datetime | None = None
    name: str = "file"
    _seen: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.glob("*.json") if p.is_file())
        if self.path.is_file():
            return [self.path]
        raise ProviderError(f"{self.path}: no such file or directory")

    async def fetch(self) -> list[FeedDocument]:
        documents = []
        for path in self._files():
            try:
                stat = path.stat()
                key = (stat.st_mtime_ns, stat.st_size)
                if self._seen.get(path) == key:
                    continue
                body = path.read_bytes()
            except OSError as exc:
                raise ProviderError(f"{path}: {exc}") from exc
            self._seen[path] = key
            documents.append(FeedDocument(str(path), body, self.placeholder_now))
        return documents


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: the n-th consecutive failure waits a uniform random
    time in [0, min(max_s, base_s · 2^(n-1))]."""

    base_s: float = 5.0
    max_s: float = 300.0

    def delay_s(self, failures: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_s, self.base_s * 2 ** max(failures - 1, 0)))


class HttpProvider:
    """An HTTP(S) feed such as `https://api.weather.gov/alerts/active`.

    Conditional requests: the `ETag` and `Last-Modified` of the last good response go back as
    `If-None-Match` / `If-Modified-Since`; a 304 returns no documents. Each request has a timeout
    (`timeout_s`, connect and read). After a failure (network error, timeout, HTTP status other
    than 200/304) fetches return nothing until the backoff delay has passed; the failure itself
    raises ProviderError once."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, backoff: Backoff | None = None,
                 user_agent: str = "gridtwin-weather (ops@example.invalid)", name: str = "http",
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.url = url
        self.name = name
        self._timeout_s = timeout_s
        self._backoff = backoff or Backoff()
        self._user_agent = user_agent
        self._clock = clock
        self._rng = rng or random.Random()
        self._etag: str | None = None
        self._last_modified: str | None = None
        self.failures = 0
        self.retry_at = 0.0       # clock() value before which no request is made

    def _get(self) -> tuple[int, bytes, dict[str, str]]:
        headers = {"User-Agent": self._user_agent, "Accept": "application/geo+json, application/json"}
        if self._etag:
            headers["If-None-Match"] = self._etag
        if self._last_modified:
            headers["If-Modified-Since"] = self._last_modified
        request = urllib.request.Request(self.url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                return response.status, response.read(), dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            return exc.code, b"", dict(exc.headers.items()) if exc.headers else {}

    def _failed(self, reason: str) -> ProviderError:
        self.failures += 1
        delay_s = self._backoff.delay_s(self.failures, self._rng)
        self.retry_at = self._clock() + delay_s
        return ProviderError(f"{self.url}: {reason} (failure {self.failures}, next attempt in {delay_s:.1f} s)")

    async def fetch(self) -> list[FeedDocument]:
        if self._clock() < self.retry_at:
            return []
        try:
            status, body, headers = await asyncio.wait_for(asyncio.to_thread(self._get), self._timeout_s + 1)
        except (TimeoutError, OSError, urllib.error.URLError) as exc:
            raise self._failed(f"request failed: {exc!r}") from None
        if status == 304:
            self.failures, self.retry_at = 0, 0.0
            return []
        if status != 200:
            raise self._failed(f"HTTP {status}")
        self.failures, self.retry_at = 0, 0.0
        self._etag = headers.get("ETag") or headers.get("Etag") or self._etag
        self._last_modified = headers.get("Last-Modified") or self._last_modified
        return [FeedDocument(self.url, body)]
