"""The StormWatch poller: feeds → alert store → affected installations → the twins.

Two halves, each optional, so one class serves both processes that run it:
- **ingest** (with providers; the weather service runs it, `gridtwin weather serve`): fetch every
  provider, parse, normalize, store, end expired alerts;
- **follow** (with a sink and a matcher; the twin runtime's singleton runs it, actors/runtime/
  weather.py): read the change log after the saved cursor from a `ChangeFeed` — the Weather API
  over gRPC (services/weather/client.py) in the platform, the store itself in tests — match each
  change to installations in two steps and hand `(installation_id, StormAlertEvent)` pairs to the
  `AlertSink` (the twin router), at most `deliver_batch` at a time.

Delivery is at least once: the cursor (`weather_cursors`) moves only after `deliver` returned, so
after a crash or a move of the singleton the last batch may arrive again — the twins' StormWatch
(`stormwatch.apply`) ignores what it already applied. Twins also tick StormWatch themselves, so
a storm ends at its end time even while the poller is down. The exact-polygon step
(`matching.refine` / `refine_wkt`) is stateless: to spread it over workers, pass a `Matcher`
whose `affected` fans the candidates out (`matching.refine_chunks`).

One poll (`poll_once`): fetch every provider (a failing provider is logged and skipped), parse
and normalize (a broken document or entry is recorded in `weather_rejections`, the rest goes on),
ingest into the store (the lifecycle decides what changed), end expired alerts, then follow the
change log from the saved cursor: each change's area is matched to installations in two steps
and every affected installation gets the event. An Update whose new area no longer covers an
installation sends it an ENDED event (reason "left the alert area"). An ENDED change (a Cancel,
expiry) carries the ended message with its own area, whatever area the Cancel came with, so it
reaches the installations that watch that message. A change of an alert whose area is unknown
(zones not loaded) reaches nobody; when its zones are loaded it is logged again as ACTIVATED.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
import shapely
from prometheus_client import Counter
from shapely.geometry.base import BaseGeometry

from actors.twin.stormwatch import StormAlertEvent
from services.assets.model import InstallationId
from services.weather import matching, nws
from services.weather.model import Alert, ChangeKind, Rejection, StoredAlert, ZoneCode
from services.weather.providers import AlertProvider, ProviderError
from services.weather.store import IngestResult, LoggedChange

log = logging.getLogger(__name__)

FEED_REJECTIONS = Counter("gridtwin_weather_feed_rejections_total",
                          "Alert feed parts refused (the rest of the feed goes on)", ["part"])

CURSOR = "stormwatch"


class AlertSink(Protocol):
    async def deliver(self, batch: Sequence[tuple[InstallationId, StormAlertEvent]]) -> None: ...


class Matcher(Protocol):
    async def affected(self, area: BaseGeometry, area_wkt: str) -> list[InstallationId]: ...


class ChangeFeed(Protocol):
    """The change log of the active alerts (the store, or the Weather API in front of it)."""

    async def changes_after(self, seq: int, limit: int = 1_000) -> list[LoggedChange]: ...
    async def get(self, alert_id: str) -> StoredAlert | None: ...


class AlertLog(ChangeFeed, Protocol):
    """What the poller needs of the alert store (store.AlertStore is the real one)."""

    async def ingest(self, alerts: Sequence[Alert], now: dt.datetime, source: str = "") -> IngestResult: ...
    async def expire(self, now: dt.datetime) -> tuple[LoggedChange, ...]: ...
    async def record_rejections(self, rejections: Sequence[Rejection]) -> None: ...
    async def load_cursor(self, name: str) -> int: ...
    async def save_cursor(self, name: str, seq: int) -> None: ...
    async def load_zones(self) -> dict[ZoneCode, BaseGeometry]: ...
    async def zones_version(self) -> tuple[int, int]: ...


class PostgisMatcher:
    """Both matching steps against the installations table (in this process)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def affected(self, area: BaseGeometry, area_wkt: str) -> list[InstallationId]:
        return await matching.affected(self._pool, area, area_wkt)


@dataclass(frozen=True)
class PollerSettings:
    interval_s: float = 60.0
    changes_per_round: int = 500        # change-log entries read at a time
    deliver_batch: int = 5_000          # (installation, event) pairs per sink call
    stop_timeout_s: float = 10.0


@dataclass
class PollReport:
    documents: int = 0
    alerts: int = 0
    duplicates: int = 0
    rejections: int = 0
    provider_errors: list[str] = field(default_factory=list)
    changes: int = 0
    deliveries: int = 0


class WeatherPoller:
    def __init__(self, store: AlertLog, matcher: Matcher | None, providers: Sequence[AlertProvider],
                 sink: AlertSink | None,
                 settings: PollerSettings | None = None, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 feed: ChangeFeed | None = None) -> None:
        self._store = store
        self._feed: ChangeFeed = feed or store
        self._matcher = matcher
        self._providers = list(providers)
        self._sink = sink
        self._settings = settings or PollerSettings()
        self._clock = clock
        self._zones: dict[ZoneCode, BaseGeometry] | None = None
        self._zones_version: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._polling = asyncio.Lock()      # one poll at a time (the loop, and `poll_once` from outside)
        self.last_report: PollReport | None = None

    async def reload_zones(self) -> None:
        self._zones = await self._store.load_zones()

    async def _ingest(self, now: dt.datetime, report: PollReport) -> None:
        if not self._providers:
            return
        # Zones loaded while the service runs (`gridtwin weather load-zones`) apply from the next poll.
        version = await self._store.zones_version()
        if self._zones is None or version != self._zones_version:
            self._zones_version = version
            await self.reload_zones()
        for provider in self._providers:
            try:
                documents = await provider.fetch()
            except ProviderError as exc:
                log.warning("provider %s: %s", provider.name, exc)
                report.provider_errors.append(str(exc))
                continue
            for document in documents:
                report.documents += 1
                try:
                    parsed = nws.parse_feed(document.body, now=document.placeholder_now or now,
                                            zones=self._zones, source=document.source)
                except nws.FeedError as exc:
                    parsed = nws.ParseResult((), (Rejection(document.source, "(document)", str(exc)),))
                    FEED_REJECTIONS.labels("document").inc()
                else:
                    FEED_REJECTIONS.labels("entry").inc(len(parsed.rejections))
                if parsed.rejections:
                    log.warning("%s: %d entries rejected, e.g. %r: %s", document.source, len(parsed.rejections),
                                parsed.rejections[0].alert_id, parsed.rejections[0].reason)
                    await self._store.record_rejections(parsed.rejections)
                result = await self._store.ingest(parsed.alerts, now, document.source)
                report.alerts += result.received
                report.duplicates += result.duplicates
                report.rejections += len(parsed.rejections)
        await self._store.expire(now)

    async def _pairs(self, logged: LoggedChange) -> list[tuple[InstallationId, StormAlertEvent]]:
        assert self._matcher is not None
        change = logged.change
        event = StormAlertEvent.from_change(change)
        ids: list[InstallationId] = []
        if change.alert.area_known:
            ids = await self._matcher.affected(shapely.from_wkt(change.alert.area_wkt), change.alert.area_wkt)
        pairs = [(i, event) for i in ids]
        if change.kind is ChangeKind.UPDATED and change.replaces:
            before: set[InstallationId] = set()
            for old_id in change.replaces:
                old = await self._feed.get(old_id)
                if old is not None and not old.alert.area_known:
                    continue
                if old is not None and old.alert.area_wkt != change.alert.area_wkt:
                    before.update(await self._matcher.affected(shapely.from_wkt(old.alert.area_wkt),
                                                               old.alert.area_wkt))
                elif old is not None:
                    before.update(ids)
            left = before - set(ids)
            if left:
                ended = StormAlertEvent(ChangeKind.ENDED, change.alert.alert_id, change.alert.event,
                                        change.alert.sent, change.alert.start, change.alert.end, change.replaces,
                                        "left the alert area", change.alert.headline)
                pairs += [(i, ended) for i in sorted(left)]
        return pairs

    async def _follow(self, report: PollReport) -> None:
        if self._sink is None:
            return
        seq = await self._store.load_cursor(CURSOR)
        while True:
            logged = await self._feed.changes_after(seq, self._settings.changes_per_round)
            if not logged:
                return
            for entry in logged:
                pairs = await self._pairs(entry)
                for start in range(0, len(pairs), self._settings.deliver_batch):
                    await self._sink.deliver(pairs[start:start + self._settings.deliver_batch])
                report.changes += 1
                report.deliveries += len(pairs)
                seq = entry.seq
                await self._store.save_cursor(CURSOR, seq)

    async def poll_once(self) -> PollReport:
        async with self._polling:
            report = PollReport()
            await self._ingest(self._clock(), report)
            await self._follow(report)
            self.last_report = report
            return report

    def wake(self) -> None:
        """Polls now instead of at the end of the interval."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:   # the loop outlives any one failure (database blip, sink error)
                log.exception("weather poll failed; retrying after the interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.interval_s)
            self._wake.clear()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="weather-poller")

    async def stop(self) -> None:
        """Cancels the loop; a poll in progress stops at its next await (the cursor only moves
        after a delivery, so nothing is lost)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, self._settings.stop_timeout_s)

    async def __aenter__(self) -> WeatherPoller:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()
