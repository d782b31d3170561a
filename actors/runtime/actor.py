"""The Ray actors of the twin runtime: `TwinShardActor` (one shard process) and `TwinCoordinator`
(the cluster singleton that owns the shard layout). Thin: the logic is in shard.ShardCore.

Shards are detached named actors `twin-shard-e<epoch>-<index>` with `max_restarts=-1`: a shard
whose process dies is restarted by Ray with the same arguments, starts empty, recovers its
recently active twins eagerly in the background and any other twin lazily on its first message.
Nothing here is retried by Ray itself (`max_task_retries=0`): the router retries deliveries, which
shards apply idempotently.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.runtime.batch import ShardBatch
from actors.runtime.publisher import KafkaAlertPublisher
from actors.runtime.routing import shard_name
from actors.runtime.shard import ShardConfig, ShardCore
from actors.runtime.store import TwinStore, create_pool
from actors.twin.view import TwinView

log = logging.getLogger(__name__)


def _worker_nodes() -> list[str]:
    """The alive nodes that offer CPUs (a KubeRay head started with num-cpus 0 is left out)."""
    return [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]


def shard_placement(index: int, nodes: list[str]) -> Any:
    """Shard k on the k-th node, round robin in node-id order, so losing one node moves only its
    share of the twins. Soft: a shard whose node is gone is restarted wherever Ray can. Ray's own
    SPREAD is best effort on the scheduler's current view and put every shard on one node when
    the view lagged (the GCS knew both nodes, the scheduling raylet one)."""
    if not nodes:
        return "SPREAD"
    return NodeAffinitySchedulingStrategy(sorted(nodes)[index % len(nodes)], soft=True)


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1_024
    return 0


# Task events off: a shard takes several deliveries a second for as long as the platform runs, and
# each call's events would be buffered in both workers and kept in the GCS (memory growing for
# hours, soak finding); failures still reach the caller and the shard's own log.
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, enable_task_events=False)  # type: ignore[call-overload]
class TwinShardActor:
    def __init__(self, index: int, count: int, epoch: int, config: ShardConfig) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._args = (index, count, epoch, config)
        self._core: ShardCore | None = None
        self._lock: asyncio.Lock | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def _ready(self) -> ShardCore:
        if self._core is not None:
            return self._core
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._core is None:
                index, count, epoch, config = self._args
                pool = await create_pool(config.postgres_url, config.pool_size)
                publisher = KafkaAlertPublisher(config.kafka_bootstrap_servers, config.alerts_topic)
                core = ShardCore(index, count, epoch, config, TwinStore(pool), publisher)
                self._core = core
                self._loop_task = asyncio.get_running_loop().create_task(self._run(core))
        return self._core

    async def _run(self, core: ShardCore) -> None:
        if core.config.recover_on_start:
            try:
                await core.recover()
            except Exception:
                log.exception("shard %d: eager recovery failed; twins will recover on their first message",
                              core.index)
        while True:
            await asyncio.sleep(core.config.tick_interval_s)
            try:
                await core.tick()
            except Exception:
                log.exception("shard %d: tick failed", core.index)

    async def deliver(self, epoch: int, batch: ShardBatch) -> dict[str, Any]:
        return await (await self._ready()).deliver(epoch, batch)

    async def tell(self, epoch: int, items: list[tuple[str, Any]]) -> dict[str, Any]:
        return await (await self._ready()).tell(epoch, items)

    async def view(self, installation_id: str) -> TwinView | None:
        return await (await self._ready()).view(installation_id)

    async def watch(self, installation_id: str, after_version: int, timeout_s: float) -> TwinView | None:
        return await (await self._ready()).watch(installation_id, after_version, timeout_s)

    async def tick(self) -> None:
        await (await self._ready()).tick()

    async def flush(self) -> int:
        return await (await self._ready()).flush_snapshots()

    async def retire(self) -> int:
        return await (await self._ready()).retire()

    async def stats(self) -> dict[str, Any]:
        core = await self._ready()
        return {**core.stats(), "rss_bytes": _rss_bytes(), "pid": os.getpid()}

    async def wait_recovered(self, timeout_s: float) -> dict[str, float]:
        core = await self._ready()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not core.recovery and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return dict(core.recovery)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class TwinCoordinator:
    """Owns the layout (epoch, shard count) in Postgres and the shard actors of the current epoch."""

    def __init__(self, config: ShardConfig, default_count: int, namespace: str) -> None:
        self._config, self._default, self._namespace = config, default_count, namespace
        self._store: TwinStore | None = None
        self._layout: tuple[int, int] | None = None
        self._lock: asyncio.Lock | None = None

    async def _ensure(self) -> tuple[TwinStore, asyncio.Lock]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._store is None:
            self._store = TwinStore(await create_pool(self._config.postgres_url, 1))
        return self._store, self._lock

    def _shards(self, epoch: int, count: int) -> list[Any]:
        """The shard actors of a layout, started where they are not running (placed over the nodes
        alive now, asked of the GCS once per layout)."""
        nodes = _worker_nodes()
        return [TwinShardActor.options(  # type: ignore[attr-defined]
            name=shard_name(epoch, k), namespace=self._namespace, lifetime="detached", get_if_exists=True,
            scheduling_strategy=shard_placement(k, nodes),
        ).remote(k, count, epoch, self._config) for k in range(count)]

    async def layout(self) -> tuple[int, int]:
        store, lock = await self._ensure()
        async with lock:
            if self._layout is None:
                epoch, count = await store.layout(self._default)
                shards = self._shards(epoch, count)
                await asyncio.gather(*(s.stats.remote() for s in shards))   # started, recovering
                self._layout = (epoch, count)
            return self._layout

    async def reshard(self, count: int) -> tuple[int, int]:
        """Moves every twin to a layout of `count` shards: the old shards stop taking deliveries,
        snapshot every changed twin and end; the new ones recover the twins from storage."""
        if not 1 <= count <= 1_024:
            raise ValueError("shard count must be in 1..1024")
        epoch, old_count = await self.layout()
        store, lock = await self._ensure()
        async with lock:
            old = self._shards(epoch, old_count)
            await asyncio.gather(*(s.retire.remote() for s in old))
            for shard in old:
                ray.kill(shard, no_restart=True)
            epoch += 1
            await store.save_layout(epoch, count)
            shards = self._shards(epoch, count)
            await asyncio.gather(*(s.stats.remote() for s in shards))
            self._layout = (epoch, count)
            return self._layout
