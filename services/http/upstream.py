"""The gRPC services behind the HTTP API: one long-lived channel per service, multicallables
built once per method from the descriptors."""

from __future__ import annotations

from typing import Any

import grpc

from gridtwin.settings import Settings
from gridtwin.tls import aio_channel
from services.http.transcode import message_class, method_descriptor


def service_addresses(settings: Settings) -> dict[str, str]:
    """gRPC service full name → host:port, as the settings say (the access service is served by
    the assets process)."""
    def at(s: Any) -> str:
        return f"{s.host}:{s.port}"
    return {
        "gridtwin.assets.v1.AssetService": at(settings.assets),
        "gridtwin.access.v1.AccessService": at(settings.assets),
        "gridtwin.telemetry.v1.TelemetryService": at(settings.api),
        "gridtwin.twins.v1.TwinService": at(settings.twins),
        "gridtwin.analytics.v1.AnalyticsService": at(settings.analytics),
        "gridtwin.weather.v1.WeatherService": at(settings.weather),
        "gridtwin.control.v1.ControlService": at(settings.control),
        "gridtwin.control.v1.VppService": at(settings.vpp),
    }


class Upstream:
    """Channels to every service; `unary(rpc)` and `stream(rpc)` are grpc.aio multicallables."""

    def __init__(self, addresses: dict[str, str], settings: Settings) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        for service, address in addresses.items():
            # Services at one address share a channel (assets and access).
            existing = next((self._channels[s] for s, a in addresses.items() if a == address and s in self._channels),
                            None)
            # Keepalive pings at the servers' default floor (5 min): more often, a server answers a
            # quiet stream's pings with GOAWAY (too_many_pings) and every SSE client on it drops.
            self._channels[service] = existing or aio_channel(address, settings.tls, options=[
                ("grpc.keepalive_time_ms", 300_000), ("grpc.max_receive_message_length", 64 * 2**20)])
        self._unary: dict[str, Any] = {}
        self._stream: dict[str, Any] = {}

    def _channel(self, rpc: str) -> grpc.aio.Channel:
        return self._channels[rpc.split("/")[1]]

    def unary(self, rpc: str) -> Any:
        if rpc not in self._unary:
            method = method_descriptor(rpc)
            self._unary[rpc] = self._channel(rpc).unary_unary(
                rpc, request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=message_class(method.output_type).FromString)
        return self._unary[rpc]

    def stream(self, rpc: str) -> Any:
        if rpc not in self._stream:
            method = method_descriptor(rpc)
            self._stream[rpc] = self._channel(rpc).unary_stream(
                rpc, request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=message_class(method.output_type).FromString)
        return self._stream[rpc]

    async def close(self) -> None:
        for channel in {id(c): c for c in self._channels.values()}.values():
            await channel.close()
