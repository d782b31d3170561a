"""Live contribution: discharge power summed per hierarchy node, near real time, from telemetry.

`ContributionIndex` is the pure core. Each installation belongs to groups (ltree paths); it
counts towards every prefix of every one of them (`utility.pge.north.f12` → `utility`,
`utility.pge`, `utility.pge.north`, `utility.pge.north.f12`), each node once. The index keeps the
newest sample per installation and, per node, the sum of discharge power (max(battery, 0)) and
the number of installations reporting, updated in O(depth) per sample. Sums are kept in integer
milliwatts, so millions of add/subtract steps never drift. An installation whose newest sample is
older than `stale_after_s` drops out of the sums at the next `sweep(now_ms)` (O(installations))
and comes back with its next newer sample. `set_memberships` replaces the groups (an
enrollment changed) and rebuilds the sums from the samples it already has.

`ContributionTracker` feeds an index from the telemetry topic (its own consumer, starting at the
latest offsets: only live values matter, and a restart must not replay history into "live"),
reloads memberships from Postgres every `reload_interval_s`, sweeps stale installations, exports
the lag (now − newest sample seen) and serves `watch()`: one snapshot per interval, what a gRPC
stream sends ("your home 3.1 kW, the whole program 33 MW").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import DecodeError
from prometheus_client import Counter, Gauge, Histogram

from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord

log = logging.getLogger(__name__)

LAG = Gauge("gridtwin_vpp_contribution_lag_seconds", "Now minus the newest sample timestamp the contribution has seen")
SAMPLE_AGE = Histogram(
    "gridtwin_vpp_contribution_sample_age_seconds", "Device timestamp of a record's newest sample → in the sums",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60),
)
UPDATES = Counter("gridtwin_vpp_contribution_updates_total", "Samples applied to the contribution index")
INSTALLATIONS = Gauge("gridtwin_vpp_contribution_installations", "Installations counted in the sums (not stale)")
UNDECODABLE = Counter("gridtwin_vpp_contribution_undecodable_total", "Records skipped as not a TelemetryRecord")


@dataclass(frozen=True)
class NodeContribution:
    path: str
    discharge_w: float
    installations_reporting: int
    newest_sample_ms: int | None


@dataclass(frozen=True)
class InstallationContribution:
    installation_id: str
    battery_power_w: float
    discharge_w: float
    sample_ms: int
    counted: bool          # False once stale (until a newer sample arrives)


def ancestors(paths: Iterable[str]) -> tuple[str, ...]:
    """Every prefix of every path, each once, in first-seen order ("" and empty labels skipped)."""
    seen: dict[str, None] = {}
    for path in paths:
        labels = [label for label in path.split(".") if label]
        for depth in range(1, len(labels) + 1):
            seen.setdefault(".".join(labels[:depth]), None)
    return tuple(seen)


def _mw(power_w: float) -> int:
    return round(max(power_w, 0.0) * 1_000)


class ContributionIndex:
    """Per-node discharge sums over the newest sample of each installation. Not thread-safe."""

    def __init__(self, memberships: Mapping[str, Iterable[str]] | None = None, *, stale_after_s: float = 30.0) -> None:
        self.stale_after_ms = int(stale_after_s * 1_000)
        self._nodes_of: dict[str, tuple[str, ...]] = {}
        self._latest: dict[str, tuple[int, float]] = {}   # installation → (ts_ms, battery_power_w)
        self._counted: set[str] = set()
        self._sum_mw: dict[str, int] = {}
        self._count: dict[str, int] = {}
        self._newest_ms: dict[str, int] = {}
        self.newest_sample_ms: int | None = None          # over everything ever applied
        if memberships:
            self.set_memberships(memberships)

    # ------------------------------------------------------------ writes

    def update(self, installation_id: str, ts_ms: int, battery_power_w: float) -> bool:
        """Applies a sample if it is newer than the installation's newest and finite."""
        if not math.isfinite(battery_power_w):
            return False
        previous = self._latest.get(installation_id)
        if previous is not None and ts_ms <= previous[0]:
            return False
        self._latest[installation_id] = (ts_ms, battery_power_w)
        if self.newest_sample_ms is None or ts_ms > self.newest_sample_ms:
            self.newest_sample_ms = ts_ms
        nodes = self._nodes_of.get(installation_id, ())
        was_counted = installation_id in self._counted
        delta = _mw(battery_power_w) - (_mw(previous[1]) if was_counted and previous is not None else 0)
        self._counted.add(installation_id)
        for node in nodes:
            self._sum_mw[node] = self._sum_mw.get(node, 0) + delta
            if not was_counted:
                self._count[node] = self._count.get(node, 0) + 1
            if ts_ms > self._newest_ms.get(node, -1):
                self._newest_ms[node] = ts_ms
        return True

    def sweep(self, now_ms: int) -> int:
        """Takes installations without a sample for `stale_after_s` out of the sums; how many."""
        cutoff = now_ms - self.stale_after_ms
        stale = [i for i in self._counted if self._latest[i][0] < cutoff]
        for installation_id in stale:
            self._uncount(installation_id)
        return len(stale)

    def set_memberships(self, memberships: Mapping[str, Iterable[str]]) -> None:
        """Replaces every installation's groups; the newest samples stay and are re-summed."""
        self._nodes_of = {i: ancestors(paths) for i, paths in memberships.items()}
        self._sum_mw, self._count, self._newest_ms = {}, {}, {}
        for installation_id in self._counted:
            ts_ms, power_w = self._latest[installation_id]
            mw = _mw(power_w)
            for node in self._nodes_of.get(installation_id, ()):
                self._sum_mw[node] = self._sum_mw.get(node, 0) + mw
                self._count[node] = self._count.get(node, 0) + 1
                if ts_ms > self._newest_ms.get(node, -1):
                    self._newest_ms[node] = ts_ms

    def _uncount(self, installation_id: str) -> None:
        self._counted.discard(installation_id)
        mw = _mw(self._latest[installation_id][1])
        for node in self._nodes_of.get(installation_id, ()):
            self._sum_mw[node] -= mw
            self._count[node] -= 1
            if self._count[node] == 0:
                # Stale means every other member's sample is older still, so nothing newer is left.
                del self._count[node], self._sum_mw[node], self._newest_ms[node]

    # ------------------------------------------------------------ reads

    def node(self, path: str) -> NodeContribution:
        count = self._count.get(path, 0)
        return NodeContribution(path, self._sum_mw.get(path, 0) / 1_000, count,
                                self._newest_ms.get(path) if count else None)

    def installation(self, installation_id: str) -> InstallationContribution | None:
        latest = self._latest.get(installation_id)
        if latest is None:
            return None
        return InstallationContribution(installation_id, latest[1], _mw(latest[1]) / 1_000, latest[0],
                                        installation_id in self._counted)

    def nodes(self) -> list[NodeContribution]:
        return [self.node(path) for path in sorted(self._count)]

    @property
    def installations_counted(self) -> int:
        return len(self._counted)


# ---------------------------------------------------------------------------------------- I/O


MEMBERSHIPS_SQL = """
    SELECT installation_id, path::text FROM group_memberships
    WHERE program IS NULL OR enrollment_state = 'enrolled'
"""


async def load_memberships(pool: asyncpg.Pool) -> dict[str, list[str]]:
    """installation → group paths. Program memberships count only when enrolled (an eligible or
    pending home is no part of "the whole program"). Paths travel as text: no ltree codec, and
    none of asyncpg's ltree[] trouble (see services/assets/database.py)."""
    out: dict[str, list[str]] = {}
    for installation_id, path in await pool.fetch(MEMBERSHIPS_SQL):
        out.setdefault(installation_id, []).append(path)
    return out


@dataclass(frozen=True)
class ContributionSnapshot:
    at_ms: int
    node: NodeContribution
    installation: InstallationContribution | None


class ContributionTracker:
    """`async with ContributionTracker(...)` consumes telemetry into `index` until the block ends.

    Every tracker needs every partition, so replicas must not share `group_id` (give each its
    own, e.g. suffixed with the pod name); with `group_id=None` it assigns all partitions itself.
    Offsets are never committed: a (re)started tracker begins at the latest offsets, and the
    samples it missed are older than `stale_after_s` by the time anyone would miss them.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        group_id: str | None,
        pool: asyncpg.Pool | None,
        index: ContributionIndex | None = None,
        stale_after_s: float = 30.0,
        reload_interval_s: float = 60.0,
        sweep_interval_s: float = 1.0,
        max_records: int = 10_000,
        fetch_timeout_ms: int = 100,
        clock: Callable[[], float] = time.time,
        on_sample_age: Callable[[float], None] | None = None,
    ) -> None:
        self.index = index if index is not None else ContributionIndex(stale_after_s=stale_after_s)
        self.ready = asyncio.Event()   # set once partitions are assigned and positioned at the end
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._group_id = group_id
        self._pool = pool
        self._reload_interval_s = reload_interval_s
        self._sweep_interval_s = sweep_interval_s
        self._max_records = max_records
        self._fetch_timeout_ms = fetch_timeout_ms
        self._clock = clock
        self._on_sample_age = on_sample_age
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.updates = 0

    async def start(self) -> None:
        if self._pool is not None:
            await self.reload_memberships()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=self._group_id, enable_auto_commit=False,
            auto_offset_reset="latest", max_partition_fetch_bytes=4 << 20, fetch_max_bytes=16 << 20,
            fetch_max_wait_ms=self._fetch_timeout_ms,
        )
        await self._consumer.start()
        if self._group_id is None:
            partitions = self._consumer.partitions_for_topic(self._topic)
            if not partitions:
                await self._consumer.stop()
                raise RuntimeError(f"topic {self._topic!r} has no partitions (does it exist?)")
            self._consumer.assign([TopicPartition(self._topic, p) for p in sorted(partitions)])
        else:
            self._consumer.subscribe([self._topic])
        self._tasks = [asyncio.create_task(self._fetch_loop(), name="contribution-fetch")]
        if self._pool is not None:
            self._tasks.append(asyncio.create_task(self._reload_loop(), name="contribution-reload"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> ContributionTracker:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def reload_memberships(self) -> None:
        assert self._pool is not None
        self.index.set_memberships(await load_memberships(self._pool))

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self._reload_interval_s)
            try:
                await self.reload_memberships()
            except (OSError, asyncpg.PostgresError):
                log.warning("reloading group memberships failed; keeping the previous ones", exc_info=True)

    async def _fetch_loop(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        next_sweep = self._clock() + self._sweep_interval_s
        while True:
            fetched = await consumer.getmany(timeout_ms=self._fetch_timeout_ms, max_records=self._max_records)
            if not self.ready.is_set() and consumer.assignment():
                for tp in consumer.assignment():
                    await consumer.position(tp)   # resolves "latest" now, before anyone produces
                self.ready.set()
            if fetched:
                self._apply(fetched)
            now = self._clock()
            if now >= next_sweep:
                self.index.sweep(int(now * 1_000))
                INSTALLATIONS.set(self.index.installations_counted)
                next_sweep = now + self._sweep_interval_s
            if self.index.newest_sample_ms is not None:
                LAG.set(max(now - self.index.newest_sample_ms / 1_000, 0.0))

    def _apply(self, fetched: Mapping[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        index = self.index
        applied = 0
        newest: list[int] = []
        for messages in fetched.values():
            for message in messages:
                record = TelemetryRecord()
                try:
                    record.ParseFromString(message.value)
                except DecodeError:
                    UNDECODABLE.inc()
                    continue
                # Only samples that report battery power say what the home contributes.
                reporting = [s for s in record.samples if s.HasField("battery_power_w")]
                if not reporting:
                    continue
                sample = max(reporting, key=lambda s: s.timestamp_unix_ms)
                if index.update(record.installation_id, sample.timestamp_unix_ms, sample.battery_power_w):
                    applied += 1
                    newest.append(sample.timestamp_unix_ms)
        now = self._clock()
        for ts_ms in newest:
            age_s = now - ts_ms / 1_000
            SAMPLE_AGE.observe(age_s)
            if self._on_sample_age is not None:
                self._on_sample_age(age_s)
        self.updates += applied
        UPDATES.inc(applied)

    async def watch(self, path: str, installation_id: str | None = None, interval_s: float = 1.0
                    ) -> AsyncIterator[ContributionSnapshot]:
        """A snapshot of `path` (and of `installation_id`, if given) now and every `interval_s`.

        Ticks are paced on the clock, not on the previous tick's end, so a slow consumer of the
        stream skips nothing but sees the latest value; ends when the caller stops iterating."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            yield ContributionSnapshot(
                int(self._clock() * 1_000), self.index.node(path),
                self.index.installation(installation_id) if installation_id else None,
            )
            next_tick += interval_s
            await asyncio.sleep(max(next_tick - loop.time(), 0.0))
