"""WeatherService over gRPC on an ephemeral port: active alerts (with a bbox filter), the change
stream from a cursor and live, health, bad requests."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt

import grpc
import pytest
import shapely
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gridtwin.api.weather.v1 import weather_pb2 as pb
from gridtwin.api.weather.v1 import weather_pb2_grpc as pb_grpc
from gridtwin.paging import page_token
from services.assets.access import Scope
from services.weather import nws
from services.weather.api import SERVICE_NAME, WeatherApi
from services.weather.convert import alert_pb
from services.weather.store import AlertStore
from tests import weather_data as wd
from tests.integration.access_support import authenticator, authorized_channel, mint
from tests.integration.test_weather_store_matching import WEATHER_TABLES

pytestmark = pytest.mark.integration
T0 = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)


async def test_list_and_stream(clean_db, assets_engine):
    await clean_db.execute(f"TRUNCATE {WEATHER_TABLES}")
    store = AlertStore(clean_db)
    await store.ingest(nws.parse_feed(wd.IOWA.read_bytes(), now=wd.IOWA_NOW).alerts, wd.IOWA_NOW)
    # The log's sequence is not reset by TRUNCATE: count back from its end (34 activations).
    base = await store.last_seq() - 34
    async with WeatherApi("127.0.0.1", 0, store, authenticator=authenticator(assets_engine),
                          stream_poll_s=0.05) as api, \
            authorized_channel(f"127.0.0.1:{api.port}", clean_db) as channel:
        stub = pb_grpc.WeatherServiceStub(channel)
        listed = await stub.ListActiveAlerts(pb.ListActiveAlertsRequest())
        assert len(listed.alerts) == 34
        assert all(shapely.from_wkt(a.area_wkt).is_valid for a in listed.alerts)
        near = await stub.ListActiveAlerts(pb.ListActiveAlertsRequest(bbox=pb.BoundingBox(
            min_longitude_deg=-96, min_latitude_deg=41, max_longitude_deg=-95, max_latitude_deg=42)))
        assert 0 < len(near.alerts) < 34
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.ListActiveAlerts(pb.ListActiveAlertsRequest(bbox=pb.BoundingBox(
                min_longitude_deg=1, max_longitude_deg=0)))
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        stream = stub.StreamAlertChanges(pb.StreamAlertChangesRequest(after_seq=base + 30))
        first = [await stream.read() for _ in range(4)]
        assert [c.seq - base for c in first] == [31, 32, 33, 34]
        assert all(c.kind == pb.AlertChange.KIND_ACTIVATED for c in first)
        feature = wd.alert_feature("live", "Alert", wd.hurricane(), T0)
        await store.ingest(nws.parse_feed(wd.feed_doc(feature), now=T0).alerts, T0)
        live = await asyncio.wait_for(stream.read(), 5)
        assert live.seq == base + 35 and live.alert.alert_id == "live" and live.alert.onset_unix_ms > 0
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
        assert [len(p) for p in pages] == [3] * 11 + [1]
        assert sum(pages, []) == [a.alert_id for a in active]            # oldest first, each once
        by_bytes = await every_page(pb.ListActiveAlertsRequest(page_size=1_000))
        assert len(by_bytes[0]) == 5 and sum(by_bytes, []) == [a.alert_id for a in active]
        box = pb.BoundingBox(min_longitude_deg=-96, min_latitude_deg=41, max_longitude_deg=-95, max_latitude_deg=42)
        near = [a.alert_id for a in active if a.bbox[0] <= -95 and a.bbox[2] >= -96 and a.bbox[1] <= 42
                and a.bbox[3] >= 41]
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
        assert 1 <= len(changes.changes) < 34
        seen = [c.seq for c in changes.changes]
        while more := (await stub.ListAlertChanges(pb.ListAlertChangesRequest(after_seq=seen[-1]))).changes:
            seen += [c.seq for c in more]
        assert seen == [c.seq for c in await store.changes_after(0, 5_000)]
