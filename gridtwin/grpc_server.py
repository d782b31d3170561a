"""The gRPC server every gridtwin service runs: its servicers plus health checking and reflection.

Health reports SERVING for "" and each service once the port is bound, and NOT_SERVING as soon as
a stop begins, so load balancers and Kubernetes probes drain the pod before RPCs are cut.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

log = logging.getLogger(__name__)

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class GrpcServer:
    def __init__(
        self,
        host: str,
        port: int,
        services: Sequence[str],
        register: Callable[[grpc.aio.Server], None],
    ) -> None:
        """`services`: full names of the services `register` adds to the server."""
        self._address = f"{host}:{port}"
        self._services = tuple(services)
        self._register = register
        self._health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        server = grpc.aio.server()
        self._register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection([*self._services, HEALTH_SERVICE, reflection.SERVICE_NAME], server)
        self.port = server.add_insecure_port(self._address)
        await server.start()
        for name in ("", *self._services):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        log.info("%s listening on port %d", ", ".join(self._services), self.port)

    async def stop(self, grace_s: float) -> None:
        """Reports NOT_SERVING, then lets RPCs in flight finish for up to `grace_s`."""
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(grace_s)
            self._server = None

    async def wait_for_termination(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()
