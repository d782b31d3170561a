"""The twins' Postgres tables (asyncpg): snapshots, the telemetry journal they replay, alerts with
their outbox flag, rule overrides, installation facts (the assets service's table) and the shard
layout. Every call is one batched round trip (arrays through `unnest`), never one per twin.

Timestamps cross the boundary as integer Unix microseconds (`init_connection`), values in the
domain's units; converting rows to domain values happens here, at the edge.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from actors.twin.commands import TwinCommand, to_record
from actors.twin.model import (
    Alert,
    AlertState,
    CustomerNotice,
    InstallationFacts,
    RuleId,
    Severity,
)

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds

log = logging.getLogger(__name__)
_KNOWN_RULES = frozenset(rule.value for rule in RuleId)


async def init_connection(con: asyncpg.Connection) -> None:
    """Pool `init`: timestamps as integer Unix microseconds."""
    for name in ("timestamptz", "timestamp"):
        await con.set_type_codec(
            name, schema="pg_catalog", format="tuple",
            encoder=lambda us: (us - PG_EPOCH_US,), decoder=lambda t: t[0] + PG_EPOCH_US,
        )


async def create_pool(url: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=size, init=init_connection)
    assert pool is not None
    return pool


@dataclass
class Loaded:
    """What activating a twin needs from storage."""

    facts: InstallationFacts
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshot: dict[str, Any] | None = None
    open_alerts: list[Alert] = field(default_factory=list)


# installation, device, ts_ms, site, battery, solar, load (W), state of charge (%) — None where the
# device did not report the signal (NULL) — and grid status.
ReplayRow = tuple[str, str, int, float | None, float | None, float | None, float | None, float | None, int]


_LOAD = """
SELECT i.id, s.state::text AS state, inst.battery_nominal_energy_wh, inst.max_charge_power_w,
       inst.max_discharge_power_w, inst.backup_reserve_pct, inst.time_zone, inst.stormwatch_enabled, inst.priority
  FROM unnest($1::text[]) AS i(id)
  LEFT JOIN twin_snapshots s ON s.installation_id = i.id
  LEFT JOIN installations inst ON inst.installation_id = i.id
"""
_OVERRIDES = "SELECT installation_id, rule, params::text FROM twin_rule_overrides WHERE installation_id = ANY($1)"
_ALERT_COLUMNS = ("alert_id, installation_id, rule, severity, state, first_seen, last_seen, cleared_at, samples, "
                  "details::text AS details")
_OPEN_ALERTS = f"SELECT {_ALERT_COLUMNS} FROM twin_alerts WHERE installation_id = ANY($1) AND state <> 'cleared'"
_REPLAY = """
SELECT s.installation_id, s.device_id, s.ts, s.site_power_w, s.battery_power_w, s.solar_power_w,
       s.load_power_w, s.state_of_charge_pct, s.grid_status
  FROM unnest($1::text[], $2::timestamptz[]) AS r(id, since)
  JOIN telemetry_samples s ON s.installation_id = r.id AND s.ts > r.since
 ORDER BY s.installation_id, s.ts
 LIMIT $3
"""
_SAVE_SNAPSHOTS = """
INSERT INTO twin_snapshots (installation_id, shard_hash, version, last_sample_at, state, updated_at)
SELECT id, h, v, ts, st::jsonb, now()
  FROM unnest($1::text[], $2::int[], $3::bigint[], $4::timestamptz[], $5::text[]) AS x(id, h, v, ts, st)
ON CONFLICT (installation_id) DO UPDATE
   SET shard_hash = excluded.shard_hash, version = excluded.version, last_sample_at = excluded.last_sample_at,
       state = excluded.state, updated_at = now()
 WHERE twin_snapshots.version <= excluded.version
"""
# The lifecycle only moves forward: a replayed "raised" never reopens an ongoing or cleared alert,
# times only grow, severity only rises. Rows whose stored values do not change are left alone and
# not returned, so a replay after a crash publishes nothing twice.
_NEW_STATE = """CASE WHEN a.state = 'cleared' OR x.state = 'cleared' THEN 'cleared'
                     WHEN a.state = 'ongoing' OR x.state = 'ongoing' THEN 'ongoing' ELSE 'raised' END"""
_SAVE_ALERTS = f"""
INSERT INTO twin_alerts AS a (alert_id, installation_id, rule, severity, state, first_seen, last_seen, cleared_at,
                              samples, details, published, updated_at)
SELECT id, inst, rule, sev, st, fs, ls, cl, n, d::jsonb, false, now()
  FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::text[], $6::timestamptz[],
              $7::timestamptz[], $8::timestamptz[], $9::bigint[], $10::text[])
       AS x(id, inst, rule, sev, st, fs, ls, cl, n, d)
ON CONFLICT (alert_id) DO UPDATE
   SET state = {_NEW_STATE.replace('x.', 'excluded.')},
       severity = greatest(a.severity, excluded.severity),
       last_seen = greatest(a.last_seen, excluded.last_seen),
       cleared_at = coalesce(a.cleared_at, excluded.cleared_at),
       samples = greatest(a.samples, excluded.samples),
       details = CASE WHEN excluded.last_seen >= a.last_seen THEN excluded.details ELSE a.details END,
       published = false, updated_at = now()
 WHERE ({_NEW_STATE.replace('x.', 'excluded.')}, greatest(a.severity, excluded.severity),
        greatest(a.last_seen, excluded.last_seen), coalesce(a.cleared_at, excluded.cleared_at))
       IS DISTINCT FROM (a.state, a.severity, a.last_seen, a.cleared_at)
RETURNING {_ALERT_COLUMNS}
"""
# An open alert's last_seen, samples and details moving on between its lifecycle events: no
# state change, nothing to publish (ListAlerts and GetTwin read the row, notifications need not).
_REFRESH_ALERTS = """
UPDATE twin_alerts a SET last_seen = greatest(a.last_seen, x.ls), samples = greatest(a.samples, x.n),
                         details = CASE WHEN x.ls >= a.last_seen THEN x.d::jsonb ELSE a.details END, updated_at = now()
  FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[]) AS x(id, ls, n, d)
 WHERE a.alert_id = x.id AND a.state <> 'cleared' AND (x.ls > a.last_seen OR x.n > a.samples)
"""
_MARK_PUBLISHED = """
UPDATE twin_alerts a SET published = true
  FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS p(id, st, ls)
 WHERE a.alert_id = p.id AND a.state = p.st AND a.last_seen = p.ls
"""
_UNPUBLISHED = f"""
SELECT {_ALERT_COLUMNS} FROM twin_alerts
 WHERE NOT published AND updated_at < now() - make_interval(secs => $1)
 ORDER BY updated_at LIMIT $2
"""
_RECOVERABLE = """
SELECT installation_id FROM twin_snapshots
 WHERE shard_hash % $1 = $2 AND (updated_at > now() - make_interval(secs => $3)
                                 OR jsonb_array_length(coalesce(state->'stormwatch'->'storms', '[]')) > 0
                                 OR installation_id IN (SELECT installation_id FROM twin_alerts
                                                         WHERE state <> 'cleared'))
"""
_SAVE_INTENTS = """
INSERT INTO twin_control_intents (intent_id, installation_id, source, kind, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]::jsonb[])
ON CONFLICT (intent_id) DO NOTHING
"""
_SAVE_NOTICES = """
INSERT INTO customer_notifications (notification_id, installation_id, kind, alert_id, title, body, at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
ON CONFLICT (notification_id) DO NOTHING
"""


def _us(ms: int | None) -> int | None:
    return ms * 1_000 if ms else None


def alert_from_row(row: asyncpg.Record) -> Alert:
    return Alert(
        alert_id=row["alert_id"], installation_id=row["installation_id"], rule=RuleId(row["rule"]),
        severity=Severity(row["severity"]), state=AlertState(row["state"]),
        first_seen_ms=row["first_seen"] // 1_000, last_seen_ms=row["last_seen"] // 1_000,
        cleared_ms=row["cleared_at"] // 1_000 if row["cleared_at"] is not None else None,
        samples=row["samples"], details=json.loads(row["details"]),
    )


class TwinStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def load(self, ids: Sequence[str]) -> dict[str, Loaded]:
        async with self.pool.acquire() as con:
            rows = await con.fetch(_LOAD, list(ids))
            overrides = await con.fetch(_OVERRIDES, list(ids))
            open_alerts = await con.fetch(_OPEN_ALERTS, list(ids))
        loaded: dict[str, Loaded] = {}
        for r in rows:
            facts = InstallationFacts(
                battery_nominal_energy_wh=r["battery_nominal_energy_wh"], max_charge_power_w=r["max_charge_power_w"],
                max_discharge_power_w=r["max_discharge_power_w"],
                backup_reserve_pct=r["backup_reserve_pct"] if r["backup_reserve_pct"] is not None else 20.0,
                time_zone=r["time_zone"] or "UTC",
                stormwatch_enabled=r["stormwatch_enabled"] if r["stormwatch_enabled"] is not None else True,
                priority=r["priority"] or "stormwatch_first",
            )
            loaded[r["id"]] = Loaded(facts, snapshot=json.loads(r["state"]) if r["state"] is not None else None)
        for r in overrides:
            loaded[r["installation_id"]].overrides[r["rule"]] = json.loads(r["params"])
        for r in open_alerts:
            if r["rule"] not in _KNOWN_RULES:   # stored by a version with a rule this one lacks: the twin cannot run it
                log.warning("twin %s: open alert %s of unknown rule %r left as stored", r["installation_id"],
                            r["alert_id"], r["rule"])
                continue
            loaded[r["installation_id"]].open_alerts.append(alert_from_row(r))
        return loaded

    async def replay(self, since_ms: dict[str, int], limit: int) -> list[ReplayRow]:
        """Stored samples after `since_ms` per installation, by installation and time; at most
        `limit` (the caller asks again from where the rows end)."""
        if not since_ms:
            return []
        ids = list(since_ms)
        rows = await self.pool.fetch(_REPLAY, ids, [since_ms[i] * 1_000 for i in ids], limit)
        return [(r[0], r[1], r[2] // 1_000, r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]

    async def save_snapshots(self, rows: Sequence[tuple[str, int, int, int, str]]) -> None:
        """(installation, shard hash, version, newest sample ms, state JSON) per twin."""
        if not rows:
            return
        ids, hashes, versions, last, states = zip(*rows, strict=True)
        await self.pool.execute(_SAVE_SNAPSHOTS, list(ids), list(hashes), list(versions),
                                [_us(t) for t in last], list(states))

    async def save_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Upserts the alerts; returns those whose stored state changed (to be published)."""
        if not alerts:
            return []
        rows = await self.pool.fetch(
            _SAVE_ALERTS, [a.alert_id for a in alerts], [a.installation_id for a in alerts],
            [a.rule.value for a in alerts], [int(a.severity) for a in alerts], [a.state.value for a in alerts],
            [_us(a.first_seen_ms) for a in alerts], [_us(a.last_seen_ms) for a in alerts],
            [_us(a.cleared_ms) for a in alerts], [a.samples for a in alerts],
            [json.dumps(a.details) for a in alerts],
        )
        return [alert_from_row(r) for r in rows]

    async def refresh_alerts(self, alerts: Sequence[Alert]) -> None:
        """Moves open alerts' last_seen, samples and details forward (never back), in one statement."""
        if alerts:
            await self.pool.execute(_REFRESH_ALERTS, [a.alert_id for a in alerts],
                                    [_us(a.last_seen_ms) for a in alerts], [a.samples for a in alerts],
                                    [json.dumps(a.details) for a in alerts])

    async def save_decisions(self, commands: Sequence[TwinCommand], notices: Sequence[CustomerNotice]) -> None:
        """The twins' commands (the outbox `twin_control_intents`, one row per command id: a twin
        and revision, so a replayed decision is stored once) and customer notifications, in one
        transaction; ones already stored are left alone."""
        if not commands and not notices:
            return
        async with self.pool.acquire() as con, con.transaction():
            if commands:
                records = [to_record(c) for c in commands]
                await con.execute(_SAVE_INTENTS, [r[0] for r in records], [r[1] for r in records],
                                  [r[2] for r in records], [r[3] for r in records],
                                  [json.dumps(r[4]) for r in records])
            if notices:
                await con.execute(_SAVE_NOTICES, [n.notice_id for n in notices], [n.installation_id for n in notices],
                                  [n.kind for n in notices], [n.alert_id for n in notices], [n.title for n in notices],
                                  [n.body for n in notices], [n.at_ms * 1_000 for n in notices])

    async def mark_published(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            await self.pool.execute(_MARK_PUBLISHED, [a.alert_id for a in alerts], [a.state.value for a in alerts],
                                    [_us(a.last_seen_ms) for a in alerts])

    async def unpublished(self, older_than_s: float, limit: int) -> list[Alert]:
        """Alerts whose current state is not known to be on the topic (the outbox)."""
        rows = await self.pool.fetch(_UNPUBLISHED, older_than_s, limit)
        return [alert_from_row(r) for r in rows]

    async def recoverable(self, shard_count: int, index: int, active_within_s: float) -> list[str]:
        """Twins of this shard that were resident recently (or have open alerts): recovered eagerly."""
        rows = await self.pool.fetch(_RECOVERABLE, shard_count, index, active_within_s)
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ layout

    async def layout(self, default_count: int) -> tuple[int, int]:
        """(epoch, shard count), created with `default_count` the first time."""
        row = await self.pool.fetchrow(
            "INSERT INTO twin_layout (id, shard_count, epoch) VALUES (1, $1, 1) "
            "ON CONFLICT (id) DO UPDATE SET id = 1 RETURNING epoch, shard_count", default_count)
        assert row is not None
        return int(row["epoch"]), int(row["shard_count"])

    async def save_layout(self, epoch: int, shard_count: int) -> None:
        await self.pool.execute(
            "UPDATE twin_layout SET epoch = $1, shard_count = $2, updated_at = now() WHERE id = 1", epoch, shard_count)
