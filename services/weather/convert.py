"""Weather values ↔ their protobuf messages (gridtwin.weather.v1), both ways, so the service and
its clients (the StormWatch poller) agree on one mapping. Times cross as Unix milliseconds, 0 = not
given."""

from __future__ import annotations

import datetime as dt

from gridtwin.api.weather.v1 import weather_pb2 as pb
from gridtwin.unixtime import from_ms, to_ms
from services.weather.affected import AffectedPage, WatchState
from services.weather.model import (
    Alert,
    AlertChange,
    AlertId,
    AlertState,
    ChangeKind,
    MessageType,
    StoredAlert,
    ZoneCode,
)
from services.weather.store import LoggedChange

_MESSAGE_TYPES = {MessageType.ALERT: pb.MESSAGE_TYPE_ALERT, MessageType.UPDATE: pb.MESSAGE_TYPE_UPDATE,
                  MessageType.CANCEL: pb.MESSAGE_TYPE_CANCEL}
_KINDS = {ChangeKind.ACTIVATED: pb.AlertChange.KIND_ACTIVATED, ChangeKind.UPDATED: pb.AlertChange.KIND_UPDATED,
          ChangeKind.ENDED: pb.AlertChange.KIND_ENDED}
_WATCH_STATES = {
    WatchState.NOT_WATCHING: pb.STORM_WATCH_STATE_NOT_WATCHING, WatchState.WATCHING: pb.STORM_WATCH_STATE_WATCHING,
    WatchState.DEFERRED_FOR_VPP: pb.STORM_WATCH_STATE_DEFERRED_FOR_VPP,
    WatchState.OPTED_OUT: pb.STORM_WATCH_STATE_OPTED_OUT, WatchState.ENDED: pb.STORM_WATCH_STATE_ENDED,
    WatchState.DISABLED: pb.STORM_WATCH_STATE_DISABLED}
_MESSAGE_TYPES_BACK = {v: k for k, v in _MESSAGE_TYPES.items()}
_KINDS_BACK = {v: k for k, v in _KINDS.items()}


def ms(value: dt.datetime | None) -> int:
    return 0 if value is None else to_ms(value)


def time_of(unix_ms: int) -> dt.datetime | None:
    return None if unix_ms == 0 else from_ms(unix_ms)


def alert_pb(a: Alert) -> pb.Alert:
    box = None if a.bbox is None else pb.BoundingBox(min_longitude_deg=a.bbox[0], min_latitude_deg=a.bbox[1],
                                                     max_longitude_deg=a.bbox[2], max_latitude_deg=a.bbox[3])
    return pb.Alert(
        alert_id=a.alert_id, event=a.event, message_type=_MESSAGE_TYPES[a.message_type], severity=a.severity,
        urgency=a.urgency, certainty=a.certainty, sent_unix_ms=ms(a.sent), onset_unix_ms=ms(a.onset),
        expires_unix_ms=ms(a.expires), ends_unix_ms=ms(a.ends), references=list(a.references),
        area_wkt=a.area_wkt, bbox=box, zones=list(a.zones), headline=a.headline, sender_name=a.sender_name,
        area_desc=a.area_desc, area_unknown=not a.area_known, unresolved_zones=list(a.unresolved_zones))


def alert_from_pb(m: pb.Alert) -> Alert:
    sent = time_of(m.sent_unix_ms)
    if sent is None:
        raise ValueError(f"alert {m.alert_id!r} has no sent time")
    return Alert(
        alert_id=AlertId(m.alert_id), event=m.event, message_type=_MESSAGE_TYPES_BACK[m.message_type],
        severity=m.severity, urgency=m.urgency, certainty=m.certainty, sent=sent, onset=time_of(m.onset_unix_ms),
        expires=time_of(m.expires_unix_ms), ends=time_of(m.ends_unix_ms), area_wkt=m.area_wkt,
        bbox=(m.bbox.min_longitude_deg, m.bbox.min_latitude_deg, m.bbox.max_longitude_deg, m.bbox.max_latitude_deg)
        if m.HasField("bbox") else None,
        references=tuple(AlertId(r) for r in m.references), zones=tuple(ZoneCode(z) for z in m.zones),
        headline=m.headline, sender_name=m.sender_name, area_desc=m.area_desc,
        unresolved_zones=tuple(ZoneCode(z) for z in m.unresolved_zones))


def change_pb(logged: LoggedChange) -> pb.AlertChange:
    c = logged.change
    return pb.AlertChange(seq=logged.seq, kind=_KINDS[c.kind], alert=alert_pb(c.alert), at_unix_ms=ms(c.at),
                          replaces=list(c.replaces), reason=c.reason, cancelled_by=c.cancelled_by or "")


def change_from_pb(m: pb.AlertChange) -> LoggedChange:
    at = time_of(m.at_unix_ms)
    if at is None:
        raise ValueError(f"change {m.seq} has no time")
    change = AlertChange(_KINDS_BACK[m.kind], alert_from_pb(m.alert), at,
                         tuple(AlertId(r) for r in m.replaces), m.reason, AlertId(m.cancelled_by) or None)
    return LoggedChange(m.seq, change)


def stored_pb(s: StoredAlert) -> pb.StoredAlert:
    return pb.StoredAlert(alert=alert_pb(s.alert), state=s.state.value, ended_unix_ms=ms(s.ended_at),
                          superseded_by=s.superseded_by or "")


def stored_from_pb(m: pb.StoredAlert) -> StoredAlert:
    return StoredAlert(alert_from_pb(m.alert), AlertState(m.state), time_of(m.ended_unix_ms),
                       AlertId(m.superseded_by) or None)


def affected_page_pb(page: AffectedPage, next_page_token: str) -> pb.ListAffectedInstallationsResponse:
    return pb.ListAffectedInstallationsResponse(
        installations=[pb.AffectedInstallation(installation_id=a.installation_id, state=_WATCH_STATES[a.state],
                                               watched_alert_id=a.watched_alert_id or "", until_unix_ms=ms(a.until))
                       for a in page.installations],
        counts=[pb.StormWatchStateCount(state=_WATCH_STATES[state], installations=page.counts[state])
                for state in WatchState if page.counts.get(state)],
        total=page.total, next_page_token=next_page_token, area_unknown=not page.area_known)
