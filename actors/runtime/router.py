"""The router: the ingest side's TwinSink, and the twin API's way to a twin.

`deliver(records)` splits a committed batch by shard (`routing.shard_of`, the Kafka key hash),
sends one columnar batch per shard, and returns when every shard has applied it and stored the
alert changes it caused. Backpressure: at most `max_in_flight_per_shard` batches of this router
are in a shard at once; the next waits, so a slow shard stalls `deliver`, which stalls the ingest
writer, whose bounded queue pauses the Kafka fetches. Failures: a shard that died (Ray restarts
it) is retried with backoff, forever — ingest must not commit offsets the twins did not accept,
and shards apply a repeated batch idempotently. A shard of an older layout answers `stale`; the
router then reads the layout from the coordinator and sends the whole batch again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import ray
from prometheus_client import Counter, Gauge, Histogram
from ray.actor import ActorHandle
from ray.exceptions import ActorUnavailableError, RayActorError

from actors.runtime.batch import ShardBatch, split_by_shard
from actors.runtime.routing import shard_name, shard_of
from actors.runtime.singleton import ClusterSingleton
from actors.twin import stormwatch as sw
from actors.twin.commands import TwinCommand
from actors.twin.twin import TwinMessage
from actors.twin.view import TwinView
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord

log = logging.getLogger(__name__)

DELIVER_SECONDS = Histogram(
    "gridtwin_twins_deliver_seconds", "Committed batch → every shard applied it and stored its alerts",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DELIVERED = Counter("gridtwin_twins_delivered_samples_total", "Samples delivered to twin shards")
RETRIES = Counter("gridtwin_twins_delivery_retries_total", "Shard calls retried (shard restarting or gone)")
RELAYOUTS = Counter("gridtwin_twins_layout_refreshes_total", "Layout changes seen by this router")
IN_FLIGHT = Gauge("gridtwin_twins_in_flight_batches", "Batches of this router inside shards")


class _StaleLayout(Exception):
    pass


class TwinRouter:
    def __init__(self, coordinator: ClusterSingleton, namespace: str, *, max_in_flight_per_shard: int = 4,
                 retry_max_delay_s: float = 2.0) -> None:
        self._coordinator = coordinator
        self._namespace = namespace
        self._max_in_flight = max_in_flight_per_shard
        self._retry_max_delay_s = retry_max_delay_s
        self.epoch = 0
        self.count = 0
        self._shards: list[ActorHandle] = []
        self._slots: list[asyncio.Semaphore] = []
        self._refreshing: asyncio.Lock | None = None

    async def start(self) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            epoch, count = await self._coordinator.call("layout")
            if (epoch, count) == (self.epoch, self.count):
                return
            self._shards = [ray.get_actor(shard_name(epoch, k), namespace=self._namespace) for k in range(count)]
            self._slots = [asyncio.Semaphore(self._max_in_flight) for _ in range(count)]
            self.epoch, self.count = epoch, count
            RELAYOUTS.inc()
            log.info("twin layout: epoch %d, %d shards", epoch, count)

    @property
    def shards(self) -> list[ActorHandle]:
        return list(self._shards)

    # ------------------------------------------------------------------ TwinSink

    async def deliver(self, records: Sequence[TelemetryRecord]) -> None:
        started = time.perf_counter()
        while True:
            epoch, shards, slots = self.epoch, self._shards, self._slots
            parts = split_by_shard(records, len(shards))
            try:
                await asyncio.gather(*(self._send(shards, slots, k, epoch, batch) for k, batch in parts.items()))
                break
            except _StaleLayout:
                await self.refresh()
        DELIVERED.inc(sum(b.samples for b in parts.values()))
        DELIVER_SECONDS.observe(time.perf_counter() - started)

    async def _send(self, shards: list[ActorHandle], slots: list[asyncio.Semaphore], index: int, epoch: int,
                    batch: ShardBatch) -> None:
        async with slots[index]:
            IN_FLIGHT.inc()
            try:
                result = await self._call(lambda: shards[index].deliver.remote(epoch, batch))  # noqa: B023
            finally:
                IN_FLIGHT.dec()
        if result["stale"]:
            raise _StaleLayout()

    async def _call(self, send: Any) -> Any:
        delay_s = 0.02
        while True:
            try:
                return await send()
            except (RayActorError, ActorUnavailableError) as exc:
                RETRIES.inc()
                log.warning("twin shard call failed (%s); retrying in %.2f s", type(exc).__name__, delay_s)
                if "died" in str(exc).lower() or type(exc).__name__ == "ActorDiedError":
                    # Killed for good (a reshard): the layout has changed under us.
                    raise _StaleLayout() from exc
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self._retry_max_delay_s)

    # ------------------------------------------------------------------ messages

    async def tell(self, items: Sequence[tuple[str, TwinMessage]]) -> list[TwinCommand]:
        """Messages to their twins (alert changes, opt-outs, grid events, device state reports),
        one call per shard, in order per twin; returns when every shard stored what its twins
        decided, with the commands they decided. Same retry and re-layout rules as `deliver`
        (a retried call decides nothing twice: commands are idempotent by twin and revision)."""
        while True:
            epoch, shards, count = self.epoch, self._shards, self.count
            parts: dict[int, list[tuple[str, TwinMessage]]] = {}
            for installation_id, event in items:
                parts.setdefault(shard_of(installation_id, count), []).append((installation_id, event))
            try:
                results = await asyncio.gather(*(
                    self._call(lambda shard=shards[k], part=part, epoch=epoch: shard.tell.remote(epoch, part))
                    for k, part in parts.items()))
                if not any(r["stale"] for r in results):
                    return [command for r in results for command in r["commands"]]
            except _StaleLayout:
                pass
            await asyncio.sleep(0.1)
            await self.refresh()

    # ------------------------------------------------------------------ reads

    async def _to_twin(self, method: str, installation_id: str, *args: Any) -> Any:
        while True:
            index = shard_of(installation_id, self.count)
            shard = self._shards[index]
            try:
                return await self._call(lambda s=shard: getattr(s, method).remote(installation_id, *args))
            except _StaleLayout:
                await asyncio.sleep(0.1)
                await self.refresh()

    async def view(self, installation_id: str) -> TwinView | None:
        return await self._to_twin("view", installation_id)  # type: ignore[no-any-return]

    async def watch(self, installation_id: str, after_version: int, timeout_s: float) -> TwinView | None:
        return await self._to_twin("watch", installation_id, after_version, timeout_s)  # type: ignore[no-any-return]

    async def stats(self) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self._call(lambda s=s: s.stats.remote()) for s in self._shards)))

    async def flush(self) -> int:
        return sum(await asyncio.gather(*(self._call(lambda s=s: s.flush.remote()) for s in self._shards)))

    async def reshard(self, count: int) -> None:
        await self._coordinator.call("reshard", count, timeout_s=300.0)
        await self.refresh()


class StormSink:
    """The weather poller's `AlertSink` (services/weather/poller.py): alert events to their twins."""

    def __init__(self, router: TwinRouter) -> None:
        self._router = router

    async def deliver(self, batch: Sequence[tuple[str, sw.StormAlertEvent]]) -> None:
        await self._router.tell(batch)
