"""The fault cases' hands inside the rig's Ray cluster, run as a short-lived process:

    python -m bench.fault_ray views < installation-ids.json   → {installation: figures | null}
    python -m bench.fault_ray kill-shard INDEX                 → {"killed": name, "pid": pid}
    python -m bench.fault_ray shard-pids                       → {shard name: pid}
    python -m bench.fault_ray poller-kill                      → the weather poller SIGKILLed, then
                                                                 raced back by several callers

Settings come from the environment (the rig passes the same GRIDTWIN_* variables its services
get). A process of its own because a driver joins one Ray cluster for its life: the test session
or the report may already be attached to another one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any

import ray

from actors.runtime.cluster import poller_config, start_runtime
from actors.runtime.routing import shard_name
from actors.runtime.weather import POLLER, poller_singleton
from bench.fault_audit import TwinFigures
from gridtwin import ray_env
from gridtwin.settings import Settings


async def views(settings: Settings, installations: list[str]) -> dict[str, Any]:
    runtime = await start_runtime(settings)
    out: dict[str, Any] = {}
    for start in range(0, len(installations), 500):
        chunk = installations[start:start + 500]
        for installation_id, view in zip(chunk, await asyncio.gather(*(runtime.router.view(i) for i in chunk)),
                                         strict=True):
            out[installation_id] = None if view is None else dataclasses.asdict(TwinFigures.of(view))
    return out


async def kill_shard(settings: Settings, index: int) -> dict[str, Any]:
    """SIGKILL of the shard's worker process (Ray restarts the actor: max_restarts=-1)."""
    runtime = await start_runtime(settings)
    name = shard_name(runtime.router.epoch, index)
    handle = ray.get_actor(name, namespace=settings.twins.namespace)
    pid = await handle.__ray_call__.remote(lambda _self: os.getpid())
    os.kill(pid, signal.SIGKILL)
    return {"killed": name, "pid": pid}


async def shard_pids(settings: Settings) -> dict[str, Any]:
    runtime = await start_runtime(settings)
    pids = {}
    for index in range(len(runtime.router.shards)):
        name = shard_name(runtime.router.epoch, index)
        handle = ray.get_actor(name, namespace=settings.twins.namespace)
        pids[name] = await handle.__ray_call__.remote(lambda _self: os.getpid())
    return pids


async def kill_poller(settings: Settings, racers: int = 3) -> dict[str, Any]:
    """SIGKILLs the weather poller's process, then `racers` callers (as several twins-service
    replicas would) all make sure it runs. Reports its pids, how long it was gone, how many
    named pollers exist afterwards and a poll after the restart."""
    config = poller_config(settings)
    first = await poller_singleton(config).call("status")
    os.kill(first["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    statuses = await asyncio.gather(*(poller_singleton(config).call("status", timeout_s=120) for _ in range(racers)))
    back_s = time.monotonic() - killed_at
    poll = await poller_singleton(config).call("poll_now", timeout_s=60)
    named = [a for a in ray.util.list_named_actors(all_namespaces=True)
             if a["name"] == POLLER and a["namespace"] == settings.twins.namespace]
    return {"pid_before": first["pid"], "pids_after": sorted({s["pid"] for s in statuses}), "back_s": back_s,
            "named_pollers": len(named), "poll_after": poll}


async def main(argv: list[str]) -> Any:
    settings = Settings()
    ray_env.configure_ray_auth()
    ray.init(address=settings.twins.ray_address, namespace=settings.twins.namespace, log_to_driver=False,
             configure_logging=False)
    command = argv[0]
    if command == "views":
        return await views(settings, json.load(sys.stdin))
    if command == "kill-shard":
        return await kill_shard(settings, int(argv[1]))
    if command == "shard-pids":
        return await shard_pids(settings)
    if command == "poller-kill":
        return await kill_poller(settings)
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1:]))
    print(json.dumps(result))
