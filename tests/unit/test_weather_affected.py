"""The operator's view of one alert (services/weather/affected.py): a twin's StormWatch state →
its state for the alert, pages and counts; and StormWatch's event types as a setting."""

from __future__ import annotations

import datetime as dt

import pytest

from actors.twin import stormwatch as sw
from gridtwin.settings import STORMWATCH_EVENT_TYPES, Settings
from services.assets.model import InstallationId
from services.weather.affected import Affected, WatchState, classify, paginate
from services.weather.model import AlertId, ChangeKind

T0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
SITE = InstallationId("site")


def _watching(*thread: str, deferred: bool = False) -> sw.StormWatchState:
    storm = sw.WatchedStorm(tuple(AlertId(a) for a in thread), "Tornado Warning", T0, T0 + H, T0 + 5 * H)
    return sw.StormWatchState(storms=(storm,), deferred_for_vpp=deferred)


@pytest.mark.parametrize(("state", "enabled", "expected"), [
    (_watching("A", "U"), True, WatchState.WATCHING),
    (_watching("A", "U", deferred=True), True, WatchState.DEFERRED_FOR_VPP),
    (_watching("other"), True, WatchState.NOT_WATCHING),
    (sw.StormWatchState(opted_out=(AlertId("A"),)), True, WatchState.OPTED_OUT),
    (sw.StormWatchState(ended=(AlertId("U"),)), True, WatchState.ENDED),
    (sw.StormWatchState(), False, WatchState.DISABLED),
    (sw.StormWatchState(), True, WatchState.NOT_WATCHING),
])
def test_classify(state: sw.StormWatchState, enabled: bool, expected: WatchState) -> None:
    # The alert asked about is "U" (an Update of "A"): a twin that knows any message of the thread counts.
    assert classify(SITE, state, frozenset({AlertId("U"), AlertId("A")}), enabled).state is expected


def test_a_watching_twin_shows_the_message_it_holds_and_until_when() -> None:
    affected = classify(SITE, _watching("A"), frozenset({AlertId("U"), AlertId("A")}), True)
    assert affected == Affected(SITE, WatchState.WATCHING, AlertId("A"), T0 + 5 * H)


def test_classify_reads_what_the_rules_wrote() -> None:
    event = sw.StormAlertEvent(ChangeKind.ACTIVATED, AlertId("A"), "Tornado Warning", T0, T0 + H, T0 + 5 * H)
    state, _, _ = sw.apply(sw.StormWatchState(), event, sw.InstallationPrefs(), T0)
    decoded = sw.state_from_dict(sw.state_to_dict(state))     # as the snapshot stores it
    assert classify(SITE, decoded, frozenset({AlertId("A")}), True).state is WatchState.WATCHING
    state, _, _ = sw.apply(state, sw.OptOut(AlertId("A")), sw.InstallationPrefs(), T0)
    assert classify(SITE, sw.state_from_dict(sw.state_to_dict(state)), frozenset({AlertId("A")}),
                    True).state is WatchState.OPTED_OUT


def test_pages_in_id_order_with_counts_over_all() -> None:
    everyone = [Affected(InstallationId(f"s{k:02d}"), WatchState.WATCHING if k % 3 else WatchState.ENDED)
                for k in reversed(range(10))]
    first = paginate(everyone, "", 4)
    assert [a.installation_id for a in first.installations] == ["s00", "s01", "s02", "s03"]
    assert first.next_after == "s03" and first.total == 10
    assert first.counts == {WatchState.WATCHING: 6, WatchState.ENDED: 4}
    last = paginate(everyone, "s07", 4)
    assert [a.installation_id for a in last.installations] == ["s08", "s09"] and last.next_after is None
    assert last.counts == first.counts


def test_event_types_are_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert STORMWATCH_EVENT_TYPES == sw.DEFAULT_EVENT_TYPES == Settings().twins.stormwatch_event_types
    monkeypatch.setenv("GRIDTWIN_TWINS__STORMWATCH_EVENT_TYPES", '["Flood Warning", "Tornado Warning"]')
    assert Settings().twins.stormwatch_event_types == {"Flood Warning", "Tornado Warning"}
