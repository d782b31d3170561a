"""The alert lifecycle (pure): Alert → Update → Cancel, expiry, duplicates, out-of-order messages."""

from __future__ import annotations

import dataclasses
import datetime as dt

from services.weather import lifecycle
from services.weather.model import Alert, AlertId, AlertState, ChangeKind, MessageType, StoredAlert

T0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def msg(alert_id: str, kind: MessageType = MessageType.ALERT, sent: dt.datetime = T0, refs: tuple[str, ...] = (),
        ends: dt.datetime | None = T0 + 24 * H) -> Alert:
    return Alert(AlertId(alert_id), "Hurricane Warning", kind, "Extreme", "Expected", "Likely", sent,
                 onset=sent + 6 * H, expires=sent + 6 * H, ends=ends, area_wkt="POLYGON ((0 0, 1 0, 1 1, 0 0))",
                 bbox=(0, 0, 1, 1), references=tuple(AlertId(r) for r in refs))


class Lifecycle:
    """Applies messages one at a time like the store does, keeping every record."""

    def __init__(self) -> None:
        self.records: dict[AlertId, StoredAlert] = {}

    def feed(self, alert: Alert, now: dt.datetime = T0) -> lifecycle.Outcome:
        outcome = lifecycle.ingest(self.records, alert, now)
        self.records.update({r.alert.alert_id: r for r in outcome.records})
        return outcome

    def active(self) -> set[str]:
        return {i for i, r in self.records.items() if r.state is AlertState.ACTIVE}


def test_alert_update_cancel():
    lc = Lifecycle()
    [activated] = lc.feed(msg("A")).changes
    assert activated.kind is ChangeKind.ACTIVATED and lc.active() == {"A"}
    [updated] = lc.feed(msg("U", MessageType.UPDATE, T0 + H, ("A",)), T0 + H).changes
    assert updated.kind is ChangeKind.UPDATED and updated.replaces == ("A",) and updated.alert.alert_id == "U"
    assert lc.active() == {"U"} and lc.records[AlertId("A")].superseded_by == "U"
    [ended] = lc.feed(msg("C", MessageType.CANCEL, T0 + 2 * H, ("A", "U")), T0 + 2 * H).changes
    assert (ended.kind, ended.reason, ended.alert.alert_id, ended.cancelled_by) == (
        ChangeKind.ENDED, "cancelled", "U", "C")
    assert lc.active() == set() and lc.records[AlertId("U")].state is AlertState.CANCELLED


def test_duplicates_change_nothing():
    lc = Lifecycle()
    lc.feed(msg("A"))
    again = lc.feed(msg("A"))
    assert again.duplicate and again.changes == () and again.records == ()
    lc.feed(msg("U", MessageType.UPDATE, T0 + H, ("A",)))
    assert lc.feed(msg("U", MessageType.UPDATE, T0 + H, ("A",))).changes == ()
    assert lc.active() == {"U"}


def test_an_older_update_arriving_after_a_newer_one_is_ignored():
    lc = Lifecycle()
    lc.feed(msg("A"))
    lc.feed(msg("U2", MessageType.UPDATE, T0 + 2 * H, ("A", "U1")))
    late = lc.feed(msg("U1", MessageType.UPDATE, T0 + H, ("A",)))
    assert late.changes == () and "U2" in late.ignored
    assert lc.active() == {"U2"} and lc.records[AlertId("U1")].state is AlertState.SUPERSEDED


def test_an_older_update_sharing_only_a_reference_is_ignored():
    lc = Lifecycle()
    lc.feed(msg("A"))
    lc.feed(msg("U2", MessageType.UPDATE, T0 + 2 * H, ("A",)))
    late = lc.feed(msg("U1", MessageType.UPDATE, T0 + H, ("A",)))
    assert late.changes == () and "out of order" in late.ignored and lc.active() == {"U2"}


def test_the_original_arriving_after_its_update_is_superseded():
    lc = Lifecycle()
    [activated] = lc.feed(msg("U", MessageType.UPDATE, T0 + H, ("A",))).changes
    assert activated.kind is ChangeKind.ACTIVATED   # an Update of something never seen starts it
    late = lc.feed(msg("A"))
    assert late.changes == () and lc.active() == {"U"}


def test_an_update_after_a_cancel_of_its_thread_sent_earlier_is_ignored():
    lc = Lifecycle()
    lc.feed(msg("A"))
    lc.feed(msg("C", MessageType.CANCEL, T0 + 2 * H, ("A",)))
    assert lc.feed(msg("U", MessageType.UPDATE, T0 + H, ("A",))).changes == ()
    assert lc.active() == set()


def test_cancel_of_nothing_active_changes_nothing_but_is_recorded():
    lc = Lifecycle()
    outcome = lc.feed(msg("C", MessageType.CANCEL, refs=("X",)))
    assert outcome.changes == () and lc.records[AlertId("C")].state is AlertState.CANCEL
    assert lc.feed(msg("X")).changes == ()   # the cancelled original, late: never activates


def test_expiry_ends_active_alerts_at_their_end():
    lc = Lifecycle()
    lc.feed(msg("A", ends=T0 + 3 * H))
    lc.feed(msg("B", ends=None))   # no `ends`: `expires` (T0 + 6 h) is the end
    assert lifecycle.expire(lc.records.values(), T0 + 2 * H).changes == ()
    outcome = lifecycle.expire(lc.records.values(), T0 + 3 * H)
    assert [(c.alert.alert_id, c.reason) for c in outcome.changes] == [("A", "expired")]
    assert [c.alert.alert_id for c in lifecycle.expire(lc.records.values(), T0 + 7 * H).changes] == ["A", "B"]


def test_a_message_already_expired_on_arrival_ends_what_it_references():
    lc = Lifecycle()
    lc.feed(msg("A"))
    outcome = lc.feed(msg("U", MessageType.UPDATE, T0 + H, ("A",), ends=T0 + 2 * H), T0 + 3 * H)
    assert [(c.kind, c.alert.alert_id) for c in outcome.changes] == [(ChangeKind.ENDED, "A")]
    assert lc.active() == set() and lc.records[AlertId("U")].state is AlertState.EXPIRED


def test_ingest_all_orders_by_sent_time():
    outcome = lifecycle.ingest_all({}, [msg("U", MessageType.UPDATE, T0 + H, ("A",)), msg("A")], T0 + H)
    assert [(c.kind, c.alert.alert_id) for c in outcome.changes] == [
        (ChangeKind.ACTIVATED, "A"), (ChangeKind.UPDATED, "U")]


def _no_area(alert: Alert) -> Alert:
    return dataclasses.replace(alert, area_wkt="", bbox=None)


def test_update_and_cancel_without_an_area_apply_by_reference():
    """A message without geometry (and no known zone) names the alert it replaces or ends: the
    Update keeps the referenced area, the Cancel ends the referenced alert with that alert's area."""
    lc = Lifecycle()
    lc.feed(msg("A"))
    [updated] = lc.feed(_no_area(msg("U", MessageType.UPDATE, T0 + H, ("A",), ends=T0 + 30 * H)), T0 + H).changes
    assert updated.kind is ChangeKind.UPDATED and updated.replaces == ("A",)
    assert updated.alert.area_wkt == msg("A").area_wkt and updated.alert.bbox == (0, 0, 1, 1)
    assert updated.alert.ends == T0 + 30 * H and lc.active() == {"U"}
    [ended] = lc.feed(_no_area(msg("C", MessageType.CANCEL, T0 + 2 * H, ("A", "U"))), T0 + 2 * H).changes
    assert (ended.kind, ended.alert.alert_id, ended.reason, ended.cancelled_by) == (
        ChangeKind.ENDED, "U", "cancelled", "C")
    assert ended.alert.area_known and lc.active() == set()
    assert lc.records[AlertId("C")].alert.area_wkt == msg("A").area_wkt    # shown with what it cancelled


def test_without_a_known_reference_the_area_stays_unknown_and_zones_resolve_it_later():
    lc = Lifecycle()
    [activated] = lc.feed(_no_area(msg("Z", MessageType.UPDATE, refs=("gone",)))).changes
    assert activated.kind is ChangeKind.ACTIVATED and not activated.alert.area_known
    resolved = lifecycle.with_areas(lc.records.values(), {AlertId("Z"): msg("Z", MessageType.UPDATE)}, T0 + H)
    [change] = resolved.changes
    assert change.kind is ChangeKind.ACTIVATED and change.alert.area_known and change.reason == "area resolved"
    assert resolved.records[0].alert.area_known and resolved.records[0].state is AlertState.ACTIVE
    lc.records.update({r.alert.alert_id: r for r in resolved.records})
    assert lifecycle.with_areas(lc.records.values(), {AlertId("Z"): msg("Z")}, T0 + H).changes == ()
