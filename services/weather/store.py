"""Alerts in Postgres: the lifecycle applied under one lock, records and the change log written in
the same transaction.

Guarantees:
- `ingest` and `expire` of all writers are serialized (a transaction-level advisory lock), so the
  lifecycle always sees every record it needs and the change log's `seq` order is the order in
  which the changes happened.
- A change is in the log exactly when the records it follows from are: both commit together.
- Ingesting the same messages again writes nothing and logs no change (idempotent).
- Timestamps cross the wire as integer microseconds since the epoch, so the store works on any
  pool whatever its timestamp codec (the service pools decode timestamps as integers).
- An alert whose area is unknown is stored with `area_wkt` '' and no `area` or box (migration
  0010): it is listed, never matched, and `resolve_zones` gives it its area once zones are loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import shapely
from shapely.geometry.base import BaseGeometry

from services.weather import lifecycle, nws
from services.weather.geometry import AreaError, to_wkt
from services.weather.geometry import bbox as geo_bbox
from services.weather.model import (
    Alert,
    AlertChange,
    AlertId,
    AlertState,
    BBox,
    ChangeKind,
    MessageType,
    Rejection,
    StoredAlert,
    ZoneCode,
)

_LOCK_KEY = 0x5745_4154   # "WEAT": the advisory lock of the alert lifecycle


def _us(value: dt.datetime | None) -> int | None:
    return None if value is None else (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def page_key(alert: Alert) -> tuple[int, str]:
    """Where a page of active alerts that ends with `alert` ends: (sent µs, alert id), their order."""
    return _us(alert.sent) or 0, alert.alert_id


def _time(us: int | None) -> dt.datetime | None:
    return None if us is None else dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


def _ts(param: str) -> str:
    return f"to_timestamp({param}::bigint / 1000000.0)"


def _us_sql(column: str, alias: str | None = None) -> str:
    return f"(extract(epoch from {column}) * 1000000)::bigint AS {alias or column.split('.')[-1]}"


_ALERT_COLUMNS = ", ".join([
    "a.alert_id", "a.event", "a.message_type", "a.severity", "a.urgency", "a.certainty",
    _us_sql("a.sent"), _us_sql("a.onset"), _us_sql("a.expires"), _us_sql("a.ends"),
    "a.refs", "a.zones", "a.unresolved_zones", "a.headline", "a.sender_name", "a.area_desc", "a.repaired",
    "a.area_wkt", "a.min_longitude_deg", "a.min_latitude_deg", "a.max_longitude_deg", "a.max_latitude_deg",
    "a.state", _us_sql("a.ended_at"), "a.superseded_by",
])

_RELATED = f"""
SELECT {_ALERT_COLUMNS} FROM weather_alerts a WHERE a.alert_id = ANY($1::text[]) OR a.refs && $1::text[]
"""
_UPSERT = f"""
INSERT INTO weather_alerts (alert_id, event, message_type, severity, urgency, certainty, sent, onset, expires, ends,
    refs, zones, unresolved_zones, headline, sender_name, area_desc, repaired, area_wkt, area,
    min_longitude_deg, min_latitude_deg, max_longitude_deg, max_latitude_deg, state, ended_at, superseded_by, source)
VALUES ($1, $2, $3, $4, $5, $6, {_ts('$7')}, {_ts('$8')}, {_ts('$9')}, {_ts('$10')}, $11, $12, $13, $14, $15, $16,
    $17, $18::text, CASE WHEN $18::text = '' THEN NULL ELSE ST_GeomFromText($18::text, 4326) END,
    $19, $20, $21, $22, $23, {_ts('$24')}, $25, $26)
ON CONFLICT (alert_id) DO UPDATE SET state = EXCLUDED.state, ended_at = EXCLUDED.ended_at,
    superseded_by = EXCLUDED.superseded_by
"""
_LOG = f"""
INSERT INTO weather_alert_changes (at, kind, alert_id, replaces, reason, cancelled_by)
VALUES ({_ts('$1')}, $2, $3, $4, $5, $6) RETURNING seq
"""
_ACTIVE = f"SELECT {_ALERT_COLUMNS} FROM weather_alerts a WHERE a.state = 'active'"
_ACTIVE_PAGE = _ACTIVE + """
   AND ($1::bigint IS NULL OR ((extract(epoch from a.sent) * 1000000)::bigint, a.alert_id) > ($1, $2::text))
   AND ($3::float8 IS NULL OR (a.min_longitude_deg <= $5 AND a.max_longitude_deg >= $3
                               AND a.min_latitude_deg <= $6 AND a.max_latitude_deg >= $4))
 ORDER BY a.sent, a.alert_id LIMIT $7"""
_DUE = _ACTIVE + f" AND coalesce(a.ends, a.expires) <= {_ts('$1')} FOR UPDATE"
_AREA_UNKNOWN = _ACTIVE + " AND a.area_wkt = '' AND a.zones <> '{}' FOR UPDATE"
_SET_AREA = """
UPDATE weather_alerts SET area_wkt = $2, area = ST_GeomFromText($2, 4326), min_longitude_deg = $3,
       min_latitude_deg = $4, max_longitude_deg = $5, max_latitude_deg = $6, unresolved_zones = $7, repaired = $8
 WHERE alert_id = $1
"""
_CHANGES = f"""
SELECT c.seq, {_us_sql('c.at', 'change_at')}, c.kind, c.replaces, c.reason, c.cancelled_by, {_ALERT_COLUMNS}
  FROM weather_alert_changes c JOIN weather_alerts a USING (alert_id)
 WHERE c.seq > $1 ORDER BY c.seq LIMIT $2
"""


def _storable(text: str) -> str:
    """Text Postgres accepts: a rejection quotes what a feed sent, which may hold NUL characters."""
    return text.replace("\x00", "\\x00")


def _alert(row: Mapping[str, Any]) -> Alert:
    sent = _time(row["sent"])
    assert sent is not None
    return Alert(
        alert_id=AlertId(row["alert_id"]), event=row["event"], message_type=MessageType(row["message_type"]),
        severity=row["severity"], urgency=row["urgency"], certainty=row["certainty"], sent=sent,
        onset=_time(row["onset"]), expires=_time(row["expires"]), ends=_time(row["ends"]),
        area_wkt=row["area_wkt"],
        bbox=None if row["min_longitude_deg"] is None else (
            row["min_longitude_deg"], row["min_latitude_deg"], row["max_longitude_deg"], row["max_latitude_deg"]),
        references=tuple(AlertId(r) for r in row["refs"]), zones=tuple(ZoneCode(z) for z in row["zones"]),
        headline=row["headline"], sender_name=row["sender_name"], area_desc=row["area_desc"],
        unresolved_zones=tuple(ZoneCode(z) for z in row["unresolved_zones"]), repaired=row["repaired"],
    )


def _stored(row: Mapping[str, Any]) -> StoredAlert:
    superseded_by = row["superseded_by"]
    return StoredAlert(_alert(row), AlertState(row["state"]), _time(row["ended_at"]),
                       AlertId(superseded_by) if superseded_by else None)


def _record_args(record: StoredAlert, source: str) -> tuple[Any, ...]:
    a = record.alert
    return (a.alert_id, a.event, a.message_type.value, a.severity, a.urgency, a.certainty, _us(a.sent),
            _us(a.onset), _us(a.expires), _us(a.ends), list(a.references), list(a.zones),
            list(a.unresolved_zones), a.headline, a.sender_name, a.area_desc, a.repaired, a.area_wkt,
            *(a.bbox if a.bbox is not None else (None, None, None, None)),
            record.state.value, _us(record.ended_at), record.superseded_by, source)


@dataclass(frozen=True)
class LoggedChange:
    seq: int
    change: AlertChange


@dataclass(frozen=True)
class IngestResult:
    received: int
    duplicates: int
    changes: tuple[LoggedChange, ...]
    expired: int = 0          # messages stored as expired: their end had passed when they arrived
    area_unknown: int = 0     # messages stored with an unknown area (zones not loaded): matched to nothing


class AlertStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def _write(self, con: asyncpg.Connection, outcome: lifecycle.Outcome, source: str) -> list[LoggedChange]:
        if outcome.records:
            await con.executemany(_UPSERT, [_record_args(r, source) for r in outcome.records])
        logged = []
        for change in outcome.changes:
            seq = await con.fetchval(_LOG, _us(change.at), change.kind.value, change.alert.alert_id,
                                     list(change.replaces), change.reason, change.cancelled_by)
            logged.append(LoggedChange(seq, change))
        return logged

    async def ingest(self, alerts: Sequence[Alert], now: dt.datetime, source: str = "") -> IngestResult:
        """Applies the messages (in sent order) to the stored lifecycle; returns the logged changes."""
        if not alerts:
            return IngestResult(0, 0, ())
        ids = sorted({i for a in alerts for i in lifecycle.related_ids(a)})
        async with self._pool.acquire() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            known = {AlertId(r["alert_id"]): _stored(r) for r in await con.fetch(_RELATED, ids)}
            duplicates = sum(1 for a in {a.alert_id: a for a in alerts}.values() if a.alert_id in known)
            outcome = lifecycle.ingest_all(known, alerts, now)
            logged = await self._write(con, outcome, source)
        incoming = {a.alert_id for a in alerts}
        new = [r for r in outcome.records if r.alert.alert_id in incoming]
        return IngestResult(len(alerts), duplicates, tuple(logged),
                            expired=sum(r.state is AlertState.EXPIRED for r in new),
                            area_unknown=sum(not r.alert.area_known for r in new))

    async def expire(self, now: dt.datetime) -> tuple[LoggedChange, ...]:
        async with self._pool.acquire() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            due = [_stored(r) for r in await con.fetch(_DUE, _us(now))]
            return tuple(await self._write(con, lifecycle.expire(due, now), ""))

    async def resolve_zones(self, zones: Mapping[ZoneCode, BaseGeometry], now: dt.datetime,
                            ) -> tuple[LoggedChange, ...]:
        """Active alerts stored with an unknown area whose zones `zones` now knows get that area,
        each with an ACTIVATED change (lifecycle.with_areas), so StormWatch acts on them now."""
        async with self._pool.acquire() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            waiting = [_stored(r) for r in await con.fetch(_AREA_UNKNOWN)]
            areas: dict[AlertId, Alert] = {}
            for record in waiting:
                try:
                    area, note, unknown = nws.zone_area(record.alert.zones, zones)
                except AreaError:
                    continue
                if area is not None:
                    areas[record.alert.alert_id] = replace(record.alert, area_wkt=to_wkt(area), bbox=geo_bbox(area),
                                                           unresolved_zones=unknown, repaired=note)
            outcome = lifecycle.with_areas(waiting, areas, now)
            for record in outcome.records:
                a = record.alert
                await con.execute(_SET_AREA, a.alert_id, a.area_wkt, *(a.bbox or (None,) * 4),
                                  list(a.unresolved_zones), a.repaired)
            return tuple(await self._write(con, replace(outcome, records=()), ""))

    async def active(self) -> list[Alert]:
        return [_alert(r) for r in await self._pool.fetch(_ACTIVE + " ORDER BY a.sent, a.alert_id")]

    async def active_page(self, after: tuple[int, str] | None, limit: int, bbox: BBox | None = None) -> list[Alert]:
        """At most `limit` active alerts after the key `after` (`page_key` of the last alert of
        the page before), oldest first, only those whose bounding box meets `bbox` when given."""
        sent_us, alert_id = after if after is not None else (None, None)
        box = bbox if bbox is not None else (None, None, None, None)
        return [_alert(r) for r in await self._pool.fetch(_ACTIVE_PAGE, sent_us, alert_id, *box, limit)]

    async def get(self, alert_id: str) -> StoredAlert | None:
        row = await self._pool.fetchrow(f"SELECT {_ALERT_COLUMNS} FROM weather_alerts a WHERE a.alert_id = $1",
                                        alert_id)
        return None if row is None else _stored(row)

    async def changes_after(self, seq: int, limit: int = 1_000) -> list[LoggedChange]:
        """Logged changes with `seq` greater than the given one, oldest first."""
        rows = await self._pool.fetch(_CHANGES, seq, limit)
        changed_at = [_time(r["change_at"]) for r in rows]
        return [LoggedChange(r["seq"], AlertChange(
            ChangeKind(r["kind"]), _alert(r), at or dt.datetime.now(dt.UTC),
            replaces=tuple(AlertId(x) for x in r["replaces"]), reason=r["reason"],
            cancelled_by=AlertId(r["cancelled_by"]) if r["cancelled_by"] else None,
        )) for r, at in zip(rows, changed_at, strict=True)]

    async def last_seq(self) -> int:
        return int(await self._pool.fetchval("SELECT coalesce(max(seq), 0) FROM weather_alert_changes"))

    async def record_rejections(self, rejections: Sequence[Rejection]) -> None:
        if rejections:
            await self._pool.executemany(
                "INSERT INTO weather_rejections (source, alert_id, reason) VALUES ($1, $2, $3)",
                [(_storable(r.source), _storable(r.alert_id[:256]), _storable(r.reason)) for r in rejections])

    async def load_cursor(self, name: str) -> int:
        return int(await self._pool.fetchval("SELECT coalesce(max(seq), 0) FROM weather_cursors WHERE name = $1",
                                             name))

    async def save_cursor(self, name: str, seq: int) -> None:
        await self._pool.execute(
            """INSERT INTO weather_cursors (name, seq) VALUES ($1, $2)
               ON CONFLICT (name) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now()""", name, seq)

    async def save_zones(self, zones: Mapping[ZoneCode, BaseGeometry], source: str = "") -> int:
        await self._pool.executemany(
            """INSERT INTO weather_zones (ugc, area_wkt, area, source) VALUES ($1, $2, ST_GeomFromText($2, 4326), $3)
               ON CONFLICT (ugc) DO UPDATE SET area_wkt = EXCLUDED.area_wkt, area = EXCLUDED.area,
                   source = EXCLUDED.source, loaded_at = now()""",
            [(code, to_wkt(area), source) for code, area in zones.items()])
        return len(zones)

    async def zones_version(self) -> tuple[int, int]:
        """(zones, newest load in µs): changes whenever zones are loaded, so a cached table can tell."""
        row = await self._pool.fetchrow(
            "SELECT count(*) AS n, coalesce(max((extract(epoch from loaded_at) * 1000000)::bigint), 0) AS at "
            "FROM weather_zones")
        return int(row["n"]), int(row["at"])

    async def load_zones(self) -> dict[ZoneCode, BaseGeometry]:
        rows = await self._pool.fetch("SELECT ugc, area_wkt FROM weather_zones")
        return {ZoneCode(r["ugc"]): shapely.from_wkt(r["area_wkt"]) for r in rows}
