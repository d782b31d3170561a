"""StormWatch by reference, on the real components: NWS-style feed files → the weather service's
ingest → the Weather API (gRPC) → the twin runtime's poller singleton → the twins on Ray.

- An Update and a Cancel that carry no polygon, only zone codes nobody loaded, apply to the alert
  they reference: the Update keeps its area (and moves the end), the Cancel ends the storm at
  every twin that watches it (the battery returns to its mode).
- The affected-installations API shows what the twins decided (watching, opted out, disabled,
  ended), from their snapshots.
- StormWatch's event types are a setting: with "Flood Warning" configured, a flood warning
  starts StormWatch, and an event type that is not configured does not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.api import TwinApi
from actors.runtime.cluster import poller_config, start_runtime
from actors.runtime.store import create_pool
from actors.runtime.weather import poller_singleton
from gridtwin.api.twins.v1 import twin_service_pb2 as tpb
from gridtwin.api.twins.v1 import twin_service_pb2_grpc as tpb_grpc
from gridtwin.api.weather.v1 import weather_pb2 as wpb
from gridtwin.api.weather.v1 import weather_pb2_grpc as wpb_grpc
from gridtwin.settings import STORMWATCH_EVENT_TYPES
from services.weather.api import WeatherApi
from services.weather.model import AlertState
from services.weather.poller import WeatherPoller
from services.weather.providers import FileProvider
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.access_support import authenticator, authorized_channel, ensure_root_token
from tests.integration.test_stormwatch_runtime import SITES, STORM, Stand
from tests.integration.twins_support import RULES, Twins, kill_namespace

pytestmark = pytest.mark.integration

H = dt.timedelta(hours=1)
EVENT_TYPES = STORMWATCH_EVENT_TYPES | {"Flood Warning"}
UNKNOWN_ZONES = ["FLZ063", "FLZ066"]      # zone codes of the storm's coast; no zone table is loaded
RESTORE = "restore_mode"                   # the intent that returns the battery to its mode


@dataclasses.dataclass
class ByReference(Stand):
    weather: Any = None          # the WeatherService stub

    async def affected(self, alert_id: str) -> dict[str, str]:
        reply = await self.weather.ListAffectedInstallations(wpb.ListAffectedInstallationsRequest(alert_id=alert_id))
        return {r.installation_id: wpb.StormWatchState.Name(r.state).removeprefix("STORM_WATCH_STATE_").lower()
                for r in reply.installations}

    async def affected_settles(self, alert_id: str, expected: dict[str, str], timeout_s: float = 20.0) -> None:
        """The twins snapshot every second: wait until the API shows `expected`."""
        seen: dict[str, str] = {}
        for _ in range(int(timeout_s / 0.2)):
            seen = await self.affected(alert_id)
            if seen == expected:
                return
            await asyncio.sleep(0.2)
        assert seen == expected


def zone_only(feature: dict[str, Any]) -> dict[str, Any]:
    """The same message without its polygon: only UGC codes (that no zone table here knows)."""
    feature["geometry"] = None
    feature["properties"]["geocode"] = {"UGC": UNKNOWN_ZONES}
    return feature


@pytest.fixture
async def stand(isolated: Any, ray_cluster: Any, pool: Any, tmp_path: Path,
                assets_engine: object) -> AsyncIterator[ByReference]:
    await pool.execute("TRUNCATE telemetry_samples, telemetry_rollups, twin_snapshots, twin_alerts, "
                       "twin_rule_overrides, twin_layout")
    await pool.execute("TRUNCATE installations, customers, weather_alerts, weather_alert_changes, weather_cursors, "
                       "weather_rejections, weather_zones, twin_control_intents, customer_notifications CASCADE")
    # The twins' settings as the environment gives them: StormWatch also reacts to flood warnings.
    settings = isolated.model_copy(update={"twins": ray_cluster.twins.model_copy(update={
        "namespace": f"byref-{uuid.uuid4().hex[:8]}", "rules": json.dumps(RULES), "tick_interval_s": 1.0,
        "snapshot_interval_s": 1.0, "stormwatch_event_types": EVENT_TYPES})})
    runtime = await start_runtime(settings)
    twins = Twins(settings, runtime, pool)
    for name, ((lon, lat), enabled, priority) in SITES.items():
        await pool.execute("INSERT INTO installations (installation_id, location, stormwatch_enabled, priority) "
                           "VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326), $4, $5)",
                           name, lon, lat, enabled, priority)
    store = AlertStore(pool)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ingest = WeatherPoller(store, None, [FileProvider(tmp_path)], None, clock=lambda: now)
    twin_pool = await create_pool(settings.postgres.url, 2)
    auth = authenticator(assets_engine)
    try:
        async with WeatherApi("127.0.0.1", 0, store, authenticator=auth) as weather, \
                TwinApi(settings.twins, twin_pool, runtime.router, authenticator=auth) as api:
            polled = settings.model_copy(update={"twins": settings.twins.model_copy(update={
                "stormwatch_weather_api": f"127.0.0.1:{weather.port}", "stormwatch_poll_interval_s": 3_600.0})})
            poller = poller_singleton(poller_config(polled))
            twin_channel = authorized_channel(f"127.0.0.1:{api.port}", pool)
            weather_channel = authorized_channel(f"127.0.0.1:{weather.port}", pool)
            await ensure_root_token(pool)
            try:
                yield ByReference(twins, tmp_path / "feed.json", ingest, poller, tpb_grpc.TwinServiceStub(twin_channel),
                                  now, wpb_grpc.WeatherServiceStub(weather_channel))
            finally:
                await twin_channel.close()
                await weather_channel.close()
                ray.kill(poller.handle, no_restart=True)
    finally:
        await twin_pool.close()
        kill_namespace(settings.twins.namespace)


async def test_update_and_cancel_without_geometry_reach_the_twins_by_reference(stand: ByReference) -> None:
    t0 = stand.now - 0.5 * H
    watching = ("sw-both", "sw-left", "sw-optout")          # under STORM, StormWatch on
    store = AlertStore(stand.twins.pool)

    stand.write(wd.alert_feature("BR-1", "Alert", STORM, t0), at=1)
    await stand.poll()
    for name in watching:
        assert (await stand.stormwatch(name))["alert_id"] == "BR-1"
    await stand.affected_settles("BR-1", {"sw-both": "watching", "sw-left": "watching", "sw-optout": "watching",
                                          "sw-off": "disabled"})

    # The Update has no polygon and zones nobody loaded: it keeps BR-1's area and moves the end.
    stand.write(zone_only(wd.alert_feature("BR-2", "Update", STORM, t0 + 0.25 * H, refs=("BR-1",), hours=40)), at=2)
    report = await stand.poll()
    assert report["changes"] == 1
    updated = await store.get("BR-2")
    assert updated is not None and updated.state is AlertState.ACTIVE
    assert updated.alert.area_wkt == (await store.get("BR-1")).alert.area_wkt   # type: ignore[union-attr]
    assert updated.alert.unresolved_zones == tuple(UNKNOWN_ZONES)
    until = int((t0 + 40.25 * H).timestamp() * 1_000)
    for name in watching:   # sw-left too: the area did not move, nobody left it
        view = await stand.stormwatch(name)
        assert view["active"] and view["alert_id"] == "BR-2" and view["until_unix_ms"] == until
        kinds = [k for k, _ in await stand.intents(name)]    # a plan, then the plan with the new end
        assert len(kinds) == 2 and RESTORE not in kinds

    await stand.stub.OptOutOfStorm(tpb.OptOutOfStormRequest(installation_id="sw-optout", alert_id="BR-2"))
    await stand.affected_settles("BR-2", {"sw-both": "watching", "sw-left": "watching", "sw-optout": "opted_out",
                                          "sw-off": "disabled"})

    # The Cancel has no polygon either: it ends BR-2 wherever it is watched.
    stand.write(zone_only(wd.alert_feature("BR-3", "Cancel", STORM, t0 + 0.4 * H, refs=("BR-1", "BR-2"))), at=3)
    await stand.poll()
    assert (await store.get("BR-2")).state is AlertState.CANCELLED   # type: ignore[union-attr]
    for name in ("sw-both", "sw-left"):
        assert not (await stand.stormwatch(name))["active"]
        kinds = [k for k, _ in await stand.intents(name)]
        assert len(kinds) == 3 and kinds[-1] == RESTORE
        notes = await stand.stub.ListNotifications(tpb.ListNotificationsRequest(installation_id=name))
        assert [n.kind for n in notes.notifications] == [
            "stormwatch_ended", "stormwatch_updated", "stormwatch_activated"]
    kinds = [k for k, _ in await stand.intents("sw-optout")]   # restored at the opt-out; the cancel adds nothing
    assert len(kinds) == 3 and kinds[-1] == RESTORE
    await stand.affected_settles("BR-3", {"sw-both": "ended", "sw-left": "ended", "sw-optout": "opted_out",
                                          "sw-off": "disabled"})


async def test_a_flood_warning_starts_stormwatch_when_the_setting_names_it(stand: ByReference) -> None:
    t0 = stand.now - 0.5 * H
    stand.write(wd.alert_feature("FW-0", "Alert", STORM, t0, event="Flood Watch"), at=1)   # not configured
    report = await stand.poll()
    assert report["changes"] == 1 and report["deliveries"] == 4
    assert not any([(await stand.stormwatch(name))["active"] for name in SITES])
    assert all([await stand.intents(name) == [] for name in SITES])

    stand.write(wd.alert_feature("FW-1", "Alert", STORM, t0, event="Flood Warning"), at=2)
    await stand.poll()
    for name in ("sw-both", "sw-left", "sw-optout"):
        view = await stand.stormwatch(name)
        assert view["active"] and view["alert_id"] == "FW-1" and view["event"] == "Flood Warning"
        [(kind, _)] = await stand.intents(name)
        assert kind != RESTORE
    assert not (await stand.stormwatch("sw-off"))["active"] and not (await stand.stormwatch("sw-far"))["active"]
