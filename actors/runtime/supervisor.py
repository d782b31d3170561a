"""Keeps an eye on the shards from the twins service process: every `interval_s` it asks each
shard for its stats (which also starts a shard Ray just restarted, so its eager recovery and its
clock run without waiting for telemetry) and exports them as gauges. It does the same for the
weather poller singleton, which polls from its first call on."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Gauge

from actors.runtime.router import TwinRouter
from actors.runtime.singleton import ClusterSingleton
from gridtwin.aio import cancel_and_wait

log = logging.getLogger(__name__)

RESIDENT = Gauge("gridtwin_twins_resident", "Twins resident in a shard", ["shard"])
SHARD_RSS = Gauge("gridtwin_twins_shard_rss_bytes", "Resident memory of a shard process", ["shard"])
SHARD_ERRORS = Gauge("gridtwin_twins_shard_errors", "Records or samples a shard skipped after an error", ["shard"])
POLLER_PID = Gauge("gridtwin_twins_weather_poller_pid", "Process id of the weather poller singleton")
PENDING_ALERTS = Gauge("gridtwin_twins_pending_alert_changes", "Alert changes a shard has not stored yet", ["shard"])


class ShardSupervisor:
    def __init__(self, router: TwinRouter, interval_s: float = 2.0, poller: ClusterSingleton | None = None) -> None:
        self._router = router
        self._poller = poller
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._router.refresh()
                for stats in await asyncio.wait_for(self._router.stats(), 30):
                    shard = str(stats["index"])
                    RESIDENT.labels(shard).set(stats["resident"])
                    SHARD_RSS.labels(shard).set(stats["rss_bytes"])
                    SHARD_ERRORS.labels(shard).set(stats["errors"])
                    PENDING_ALERTS.labels(shard).set(stats["pending_alerts"])
                if self._poller is not None:
                    POLLER_PID.set((await self._poller.call("status", timeout_s=30))["pid"])
            except Exception as exc:  # keep watching; a shard may be restarting
                log.warning("shard supervision: %s", exc)
            await asyncio.sleep(self._interval_s)
