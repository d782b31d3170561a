"""StormWatch end to end on the real components: NWS-style feed files → the weather service's
ingest → the Weather API (gRPC) → the twin runtime's weather-poller singleton (two-step match in
PostGIS + Shapely) → the twins on Ray (state, control intents, customer notifications), with an
Update, a duplicate and an out-of-order Update, an opt-out through the TwinService, a Cancel, and
the singleton killed and coming back exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import ray
import shapely

from actors.api import TwinApi
from actors.runtime.cluster import poller_config
from actors.runtime.singleton import ClusterSingleton
from actors.runtime.store import create_pool
from actors.runtime.weather import POLLER, poller_singleton
from actors.twin import stormwatch as sw
from gridtwin.api.twins.v1 import twin_service_pb2 as pb
from gridtwin.api.twins.v1 import twin_service_pb2_grpc as pb_grpc
from services.weather.api import WeatherApi
from services.weather.poller import WeatherPoller
from services.weather.providers import FileProvider
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.access_support import authenticator, authorized_channel, ensure_root_token
from tests.integration.twins_support import Twins

pytestmark = pytest.mark.integration

H = dt.timedelta(hours=1)
STORM = wd.hurricane()
MOVED = shapely.affinity.translate(STORM, 1.0, 0.5)
# Installations: where they are and what they chose.
SITES = {
    "sw-both": ((-79.6, 26.2), True, "stormwatch_first"),      # in the storm and in its updated area
    "sw-left": ((-82.7, 25.8), True, "stormwatch_first"),      # in the storm, not in the updated area
    "sw-off": ((-78.8, 25.6), False, "stormwatch_first"),      # in both, StormWatch disabled
    "sw-optout": ((-79.0, 26.9), True, "stormwatch_first"),    # in both; opts out after the update
    "sw-eye": ((-80.5, 26.0), True, "stormwatch_first"),       # in the storm's eye (its hole); the update covers it
    "sw-far": ((-70.0, 30.0), True, "stormwatch_first"),       # nowhere near
}


def test_the_sites_are_where_the_test_says() -> None:
    def inside(name: str, area: shapely.Geometry) -> bool:
        return bool(area.intersects(shapely.Point(SITES[name][0])))

    assert inside("sw-both", STORM) and inside("sw-both", MOVED)
    assert inside("sw-left", STORM) and not inside("sw-left", MOVED)
    assert inside("sw-off", STORM) and inside("sw-off", MOVED) and inside("sw-optout", STORM)
    assert inside("sw-optout", MOVED) and not inside("sw-eye", STORM) and inside("sw-eye", MOVED)
    assert not inside("sw-far", STORM) and not inside("sw-far", MOVED)


@dataclass
class Stand:
    twins: Twins
    feed: Path
    ingest: WeatherPoller          # the weather service's half: files → alert store
    poller: ClusterSingleton       # the twin runtime's half: Weather API → twins
    stub: pb_grpc.TwinServiceStub
    now: dt.datetime

    def write(self, *features: dict[str, object], at: float) -> None:
        self.feed.write_bytes(wd.feed_doc(*features))
        os.utime(self.feed, (at, at))      # the file provider reads a file again when its mtime moves

    async def poll(self) -> dict[str, object]:
        await self.ingest.poll_once()
        return await self.poller.call("poll_now")  # type: ignore[no-any-return]

    async def stormwatch(self, installation_id: str) -> dict[str, object]:
        view = await self.twins.runtime.router.view(installation_id)
        return sw.view_to_dict(view.stormwatch) if view is not None else {"active": False}

    async def intents(self, installation_id: str) -> list[tuple[str, dict[str, object]]]:
        rows = await self.twins.pool.fetch(
            "SELECT kind, payload::text FROM twin_control_intents WHERE installation_id = $1 "
            "ORDER BY created_at, intent_id", installation_id)
        return [(r[0], json.loads(r[1])) for r in rows]


@pytest.fixture
async def stand(twins: Twins, tmp_path: Path, assets_engine: object) -> AsyncIterator[Stand]:
    pool = twins.pool
    await pool.execute("TRUNCATE installations, customers, weather_alerts, weather_alert_changes, weather_cursors, "
                       "weather_rejections, twin_control_intents, customer_notifications CASCADE")
    for name, ((lon, lat), enabled, priority) in SITES.items():
        await pool.execute("INSERT INTO installations (installation_id, location, stormwatch_enabled, priority) "
                           "VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326), $4, $5)",
                           name, lon, lat, enabled, priority)
    store = AlertStore(pool)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ingest = WeatherPoller(store, None, [FileProvider(tmp_path)], None, clock=lambda: now)
    twin_pool = await create_pool(twins.settings.postgres.url, 2)
    auth = authenticator(assets_engine)
    async with WeatherApi("127.0.0.1", 0, store, authenticator=auth) as weather, \
            TwinApi(twins.settings.twins, twin_pool, twins.runtime.router, authenticator=auth) as api:
        settings = twins.settings.model_copy(update={"twins": twins.settings.twins.model_copy(update={
            "stormwatch_weather_api": f"127.0.0.1:{weather.port}", "stormwatch_poll_interval_s": 3_600.0})})
        # Two candidates per exact-polygon task: the refinement runs as Ray tasks (RayMatcher).
        poller = poller_singleton(dataclasses.replace(poller_config(settings), refine_chunk=2))
        channel = authorized_channel(f"127.0.0.1:{api.port}", pool)
        await ensure_root_token(pool)
        try:
            yield Stand(twins, tmp_path / "feed.json", ingest, poller, pb_grpc.TwinServiceStub(channel), now)
        finally:
            await channel.close()
            ray.kill(poller.handle, no_restart=True)
    await twin_pool.close()


async def test_alert_update_optout_cancel_from_the_feed_to_the_twins(stand: Stand) -> None:
    t0 = stand.now - 0.5 * H          # sent half an hour ago: onset in 5.5 h, ends in 29.5 h
    affected = ("sw-both", "sw-left", "sw-optout")

    stand.write(wd.alert_feature("HU-1", "Alert", STORM, t0), at=1)
    report = await stand.poll()
    assert report["changes"] == 1 and report["deliveries"] == 4      # sw-off is matched, then declines
    for name in affected:
        view = await stand.stormwatch(name)
        assert view["active"] and view["alert_id"] == "HU-1" and view["event"] == "Hurricane Warning"
        assert view["until_unix_ms"] == int((t0 + 30 * H).timestamp() * 1_000)
        [(kind, payload)] = await stand.intents(name)
        steps = payload["plan"]["steps"]  # type: ignore[index]
        assert kind == "run_plan" and [s[0] for s in steps] == ["charge", "hold"]
        assert steps[0][3] == 100.0 and steps[0][2] == int((t0 + 6 * H).timestamp() * 1_000)   # full by onset
        assert steps[1][2] == view["until_unix_ms"]                                               # held until the end
    for name in ("sw-off", "sw-eye", "sw-far"):
        assert not (await stand.stormwatch(name))["active"] and await stand.intents(name) == []
    twin = await stand.stub.GetTwin(pb.GetTwinRequest(installation_id="sw-both"))
    assert twin.stormwatch.active and twin.stormwatch.alert_id == "HU-1" and twin.desired.plan_source == "stormwatch"

    # The Update moves the area and the end; the same file read again changes nothing.
    update = wd.alert_feature("HU-2", "Update", MOVED, t0 + 0.25 * H, refs=("HU-1",), hours=40)
    stand.write(wd.alert_feature("HU-1", "Alert", STORM, t0), update, at=2)
    await stand.poll()
    both = await stand.stormwatch("sw-both")
    assert both["alert_id"] == "HU-2" and both["until_unix_ms"] == int((t0 + 40.25 * H).timestamp() * 1_000)
    assert not (await stand.stormwatch("sw-left"))["active"]
    assert [k for k, _ in await stand.intents("sw-left")] == ["run_plan", "restore_mode"]
    assert [k for k, _ in await stand.intents("sw-both")] == ["run_plan", "run_plan"]
    stand.write(wd.alert_feature("HU-1", "Alert", STORM, t0), update, at=3)
    # ... and an older update of the same alert arriving late is ignored by the twins.
    stale = wd.alert_feature("HU-0", "Update", STORM, t0 + 0.1 * H, refs=("HU-1",), hours=35)
    stand.write(stale, at=4)
    await stand.poll()
    assert (await stand.stormwatch("sw-both"))["alert_id"] == "HU-2"
    assert len(await stand.intents("sw-both")) == 2

    # The customer opts out of this storm in the app.
    twin = await stand.stub.OptOutOfStorm(pb.OptOutOfStormRequest(installation_id="sw-optout", alert_id="HU-2"))
    assert not twin.stormwatch.active and twin.desired.plan_id == ""
    opted = [k for k, _ in await stand.intents("sw-optout")]
    assert opted == ["run_plan", "run_plan", "restore_mode"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stand.stub.OptOutOfStorm(pb.OptOutOfStormRequest(installation_id="nobody", alert_id="HU-2"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND

    # The Cancel ends it everywhere, and the battery returns to its mode.
    stand.write(wd.alert_feature("HU-3", "Cancel", MOVED, t0 + 0.4 * H, refs=("HU-1", "HU-2")), at=5)
    await stand.poll()
    assert not (await stand.stormwatch("sw-both"))["active"]
    kind, payload = (await stand.intents("sw-both"))[-1]
    assert kind == "restore_mode" and payload["mode"] == "self_consumption" and payload["revision"] == 3
    notes = await stand.stub.ListNotifications(pb.ListNotificationsRequest(installation_id="sw-both"))
    assert [n.kind for n in notes.notifications] == ["stormwatch_ended", "stormwatch_updated", "stormwatch_activated"]
    assert len(await stand.intents("sw-optout")) == len(opted)     # an opted-out storm's cancel changes nothing


async def test_the_poller_singleton_comes_back_once_and_resumes(stand: Stand) -> None:
    first = await stand.poller.call("status")
    stand.write(wd.alert_feature("TS-1", "Alert", STORM, stand.now - 0.5 * H, event="Tropical Storm Warning"), at=1)
    await stand.ingest.poll_once()
    stand.poller.kill(restart=True)                   # its process dies; Ray starts it again
    again = await stand.poller.call("poll_now", timeout_s=60)
    status = await stand.poller.call("status")
    assert status["pid"] != first["pid"]
    assert again["changes"] == 1 and (await stand.stormwatch("sw-both"))["alert_id"] == "TS-1"
    named = [a for a in ray.util.list_named_actors(all_namespaces=True)
             if a["name"] == POLLER and a["namespace"] == stand.twins.settings.twins.namespace]
    assert len(named) == 1
    assert (await stand.poller.call("poll_now"))["changes"] == 0     # the cursor survived the restart
