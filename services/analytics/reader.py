"""SQL behind the analytics: installations and group members, rollup energy, battery buckets
and chart series, over an asyncpg pool whose connections use `store.init_connection`
(timestamps as integer Unix microseconds). Reads only; every value is a bound parameter.

Guarantees: energy of several installations is summed per bucket in SQL (a 1,000-member group
returns one row per bucket, not one per member); rows come back oldest first. A signal that was
not reported is never read as 0: a mean is over the samples that reported it (NaN where none
did), and a group's power is the sum over the members that reported it.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import numpy as np

from services.analytics.capacity import BatteryBuckets
from services.analytics.localtime import Piece
from services.analytics.summary import BucketEnergy
from services.telemetry.energy import ENERGY_FIELDS, POWER_FIELDS


@dataclass(frozen=True)
class Site:
    """An installation as the analytics need it."""

    installation_id: str
    time_zone: str
    nominal_wh: float | None = None


_SITES = ("SELECT installation_id, time_zone, battery_nominal_energy_wh FROM installations "
          "WHERE installation_id = ANY($1::text[]) ORDER BY installation_id")
_GROUP_EXISTS = "SELECT EXISTS (SELECT 1 FROM hierarchy_groups WHERE path = $1::text::ltree)"
_GROUP_SITES = """
SELECT i.installation_id, i.time_zone, i.battery_nominal_energy_wh FROM installations i
 WHERE EXISTS (SELECT 1 FROM group_memberships m
                WHERE m.installation_id = i.installation_id AND m.path <@ $1::text::ltree)
 ORDER BY i.installation_id
"""
_ENERGY = (
    f"SELECT bucket, {', '.join(f'sum({f})' for f in ENERGY_FIELDS)} FROM telemetry_rollups "
    "WHERE installation_id = ANY($1::text[]) AND resolution_s = $2 AND bucket >= $3 AND bucket < $4 "
    "GROUP BY bucket ORDER BY bucket"
)
# The capacity needs battery energy and the state of charge: a bucket counts as having samples
# when some reported the state of charge, as covered for the seconds battery power was reported.
_BATTERY = (
    "SELECT bucket, battery_charge_wh, battery_discharge_wh, state_of_charge_pct_min, state_of_charge_pct_max, "
    "state_of_charge_pct_count, battery_covered_s FROM telemetry_rollups "
    "WHERE installation_id = $1 AND resolution_s = $2 AND bucket >= $3 AND bucket < $4 ORDER BY bucket"
)
# Fleet power is the sum of the members' mean power; the state of charge their mean. A member
# whose bucket has no sample reporting a signal adds NULL, which sum() and avg() skip.
_SERIES = (
    "SELECT bucket, " + ", ".join(
        f"{'avg' if f == 'state_of_charge_pct' else 'sum'}({f}_sum / nullif({f}_count, 0))" for f in POWER_FIELDS)
    + " FROM telemetry_rollups WHERE installation_id = ANY($1::text[]) AND resolution_s = $2 "
    "AND bucket >= $3 AND bucket < $4 AND sample_count > 0 GROUP BY bucket ORDER BY bucket"
)
_RAW = (f"SELECT ts, {', '.join(POWER_FIELDS)} FROM telemetry_samples "
        "WHERE installation_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4")
# Samples in [$4, $5): whole minutes [$2, $3) from the 1-minute rollups (at most $6 non-empty
# buckets, each ≥ 1 sample, so a cut-off count already exceeds the cap), edges from raw rows.
_COUNT = """
SELECT (SELECT coalesce(sum(sample_count), 0) FROM (
          SELECT sample_count FROM telemetry_rollups
           WHERE installation_id = $1 AND resolution_s = 60
             AND bucket >= $2 AND bucket < $3 AND sample_count > 0 LIMIT $6) m)
     + (SELECT count(*) FROM telemetry_samples WHERE installation_id = $1 AND ts >= $4 AND ts < $2)
     + (SELECT count(*) FROM telemetry_samples WHERE installation_id = $1 AND ts >= $3 AND ts < $5)
"""


def _site(row: asyncpg.Record) -> Site:
    return Site(row["installation_id"], row["time_zone"], row["battery_nominal_energy_wh"])


class AnalyticsReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def sites(self, installation_ids: list[str]) -> list[Site]:
        return [_site(r) for r in await self._pool.fetch(_SITES, installation_ids)]

    async def group_sites(self, path: str) -> list[Site] | None:
        """Members of the group at any depth; None when the group does not exist."""
        async with self._pool.acquire() as con:
            if not await con.fetchval(_GROUP_EXISTS, path):
                return None
            return [_site(r) for r in await con.fetch(_GROUP_SITES, path)]

    async def bucket_energy(self, installation_ids: list[str], pieces: list[Piece]) -> BucketEnergy:
        """Energy per bucket, summed over the installations, for each piece of a read plan."""
        rows: list[asyncpg.Record] = []
        async with self._pool.acquire() as con:
            for p in pieces:
                rows.extend(await con.fetch(_ENERGY, installation_ids, p.resolution_s,
                                            p.start_ms * 1_000, p.end_ms * 1_000))
        if not rows:
            return BucketEnergy.empty()
        table = np.array(rows, dtype=np.float64)  # bucket (µs) is exact in float64 up to 2255
        return BucketEnergy(table[:, 0].astype(np.int64) // 1_000, table[:, 1:])

    async def battery_buckets(self, installation_id: str, start_ms: int, end_ms: int,
                              resolution_s: int) -> BatteryBuckets:
        rows = await self._pool.fetch(_BATTERY, installation_id, resolution_s, start_ms * 1_000, end_ms * 1_000)
        table = np.array(rows, dtype=np.float64).reshape(len(rows), 7)
        table[:, 3:5] = np.nan_to_num(table[:, 3:5], nan=0.0)  # buckets without a state of charge: never used
        return BatteryBuckets(table[:, 0].astype(np.int64) // 1_000, resolution_s, table[:, 1], table[:, 2],
                              table[:, 3], table[:, 4], table[:, 5].astype(np.int64), table[:, 6])

    async def rollup_series(self, installation_ids: list[str], start_ms: int, end_ms: int,
                            resolution_s: int) -> tuple[np.ndarray, np.ndarray]:
        """Bucket starts (ms) of the buckets overlapping the range, and mean power per POWER_FIELDS."""
        size = resolution_s * 1_000
        first = start_ms // size * size
        rows = await self._pool.fetch(_SERIES, installation_ids, resolution_s, first * 1_000, end_ms * 1_000)
        return _columns(rows)

    async def raw_series(self, installation_id: str, start_ms: int, end_ms: int,
                         limit: int) -> tuple[np.ndarray, np.ndarray]:
        rows = await self._pool.fetch(_RAW, installation_id, start_ms * 1_000, end_ms * 1_000, limit)
        return _columns(rows)

    async def count_raw(self, installation_id: str, start_ms: int, end_ms: int, cap: int) -> int:
        """Samples in [start_ms, end_ms), exact up to `cap` (a larger answer means "more")."""
        lo = -(-start_ms // 60_000) * 60_000
        hi = end_ms // 60_000 * 60_000
        if lo > hi:
            lo = hi = end_ms
        return int(await self._pool.fetchval(_COUNT, installation_id, lo * 1_000, hi * 1_000,
                                             start_ms * 1_000, end_ms * 1_000, cap + 1))


def _columns(rows: list[asyncpg.Record]) -> tuple[np.ndarray, np.ndarray]:
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 1 + len(POWER_FIELDS))
    return table[:, 0].astype(np.int64) // 1_000, table[:, 1:]
