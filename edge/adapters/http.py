"""What the HTTP adapters (Powerwall, Fronius) share: an aiohttp session with timeouts, and the
translation of aiohttp's failures into the adapters' errors."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from edge.adapters.base import BadAnswer, SourceError, TimedOut, Unreachable


def session(timeout_s: float, *, verify_tls: bool = True, ca_file: str = "") -> aiohttp.ClientSession:
    """One session per adapter: keep-alive connections to its device, cookies kept even for a
    bare IP address (the Powerwall's login cookie)."""
    ssl_context: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file or None) if verify_tls else False
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        connector=aiohttp.TCPConnector(ssl=ssl_context, limit=4),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    """Turns aiohttp's and json's exceptions raised inside into SourceErrors naming `what`."""
    try:
        yield
    except SourceError:
        raise
    except TimeoutError as exc:
        raise TimedOut(f"{what}: no answer in time") from exc
    except aiohttp.ClientResponseError as exc:
        raise BadAnswer(f"{what}: HTTP {exc.status} {exc.message}") from exc
    except (aiohttp.ContentTypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadAnswer(f"{what}: not JSON ({exc})") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise Unreachable(f"{what}: {exc}") from exc


async def json_body(response: aiohttp.ClientResponse, what: str) -> Any:
    text = await response.text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadAnswer(f"{what}: not JSON: {text[:80]!r}") from exc
