"""The gRPC server every gridtwin service runs: its servicers plus health checking and reflection,
and the one way its handlers count calls and turn refusals and outages into status codes.

Health reports SERVING for "" and each service once the port is bound, and NOT_SERVING as soon as
a stop begins, so load balancers and Kubernetes probes drain the pod before RPCs are cut.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Self

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import Counter, Histogram

from gridtwin import reflection
from gridtwin.errors import GridtwinError
from gridtwin.settings import TlsSettings
from gridtwin.tls import grpc_server_credentials

log = logging.getLogger(__name__)

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# The largest request a server reads; larger ones end RESOURCE_EXHAUSTED before any handler runs.
# gRPC's own default is the same 4 MiB, but set here explicitly so no server depends on a default.
MAX_RECEIVE_MESSAGE_BYTES = 4 * 2**20


class GrpcServer:
    def __init__(
        self,
        host: str,
        port: int,
        services: Sequence[str],
        register: Callable[[grpc.aio.Server], None],
        *,
        options: Sequence[tuple[str, object]] = (),
        max_receive_message_bytes: int = MAX_RECEIVE_MESSAGE_BYTES,
        tls: TlsSettings | None = None,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        """`services`: full names of the services `register` adds to the server; `options`: gRPC
        channel arguments such as ("grpc.max_send_message_length", n); `tls`: serve TLS when
        enabled (plaintext otherwise); `interceptors` run before the server's own (an access
        guard refuses credentials before the request is looked at)."""
        self._tls = tls
        self._address = f"{host}:{port}"
        self.max_receive_message_bytes = max_receive_message_bytes
        self._options = [("grpc.max_receive_message_length", max_receive_message_bytes),
                         *(o for o in options if o[0] != "grpc.max_receive_message_length")]
        self._services = tuple(services)
        self._register = register
        self._interceptors = tuple(interceptors)
        self._health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        server = grpc.aio.server(options=self._options,
                                 interceptors=[*self._interceptors, RefuseUndecodableRequests()])
        self._register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable([*self._services, HEALTH_SERVICE], server)   # v1 and v1alpha
        credentials = grpc_server_credentials(self._tls)
        if credentials is None:
            self.port = server.add_insecure_port(self._address)
        else:
            self.port = server.add_secure_port(self._address, credentials)
        await server.start()
        for name in ("", *self._services):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        log.info("%s listening on port %d (%s)", ", ".join(self._services), self.port,
                 "plaintext" if credentials is None else "TLS")

    async def stop(self, grace_s: float) -> None:
        """Reports NOT_SERVING, then lets RPCs in flight finish for up to `grace_s`."""
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(grace_s)
            self._server = None

    async def wait_for_termination(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()


class _Undecodable:
    """Stands in for a request whose bytes did not parse, so the handler can refuse it."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class RefuseUndecodableRequests(grpc.aio.ServerInterceptor):
    """A request that is not a valid message of its type (e.g. a string field with invalid UTF-8)
    ends INVALID_ARGUMENT, the client's fault, instead of grpc's UNKNOWN from a failed deserializer."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer

        def deserialize(data: bytes) -> object:
            try:
                return parse(data)
            except Exception as exc:   # DecodeError, and whatever a deserializer may raise
                return _Undecodable(exc)

        async def refuse(request: _Undecodable, context: grpc.aio.ServicerContext) -> None:
            log.info("%s: undecodable request: %s", handler_call_details.method, request.error)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request does not decode: {request.error}")

        if handler.response_streaming:
            stream = handler.unary_stream
            # The wrapper keeps the handler's kind: grpc treats an async generator and a coroutine
            # that calls context.write differently.
            if inspect.isasyncgenfunction(stream):
                async def generate(request: object, context: grpc.aio.ServicerContext) -> AsyncIterator[object]:
                    if isinstance(request, _Undecodable):
                        await refuse(request, context)
                    async for response in stream(request, context):
                        yield response
                behavior: Callable[..., object] = generate
            else:
                async def write(request: object, context: grpc.aio.ServicerContext) -> None:
                    if isinstance(request, _Undecodable):
                        await refuse(request, context)
                    await stream(request, context)
                behavior = write
            return grpc.unary_stream_rpc_method_handler(
                behavior, request_deserializer=deserialize, response_serializer=handler.response_serializer)

        unary = handler.unary_unary

        async def unary_unary(request: object, context: grpc.aio.ServicerContext) -> object:
            if isinstance(request, _Undecodable):
                await refuse(request, context)
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, request_deserializer=deserialize, response_serializer=handler.response_serializer)


class GrpcApi:
    """What every service's gRPC API object offers around its `GrpcServer` (`self._server`, built
    by the subclass): `async with`, start()/stop(), the bound `port`, waiting for termination."""

    _server: GrpcServer

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Reports NOT_SERVING, then lets RPCs in flight finish for up to `grace_s`."""
        await self._server.stop(grace_s)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()


Handler = Callable[..., Awaitable[object]]


def observing(
    rpcs: Counter,
    latency: Histogram,
    *,
    unavailable: tuple[type[BaseException], ...] = (),
    unavailable_detail: str = "storage unavailable",
) -> Callable[..., Callable[[Handler], Handler]]:
    """A decorator factory for a service's RPC handlers: `@observed("Method")` (or `@observed()`:
    the handler's name) counts each call in `rpcs` by method and status code, times unary calls in
    `latency` (`timed=False` for streams) and is the one place where errors become statuses:
    a `gridtwin.errors.GridtwinError` its own status and message, the `unavailable` exceptions
    (a storage library's outage errors not yet translated by its adapter) UNAVAILABLE with
    `unavailable_detail`, anything else INTERNAL with a log line (the caller sees no internals)."""

    def observed(method: str | None = None, *, timed: bool = True) -> Callable[[Handler], Handler]:
        def wrap(fn: Handler) -> Handler:
            name = method or fn.__name__

            @functools.wraps(fn)
            async def handler(self: object, request: object, context: grpc.aio.ServicerContext) -> object:
                started, code, detail = time.perf_counter(), grpc.StatusCode.UNKNOWN, ""
                try:
                    result = await fn(self, request, context)
                    code = grpc.StatusCode.OK
                    return result
                except GridtwinError as error:
                    code, detail = error.grpc_status, str(error)
                    if code is grpc.StatusCode.UNAVAILABLE:
                        log.warning("%s: unavailable: %s (%r)", name, error, error.__cause__)
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except unavailable as exc:
                    code, detail = grpc.StatusCode.UNAVAILABLE, unavailable_detail
                    log.warning("%s: unavailable: %s", name, exc)
                except grpc.aio.AbortError:
                    raise   # the handler aborted with its own status (already sent)
                except Exception:
                    code, detail = grpc.StatusCode.INTERNAL, "internal error"
                    log.exception("%s failed", name)
                finally:
                    rpcs.labels(name, code.name).inc()
                    if timed:
                        latency.labels(name).observe(time.perf_counter() - started)
                await context.abort(code, detail)
                return None  # not reached: abort raises

            return handler

        return wrap

    return observed
