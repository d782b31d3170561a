"""The telemetry read API (gRPC, `gridtwin.telemetry.v1.TelemetryService`) over the store's tables
and, for live samples, the telemetry topic.

Guarantees:
- QueryRange returns at most `max_points` points per page (0 = `ApiSettings.default_max_points`,
  never more than MAX_POINTS), oldest first, and a `next_page_token` whenever the range was not
  read to its end: nothing is left out silently. Pages are keyset pages (after the last point's
  time, and device for raw samples), so points stored meanwhile before the cursor are not seen
  and none is returned twice. RESOLUTION_AUTO is the finest of RAW, 1 min, 15 min, 1 h that
  fits the budget, else 1 day, paged (`choose_resolution`); the first page decides and the token
  keeps it. An explicit resolution that would need more than MAX_POINTS points is refused with
  INVALID_ARGUMENT.
- 1-day points are the installation's local days by default (its time zone, UTC when it has
  none), summed from the finest-needed UTC-aligned rollups as analytics does
  (services/analytics/localtime.py), or UTC days on request; `time_zone` says which.
- Rollup points are the stored buckets that overlap [start, end): the first may begin before
  `start`, and values (means) and energy cover whole buckets. Buckets without samples or energy
  are left out; buckets with energy but no samples carry the energy and no values.
- A signal that was not reported is unset, never 0: in a raw point where the sample lacked it,
  in a rollup point where no sample of the bucket had it (the mean is over the samples that
  had it), and in a point's energy where no interval of the bucket had it (`*_covered_s`).
- Access: the AssetService's tokens (read scope), admitted by services/access/guard.py; the
  installation must lie within the token's groups (PERMISSION_DENIED before NOT_FOUND).
- StreamLiveSamples delivers, per subscriber and device, samples with strictly increasing
  timestamps, from (about) the moment the subscription is registered. A subscriber that falls
  `queue_size` records behind is ended with RESOURCE_EXHAUSTED instead of buffering more.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import re
from dataclasses import dataclass

import asyncpg
import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import DecodeError
from prometheus_client import Counter, Gauge, Histogram

from gridtwin import paging
from gridtwin.api.device.v1 import device_pb2
from gridtwin.api.telemetry.v1 import records_pb2
from gridtwin.api.telemetry.v1 import telemetry_service_pb2 as pb
from gridtwin.api.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from gridtwin.errors import InvalidArgument, NotFound, ResourceExhausted
from gridtwin.grpc_server import GrpcApi, GrpcServer, observing
from gridtwin.settings import KafkaSettings, Settings
from services.access.authentication import Authenticator
from services.access.guard import AccessGuard, refuse_unless_visible
from services.analytics import localtime
from services.telemetry.energy import CHANNEL_COVERAGE, ENERGY_FIELDS, POWER_FIELDS

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["TelemetryService"]
SERVICE_NAME = SERVICE.full_name
MAX_POINTS = 10_000
ROLLUP_SECONDS: dict[pb.Resolution, int] = {
    pb.RESOLUTION_ONE_MINUTE: 60, pb.RESOLUTION_FIFTEEN_MINUTES: 900,
    pb.RESOLUTION_ONE_HOUR: 3_600, pb.RESOLUTION_ONE_DAY: 86_400,
}
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # as the devices table constrains installation ids
_MAX_MS = 253_402_300_800_000  # year 10000

RPCS = Counter("gridtwin_api_rpcs_total", "RPCs finished, by method and status code", ["method", "code"])
LATENCY = Histogram(
    "gridtwin_api_rpc_latency_seconds", "Unary RPC latency", ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SUBSCRIBERS = Gauge("gridtwin_api_live_subscribers", "Open StreamLiveSamples subscriptions")
DROPPED = Counter("gridtwin_api_live_subscribers_dropped_total", "Live subscribers ended for falling behind")
UNDECODABLE = Counter("gridtwin_api_live_records_undecodable_total", "Live records skipped as undecodable")


# ------------------------------------------------------------ pure helpers

def bucket_count(start_ms: int, end_ms: int, resolution_s: int) -> int:
    """Aligned buckets of `resolution_s` overlapping [start_ms, end_ms) (end > start)."""
    size = resolution_s * 1_000
    return (end_ms - 1) // size - start_ms // size + 1


def choose_resolution(requested: pb.Resolution, start_ms: int, end_ms: int, max_points: int,
                      raw_count: int | None) -> pb.Resolution:
    """The resolution to answer with. `raw_count` (samples in the range) is needed for AUTO and
    RAW. Raises ValueError for an unknown resolution or an explicit one over MAX_POINTS points."""
    if requested == pb.RESOLUTION_RAW:
        assert raw_count is not None
        if raw_count > MAX_POINTS:
            raise ValueError(f"{raw_count} raw samples in range, limit {MAX_POINTS}")
        return requested
    if requested in ROLLUP_SECONDS:
        buckets = bucket_count(start_ms, end_ms, ROLLUP_SECONDS[requested])
        if buckets > MAX_POINTS:
            raise ValueError(f"{buckets} buckets in range, limit {MAX_POINTS}")
        return requested
    if requested != pb.RESOLUTION_AUTO:
        raise ValueError(f"unknown resolution {requested}")
    assert raw_count is not None
    if raw_count <= max_points:
        return pb.RESOLUTION_RAW
    for resolution, seconds in ROLLUP_SECONDS.items():
        if bucket_count(start_ms, end_ms, seconds) <= max_points:
            return resolution
    return pb.RESOLUTION_ONE_DAY


# ------------------------------------------------------------ SQL

_SAMPLE_COLUMNS = "ts, " + ", ".join(POWER_FIELDS)
_LATEST = (f"SELECT device_id, {_SAMPLE_COLUMNS}, grid_status, extra FROM telemetry_samples "
           "WHERE installation_id = $1 ORDER BY ts DESC LIMIT 1")
# Keyset pages: ($4, $5) is the last point of the previous page (ts, device), the first page
# starts just before the range. Two devices of one installation may share a timestamp.
_RAW = (f"SELECT device_id, {_SAMPLE_COLUMNS} FROM telemetry_samples "
        "WHERE installation_id = $1 AND ts >= $2 AND ts < $3 AND (ts, device_id) > ($4, $5) "
        "ORDER BY ts, device_id LIMIT $6")
_ROLLUPS = (
    f"SELECT bucket, sample_count, {', '.join(f + '_sum, ' + f + '_count' for f in POWER_FIELDS)}, "
    f"{', '.join(ENERGY_FIELDS)} FROM telemetry_rollups "
    "WHERE installation_id = $1 AND resolution_s = $2 AND bucket >= $3 AND bucket < $4 "
    "AND (sample_count > 0 OR covered_s > 0) ORDER BY bucket LIMIT $5"
)
# Local days ($6, an IANA zone) from rollups of $2 s, whose UTC-aligned buckets cut at every local
# midnight of the range (localtime.read_resolution): each day's sums, keyed by its local midnight.
_LOCAL_DAYS = (
    "SELECT (date_trunc('day', bucket AT TIME ZONE $6) AT TIME ZONE $6) AS bucket, "
    "sum(sample_count)::bigint AS sample_count, "
    + ", ".join(f"sum({f}_sum) AS {f}_sum, sum({f}_count)::bigint AS {f}_count" for f in POWER_FIELDS) + ", "
    + ", ".join(f"sum({f}) AS {f}" for f in ENERGY_FIELDS)
    + " FROM telemetry_rollups WHERE installation_id = $1 AND resolution_s = $2 AND bucket >= $3 AND bucket < $4 "
    "GROUP BY 1 HAVING sum(sample_count) > 0 OR sum(covered_s) > 0 ORDER BY 1 LIMIT $5"
)
_ZONE = "SELECT time_zone FROM installations WHERE installation_id = $1"
# Samples in [$4, $5): whole minutes [$2, $3) from the 1-minute rollups (at most $6 non-empty
# buckets are read: each holds ≥ 1 sample, so a cut-off sum already exceeds any budget), the
# partial minutes at the edges from the raw rows.
_COUNT = """
SELECT (SELECT coalesce(sum(sample_count), 0) FROM (
          SELECT sample_count FROM telemetry_rollups
           WHERE installation_id = $1 AND resolution_s = 60
             AND bucket >= $2 AND bucket < $3 AND sample_count > 0 LIMIT $6) m)
     + (SELECT count(*) FROM telemetry_samples WHERE installation_id = $1 AND ts >= $4 AND ts < $2)
     + (SELECT count(*) FROM telemetry_samples WHERE installation_id = $1 AND ts >= $3 AND ts < $5)
"""


async def count_samples(pool: asyncpg.Pool, installation_id: str, start_ms: int, end_ms: int) -> int:
    """Samples in [start_ms, end_ms), exact up to MAX_POINTS (a larger answer means "more")."""
    lo = -(-start_ms // 60_000) * 60_000
    hi = end_ms // 60_000 * 60_000
    if lo > hi:  # no whole minute inside: count the raw rows only
        lo = hi = end_ms
    return int(await pool.fetchval(_COUNT, installation_id, lo * 1_000, hi * 1_000,
                                   start_ms * 1_000, end_ms * 1_000, MAX_POINTS + 1))


# ------------------------------------------------------------ live samples

class _Subscriber:
    def __init__(self, installation_id: str, queue_size: int) -> None:
        self.installation_id = installation_id
        self.queue: asyncio.Queue[tuple[str, list[device_pb2.Sample]]] = asyncio.Queue(queue_size)
        self.overflowed = False
        self._last_ms: dict[str, int] = {}  # per device: the newest timestamp queued

    def offer(self, record: records_pb2.TelemetryRecord) -> bool:
        """Queues the record's samples newer than those already queued; False when full."""
        last = self._last_ms.get(record.device_id)
        fresh = []
        for sample in record.samples:
            if last is None or sample.timestamp_unix_ms > last:
                fresh.append(sample)
                last = sample.timestamp_unix_ms
        if not fresh:
            return True
        try:
            self.queue.put_nowait((record.device_id, fresh))
        except asyncio.QueueFull:
            self.overflowed = True
            return False
        assert last is not None
        self._last_ms[record.device_id] = last
        return True


class LiveHub:
    """One consumer per process on the telemetry topic (no group: every partition, from the end),
    fanning records out to subscribers by installation id. `start()`/`stop()`.

    Records whose key names an installation nobody follows are not decoded (the gateway keys
    records by installation id). The broker's "latest" offset may lie a few records early, so a
    new subscriber can get a few older samples, never one older than one it already got."""

    def __init__(self, kafka: KafkaSettings, *, queue_size: int = 256) -> None:
        self._kafka = kafka
        self._queue_size = queue_size
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._kafka.bootstrap_servers, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="latest")
        await consumer.start()
        try:
            await consumer.topics()  # fills the metadata
            partitions = consumer.partitions_for_topic(self._kafka.telemetry_topic)
            if not partitions:
                raise RuntimeError(f"topic {self._kafka.telemetry_topic!r} does not exist")
            tps = [TopicPartition(self._kafka.telemetry_topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def subscribe(self, installation_id: str) -> _Subscriber:
        subscriber = _Subscriber(installation_id, self._queue_size)
        self._subscribers.setdefault(installation_id, set()).add(subscriber)
        SUBSCRIBERS.inc()
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        followers = self._subscribers.get(subscriber.installation_id)
        if followers is not None and subscriber in followers:
            followers.discard(subscriber)
            SUBSCRIBERS.dec()
            if not followers:
                del self._subscribers[subscriber.installation_id]

    def subscribers(self, installation_id: str) -> int:
        return len(self._subscribers.get(installation_id, ()))

    def dispatch(self, record: records_pb2.TelemetryRecord) -> None:
        """Hands one record to its installation's subscribers; ends those that are full."""
        for subscriber in list(self._subscribers.get(record.installation_id, ())):
            if not subscriber.offer(record):
                DROPPED.inc()
                self.unsubscribe(subscriber)

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            try:
                fetched = await consumer.getmany(timeout_ms=1_000, max_records=2_000)
            except Exception as exc:  # aiokafka reconnects by itself; keep fetching
                log.warning("live fetch failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for messages in fetched.values():
                for message in messages:
                    key = message.key
                    if key is not None and key.decode(errors="replace") not in self._subscribers:
                        continue
                    record = records_pb2.TelemetryRecord()
                    try:
                        record.ParseFromString(message.value)
                    except DecodeError:
                        UNDECODABLE.inc()
                        continue
                    self.dispatch(record)


# ------------------------------------------------------------ the servicer





_observed = observing(RPCS, LATENCY, unavailable=(OSError, asyncpg.PostgresConnectionError),
                      unavailable_detail="telemetry storage unavailable")


def _installation(installation_id: str) -> str:
    if not _ID.fullmatch(installation_id):
        raise InvalidArgument("installation_id", "1-128 characters of [A-Za-z0-9_.:-]")
    return installation_id


def _invalid(detail: str) -> InvalidArgument:
    return InvalidArgument("", detail)


class TelemetryServicer(pb_grpc.TelemetryServiceServicer):
    def __init__(self, pool: asyncpg.Pool, hub: LiveHub, *, default_max_points: int = 1_000) -> None:
        self._pool = pool
        self._hub = hub
        self._default_max_points = min(default_max_points, MAX_POINTS)

    @_observed("GetLatestSample")
    async def GetLatestSample(self, request: pb.GetLatestSampleRequest,
                              context: grpc.aio.ServicerContext) -> pb.GetLatestSampleResponse:
        installation = _installation(request.installation_id)
        await refuse_unless_visible(self._pool, installation)
        row = await self._pool.fetchrow(_LATEST, installation)
        if row is None:
            raise NotFound("no samples for this installation")
        sample = device_pb2.Sample(
            timestamp_unix_ms=row["ts"] // 1_000, grid_status=row["grid_status"],
            extra=json.loads(row["extra"]) if row["extra"] else None,
            **_reported(row),
        )
        return pb.GetLatestSampleResponse(device_id=row["device_id"], sample=sample)

    @_observed("QueryRange")
    async def QueryRange(self, request: pb.QueryRangeRequest,
                         context: grpc.aio.ServicerContext) -> pb.QueryRangeResponse:
        installation = _installation(request.installation_id)
        start, end = request.start_unix_ms, request.end_unix_ms
        if not 0 <= start < end <= _MAX_MS:
            raise _invalid("need 0 <= start_unix_ms < end_unix_ms <= year 10000")
        if request.max_points > MAX_POINTS:
            raise _invalid(f"max_points above {MAX_POINTS}")
        await refuse_unless_visible(self._pool, installation)
        max_points = request.max_points or self._default_max_points
        query = query_key(request)
        cursor: PageCursor | None = None
        if request.page_token:
            try:
                cursor = parse_cursor(request.page_token, query)
            except ValueError as exc:
                raise _invalid(str(exc)) from None
            resolution = cursor.resolution
        else:
            raw_count = None
            if request.resolution in (pb.RESOLUTION_AUTO, pb.RESOLUTION_RAW):
                raw_count = await count_samples(self._pool, installation, start, end)
            try:
                resolution = choose_resolution(request.resolution, start, end, max_points, raw_count)
            except ValueError as exc:
                raise _invalid(str(exc)) from None
        time_zone = ""
        if resolution == pb.RESOLUTION_RAW:
            after_us, after_device = (cursor.after_us, cursor.device_id) if cursor else (start * 1_000 - 1, "")
            rows = await self._pool.fetch(_RAW, installation, start * 1_000, end * 1_000, after_us, after_device,
                                          max_points + 1)
            page, more = rows[:max_points], len(rows) > max_points
            points = [_point(r["ts"] // 1_000, 1, _reported(r)) for r in page]
            last = (page[-1]["ts"], page[-1]["device_id"]) if page else None
        else:
            if resolution == pb.RESOLUTION_ONE_DAY and request.day_boundaries != pb.DAY_BOUNDARIES_UTC:
                time_zone = await self._time_zone(installation)
            elif resolution == pb.RESOLUTION_ONE_DAY:
                time_zone = "UTC"
            after_bucket_us = cursor.after_us if cursor else None
            if time_zone not in ("", "UTC"):
                rows = await self._local_days(installation, start, end, time_zone, after_bucket_us, max_points + 1)
            else:
                size_ms = ROLLUP_SECONDS[resolution] * 1_000
                first_us = start // size_ms * size_ms * 1_000 if after_bucket_us is None else after_bucket_us + 1
                rows = await self._pool.fetch(_ROLLUPS, installation, size_ms // 1_000, first_us, end * 1_000,
                                              max_points + 1)
            page, more = rows[:max_points], len(rows) > max_points
            points = [_rollup_point(r) for r in page]
            last = (page[-1]["bucket"], "") if page else None
        token = page_token(query, resolution, *last) if more and last is not None else ""
        return pb.QueryRangeResponse(resolution=resolution, points=points, next_page_token=token,
                                     time_zone=time_zone)

    async def _time_zone(self, installation: str) -> str:
        """The installation's zone, "UTC" when it has none or the zone database does not know it
        (the day points then say UTC: never a silent mix)."""
        name = await self._pool.fetchval(_ZONE, installation)
        if not name:
            return "UTC"
        try:
            localtime.zone(name)
        except localtime.ZoneError:
            log.warning("installation %s has unknown time zone %r; answering in UTC days", installation, name)
            return "UTC"
        return str(name)

    async def _local_days(self, installation: str, start_ms: int, end_ms: int, time_zone: str,
                          after_us: int | None, limit: int) -> list[asyncpg.Record]:
        """Whole local days overlapping [start_ms, end_ms) (after the cursor's day), summed from
        rollups whose buckets cut at each of their midnights."""
        tz = localtime.zone(time_zone)
        days = localtime.days_covering(start_ms, end_ms, tz)
        resolution_s = localtime.read_resolution(localtime.offsets_s(days, tz))
        lo_ms = days[0].start_ms
        if after_us is not None:   # the cursor is a day's local midnight: go on at the next one
            after_day = localtime.local_date(after_us // 1_000, tz)
            lo_ms = localtime.local_midnight_ms(after_day + datetime.timedelta(days=1), tz)
        lo_us = lo_ms * 1_000
        return list(await self._pool.fetch(_LOCAL_DAYS, installation, resolution_s, lo_us, days[-1].end_ms * 1_000,
                                           limit, time_zone))

    @_observed("StreamLiveSamples", timed=False)
    async def StreamLiveSamples(self, request: pb.StreamLiveSamplesRequest,
                                context: grpc.aio.ServicerContext) -> None:
        installation = _installation(request.installation_id)
        await refuse_unless_visible(self._pool, installation)
        subscriber = self._hub.subscribe(installation)
        try:
            while True:
                device_id, samples = await subscriber.queue.get()
                for sample in samples:
                    if subscriber.overflowed:
                        raise ResourceExhausted("live subscriber fell behind; reconnect")
                    await context.write(pb.LiveSample(device_id=device_id, sample=sample))
        finally:
            self._hub.unsubscribe(subscriber)


# ------------------------------------------------------------ page tokens


@dataclass(frozen=True)
class PageCursor:
    resolution: pb.Resolution
    after_us: int        # the previous page's last point: sample time or bucket start (µs)
    device_id: str       # raw pages: the last point's device (two may share a time)


def query_key(request: pb.QueryRangeRequest) -> str:
    """What a page token is bound to: the query's fields other than the token."""
    fields = (request.installation_id, request.start_unix_ms, request.end_unix_ms, request.max_points,
              int(request.resolution), int(request.day_boundaries))
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]


def page_token(query: str, resolution: pb.Resolution, after_us: int, device_id: str) -> str:
    return paging.page_token(after_us, f"{query}:{int(resolution)}:{device_id}")


def parse_cursor(token: str, query: str) -> PageCursor:
    """The cursor of `token`; ValueError when it is malformed or belongs to another query."""
    after_us, key = paging.parse_page_token(token)
    parts = key.split(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) not in pb.Resolution.values():
        raise ValueError("malformed page_token")
    if parts[0] != query:
        raise ValueError("page_token belongs to another query (same fields as the first page, please)")
    return PageCursor(pb.Resolution.Value(pb.Resolution.Name(int(parts[1]))), after_us, parts[2])


def _reported(row: asyncpg.Record) -> dict[str, float]:
    """The signals of a stored sample that it reported (NULL: not reported, left unset)."""
    return {f: row[f] for f in POWER_FIELDS if row[f] is not None}


def energy_totals(row: asyncpg.Record) -> pb.EnergyTotals:
    """A rollup row's energy; a channel none of whose intervals reported its signal is unset."""
    totals = {f: row[f] for f in ENERGY_FIELDS if f not in CHANNEL_COVERAGE}
    for channel, covered in CHANNEL_COVERAGE.items():
        if all(row[c] > 0 for c in covered):
            totals[channel] = row[channel]
    return pb.EnergyTotals(**totals)


def _point(ts_ms: int, samples: int, values: dict[str, float],
           energy: pb.EnergyTotals | None = None) -> pb.SeriesPoint:
    point = pb.SeriesPoint(timestamp_unix_ms=ts_ms, sample_count=samples, energy=energy)
    for name, value in values.items():
        setattr(point, name, value)
    return point


def _rollup_point(row: asyncpg.Record) -> pb.SeriesPoint:
    means = {f: row[f"{f}_sum"] / row[f"{f}_count"] for f in POWER_FIELDS if row[f"{f}_count"]}
    return _point(row["bucket"] // 1_000, row["sample_count"], means, energy_totals(row))


# ------------------------------------------------------------ the server

class TelemetryApi(GrpcApi):
    """The gRPC server: TelemetryService, health checking and reflection, with its LiveHub.
    `async with TelemetryApi(...)` or `start()`/`stop()`; `port` is the bound port."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, *, authenticator: Authenticator,
                 hub: LiveHub | None = None) -> None:
        self._settings = settings
        self._pool = pool
        self.hub = hub or LiveHub(settings.kafka)
        api = settings.api
        servicer = TelemetryServicer(pool, self.hub, default_max_points=api.default_max_points)
        self._server = GrpcServer(api.host, api.port, [SERVICE_NAME],
                                  lambda server: pb_grpc.add_TelemetryServiceServicer_to_server(servicer, server),
                                  tls=settings.tls, interceptors=[AccessGuard(authenticator, [SERVICE])])

    async def start(self) -> None:
        await self.hub.start()
        try:
            await self._server.start()
        except BaseException:
            await self.hub.stop()
            raise

    async def stop(self, grace_s: float = 5.0) -> None:
        """Reports NOT_SERVING, ends RPCs (streams after `grace_s`), then stops the hub."""
        await self._server.stop(grace_s)
        await self.hub.stop()


async def serve_api(settings: Settings, pool: asyncpg.Pool, authenticator: Authenticator) -> TelemetryApi:
    """Starts the API on `settings.api.host:port` (0 = ephemeral; see `.port`); caller stops it."""
    api = TelemetryApi(settings, pool, authenticator=authenticator)
    await api.start()
    return api
