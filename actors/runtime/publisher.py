"""Alerts onto the alerts topic (protobuf `gridtwin.twins.v1.Alert`, key = installation id)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer

from actors.runtime.convert import alert_to_pb
from actors.twin.model import Alert


class AlertPublisher(Protocol):
    async def publish(self, alerts: Sequence[Alert]) -> None: ...
    async def stop(self) -> None: ...


class KafkaAlertPublisher:
    """`publish` returns once the broker acknowledged every alert (acks=all)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=2)
        await producer.start()
        self._producer = producer

    async def publish(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        futures = [await producer.send(self._topic, alert_to_pb(a).SerializeToString(),
                                       key=a.installation_id.encode()) for a in alerts]
        await asyncio.gather(*futures)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
