"""A shard: thousands of installation twins in one process, Akka cluster-sharding style.

`ShardCore` is the shard without Ray (asyncio + the store and publisher it is given), so it can be
driven directly; `actor.TwinShardActor` hosts one per Ray actor process.

Guarantees:
- Activation: a twin is made resident by the first message that names it (a delivery, a view,
  a watch): its snapshot, installation facts, rule overrides and open alerts are loaded in one
  batched round trip for every missing twin of the message, then the telemetry journal
  (`telemetry_samples`, stored before any delivery) is replayed in timestamp order from the
  snapshot's position (the oldest of its devices' newest applied samples; no snapshot: from
  `replay_horizon_s` back, the oldest sample a device may send), in chunks of
  `_REPLAY_CHUNK` rows. So a twin applies every stored sample after its snapshot however old —
  a device that was offline for hours and replays its buffer into a passivated twin — and
  recovers every sample accepted before a crash, even those after its last snapshot.
- A delivery returns only after the batch is applied and the alert changes it caused are stored
  (and published); alert changes that failed to store are retried before the next delivery is
  accepted and before any snapshot is written. Alert ids are a function of the telemetry, and the
  upsert never moves an alert backwards, so replays neither lose nor duplicate alerts.
- Snapshots of changed twins are written every `snapshot_interval_s` in one statement, and on
  passivation (after `passivation_idle_s` without a message) and retirement.
- Deliveries carry the layout epoch; a retired shard or a stale epoch answers `{"stale": True}`
  and the router re-routes with the current layout.
- Open alerts' last_seen and sample counts are written every `_REFRESH_EVERY_S` in one
  statement (`TwinStore.refresh_alerts`), so stored alerts are current within seconds.
- Messages (`tell`) go to one handler per message type (`twin.HANDLERS`): weather alert changes
  and opt-outs, grid events, device state reports.
- Bad input never ends the shard: a record whose processing raises is counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.runtime.batch import ShardBatch
from actors.runtime.publisher import AlertPublisher
from actors.runtime.routing import shard_hash, shard_of
from actors.runtime.store import Loaded, ReplayRow, TwinStore
from actors.twin.commands import TwinCommand
from actors.twin.config import RulesConfig
from actors.twin.model import UNKNOWN_FACTS, Alert, AlertEvent, CustomerNotice, Sample
from actors.twin.stormwatch import StormWatchConfig
from actors.twin.twin import TwinMessage, TwinState
from actors.twin.view import TwinView
from gridtwin import unixtime

log = logging.getLogger(__name__)

_RECOVERY_CHUNK = 5_000
_REPLAY_CHUNK = 50_000
_OUTBOX_EVERY_S = 15.0
_REFRESH_EVERY_S = 1.0


@dataclass(frozen=True)
class ShardConfig:
    """Everything a shard process needs, passed by value when Ray (re)creates it."""

    postgres_url: str
    kafka_bootstrap_servers: str
    alerts_topic: str
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)   # fleet-wide rule overrides
    pool_size: int = 2
    passivation_idle_s: float = 1_800.0
    snapshot_interval_s: float = 10.0
    tick_interval_s: float = 5.0
    replay_horizon_s: float = 30 * 86_400.0   # how far back a twin without a snapshot replays
    recover_on_start: bool = True
    stormwatch: StormWatchConfig = StormWatchConfig()   # which alerts StormWatch acts on


class ShardCore:
    def __init__(self, index: int, count: int, epoch: int, config: ShardConfig, store: TwinStore,
                 publisher: AlertPublisher | None) -> None:
        self.index, self.count, self.epoch = index, count, epoch
        self.config = config
        self._store = store
        self._publisher = publisher
        self.twins: dict[str, TwinState] = {}
        self._touched: dict[str, float] = {}          # monotonic time of the last message
        self._dirty: set[str] = set()
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._watchers: dict[str, asyncio.Event] = {}
        self._pending: dict[str, Alert] = {}            # alert changes not yet stored
        self._intents: list[TwinCommand] = []            # decisions not yet stored
        self._notices: list[CustomerNotice] = []
        self._defaults = RulesConfig.defaults(config.stormwatch).with_overrides(config.rules)
        self._configs: dict[str, RulesConfig] = {"": self._defaults}
        self._retired = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_snapshot = time.monotonic()
        self._last_outbox = 0.0
        self._refreshed: set[str] = set()               # twins whose open alerts moved on
        self._last_refresh = 0.0
        self.counters = {"batches": 0, "samples": 0, "applied": 0, "ignored": 0, "rejected": 0, "errors": 0,
                         "activated": 0, "passivated": 0, "replayed": 0, "alert_changes": 0, "snapshots": 0,
                         "messages": 0, "intents": 0, "notices": 0, "alert_refreshes": 0}
        self.recovery: dict[str, float] = {}

    # ------------------------------------------------------------------ messages

    async def deliver(self, epoch: int, batch: ShardBatch) -> dict[str, Any]:
        if self._retired or epoch != self.epoch:
            return {"stale": True, "epoch": self.epoch}
        async with self._busy():
            await self._flush_pending()
            ids = batch.installation_ids
            await self.ensure_resident(ids)
            events: list[AlertEvent] = []
            self._apply_batch(batch, events)
            await self._persist(events)
            if self._refreshed and time.monotonic() - self._last_refresh >= _REFRESH_EVERY_S:
                await self._flush_refreshed()
            self._notify(ids)
            return {"stale": False, "samples": batch.samples, "alert_changes": len(events)}

    @contextlib.asynccontextmanager
    async def _busy(self) -> AsyncIterator[None]:
        """A message in progress: `retire` waits until none is."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    def _apply_batch(self, batch: ShardBatch, events: list[AlertEvent]) -> None:
        now_ms = unixtime.now_ms()
        ts = batch.ts_ms.tolist()
        site, battery, solar, load, soc = (batch.column(k) for k in range(5))   # None: not reported
        grid = batch.grid_status.tolist()
        offsets = batch.offsets.tolist()
        mono = time.monotonic()
        applied = ignored = rejected = 0
        for r, installation_id in enumerate(batch.installation_ids):
            twin = self.twins.get(installation_id)
            if twin is None:
                continue
            lo, hi = offsets[r], offsets[r + 1]
            try:
                a, i, j = twin.apply_rows(batch.device_ids[r], ts[lo:hi], site[lo:hi], battery[lo:hi],
                                          solar[lo:hi], load[lo:hi], soc[lo:hi], grid[lo:hi], now_ms, events)
                if twin.tracks:
                    twin.tick(now_ms, events)
                    if any(t.refreshed for t in twin.tracks.values()):
                        self._refreshed.add(installation_id)
            except Exception:
                self.counters["errors"] += 1
                log.exception("shard %d: record of %s skipped", self.index, installation_id)
                continue
            applied, ignored, rejected = applied + a, ignored + i, rejected + j
            self._dirty.add(installation_id)
            self._touched[installation_id] = mono
        c = self.counters
        c["batches"] += 1
        c["samples"] += batch.samples
        c["applied"] += applied
        c["ignored"] += ignored
        c["rejected"] += rejected

    async def view(self, installation_id: str) -> TwinView | None:
        """The twin as the app shows it; None when the installation never reported."""
        await self.ensure_resident([installation_id])
        twin = self.twins.get(installation_id)
        if twin is None or twin.version == 0:
            self._evict(installation_id)
            return None
        return twin.view(unixtime.now_ms())

    async def watch(self, installation_id: str, after_version: int, timeout_s: float) -> TwinView | None:
        """The view once its version passes `after_version` (at once if it has), or None at the
        timeout. A long poll: the stream of changes is a loop of these."""
        deadline = time.monotonic() + timeout_s
        while True:
            view = await self.view(installation_id)
            if view is not None and view.version > after_version:
                return view
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            event = self._watchers.get(installation_id)
            if event is None:
                event = self._watchers[installation_id] = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def tell(self, epoch: int, items: Sequence[tuple[str, TwinMessage]]) -> dict[str, Any]:
        """Messages for twins of this shard — weather alert changes from the poller, grid events
        from the VPP dispatcher, opt-outs from the app, device state reports — in order, each to
        its handler (`twin.HANDLERS`). Returns once the twins' decisions and snapshots are stored,
        so the sender may move on (the poller then saves its cursor), with the commands they
        decided (`commands`: for the caller to carry out at once; they are in the outbox too)."""
        if self._retired or epoch != self.epoch:
            return {"stale": True, "epoch": self.epoch}
        async with self._busy():
            ids = list(dict.fromkeys(installation_id for installation_id, _ in items))
            await self.ensure_resident(ids)
            now_ms = unixtime.now_ms()
            mono = time.monotonic()
            before = len(self._intents), len(self._notices)
            for installation_id, message in items:
                twin = self.twins.get(installation_id)
                if twin is None:
                    continue
                try:   # an unknown message type is a TypeError: counted and skipped as bad input
                    twin.handle(message, now_ms, self._intents, self._notices)
                except Exception:
                    self.counters["errors"] += 1
                    log.exception("shard %d: %s for %s skipped", self.index, type(message).__name__, installation_id)
                    continue
                self._dirty.add(installation_id)
                self._touched[installation_id] = mono
            decided = self._intents[before[0]:]
            notices = len(self._notices) - before[1]
            self.counters["messages"] += len(items)
            await self.flush_snapshots(ids)
            self._notify(ids)
            return {"stale": False, "commands": decided, "notices": notices}

    def _notify(self, ids: Iterable[str]) -> None:
        if not self._watchers:
            return
        for installation_id in set(ids):
            event = self._watchers.pop(installation_id, None)
            if event is not None:
                event.set()

    # ------------------------------------------------------------------ activation

    async def ensure_resident(self, ids: Sequence[str]) -> None:
        missing = {i for i in ids if i not in self.twins}
        if not missing:
            return
        waiting = [self._loading[i] for i in missing if i in self._loading]
        to_load = [i for i in missing if i not in self._loading]
        if to_load:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for i in to_load:
                self._loading[i] = future
            try:
                await self._activate(to_load)
                future.set_result(None)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: waiters re-raise it, nobody else needs to
                raise
            finally:
                for i in to_load:
                    self._loading.pop(i, None)
        if waiting:
            await asyncio.gather(*waiting)

    def _rules_for(self, overrides: dict[str, dict[str, Any]]) -> RulesConfig:
        if not overrides:
            return self._defaults
        key = json.dumps(overrides, sort_keys=True)
        config = self._configs.get(key)
        if config is None:
            try:
                config = self._defaults.with_overrides(overrides)
            except ValueError as exc:
                log.error("ignoring invalid rule overrides %s: %s", key, exc)
                config = self._defaults
            self._configs[key] = config
        return config

    async def _activate(self, ids: list[str]) -> None:
        loaded = await self._store.load(ids)
        now_ms = unixtime.now_ms()
        floor_ms = now_ms - int(self.config.replay_horizon_s * 1_000)
        fresh: dict[str, TwinState] = {}
        since: dict[str, int] = {}
        for installation_id in ids:
            twin = self._build(installation_id, loaded.get(installation_id) or Loaded(facts=UNKNOWN_FACTS))
            fresh[installation_id] = twin
            since[installation_id] = max(min(twin.reported.devices.values(), default=floor_ms), floor_ms)
        events: list[AlertEvent] = []
        replayed = await self._replay(fresh, since, now_ms, events)
        mono = time.monotonic()
        for installation_id, twin in fresh.items():
            self.twins[installation_id] = twin
            self._touched[installation_id] = mono
            if replayed:
                self._dirty.add(installation_id)
        self.counters["activated"] += len(fresh)
        self.counters["replayed"] += replayed
        await self._persist(events)

    def _build(self, installation_id: str, loaded: Loaded) -> TwinState:
        config = self._rules_for(loaded.overrides)
        twin: TwinState | None = None
        if loaded.snapshot is not None:
            try:
                twin = TwinState.restore(installation_id, loaded.facts, config, loaded.snapshot)
            except Exception:
                self.counters["errors"] += 1
                log.exception("shard %d: unreadable snapshot of %s; starting afresh", self.index, installation_id)
        if twin is None:
            twin = TwinState(installation_id, loaded.facts, config)
        twin.adopt_open_alerts(loaded.open_alerts)
        return twin

    async def _replay(self, twins: dict[str, TwinState], since: dict[str, int], now_ms: int,
                      events: list[AlertEvent]) -> int:
        """Applies the stored samples after `since` (per installation) in timestamp order, a chunk
        of rows at a time (bounded memory however long the backlog). Returns the rows read."""
        total = 0
        while since:
            rows = await self._store.replay(since, _REPLAY_CHUNK)
            total += len(rows)
            self._apply_rows(twins, rows, now_ms, events)
            if len(rows) < _REPLAY_CHUNK:
                break
            # Ordered by installation: every installation before the chunk's last one is complete;
            # the last one goes on from a millisecond before its last row (a sample of another
            # device at that same instant may be next; the twin ignores the ones it has).
            last_id, last_ts = rows[-1][0], rows[-1][2]
            done = {r[0] for r in rows}
            since = {i: t for i, t in since.items() if i not in done or i == last_id}
            if since.get(last_id, 0) >= last_ts - 1:   # a single instant fills a whole chunk: move on
                since[last_id] = last_ts
            else:
                since[last_id] = last_ts - 1
        return total

    def _apply_rows(self, twins: dict[str, TwinState], rows: list[ReplayRow], now_ms: int,
                    events: list[AlertEvent]) -> None:
        for installation_id, device_id, ts, site, battery, solar, load, soc, grid in rows:
            twin = twins[installation_id]
            try:
                twin.apply(Sample(device_id, ts, site, battery, solar, load, soc, grid), now_ms, events)
            except Exception:
                self.counters["errors"] += 1
                log.exception("shard %d: replayed sample of %s skipped", self.index, installation_id)

    def _evict(self, installation_id: str) -> None:
        self.twins.pop(installation_id, None)
        self._touched.pop(installation_id, None)
        self._dirty.discard(installation_id)

    # ------------------------------------------------------------------ persistence

    async def _persist(self, events: list[AlertEvent]) -> None:
        for event in events:
            self._pending[event.alert.alert_id] = event.alert
        self.counters["alert_changes"] += len(events)
        await self._flush_pending()

    async def _flush_pending(self) -> None:
        if self._intents or self._notices:
            intents, notices = self._intents, self._notices
            await self._store.save_decisions(intents, notices)
            self.counters["intents"] += len(intents)
            self.counters["notices"] += len(notices)
            self._intents, self._notices = [], []
        if not self._pending:
            return
        alerts = list(self._pending.values())
        changed = await self._store.save_alerts(alerts)
        for alert in alerts:
            if self._pending.get(alert.alert_id) is alert:
                del self._pending[alert.alert_id]
        if changed and self._publisher is not None:
            # Stored first: if publishing fails the outbox sweep publishes them later.
            await self._publisher.publish(changed)
            await self._store.mark_published(changed)

    async def flush_snapshots(self, ids: Iterable[str] | None = None) -> int:
        await self._flush_pending()
        chosen = list(self._dirty if ids is None else (set(ids) & self._dirty))
        rows = []
        for installation_id in chosen:
            twin = self.twins.get(installation_id)
            if twin is not None:
                rows.append((installation_id, shard_hash(installation_id), twin.version, twin.reported.last_ts_ms,
                             json.dumps(twin.snapshot())))
        await self._store.save_snapshots(rows)
        self._dirty.difference_update(chosen)
        self.counters["snapshots"] += len(rows)
        self._last_snapshot = time.monotonic()
        return len(rows)

    # ------------------------------------------------------------------ the clock

    async def tick(self) -> None:
        """Clock rules, passivation, periodic snapshots, the alert outbox."""
        now_ms = unixtime.now_ms()
        events: list[AlertEvent] = []
        for installation_id, twin in self.twins.items():
            before = len(events), len(self._intents), len(self._notices)
            twin.tick(now_ms, events)
            twin.storm_tick(now_ms, self._intents, self._notices)
            if (len(events), len(self._intents), len(self._notices)) != before:
                self._dirty.add(installation_id)
        await self._persist(events)
        if self._refreshed:
            await self._flush_refreshed()
        mono = time.monotonic()
        idle = [i for i, t in self._touched.items() if mono - t > self.config.passivation_idle_s]
        if idle:
            await self.flush_snapshots(idle)
            for installation_id in idle:
                resident = self.twins.get(installation_id)
                # A twin watching a storm stays: its clock must end the storm on time.
                watching_storm = resident is not None and bool(resident.stormwatch.storms)
                if installation_id not in self._dirty and installation_id not in self._watchers and not watching_storm:
                    self._evict(installation_id)
                    self.counters["passivated"] += 1
        if mono - self._last_snapshot >= self.config.snapshot_interval_s:
            await self.flush_snapshots()
        if mono - self._last_outbox >= _OUTBOX_EVERY_S:
            self._last_outbox = mono
            await self._sweep_outbox()

    async def _flush_refreshed(self) -> None:
        """Writes how far open alerts have moved on (last seen, samples), one statement for all."""
        alerts: list[Alert] = []
        for installation_id in self._refreshed:
            twin = self.twins.get(installation_id)
            if twin is not None:
                alerts.extend(a for a in (t.take_refresh() for t in twin.tracks.values()) if a is not None)
        self._refreshed.clear()
        self._last_refresh = time.monotonic()
        await self._store.refresh_alerts(alerts)
        self.counters["alert_refreshes"] += len(alerts)

    async def _sweep_outbox(self) -> None:
        if self._publisher is None:
            return
        stale = [a for a in await self._store.unpublished(10.0, 1_000)
                 if shard_of(a.installation_id, self.count) == self.index]
        if stale:
            await self._publisher.publish(stale)
            await self._store.mark_published(stale)

    async def recover(self) -> None:
        """Eager recovery after a (re)start: the twins of this shard that were recently resident."""
        started = time.monotonic()
        ids = await self._store.recoverable(self.count, self.index, self.config.passivation_idle_s)
        for k in range(0, len(ids), _RECOVERY_CHUNK):
            await self.ensure_resident(ids[k:k + _RECOVERY_CHUNK])
        self.recovery = {"twins": float(len(ids)), "seconds": time.monotonic() - started}
        log.info("shard %d/%d recovered %d twins in %.2f s", self.index, self.count, len(ids),
                 self.recovery["seconds"])

    async def retire(self) -> int:
        """Stops taking deliveries, waits for those in flight, then snapshots every changed twin."""
        self._retired = True
        await self._idle.wait()
        return await self.flush_snapshots()

    def stats(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "epoch": self.epoch, "resident": len(self.twins),
                "dirty": len(self._dirty), "pending_alerts": len(self._pending), "retired": self._retired,
                "recovery": dict(self.recovery), **self.counters}
