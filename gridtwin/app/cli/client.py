"""The CLI as a client of the platform's gRPC APIs: where each service is (the context of the
configuration file, else the settings), which token to send (--token / GRIDTWIN_TOKEN, else the
context's), and the one wrapper every call goes through so that a refusal becomes one line and
an exit code (errors.from_rpc)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from gridtwin.app.cli import config
from gridtwin.app.cli.errors import from_rpc
from gridtwin.settings import Settings, TlsSettings
from gridtwin.tls import channel as blocking_channel

Reply = TypeVar("Reply")
DEFAULT_TIMEOUT_S = 30.0


@dataclass
class Invocation:
    """The root options of one `gridtwin …` run (set by the root callback)."""
    context: str = ""
    token: str = ""


INVOCATION = Invocation()


def _settings_address(settings: Settings, service: str) -> tuple[str, int]:
    group = {"access": "assets", "telemetry": "api"}.get(service, service)
    part = getattr(settings, group)
    return part.host, part.port


def target(service: str, context: config.Context | None = None) -> tuple[str, TlsSettings]:
    """The address of `service` and how to speak TLS to it, in `context` (default: the one
    chosen with --context, else the current one; none: the settings' addresses)."""
    settings = Settings()
    context = context or config.load().context(INVOCATION.context)
    host, port = _settings_address(settings, service)
    if context is None:
        return f"{host}:{port}", settings.tls
    if service in context.servers:
        address = context.servers[service]
    elif service == "access" and "assets" in context.servers:
        address = context.servers["assets"]          # served by the assets process
    else:
        address = f"{context.server or host}:{port}"
    tls = TlsSettings(enabled=True, ca_file=context.ca_file) if context.ca_file else settings.tls
    return address, tls


def token() -> str:
    if INVOCATION.token:
        return INVOCATION.token
    context = config.load().context(INVOCATION.context)
    return context.token if context is not None else ""


class Api:
    """A channel to one service with the caller's token. `api.call(stub.Method, request)`."""

    def __init__(self, service: str, channel: grpc.Channel, address: str, bearer: str) -> None:
        self.service, self.channel, self.address = service, channel, address
        self._metadata = [("authorization", f"Bearer {bearer}")] if bearer else []

    def call(self, method: Callable[..., Reply], request: object, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Reply:
        try:
            return method(request, metadata=self._metadata, timeout=timeout_s)
        except grpc.RpcError as error:
            raise from_rpc(error, self.service, self.address) from None

    def pages(self, method: Callable[..., Reply], request: object, items: str,
              *, limit: int = 0) -> Iterator[Any]:
        """Every item of a paged listing (page_token / next_page_token), at most `limit` (0: all)."""
        seen = 0
        while True:
            reply = self.call(method, request)
            for item in getattr(reply, items):
                yield item
                seen += 1
                if limit and seen >= limit:
                    return
            next_token = getattr(reply, "next_page_token", "")
            if not next_token:
                return
            request.page_token = next_token  # type: ignore[attr-defined]


@contextmanager
def api(service: str, *, bearer: str | None = None, context: config.Context | None = None) -> Iterator[Api]:
    """A connection to `service` (see config.SERVICES); `bearer` overrides the caller's token,
    `context` the configured addresses."""
    address, tls = target(service, context)
    with blocking_channel(address, tls) as channel:
        yield Api(service, channel, address, token() if bearer is None else bearer)
