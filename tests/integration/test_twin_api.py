"""TwinService over gRPC against the real runtime: twin, change stream, alert filters and paging,
the alert log as CSV and JSON, and refusals."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator

import grpc
import pytest

from actors.api import TwinApi
from actors.runtime.store import create_pool
from gridtwin.api.twins.v1 import twin_service_pb2 as pb
from gridtwin.api.twins.v1 import twin_service_pb2_grpc as pb_grpc
from gridtwin.unixtime import now_ms
from services.telemetry.store import TelemetryStore
from tests.integration.access_support import authenticator, authorized_channel, ensure_root_token
from tests.integration.twins_support import Twins, stream

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(twins: Twins, assets_engine: object) -> AsyncIterator[tuple[Twins, pb_grpc.TwinServiceStub]]:
    pool = await create_pool(twins.settings.postgres.url, 2)
    api = TwinApi(twins.settings.twins, pool, twins.runtime.router, authenticator=authenticator(assets_engine))
    await api.start()
    channel = authorized_channel(f"127.0.0.1:{api.port}", twins.pool)
    await ensure_root_token(twins.pool)
    yield twins, pb_grpc.TwinServiceStub(channel)
    await channel.close()
    await api.stop(0)
    await pool.close()


async def _feed(t: Twins, chunks: list) -> None:  # type: ignore[type-arg]
    store = TelemetryStore(t.pool, 300.0)
    for records in chunks:
        await store.write(records)
        await t.runtime.router.deliver(records)


async def test_twin_stream_alerts_and_export(client: tuple[Twins, pb_grpc.TwinServiceStub]) -> None:
    t, stub = client
    end_ms = now_ms() - 20_000
    chunks = stream(12, 100, end_ms=end_ms)
    await _feed(t, chunks[:-2])

    twin = await stub.GetTwin(pb.GetTwinRequest(installation_id="site-0"))
    assert twin.reported.device_id == "site-dev-0" and twin.reported.grid_status == 1
    assert twin.samples_applied == 80
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetTwin(pb.GetTwinRequest(installation_id="never-reported"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.GetTwin(pb.GetTwinRequest(installation_id="no spaces please"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # The stream: the twin now, then its change after more telemetry arrives.
    updates = stub.StreamTwin(pb.StreamTwinRequest(installation_id="site-0", min_interval_ms=50))
    first = await updates.read()
    assert first.version == twin.version
    await _feed(t, chunks[-2:])
    second = await asyncio.wait_for(updates.read(), 30)
    assert second.version > first.version
    while second.samples_applied < 100:                    # the two chunks may arrive as two changes
        second = await asyncio.wait_for(updates.read(), 30)
    assert second.samples_applied == 100
    updates.cancel()

    # Alerts: installation 0 had a negative-solar episode (cleared) and one still open.
    listed = await stub.ListAlerts(pb.ListAlertsRequest(installation_id="site-0"))
    assert [a.rule for a in listed.alerts] == ["solar_negative", "solar_negative"]
    assert [a.state for a in listed.alerts] in ([pb.ALERT_STATE_RAISED, pb.ALERT_STATE_CLEARED],
                                                [pb.ALERT_STATE_ONGOING, pb.ALERT_STATE_CLEARED])
    assert listed.alerts[0].first_seen_unix_ms > listed.alerts[1].first_seen_unix_ms  # newest first
    cleared = await stub.ListAlerts(pb.ListAlertsRequest(states=[pb.ALERT_STATE_CLEARED]))
    assert {a.installation_id for a in cleared.alerts} == {f"site-{k}" for k in range(0, 12, 3)}
    assert not (await stub.ListAlerts(pb.ListAlertsRequest(min_severity=pb.SEVERITY_CRITICAL))).alerts
    everything = await stub.ListAlerts(pb.ListAlertsRequest(page_size=1_000))
    pages, token = [], ""
    while True:
        page = await stub.ListAlerts(pb.ListAlertsRequest(page_size=3, page_token=token))
        pages.extend(page.alerts)
        token = page.next_page_token
        if not token:
            break
    assert [a.alert_id for a in pages] == [a.alert_id for a in everything.alerts]
    with pytest.raises(grpc.aio.AioRpcError) as bad_token:
        await stub.ListAlerts(pb.ListAlertsRequest(page_token="%%%"))
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # The alert log, as CSV and JSON, for a range covering the stream.
    start, end = end_ms - 200_000, end_ms + 60_000
    csv_chunks = [c async for c in stub.ExportAlertLog(pb.ExportAlertLogRequest(
        installation_id="site-0", start_unix_ms=start, end_unix_ms=end, format=pb.EXPORT_FORMAT_CSV))]
    assert csv_chunks[0].content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(c.data for c in csv_chunks).decode())))
    assert [r["rule"] for r in rows] == ["solar_negative", "solar_negative"]
    assert rows[0]["state"] == "cleared" and rows[0]["cleared_at"].endswith("Z")
    assert json.loads(rows[0]["details"])["limit"] == -10.0
    json_chunks = [c async for c in stub.ExportAlertLog(pb.ExportAlertLogRequest(
        installation_id="site-0", start_unix_ms=start, end_unix_ms=end, format=pb.EXPORT_FORMAT_JSON))]
    exported = json.loads(b"".join(c.data for c in json_chunks))
    assert [e["alert_id"] for e in exported] == [r["alert_id"] for r in rows]
    before = [c async for c in stub.ExportAlertLog(pb.ExportAlertLogRequest(
        installation_id="site-0", start_unix_ms=1, end_unix_ms=start, format=pb.EXPORT_FORMAT_JSON))]
    assert json.loads(b"".join(c.data for c in before)) == []
    with pytest.raises(grpc.aio.AioRpcError) as bad_range:
        async for _ in stub.ExportAlertLog(pb.ExportAlertLogRequest(installation_id="site-0", start_unix_ms=5,
                                                                    end_unix_ms=5)):
            pass
    assert bad_range.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_notifications_page_newest_first(client: tuple[Twins, pb_grpc.TwinServiceStub]) -> None:
    t, stub = client
    await t.pool.execute("DELETE FROM customer_notifications WHERE installation_id IN ('site-n', 'site-m')")
    # 23 notifications, three to a second (ties broken by id, descending), and one of another home
    await t.pool.executemany(
        "INSERT INTO customer_notifications (notification_id, installation_id, kind, title, body, at) "
        "VALUES ($1, $2, 'stormwatch_activated', 't', 'b', to_timestamp($3))",
        [(f"n-{i:02d}", "site-n", 1_700_000_000 + i // 3) for i in range(23)] + [("m-00", "site-m", 1_700_000_000)])
    expected = sorted((f"n-{i:02d}" for i in range(23)), key=lambda n: (int(n[2:]) // 3, n), reverse=True)

    request = pb.ListNotificationsRequest(installation_id="site-n", page_size=5)
    walked, pages = [], 0
    while True:
        answer = await stub.ListNotifications(request)
        assert len(answer.notifications) <= 5
        walked.extend(n.notification_id for n in answer.notifications)
        pages += 1
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    assert walked == expected and pages == 5        # nothing missed or repeated, newest first
    whole = await stub.ListNotifications(pb.ListNotificationsRequest(installation_id="site-n"))
    assert [n.notification_id for n in whole.notifications] == expected and whole.next_page_token == ""
    older = await stub.ListNotifications(pb.ListNotificationsRequest(installation_id="site-n", limit=4))
    assert len(older.notifications) == 4 and older.next_page_token   # `limit` still sizes a page

    token = older.next_page_token
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    for bad in (pb.ListNotificationsRequest(installation_id="site-m", page_token=token),     # another home
                pb.ListNotificationsRequest(installation_id="site-n", page_token=tampered),
                pb.ListNotificationsRequest(installation_id="site-n", page_token="n-04"),
                pb.ListNotificationsRequest(installation_id="site-n", page_size=501)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListNotifications(bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (bad, refused.value.details())
