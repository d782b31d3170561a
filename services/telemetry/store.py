"""The telemetry time-series store in Postgres: raw samples and rollups, written in batches.

`TelemetryStore.write` stores a batch of TelemetryRecords in one transaction: a binary COPY into
a per-connection staging table, an INSERT … ON CONFLICT DO NOTHING into the daily-partitioned
samples table (idempotent on device and timestamp, so replays store nothing twice), and the
rollup deltas of exactly the rows that were new (see `energy.rollup_deltas`). Either all of it
commits or none.

Timestamps cross the asyncpg boundary as integer microseconds (a tuple codec), never as
datetime objects: at 100k samples/s the conversion would dominate.

A signal a sample did not report is stored as NULL (see services/telemetry/signals.py) and is NaN
in the numpy columns the rollups are computed from (`energy.py` says how it is counted).
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import numpy as np

from gridtwin.api.telemetry.v1 import records_pb2
from services.telemetry.energy import ENERGY_FIELDS, POWER_FIELDS, RollupDelta, Samples, rollup_deltas
from services.telemetry.signals import values as signal_values

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
DAY_MS = 86_400_000

_COLUMNS = ("device_id", "ts", "installation_id", *POWER_FIELDS, "grid_status", "extra", "received_at")
_SELECT_SAMPLE = "device_id, installation_id, ts, " + ", ".join(POWER_FIELDS)


async def init_connection(con: asyncpg.Connection) -> None:
    """Pool `init`: integer-microsecond timestamps and the staging table for COPY."""
    for name in ("timestamptz", "timestamp"):
        await con.set_type_codec(
            name, schema="pg_catalog", format="tuple",
            encoder=lambda us: (us - PG_EPOCH_US,), decoder=lambda t: t[0] + PG_EPOCH_US,
        )
    await con.execute(
        "CREATE TEMP TABLE IF NOT EXISTS telemetry_staging "
        "(LIKE telemetry_samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await con.execute(
        "CREATE TEMP TABLE IF NOT EXISTS rollup_staging "
        "(LIKE telemetry_rollups INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )


@dataclass(frozen=True)
class WriteResult:
    samples: int
    stored: int
    # Of the duplicates: samples whose (device, timestamp) was stored with other values. The stored
    # values stay (first write wins); these are counted and logged, never merged.
    conflicting: tuple[tuple[str, int], ...] = ()   # (device id, timestamp µs), all, in that order
    conflicts: int = 0

    @property
    def duplicates(self) -> int:
        return self.samples - self.stored


@dataclass
class _Codes:
    """Small integer codes for device and installation ids within one batch."""

    ids: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def code(self, value: str) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.ids)
            self.ids.append(value)
        return found


_STAT_COLUMNS = tuple(f"{f}_{agg}" for f in POWER_FIELDS for agg in ("count", "sum", "min", "max"))
_ROLLUP_COLUMNS = ("installation_id", "resolution_s", "bucket", "sample_count", *_STAT_COLUMNS, *ENERGY_FIELDS)


def _rollup_sql() -> str:
    """Adds the staged deltas to the rollups. A delta's min/max is ±infinity where the bucket got
    no new sample (NaN-free arrays copy fast); NULLIF makes them NULL, which LEAST/GREATEST skip."""
    staged = []
    for column in _ROLLUP_COLUMNS:
        if column.endswith("_min"):
            staged.append(f"NULLIF({column}, 'Infinity'::float8)")
        elif column.endswith("_max"):
            staged.append(f"NULLIF({column}, '-Infinity'::float8)")
        else:
            staged.append(column)
    updates = ["sample_count = r.sample_count + EXCLUDED.sample_count"]
    for f in POWER_FIELDS:
        updates += [
            f"{f}_count = r.{f}_count + EXCLUDED.{f}_count",
            f"{f}_sum = r.{f}_sum + EXCLUDED.{f}_sum",
            f"{f}_min = LEAST(r.{f}_min, EXCLUDED.{f}_min)",
            f"{f}_max = GREATEST(r.{f}_max, EXCLUDED.{f}_max)",
        ]
    updates += [f"{f} = r.{f} + EXCLUDED.{f}" for f in ENERGY_FIELDS]
    return (
        f"INSERT INTO telemetry_rollups AS r ({', '.join(_ROLLUP_COLUMNS)}) "
        f"SELECT {', '.join(staged)} FROM rollup_staging "
        f"ON CONFLICT (installation_id, resolution_s, bucket) DO UPDATE SET {', '.join(updates)}"
    )


_UPSERT_ROLLUPS = _rollup_sql()

_ENSURE_PARTITION = "SELECT telemetry_ensure_partition((to_timestamp($1::float8 * 86400) AT TIME ZONE 'UTC')::date)"

_INSERT_NEW = (
    f"INSERT INTO telemetry_samples SELECT * FROM telemetry_staging "
    f"ON CONFLICT (device_id, ts) DO NOTHING RETURNING {_SELECT_SAMPLE}"
)

# Staged samples whose (device, timestamp) is stored with other values (the staged rows that were
# inserted just now equal themselves). Signals compare NULL-safely: reported vs not is a difference.
_CONFLICTS = (
    "SELECT s.device_id, s.ts FROM telemetry_staging s JOIN telemetry_samples t "
    "ON t.device_id = s.device_id AND t.ts = s.ts "
    f"WHERE ({', '.join('s.' + f for f in POWER_FIELDS)}, s.grid_status) "
    f"IS DISTINCT FROM ({', '.join('t.' + f for f in POWER_FIELDS)}, t.grid_status) "
    "ORDER BY s.device_id, s.ts"
)

# Stored samples around each device's new range: the last before it (within max_gap: one further
# away contributes no energy), all inside it, and the first after it (unbounded, so that the
# newest stored sample of the device is always among context and new rows).
_CONTEXT = f"""
SELECT s.* FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS d(device_id, lo, hi)
CROSS JOIN LATERAL (
    (SELECT {_SELECT_SAMPLE} FROM telemetry_samples t
      WHERE t.device_id = d.device_id AND t.ts < d.lo AND t.ts >= d.lo - $4::interval
      ORDER BY t.ts DESC LIMIT 1)
    UNION ALL
    (SELECT {_SELECT_SAMPLE} FROM telemetry_samples t
      WHERE t.device_id = d.device_id AND t.ts BETWEEN d.lo AND d.hi)
    UNION ALL
    (SELECT {_SELECT_SAMPLE} FROM telemetry_samples t
      WHERE t.device_id = d.device_id AND t.ts > d.hi
      ORDER BY t.ts LIMIT 1)
) s
"""


class TelemetryStore:
    """Writes are exactly-once per (device, timestamp) and keep rollups exact.

    The store remembers each device's newest stored sample so that in-order data (the normal
    case) needs no read-back. That memory is only valid while this process is the sole writer of
    those devices, i.e. while it owns their partitions: call `forget_recent()` on rebalance.
    """

    def __init__(self, pool: asyncpg.Pool, max_gap_s: float) -> None:
        self._pool = pool
        self._max_gap_s = max_gap_s
        self._partitions: set[int] = set()
        self._newest: dict[str, tuple[int, str, tuple[float | None, ...]]] = {}

    def forget_recent(self) -> None:
        self._newest.clear()

    async def write(self, records: Sequence[records_pb2.TelemetryRecord]) -> WriteResult:
        rows = list(_rows(records))
        if not rows:
            return WriteResult(0, 0)
        await self._ensure_partitions({r[1] // 1_000 // DAY_MS for r in rows})
        ranges = _ranges(rows)
        async with self._pool.acquire() as con, con.transaction():
            context = await self._context(con, ranges)
            await con.copy_records_to_table("telemetry_staging", records=rows, columns=_COLUMNS)
            new = await con.fetch(_INSERT_NEW)
            if new:
                await self._add_rollups(con, new, context)
            conflicts: list = []   # type: ignore[type-arg]
            if len(new) < len(rows):   # replays: only then is a conflict possible, and looked for
                conflicts = await con.fetch(_CONFLICTS)
        self._remember([*context, *new])
        listed = tuple((r["device_id"], r["ts"]) for r in conflicts)   # at most the batch's samples
        return WriteResult(len(rows), len(new), listed, len(conflicts))

    async def _ensure_partitions(self, days: set[int]) -> None:
        missing = sorted(days - self._partitions)
        if missing:
            async with self._pool.acquire() as con:
                for day in missing:
                    await con.execute(_ENSURE_PARTITION, day)
            self._partitions.update(missing)

    async def _context(self, con: asyncpg.Connection, ranges: dict[str, tuple[int, int]]) -> list[tuple]:
        """Stored neighbours of the new samples; from memory when the data is in order."""
        known: list[tuple] = []
        unknown: list[str] = []
        for device, (lo_us, _hi) in ranges.items():
            newest = self._newest.get(device)
            if newest is not None and newest[0] < lo_us:
                known.append((device, newest[1], newest[0], *newest[2]))
            else:
                unknown.append(device)
        if unknown:
            gap_us = int(self._max_gap_s * 1_000_000)
            fetched = await con.fetch(
                _CONTEXT, unknown, [ranges[d][0] for d in unknown], [ranges[d][1] for d in unknown],
                datetime.timedelta(microseconds=gap_us),
            )
            known.extend(tuple(r) for r in fetched)
        return known

    async def _add_rollups(self, con: asyncpg.Connection, new: list, context: list[tuple]) -> None:
        devices, installations = _Codes(), _Codes()
        new_samples = _columns([tuple(r) for r in new], devices, installations)
        context_samples = _columns(context, devices, installations)
        deltas = rollup_deltas(new_samples, context_samples, self._max_gap_s)
        rows = [row for delta in deltas for row in _rollup_rows(delta, installations.ids)]
        await con.copy_records_to_table("rollup_staging", records=rows, columns=_ROLLUP_COLUMNS)
        await con.execute(_UPSERT_ROLLUPS)

    def _remember(self, rows: Sequence[Sequence]) -> None:
        """Keeps the newest of context and new rows per device: the newest stored sample."""
        for row in rows:
            known = self._newest.get(row[0])
            if known is None or row[2] > known[0]:
                self._newest[row[0]] = (row[2], row[1], tuple(row[3:]))


def _rows(records: Sequence[records_pb2.TelemetryRecord]):  # type: ignore[no-untyped-def]
    for record in records:
        device, installation = record.device_id, record.installation_id
        received_us = record.received_unix_ms * 1_000
        for s in record.samples:
            yield (
                device,
                s.timestamp_unix_ms * 1_000,
                installation,
                *signal_values(s),   # None (NULL) where not reported
                s.grid_status,
                json.dumps(dict(s.extra)) if s.extra else None,
                received_us,
            )


def _ranges(rows: list[tuple]) -> dict[str, tuple[int, int]]:
    ranges: dict[str, tuple[int, int]] = {}
    for row in rows:
        device, ts = row[0], row[1]
        lo_hi = ranges.get(device)
        ranges[device] = (ts, ts) if lo_hi is None else (min(lo_hi[0], ts), max(lo_hi[1], ts))
    return ranges


def _columns(rows: list[tuple], devices: _Codes, installations: _Codes) -> Samples:
    """(device, installation, ts_us, *POWER_FIELDS) rows → columnar Samples in ms (None → NaN)."""
    if not rows:
        return Samples.empty()
    return Samples(
        series=np.fromiter((devices.code(r[0]) for r in rows), np.int64, len(rows)),
        group=np.fromiter((installations.code(r[1]) for r in rows), np.int64, len(rows)),
        ts_ms=np.fromiter((r[2] // 1_000 for r in rows), np.int64, len(rows)),
        values=np.array([r[3:] for r in rows], dtype=np.float64),
    )


def _rollup_rows(delta: RollupDelta, installation_ids: list[str]) -> list[tuple]:
    """Rows in _ROLLUP_COLUMNS order; timestamps in microseconds (see init_connection).

    Built column by column (one `tolist` per column, one C-level zip for the rows): a live batch
    holds four rollup rows per installation, so a per-row Python loop here costs more than the
    rollup arithmetic itself."""
    mins = np.where(np.isnan(delta.mins), np.inf, delta.mins)
    maxs = np.where(np.isnan(delta.maxs), -np.inf, delta.maxs)
    columns: list[list] = []   # type: ignore[type-arg]
    for k in range(len(POWER_FIELDS)):
        columns += [delta.counts[:, k].tolist(), delta.sums[:, k].tolist(), mins[:, k].tolist(),
                    maxs[:, k].tolist()]                      # f_count (ints for COPY), f_sum, f_min, f_max
    columns += [delta.energy[:, j].tolist() for j in range(delta.energy.shape[1])]
    ids = [installation_ids[g] for g in delta.group.tolist()]
    return list(zip(ids, itertools.repeat(delta.resolution_s), (delta.bucket_ms * 1_000).tolist(),
                    delta.count.tolist(), *columns, strict=False))
