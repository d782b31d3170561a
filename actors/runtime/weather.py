"""The StormWatch weather poller as the twin runtime's cluster singleton: one `WeatherPollerActor`
for the whole Ray cluster (actors/runtime/singleton.py), following the Weather API's change log
(services/weather/client.py), matching each change to installations in two steps in PostGIS and
Shapely (services/weather/matching.py) and handing the events to the twins through the router.

Exactly one runs: the actor is named and detached; Ray restarts it where it died, and if it is
gone for good the next `ClusterSingleton.call` creates it again. A restarted actor starts polling
on its first call (the twins service's supervisor calls `status` every few seconds) and resumes
from the cursor saved in Postgres, so at most the last batch is delivered again — which twins
ignore (StormWatch is idempotent per alert message).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import ray
from shapely.geometry.base import BaseGeometry

from actors.runtime.actor import TwinCoordinator
from actors.runtime.router import StormSink, TwinRouter
from actors.runtime.shard import ShardConfig
from actors.runtime.singleton import ClusterSingleton
from gridtwin.settings import TlsSettings
from services.access.model import Scope
from services.access.service_tokens import mint_service_token
from services.assets.model import InstallationId
from services.weather import matching
from services.weather.client import WeatherClient
from services.weather.poller import PollerSettings, WeatherPoller
from services.weather.store import AlertStore

log = logging.getLogger(__name__)

POLLER = "weather-poller"


@ray.remote(num_cpus=0.5, max_retries=3)
def _refine(area_wkt: str, ids: list[str], longitudes: list[float], latitudes: list[float]) -> matching.Refined:
    return matching.refine_wkt(area_wkt, ids, longitudes, latitudes)


class RayMatcher:
    """Two-step matching whose exact-polygon step runs as Ray tasks on any node of the cluster
    when an alert has many candidates (a hurricane over a coast); small ones stay in process,
    where a task round trip would cost more than the work."""

    def __init__(self, pool: asyncpg.Pool, chunk: int = 20_000) -> None:
        self._pool = pool
        self._chunk = chunk

    async def affected(self, area: BaseGeometry, area_wkt: str) -> list[InstallationId]:
        found = await matching.candidates(self._pool, area)
        if len(found) <= self._chunk:
            refined = matching.refine(area, found)
        else:
            parts = await asyncio.gather(*(
                _refine.remote(area_wkt, list(c.ids), c.longitudes_deg.tolist(), c.latitudes_deg.tolist())
                for c in matching.refine_chunks(found, self._chunk)))
            refined = matching.Refined(tuple(i for p in parts for i in p.inside),
                                       tuple(i for p in parts for i in p.boundary))
        return await matching.settle(self._pool, refined, area_wkt)


@dataclass(frozen=True)
class PollerConfig:
    postgres_url: str
    weather_api: str                   # host:port of the Weather API
    namespace: str
    coordinator: str                   # the twin coordinator singleton's name, and what creates it
    shard_config: ShardConfig
    default_shards: int
    interval_s: float = 10.0
    deliver_batch: int = 5_000
    refine_chunk: int = 20_000         # candidates per exact-polygon task
    weather_token: str = ""            # a read token for the Weather API ("" = issue one)
    weather_tls: TlsSettings | None = None   # TLS to the Weather API (PEM paths as seen on the poller's node)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class WeatherPollerActor:
    def __init__(self, config: PollerConfig) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._config = config
        self._poller: WeatherPoller | None = None
        self._lock: asyncio.Lock | None = None
        self._started = time.time()

    async def _ready(self) -> WeatherPoller:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._poller is None:
                c = self._config
                pool = await asyncpg.create_pool(c.postgres_url, min_size=1, max_size=2)
                assert pool is not None
                coordinator = ClusterSingleton(TwinCoordinator, c.coordinator, c.namespace,  # type: ignore[arg-type]
                                               c.shard_config, c.default_shards, c.namespace)
                router = TwinRouter(coordinator, c.namespace)
                await router.start()
                token = c.weather_token or await mint_service_token(pool, POLLER, frozenset({Scope.READ}))
                poller = WeatherPoller(AlertStore(pool), RayMatcher(pool, c.refine_chunk), [], StormSink(router),
                                       PollerSettings(interval_s=c.interval_s, deliver_batch=c.deliver_batch),
                                       feed=WeatherClient(c.weather_api, token=token, tls=c.weather_tls))
                await poller.start()
                self._poller = poller
                log.info("weather poller following %s (pid %d)", c.weather_api, os.getpid())
        return self._poller

    async def status(self) -> dict[str, Any]:
        poller = await self._ready()
        report = poller.last_report
        return {"pid": os.getpid(), "started_unix_s": self._started,
                "last_report": dataclasses.asdict(report) if report is not None else None}

    async def poll_now(self) -> dict[str, Any]:
        """One poll at once (tests, operators); the loop keeps its own pace."""
        report = await (await self._ready()).poll_once()
        return dataclasses.asdict(report)


def poller_singleton(config: PollerConfig) -> ClusterSingleton:
    return ClusterSingleton(WeatherPollerActor, POLLER, config.namespace, config)  # type: ignore[arg-type]
