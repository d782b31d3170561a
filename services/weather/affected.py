"""Which installations one alert affects, and what StormWatch does at each about it: the operator
console's view of a storm (WeatherService.ListAffectedInstallations).

The installations are those under the alert's area by the same two steps StormWatch's poller
uses (services/weather/matching.py: PostGIS `&&` on the GiST index, then prepared Shapely), so
the answer is the set the poller delivered the alert to. Each one's state comes from its twin's
snapshot (`twin_snapshots.state`, key "stormwatch", decoded by `stormwatch.state_from_dict`):
current within the twins' snapshot interval (`GRIDTWIN_TWINS__SNAPSHOT_INTERVAL_S`); an
installation whose twin has no snapshot yet is NOT_WATCHING (or DISABLED).

`classify` is the pure part: a twin's StormWatch state, the alert's thread (its id and the ids it
references) and the customer's switch → one `WatchState`, first match wins:

| state            | when                                                                   |
|------------------|------------------------------------------------------------------------|
| WATCHING         | a watched storm's thread shares an id with the alert's                 |
| DEFERRED_FOR_VPP | as WATCHING, while the charge waits for a grid event (vpp_first)       |
| OPTED_OUT        | the customer opted out of a message of the thread                      |
| ENDED            | a watch of the thread ended (cancelled, expired, left the area)        |
| DISABLED         | the customer has StormWatch off                                        |
| NOT_WATCHING     | anything else: not delivered yet, event type not configured, over      |

Pages are in installation id order; the counts are over every affected installation the caller
may see, whichever page is asked for (each call matches again: a page is consistent with its counts).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import asyncpg
import shapely

from actors.twin.stormwatch import StormWatchState, state_from_dict
from services.assets.model import InstallationId
from services.weather import matching
from services.weather.model import Alert, AlertId


class WatchState(StrEnum):
    NOT_WATCHING = "not_watching"
    WATCHING = "watching"
    DEFERRED_FOR_VPP = "deferred_for_vpp"
    OPTED_OUT = "opted_out"
    ENDED = "ended"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Affected:
    installation_id: InstallationId
    state: WatchState
    watched_alert_id: AlertId | None = None     # the thread's message the twin holds (watching)
    until: dt.datetime | None = None            # when that watch ends (watching)


@dataclass(frozen=True)
class AffectedPage:
    installations: tuple[Affected, ...]
    counts: Mapping[WatchState, int]            # over every affected installation, not only this page
    total: int
    next_after: InstallationId | None           # the last id of this page when more follow
    area_known: bool = True


def thread_of(alert: Alert) -> frozenset[AlertId]:
    """The ids a twin may know this alert by: its own and those it updates or cancels."""
    return frozenset((alert.alert_id, *alert.references))


def classify(installation_id: InstallationId, stormwatch: StormWatchState, thread: frozenset[AlertId],
             stormwatch_enabled: bool) -> Affected:
    storm = next((s for s in stormwatch.storms if thread & set(s.thread)), None)
    if storm is not None:
        state = WatchState.DEFERRED_FOR_VPP if stormwatch.deferred_for_vpp else WatchState.WATCHING
        return Affected(installation_id, state, storm.alert_id, storm.end)
    if thread & set(stormwatch.opted_out):
        return Affected(installation_id, WatchState.OPTED_OUT)
    if thread & set(stormwatch.ended):
        return Affected(installation_id, WatchState.ENDED)
    return Affected(installation_id, WatchState.NOT_WATCHING if stormwatch_enabled else WatchState.DISABLED)


def paginate(everyone: Iterable[Affected], after: str, limit: int, area_known: bool = True) -> AffectedPage:
    ordered = sorted(everyone, key=lambda a: a.installation_id)
    counts = Counter(a.state for a in ordered)
    rest = [a for a in ordered if a.installation_id > after] if after else ordered
    page = tuple(rest[:limit])
    more = len(rest) > limit
    return AffectedPage(page, dict(counts), len(ordered), page[-1].installation_id if more else None, area_known)


# `installation_id` unqualified is the join column (USING): the caller's visibility condition names it.
_STATES = """
SELECT installation_id, i.stormwatch_enabled, (s.state -> 'stormwatch')::text AS stormwatch
  FROM installations i LEFT JOIN twin_snapshots s USING (installation_id)
 WHERE installation_id = ANY($1::text[]) {visible}
"""


class AffectedInstallations:
    """The query over the installations, their twins' snapshots and the alert's area."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(self, alert: Alert, *, after: str = "", limit: int = 100,
                   visible: tuple[str, list[str]] | None = None) -> AffectedPage:
        """`visible`: services.assets.guard.visible_installations of the caller (None: everyone)."""
        if not alert.area_known:
            return AffectedPage((), {}, 0, None, area_known=False)
        ids = await matching.affected(self._pool, shapely.from_wkt(alert.area_wkt), alert.area_wkt)
        condition, args = ("", []) if visible is None else (f"AND {visible[0].format('$2')}", [visible[1]])
        rows = await self._pool.fetch(_STATES.format(visible=condition), list(ids), *args)
        thread = thread_of(alert)
        return paginate((classify(InstallationId(r["installation_id"]),
                                  state_from_dict(json.loads(r["stormwatch"]) if r["stormwatch"] else None),
                                  thread, bool(r["stormwatch_enabled"])) for r in rows), after, limit)
