"""WeatherService over gRPC on an ephemeral port: active alerts (with a bbox filter), the change
stream from a cursor and live, health, bad requests."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import random
from collections import Counter

import grpc
import numpy as np
import pytest
import shapely
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gridtwin.api.weather.v1 import weather_pb2 as pb
from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc
from gridtwin.app import wiring as services
from gridtwin.paging import page_token
from services.access.model import Scope
from services.weather import nws
from services.weather.api import SERVICE_NAME, WeatherApi
from services.weather.convert import alert_pb
from services.weather.model import Alert, AlertId, AlertState
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.access_support import authenticator, authorized_channel, bearer, mint
from tests.integration.test_weather_store_matching import WEATHER_TABLES

pytestmark = pytest.mark.integration
T0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


async def test_list_and_stream(clean_db, assets_engine):
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    store = AlertStore(clean_db)
    await store.ingest(nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW).alerts, wd.IOWA_NOW)
    # The log's sequence is not reset by TRUNCATE: count back from its end (48 activations, 14 of
    # them zone-only alerts whose area is unknown: no zones were loaded).
    base = await store.last_seq() - 48
    async with WeatherApi("127.0.0.1", 0, store, authenticator=authenticator(assets_engine),
                          stream_poll_s=0.05) as api, \
            authorized_channel(f"127.0.0.1:{api.port}", clean_db) as channel:
        stub = pb_grpc.WeatherServiceStub(channel)
        listed = await stub.ListActiveAlerts(pb.ListActiveAlertsRequest())
        assert len(listed.alerts) == 48 and sum(a.area_unknown for a in listed.alerts) == 14
        assert all(shapely.from_wkt(a.area_wkt).is_valid for a in listed.alerts if not a.area_unknown)
        assert all(not a.HasField("bbox") and a.unresolved_zones == a.zones for a in listed.alerts if a.area_unknown)
        near = await stub.ListActiveAlerts(pb.ListActiveAlertsRequest(bbox=pb.BoundingBox(
            min_longitude_deg=-96, min_latitude_deg=41, max_longitude_deg=-95, max_latitude_deg=42)))
        assert 0 < len(near.alerts) < 34 and not any(a.area_unknown for a in near.alerts)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.ListActiveAlerts(pb.ListActiveAlertsRequest(bbox=pb.BoundingBox(
                min_longitude_deg=1, max_longitude_deg=0)))
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        stream = stub.StreamAlertChanges(pb.StreamAlertChangesRequest(after_seq=base + 30))
        first = [await stream.read() for _ in range(4)]
        assert [c.seq - base for c in first] == [31, 32, 33, 34]
        assert all(c.kind == pb.AlertChange.KIND_ACTIVATED for c in first)
        assert [(await stream.read()).seq - base for _ in range(14)] == list(range(35, 49))
        feature = wd.alert_feature("live", "Alert", wd.hurricane(), T0)
        await store.ingest(nws.parse_feed(wd.feed_doc(feature), now=T0).alerts, T0)
        live = await asyncio.wait_for(stream.read(), 5)
        assert live.seq == base + 49 and live.alert.alert_id == "live" and live.alert.onset_unix_ms > 0
        stream.cancel()

        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_changes_page_and_one_alert_for_the_poller(clean_db, assets_engine):
    """The poller's view of the API (services/weather/client.py): pages of the change log, and
    any alert message by id, NOT_FOUND as None."""
    from services.weather.client import WeatherClient

    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    store = AlertStore(clean_db)
    alerts = nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW).alerts
    await store.ingest(alerts, wd.IOWA_NOW)
    async with WeatherApi("127.0.0.1", 0, store, authenticator=authenticator(assets_engine)) as api:
        client = WeatherClient(f"127.0.0.1:{api.port}", token=await mint(clean_db, Scope.READ))
        try:
            first = await client.changes_after(0, 10)
            rest = await client.changes_after(first[-1].seq, 5_000)
            direct = await store.changes_after(0, 5_000)
            assert [c.seq for c in first + rest] == [c.seq for c in direct]
            assert [c.change for c in first + rest] == [c.change for c in direct]
            some = direct[0].change.alert
            assert (await client.get(some.alert_id)) == await store.get(some.alert_id)
            assert await client.get("no-such-alert") is None
        finally:
            await client.close()


async def test_active_alerts_and_changes_come_in_pages_bounded_in_count_and_bytes(clean_db, assets_engine):
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    store = AlertStore(clean_db)
    await store.ingest(nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW).alerts, wd.IOWA_NOW)
    active = await store.active()
    sizes = [alert_pb(a).ByteSize() for a in active]
    budget = sum(sizes[:5])   # the page that fits five alerts' bytes ends at five
    async with WeatherApi("127.0.0.1", 0, store, authenticator=authenticator(assets_engine),
                          page_bytes=budget) as api, \
            authorized_channel(f"127.0.0.1:{api.port}", clean_db) as channel:
        stub = pb_grpc.WeatherServiceStub(channel)

        async def every_page(request: pb.ListActiveAlertsRequest) -> list[list[str]]:
            pages: list[list[str]] = []
            while True:
                reply = await stub.ListActiveAlerts(request)
                pages.append([a.alert_id for a in reply.alerts])
                if not reply.next_page_token:
                    return pages
                request.page_token = reply.next_page_token

        pages = await every_page(pb.ListActiveAlertsRequest(page_size=3))
        assert [len(p) for p in pages] == _page_lengths(sizes, 3, budget)    # 3 each, fewer where bytes end it
        assert max(len(p) for p in pages) == 3 and len(pages) < 48
        assert sum(pages, []) == [a.alert_id for a in active]            # oldest first, each once
        by_bytes = await every_page(pb.ListActiveAlertsRequest(page_size=1_000))
        assert len(by_bytes[0]) == 5 and sum(by_bytes, []) == [a.alert_id for a in active]
        box = pb.BoundingBox(min_longitude_deg=-96, min_latitude_deg=41, max_longitude_deg=-95, max_latitude_deg=42)
        near = [a.alert_id for a in active if a.bbox is not None and a.bbox[0] <= -95 and a.bbox[2] >= -96
                and a.bbox[1] <= 42 and a.bbox[3] >= 41]
        assert sum(await every_page(pb.ListActiveAlertsRequest(bbox=box, page_size=2)), []) == near

        forged = [page_token(2**63, "a"), page_token(1, "a\x00b"),       # beyond bigint; a NUL in the id
                  base64.urlsafe_b64encode(b"not-a-number|a").decode(), base64.urlsafe_b64encode(b"12").decode()]
        for bad in (pb.ListActiveAlertsRequest(page_size=1_001), pb.ListActiveAlertsRequest(page_token="x"),
                    *(pb.ListActiveAlertsRequest(page_token=token) for token in forged)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListActiveAlerts(bad)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        # The change log's pages end at the byte budget too; asking again after the last seq goes on.
        changes = await stub.ListAlertChanges(pb.ListAlertChangesRequest(limit=5_000))
        assert 1 <= len(changes.changes) < 48
        seen = [c.seq for c in changes.changes]
        while more := (await stub.ListAlertChanges(pb.ListAlertChangesRequest(after_seq=seen[-1]))).changes:
            seen += [c.seq for c in more]
        assert seen == [c.seq for c in await store.changes_after(0, 5_000)]


async def test_the_service_records_expiry_itself_without_any_feed(clean_db, platform):
    """No provider configured: the weather service's sweep still ends an alert at its end, as a
    lifecycle change the change log shows, and the active list drops it."""
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    store = AlertStore(clean_db)
    now = dt.datetime.now(dt.UTC)
    # Sent an hour ago, ends two seconds from now.
    feature = wd.alert_feature("short", "Alert", wd.hurricane(), now - dt.timedelta(hours=1), hours=1 + 2 / 3600)
    [alert] = nws.parse_feed(wd.feed_doc(feature), now=now).alerts
    [activated] = (await store.ingest([alert], now)).changes
    settings = platform.model_copy(update={"weather": platform.weather.model_copy(update={
        "port": 0, "metrics_port": 0, "feed_dir": "", "feed_url": "", "expiry_sweep_s": 0.2})})
    async with services.weather(settings) as server, \
            authorized_channel(f"127.0.0.1:{server.port}", clean_db) as channel:  # type: ignore[attr-defined]
        stub = pb_grpc.WeatherServiceStub(channel)
        assert [a.alert_id for a in (await stub.ListActiveAlerts(pb.ListActiveAlertsRequest())).alerts] == ["short"]
        for _ in range(100):
            stored = await store.get("short")
            if stored is not None and stored.state is AlertState.EXPIRED:
                break
            await asyncio.sleep(0.1)
        assert stored is not None and stored.state is AlertState.EXPIRED
        assert stored.ended_at is not None and stored.ended_at >= alert.end   # type: ignore[operator]
        changes = (await stub.ListAlertChanges(pb.ListAlertChangesRequest(after_seq=activated.seq))).changes
        assert [(c.kind, c.alert.alert_id, c.reason) for c in changes] == [
            (pb.AlertChange.KIND_ENDED, "short", "expired")]
        assert not (await stub.ListActiveAlerts(pb.ListActiveAlertsRequest())).alerts


def _page_lengths(sizes: list[int], page_size: int, budget: int) -> list[int]:
    """The pages the API's rule makes: `page_size` alerts, ended early once their bytes exceed `budget`."""
    lengths, start = [], 0
    while start < len(sizes):
        used, count = 0, 0
        for size in sizes[start:start + page_size]:
            used += size
            if used > budget and count > 0:
                break
            count += 1
        lengths.append(count)
        start += count
    return lengths


def _brute_force_areas() -> dict[str, shapely.Geometry]:
    """Every Iowa alert's area straight from the feed: its polygon, else the union of its zones'
    squares (the stand-in zone table of tests/weather_data.py)."""
    squares = {f["properties"]["id"]: shapely.geometry.shape(f["geometry"])
               for f in wd.square_zones(wd.ugc_codes(wd.IOWA))["features"]}
    return {f["properties"]["id"]: shapely.geometry.shape(f["geometry"]) if f["geometry"] else
            shapely.union_all([squares[c] for c in f["properties"]["geocode"]["UGC"]])
            for f in wd.load(wd.IOWA)["features"]}


async def test_affected_installations_equal_a_brute_force_shapely_computation(clean_db, assets_engine):
    """ListAffectedInstallations on the 48 Iowa alerts (the zone-only ones through loaded zones)
    against Shapely over every installation: the same installations, each once, in pages, with
    the StormWatch state its twin's snapshot says and the counts by state; a token limited to a
    group sees only that group's installations."""
    from actors.twin import stormwatch as sw
    from services.weather import zones

    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}, twin_snapshots")
    store = AlertStore(clean_db)
    await store.save_zones(zones.load_geojson(wd.square_zones(wd.ugc_codes(wd.IOWA))).zones, "squares")
    alerts = nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW, zones=await store.load_zones()).alerts
    await store.ingest(alerts, wd.IOWA_NOW)
    areas = _brute_force_areas()
    assert len(areas) == 48 and {a.alert_id for a in alerts} == set(areas)

    # Installations: random points around every area, and its first vertices (exactly on the boundary).
    rng = random.Random(14)
    points: list[tuple[float, float]] = []
    for area in areas.values():
        x0, y0, x1, y1 = area.bounds
        points += [(rng.uniform(x0 - 0.1, x1 + 0.1), rng.uniform(y0 - 0.1, y1 + 0.1)) for _ in range(60)]
        points += [(float(x), float(y)) for x, y in shapely.get_coordinates(area)[:3]]
    ids = [f"aff-{k:05d}" for k in range(len(points))]
    await clean_db.executemany(
        "INSERT INTO installations (installation_id, location, stormwatch_enabled) "
        "VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326), $4)",
        [(i, x, y, k % 6 != 4) for k, (i, (x, y)) in enumerate(zip(ids, points, strict=True))])
    # Twin snapshots: installation k watches / opted out of / ended alert number k % 48 (k % 6 = 0..3).
    order = sorted(areas)
    kinds = {0: "watching", 1: "deferred_for_vpp", 2: "opted_out", 3: "ended"}
    snapshots = []
    for k, installation in enumerate(ids):
        target = AlertId(order[k % len(order)])
        storm = sw.WatchedStorm((target,), "Tornado Warning", wd.IOWA_NOW, wd.IOWA_NOW, wd.IOWA_NOW + H)
        state = {0: sw.StormWatchState(storms=(storm,)),
                 1: sw.StormWatchState(storms=(storm,), deferred_for_vpp=True),
                 2: sw.StormWatchState(opted_out=(target,)), 3: sw.StormWatchState(ended=(target,))
                 }.get(k % 6, sw.StormWatchState())
        snapshots.append((installation, json.dumps({"format": 1, "stormwatch": sw.state_to_dict(state)})))
    await clean_db.executemany("INSERT INTO twin_snapshots (installation_id, shard_hash, version, state) "
                               "VALUES ($1, 0, 1, $2::jsonb)", snapshots)
    await clean_db.execute("INSERT INTO hierarchy_groups (path) VALUES ('affg')")
    await clean_db.executemany("INSERT INTO group_memberships (installation_id, path) VALUES ($1, 'affg')",
                               [(i,) for i in ids[::3]])

    def expected_state(k: int, alert: Alert) -> str:
        if k % 6 in kinds and order[k % len(order)] in (alert.alert_id, *alert.references):
            return kinds[k % 6]
        return "disabled" if k % 6 == 4 else "not_watching"

    names = {v.number: v.name.removeprefix("STORM_WATCH_STATE_").lower() for v in pb.StormWatchState.DESCRIPTOR.values}
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    async with WeatherApi("127.0.0.1", 0, store, authenticator=authenticator(assets_engine)) as api, \
            authorized_channel(f"127.0.0.1:{api.port}", clean_db) as channel:
        stub = pb_grpc.WeatherServiceStub(channel)
        grouped = bearer(await mint(clean_db, Scope.READ, paths=("affg",)))

        async def every_page(alert_id: str, size: int, metadata: object = None) -> tuple[
                list[pb.AffectedInstallation], list[pb.ListAffectedInstallationsResponse]]:
            request = pb.ListAffectedInstallationsRequest(alert_id=alert_id, page_size=size)
            rows, replies = [], []
            while True:
                reply = await stub.ListAffectedInstallations(request, metadata=metadata)
                rows += reply.installations
                replies.append(reply)
                if not reply.next_page_token:
                    return rows, replies
                request.page_token = reply.next_page_token

        nonempty = 0
        for alert in alerts:
            inside = np.flatnonzero(shapely.intersects_xy(areas[alert.alert_id], x, y))
            truth = {ids[k]: expected_state(int(k), alert) for k in inside}
            rows, replies = await every_page(alert.alert_id, 37)
            assert [r.installation_id for r in rows] == sorted(truth), alert.alert_id    # in order, each once
            assert {r.installation_id: names[r.state] for r in rows} == truth
            counts = Counter(truth.values())
            for reply in replies:    # every page carries the counts over all of them
                assert reply.total == len(truth) and not reply.area_unknown
                assert {names[c.state]: c.installations for c in reply.counts} == counts
            assert all(len(reply.installations) == 37 for reply in replies[:-1])
            watching = [r for r in rows if names[r.state] in ("watching", "deferred_for_vpp")]
            assert all(r.watched_alert_id == alert.alert_id and r.until_unix_ms > 0 for r in watching)
            nonempty += bool(truth)
            in_group, _ = await every_page(alert.alert_id, 1_000, grouped)
            assert [r.installation_id for r in in_group] == sorted(set(truth) & set(ids[::3]))
        assert nonempty == 48

        first = (await stub.ListAffectedInstallations(pb.ListAffectedInstallationsRequest(
            alert_id=order[0], page_size=1))).next_page_token
        for bad in (pb.ListAffectedInstallationsRequest(alert_id=order[1], page_token=first),   # another alert's
                    pb.ListAffectedInstallationsRequest(alert_id=order[0], page_token="x"),
                    pb.ListAffectedInstallationsRequest(alert_id=order[0], page_size=1_001),
                    pb.ListAffectedInstallationsRequest()):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListAffectedInstallations(bad)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.ListAffectedInstallations(pb.ListAffectedInstallationsRequest(alert_id="no-such-alert"))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND

        # An alert whose zones nobody loaded: stored, shown as such, affecting nobody.
        nowhere = wd.alert_feature("nowhere", "Alert", None, dt.datetime.now(dt.UTC), event="Flood Warning")
        nowhere["properties"]["geocode"] = {"UGC": ["ZZZ999"]}
        await store.ingest(nws.parse_feed(wd.feed_doc(nowhere), now=dt.datetime.now(dt.UTC)).alerts,
                           dt.datetime.now(dt.UTC))
        reply = await stub.ListAffectedInstallations(pb.ListAffectedInstallationsRequest(alert_id="nowhere"))
        assert reply.area_unknown and reply.total == 0 and not reply.installations
        stored = await stub.GetAlert(pb.GetAlertRequest(alert_id="nowhere"))
        assert stored.alert.area_unknown and list(stored.alert.unresolved_zones) == ["ZZZ999"]
