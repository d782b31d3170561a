"""Joining (or starting) the Ray cluster and wiring the twin runtime from settings."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import ray

from actors.runtime.actor import TwinCoordinator
from actors.runtime.router import TwinRouter
from actors.runtime.shard import ShardConfig
from actors.runtime.singleton import ClusterSingleton
from actors.runtime.weather import PollerConfig, poller_singleton
from actors.twin.stormwatch import StormWatchConfig
from gridtwin.ray_env import configure_ray_auth
from gridtwin.settings import Settings, TwinsSettings

log = logging.getLogger(__name__)

COORDINATOR = "twin-coordinator"


def connect(twins: TwinsSettings) -> None:
    """Joins the cluster at `ray_address`, or starts one in this process for "local"."""
    if ray.is_initialized():
        return
    configure_ray_auth()
    common = {"namespace": twins.namespace, "log_to_driver": False, "configure_logging": False}
    if twins.ray_address == "local":
        # address="local": always a new cluster in this process, never the platform's head that may
        # be running on this machine (ray.init() alone would attach to it).
        ray.init(address="local", num_cpus=twins.local_num_cpus, include_dashboard=False,
                 _node_ip_address="127.0.0.1", **common)  # type: ignore[arg-type]
    else:
        ray.init(address=twins.ray_address, **common)  # type: ignore[arg-type]


def shard_config(settings: Settings) -> ShardConfig:
    t = settings.twins
    return ShardConfig(
        postgres_url=settings.postgres.url, kafka_bootstrap_servers=settings.kafka.bootstrap_servers,
        alerts_topic=settings.kafka.alerts_topic, rules=json.loads(t.rules), pool_size=t.shard_pool_size,
        passivation_idle_s=t.passivation_idle_s, snapshot_interval_s=t.snapshot_interval_s,
        tick_interval_s=t.tick_interval_s, replay_horizon_s=t.replay_horizon_s,
        stormwatch=StormWatchConfig(event_types=frozenset(t.stormwatch_event_types)),
    )


@dataclass
class TwinRuntime:
    coordinator: ClusterSingleton
    router: TwinRouter
    poller: ClusterSingleton | None = None     # the StormWatch weather poller, where this process runs it


def poller_config(settings: Settings) -> PollerConfig:
    t, w = settings.twins, settings.weather
    return PollerConfig(
        postgres_url=settings.postgres.url, weather_api=t.stormwatch_weather_api or f"{w.host}:{w.port}",
        weather_token=t.stormwatch_weather_token,
        namespace=t.namespace, coordinator=COORDINATOR, shard_config=shard_config(settings),
        default_shards=t.shards, interval_s=t.stormwatch_poll_interval_s, weather_tls=settings.tls)


async def start_runtime(settings: Settings, *, with_poller: bool = False) -> TwinRuntime:
    """Connects to Ray, makes sure the coordinator singleton and the shards of the current layout
    exist, and returns a started router. `with_poller` (the twins service): also makes sure the
    StormWatch weather poller singleton runs."""
    connect(settings.twins)
    coordinator = ClusterSingleton(TwinCoordinator, COORDINATOR, settings.twins.namespace,  # type: ignore[arg-type]
                                   shard_config(settings), settings.twins.shards, settings.twins.namespace)
    router = TwinRouter(coordinator, settings.twins.namespace,
                        max_in_flight_per_shard=settings.twins.max_in_flight_batches_per_shard)
    await router.start()
    poller = None
    if with_poller and settings.twins.stormwatch_poller:
        poller = poller_singleton(poller_config(settings))
        await poller.call("status")
    return TwinRuntime(coordinator, router, poller)
