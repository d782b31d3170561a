"""Keeps an eye on the shards from the twins service process: every `interval_s` it asks each
shard for its stats (which also starts a shard Ray just restarted, so its eager recovery and its
clock run without waiting for telemetry) and exports them as gauges."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Gauge

from actors.runtime.router import TwinRouter

log = logging.getLogger(__name__)

RESIDENT = Gauge("gridtwin_twins_resident", "Twins resident in a shard", ["shard"])
SHARD_RSS = Gauge("gridtwin_twins_shard_rss_bytes", "Resident memory of a shard process", ["shard"])
SHARD_ERRORS = Gauge("gridtwin_twins_shard_errors", "Records or samples a shard skipped after an error", ["shard"])
PENDING_ALERTS = Gauge("gridtwin_twins_pending_alert_changes", "Alert changes a shard has not stored yet", ["shard"])


class ShardSupervisor:
    def __init__(self, router: TwinRouter, interval_s: float = 2.0) -> None:
        self._router = router
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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
            except Exception as exc:  # keep watching; a shard may be restarting
                log.warning("shard supervision: %s", exc)
            await asyncio.sleep(self._interval_s)
