"""The alert lifecycle as a pure function: known messages + one incoming message + now → changes.

Rules (CAP / NWS semantics):
- A message whose id is already known is a duplicate: nothing changes (ingest is idempotent,
  so the same feed may be read any number of times).
- A message that a known message already references arrived late (the newer one superseded it):
  it is recorded as superseded and changes nothing.
- A message is stale when a known message of the same thread (one it references, or one that
  shares a reference with it) was sent later: recorded as superseded, changes nothing. This is
  how an Update that arrives after a newer Update is ignored.
- An Alert or Update becomes active (ACTIVATED, or UPDATED when it replaces active messages it
  references; those become superseded). One whose end time has already passed is recorded
  expired and ends what it references.
- A Cancel ends every active message it references (ENDED, reason "cancelled"), whatever area it
  carries: the ENDED change names the ended message, with that message's area.
- An Update or Cancel that came without an area of its own (no polygon, no known zone) takes the
  area of the newest message it references that has one: an Update without geometry keeps the
  area it replaces. With nothing known to take it from, its area stays unknown.
- `expire(now)` ends every active message whose end (`ends`, else `expires`) is at or before now.

The caller persists `Outcome.records` (every message is recorded, also the ignored ones, so a
later duplicate is recognised) and publishes `Outcome.changes` in order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from services.weather.model import (
    Alert,
    AlertChange,
    AlertId,
    AlertState,
    ChangeKind,
    MessageType,
    StoredAlert,
)


@dataclass(frozen=True)
class Outcome:
    records: tuple[StoredAlert, ...] = ()     # new or changed records (the incoming one included)
    changes: tuple[AlertChange, ...] = ()
    duplicate: bool = False
    ignored: str = ""                         # why the message changed nothing ("" when it did)


def related_ids(alert: Alert) -> tuple[AlertId, ...]:
    """The ids whose records `ingest` needs: the message itself and what it references."""
    return (alert.alert_id, *alert.references)


def _expired(alert: Alert, now: dt.datetime) -> bool:
    end = alert.end
    return end is not None and end <= now


def _by_reference(incoming: Alert, known: Mapping[AlertId, StoredAlert]) -> Alert:
    """The incoming message with the area of what it references, when it brought none."""
    if incoming.area_known or incoming.message_type is MessageType.ALERT:
        return incoming
    referenced = [known[r] for r in incoming.references if r in known and known[r].alert.area_known]
    if not referenced:
        return incoming
    source = max(referenced, key=lambda r: (r.state is AlertState.ACTIVE, r.alert.sent)).alert
    return replace(incoming, area_wkt=source.area_wkt, bbox=source.bbox)


def ingest(known: Mapping[AlertId, StoredAlert], incoming: Alert, now: dt.datetime) -> Outcome:
    """`known` must hold every record with the incoming id, an id it references, or a reference
    in common with it, and every record that references the incoming id (store.related does)."""
    incoming = _by_reference(incoming, known)
    if incoming.alert_id in known:
        return Outcome(duplicate=True, ignored="duplicate")
    newer = [r for r in known.values() if incoming.alert_id in r.alert.references]
    if newer:
        return Outcome(records=(StoredAlert(incoming, AlertState.SUPERSEDED, now, newer[0].alert.alert_id),),
                       ignored=f"superseded by {newer[0].alert.alert_id}, which arrived first")
    refs = set(incoming.references)
    thread = [r for r in known.values() if r.alert.alert_id in refs or refs & set(r.alert.references)]
    later = [r for r in thread if r.alert.sent > incoming.sent]
    if later:
        latest = max(later, key=lambda r: r.alert.sent)
        return Outcome(records=(StoredAlert(incoming, AlertState.SUPERSEDED, now, latest.alert.alert_id),),
                       ignored=f"out of order: {latest.alert.alert_id} of the same thread was sent later")
    # Everything of the thread still active is replaced or ended by this message.
    active = [r for r in thread if r.state is AlertState.ACTIVE]
    records: list[StoredAlert] = []
    changes: list[AlertChange] = []
    if incoming.message_type is MessageType.CANCEL:
        for record in active:
            records.append(replace(record, state=AlertState.CANCELLED, ended_at=now))
            changes.append(AlertChange(ChangeKind.ENDED, record.alert, now, reason="cancelled",
                                       cancelled_by=incoming.alert_id))
        records.append(StoredAlert(incoming, AlertState.CANCEL, now))
        return Outcome(tuple(records), tuple(changes), ignored="" if changes else "cancels nothing active")
    if _expired(incoming, now):
        for record in active:
            records.append(replace(record, state=AlertState.SUPERSEDED, ended_at=now,
                                   superseded_by=incoming.alert_id))
            changes.append(AlertChange(ChangeKind.ENDED, record.alert, now, reason="expired"))
        records.append(StoredAlert(incoming, AlertState.EXPIRED, now))
        return Outcome(tuple(records), tuple(changes), ignored="" if changes else "already expired")
    for record in active:
        records.append(replace(record, state=AlertState.SUPERSEDED, ended_at=now, superseded_by=incoming.alert_id))
    records.append(StoredAlert(incoming, AlertState.ACTIVE))
    replaced = tuple(r.alert.alert_id for r in active)
    kind = ChangeKind.UPDATED if replaced else ChangeKind.ACTIVATED
    return Outcome(tuple(records), (AlertChange(kind, incoming, now, replaces=replaced),))


def with_areas(active: Iterable[StoredAlert], areas: Mapping[AlertId, Alert], now: dt.datetime) -> Outcome:
    """Active messages whose unknown area became known (their zones were loaded after they
    arrived): each record takes its message with the area from `areas`, and an ACTIVATED change
    (reason "area resolved") lets StormWatch act on it now, as on a new alert."""
    records, changes = [], []
    for record in active:
        resolved = areas.get(record.alert.alert_id)
        if record.state is AlertState.ACTIVE and not record.alert.area_known and resolved is not None \
                and resolved.area_known:
            records.append(replace(record, alert=resolved))
            changes.append(AlertChange(ChangeKind.ACTIVATED, resolved, now, reason="area resolved"))
    return Outcome(tuple(records), tuple(changes))


def expire(active: Iterable[StoredAlert], now: dt.datetime) -> Outcome:
    """Ends the active messages whose end time is at or before `now`."""
    records, changes = [], []
    for record in active:
        if record.state is AlertState.ACTIVE and _expired(record.alert, now):
            records.append(replace(record, state=AlertState.EXPIRED, ended_at=now))
            changes.append(AlertChange(ChangeKind.ENDED, record.alert, now, reason="expired"))
    return Outcome(tuple(records), tuple(changes))


def ingest_all(known: Mapping[AlertId, StoredAlert], incoming: Iterable[Alert], now: dt.datetime) -> Outcome:
    """Several messages in sent order, each seeing the records of the ones before (in memory)."""
    state = dict(known)
    records: dict[AlertId, StoredAlert] = {}
    changes: list[AlertChange] = []
    for alert in sorted(incoming, key=lambda a: a.sent):
        outcome = ingest(state, alert, now)
        for record in outcome.records:
            state[record.alert.alert_id] = records[record.alert.alert_id] = record
        changes.extend(outcome.changes)
    return Outcome(tuple(records.values()), tuple(changes))
