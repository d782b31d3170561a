"""The poller's flow with in-memory parts (lifecycle store, Shapely matcher, a sink that plays
the twins with the StormWatch rules): Alert → Update (the area moves) → Cancel, duplicates, an
out-of-order update, broken documents and a failing provider — the loop keeps going."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import numpy as np
import shapely

from actors.twin import stormwatch as sw
from services.assets.model import InstallationId
from services.weather import lifecycle
from services.weather.model import Alert, AlertId, Rejection, StoredAlert, ZoneCode
from services.weather.poller import PollerSettings, WeatherPoller
from services.weather.providers import FeedDocument, ProviderError
from services.weather.store import IngestResult, LoggedChange
from tests import weather_data as wd

T0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


class MemoryLog:
    def __init__(self) -> None:
        self.records: dict[AlertId, StoredAlert] = {}
        self.log: list[LoggedChange] = []
        self.rejections: list[Rejection] = []
        self.cursors: dict[str, int] = {}

    def _write(self, outcome: lifecycle.Outcome) -> tuple[LoggedChange, ...]:
        self.records.update({r.alert.alert_id: r for r in outcome.records})
        new = tuple(LoggedChange(len(self.log) + k + 1, c) for k, c in enumerate(outcome.changes))
        self.log += new
        return new

    async def ingest(self, alerts: Sequence[Alert], now: dt.datetime, source: str = "") -> IngestResult:
        duplicates = sum(a.alert_id in self.records for a in alerts)
        return IngestResult(len(alerts), duplicates, self._write(lifecycle.ingest_all(self.records, alerts, now)))

    async def expire(self, now: dt.datetime) -> tuple[LoggedChange, ...]:
        return self._write(lifecycle.expire(list(self.records.values()), now))

    async def changes_after(self, seq: int, limit: int = 1_000) -> list[LoggedChange]:
        return self.log[seq:seq + limit]

    async def get(self, alert_id: str) -> StoredAlert | None:
        return self.records.get(AlertId(alert_id))

    async def record_rejections(self, rejections: Sequence[Rejection]) -> None:
        self.rejections += rejections

    async def load_cursor(self, name: str) -> int:
        return self.cursors.get(name, 0)

    async def save_cursor(self, name: str, seq: int) -> None:
        self.cursors[name] = seq

    async def load_zones(self) -> dict[ZoneCode, shapely.Geometry]:
        return {}

    async def zones_version(self) -> tuple[int, int]:
        return 0, 0


class PointsMatcher:
    def __init__(self, points: dict[str, tuple[float, float]]) -> None:
        self.ids = list(points)
        self.xy = np.array(list(points.values()))

    async def affected(self, area: shapely.Geometry, area_wkt: str) -> list[InstallationId]:
        mask = shapely.intersects_xy(area, self.xy[:, 0], self.xy[:, 1])
        return [InstallationId(self.ids[i]) for i in np.flatnonzero(mask)]


class Twins:
    """Plays the twin runtime: each installation's StormWatch state, intents and notifications."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.states: dict[str, sw.StormWatchState] = {}
        self.intents: dict[str, list[sw.Intent]] = {}
        self.notes: dict[str, list[sw.CustomerNotification]] = {}
        self.batches = 0

    async def deliver(self, batch: Sequence[tuple[InstallationId, sw.StormAlertEvent]]) -> None:
        self.batches += 1
        for installation_id, event in batch:
            state = self.states.get(installation_id, sw.StormWatchState())
            state, intents, notes = sw.apply(state, event, sw.InstallationPrefs(), self.clock())
            self.states[installation_id] = state
            self.intents.setdefault(installation_id, []).extend(intents)
            self.notes.setdefault(installation_id, []).extend(notes)

    def view(self, installation_id: str) -> sw.StormWatchView:
        return sw.view(self.states.get(installation_id, sw.StormWatchState()))


class Script:
    """A provider that hands out prepared documents, one list per fetch (or raises)."""

    name = "script"

    def __init__(self) -> None:
        self.next: list[FeedDocument] | Exception = []

    async def fetch(self) -> list[FeedDocument]:
        out, self.next = self.next, []
        if isinstance(out, Exception):
            raise out
        return out


WEST = shapely.box(-82, 25, -80, 27)    # covers "w" and "mid"
EAST = shapely.box(-81, 25, -79, 27)    # covers "mid" and "e"
POINTS = {"w": (-81.5, 26.0), "mid": (-80.5, 26.0), "e": (-79.5, 26.0), "far": (-70.0, 40.0)}


def setup():
    now = [T0]
    log, script = MemoryLog(), Script()
    twins = Twins(lambda: now[0])
    poller = WeatherPoller(log, PointsMatcher(POINTS), [script], twins, PollerSettings(deliver_batch=1),
                           clock=lambda: now[0])
    return now, log, script, twins, poller


def doc(*features) -> list[FeedDocument]:
    return [FeedDocument("test", wd.feed_doc(*features))]


async def test_alert_update_cancel_reach_the_twins():
    now, log, script, twins, poller = setup()
    script.next = doc(wd.alert_feature("A", "Alert", WEST, T0))
    report = await poller.poll_once()
    assert (report.alerts, report.changes, report.deliveries) == (1, 1, 2)
    assert twins.view("w").active and twins.view("mid").alert_id == "A" and not twins.view("e").active
    [charge] = twins.intents["w"]
    assert isinstance(charge, sw.ScheduleStormCharge) and charge.complete_by == T0 + 6 * H

    now[0] = T0 + H
    script.next = doc(wd.alert_feature("U", "Update", EAST, T0 + H, refs=("A",), hours=40))
    await poller.poll_once()
    assert not twins.view("w").active                      # the area moved away from "w"
    assert twins.intents["w"][-1] == sw.RestoreOperationMode("self_consumption", "storm over")
    assert twins.view("mid").alert_id == "U" and twins.view("mid").until == T0 + 41 * H
    assert twins.view("e").active and not twins.view("far").active

    now[0] = T0 + 2 * H
    script.next = doc(wd.alert_feature("C", "Cancel", EAST, T0 + 2 * H, refs=("A", "U")))
    await poller.poll_once()
    for site in ("w", "mid", "e"):
        assert not twins.view(site).active
    assert isinstance(twins.intents["mid"][-1], sw.RestoreOperationMode)
    assert [n.kind for n in twins.notes["mid"]] == [sw.NotificationKind.ACTIVATED, sw.NotificationKind.UPDATED,
                                                    sw.NotificationKind.ENDED]


async def test_duplicates_and_an_out_of_order_update_deliver_nothing_new():
    now, log, script, twins, poller = setup()
    a = wd.alert_feature("A", "Alert", WEST, T0)
    u2 = wd.alert_feature("U2", "Update", WEST, T0 + 2 * H, refs=("A",), hours=40)
    u1 = wd.alert_feature("U1", "Update", WEST, T0 + H, refs=("A",), hours=35)
    script.next = doc(a, a)
    await poller.poll_once()
    script.next = doc(u2)
    await poller.poll_once()
    before = (dict(twins.states), twins.batches)
    script.next = doc(a, u2) + doc(u1)
    report = await poller.poll_once()
    assert report.duplicates == 2 and report.changes == 0
    assert (dict(twins.states), twins.batches) == before
    assert twins.view("w").until == T0 + 42 * H


async def test_expiry_ends_the_watch():
    now, log, script, twins, poller = setup()
    script.next = doc(wd.alert_feature("A", "Alert", WEST, T0, hours=3))
    await poller.poll_once()
    now[0] = T0 + 3 * H
    report = await poller.poll_once()
    assert report.changes == 1 and not twins.view("w").active


async def test_broken_feeds_are_recorded_and_the_loop_keeps_running():
    now, log, script, twins, poller = setup()
    bow = shapely.Polygon([(-82, 25), (-80, 27), (-80, 25), (-82, 27)])   # self-intersecting: repaired
    line = {"type": "Polygon", "coordinates": [[[-82, 25], [-81, 26], [-80, 27], [-82, 25]]]}
    broken = wd.alert_feature("BAD", "Alert", None, T0)
    broken["geometry"] = line
    script.next = [FeedDocument("bad-json", b"{oops"),
                   *doc(wd.alert_feature("Z", "Alert", None, T0), broken,
                        wd.alert_feature("BOW", "Alert", bow, T0, event="Tornado Warning"))]
    report = await poller.poll_once()
    assert report.rejections == 3 and report.alerts == 1
    reasons = {r.alert_id: r.reason for r in log.rejections}
    assert "not JSON" in reasons["(document)"] and "nothing polygonal" in reasons["BAD"]
    assert "no geometry and no UGC" in reasons["Z"]
    assert twins.view("w").alert_id == "BOW"
    script.next = ProviderError("http://feed: HTTP 503")
    report = await poller.poll_once()
    assert report.provider_errors == ["http://feed: HTTP 503"]

    async with poller:    # the owned loop survives a failing provider and polls on wake-up
        script.next = ProviderError("down")
        poller.wake()
        for _ in range(100):
            if poller.last_report and poller.last_report.provider_errors == ["down"]:
                break
            await asyncio.sleep(0.01)
        script.next = doc(wd.alert_feature("B", "Alert", EAST, T0, event="Tornado Warning"))
        poller.wake()
        for _ in range(100):
            if twins.view("e").active:
                break
            await asyncio.sleep(0.01)
    assert twins.view("e").active


async def test_the_cursor_resumes_after_a_restart():
    now, log, script, twins, poller = setup()
    script.next = doc(wd.alert_feature("A", "Alert", WEST, T0))
    await poller.poll_once()
    again = WeatherPoller(log, PointsMatcher(POINTS), [script], twins, clock=lambda: now[0])
    report = await again.poll_once()
    assert report.changes == 0 and log.cursors["stormwatch"] == 1
