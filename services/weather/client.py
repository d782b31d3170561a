"""A client of the Weather API for the StormWatch poller: the change log and single alerts over
gRPC (`ChangeFeed`). Errors surface as `grpc.aio.AioRpcError`; the poller's loop logs them and
tries again after its interval, from the cursor it saved."""

from __future__ import annotations

import grpc

from gridtwin.api.weather.v1 import weather_pb2 as pb
from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc
from gridtwin.settings import TlsSettings
from gridtwin.tls import aio_channel
from services.weather.convert import change_from_pb, stored_from_pb
from services.weather.model import StoredAlert
from services.weather.store import LoggedChange


class WeatherClient:
    def __init__(self, target: str, *, token: str, timeout_s: float = 10.0, tls: TlsSettings | None = None) -> None:
        """`token`: an AssetService token with the read scope."""
        self._channel = aio_channel(target, tls)   # TLS when `tls` is enabled
        self._stub = pb_grpc.WeatherServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout_s = timeout_s

    async def changes_after(self, seq: int, limit: int = 1_000) -> list[LoggedChange]:
        reply = await self._stub.ListAlertChanges(pb.ListAlertChangesRequest(after_seq=seq, limit=limit),
                                                  metadata=self._metadata, timeout=self._timeout_s)
        return [change_from_pb(m) for m in reply.changes]

    async def get(self, alert_id: str) -> StoredAlert | None:
        try:
            reply = await self._stub.GetAlert(pb.GetAlertRequest(alert_id=alert_id), metadata=self._metadata,
                                             timeout=self._timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return stored_from_pb(reply)

    async def close(self) -> None:
        await self._channel.close()
