"""The weather service records expiry itself: a sweep that ends every active alert whose end time
(`ends`, else `expires`) has passed, whether or not any feed provider is configured.

Each sweep is one `AlertStore.expire(now)` (under the lifecycle's lock: an ENDED change with reason
"expired" in the change log, so ListAlertChanges, StreamAlertChanges and the StormWatch poller see
it). Guarantee: an alert is recorded expired at most `interval_s` after its end (plus one sweep's
time) while the service runs, and at the first sweep after a restart. Sweeping again changes
nothing (idempotent). `async with` or start()/stop().
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Protocol

from prometheus_client import Counter

from services.weather.store import LoggedChange

log = logging.getLogger(__name__)

EXPIRED = Counter("gridtwin_weather_alerts_expired_total", "Alerts the expiry sweep recorded as expired")


class ExpiringStore(Protocol):
    async def expire(self, now: dt.datetime) -> tuple[LoggedChange, ...]: ...


class ExpirySweeper:
    def __init__(self, store: ExpiringStore, *, interval_s: float = 5.0,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._store = store
        self._interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> tuple[LoggedChange, ...]:
        """One sweep now: the changes it logged."""
        ended = await self._store.expire(self._clock())
        if ended:
            EXPIRED.inc(len(ended))
            log.info("recorded %d alert(s) expired", len(ended))
        return ended

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:   # a database blip must not end expiry for good
                log.exception("expiry sweep failed; retrying after the interval")
            await asyncio.sleep(self._interval_s)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="weather-expiry")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> ExpirySweeper:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()
