"""The VPP service process as operators and grid operators use it: `gridtwin.app.wiring.vpp` (the
VppService over a real gRPC channel, the OpenADR 3 REST endpoint, the intent relay and the live
contribution tracker) on the real components — Postgres/PostGIS, the broker, twins on Ray, the
gateway, simulated batteries.

One event through gRPC: participants resolved, plans acknowledged — including by a device that
was offline at dispatch and reconnected — an opt-out honoured, the live contribution streamed
while the batteries discharge, and the report's energy equal to the telemetry integrated here
independently (dense resampling, not the report's trapezoids), paid at the program's rate.
Then OpenADR 3 events over REST onto the same dispatcher, and the refusals of both edges."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import socket
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest

from gridtwin.api.control.v1 import vpp_pb2 as pb
from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc
from gridtwin.app import wiring as services
from gridtwin.settings import Settings
from services.access.credentials import register_devices
from services.access.model import Scope
from simulator.fleet import FleetOptions, registrations
from tests.data import SHARED_DATA
from tests.integration.assets_client import bearer
from tests.integration.test_control_delivery import Stack, fleet_of
from tests.integration.test_vpp_event import _program
from tests.integration.twins_support import Twins

pytestmark = pytest.mark.integration

S = dt.timedelta(seconds=1)
EXAMPLES = SHARED_DATA / "openadr" / "openadr3_1_0_user_guide_event_examples.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vpp_settings(twins: Twins, stack: Stack | None = None) -> Settings:
    base = twins.settings if stack is None else twins.settings.model_copy(update={"kafka": stack.kafka})
    return base.model_copy(update={"vpp": base.vpp.model_copy(update={
        "port": 0, "rest_port": _free_port(), "metrics_port": 0, "auth_cache_s": 0.0, "stream_interval_s": 0.2,
        "intent_sweep_s": 0.5})})


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000)


async def _refused(call: Any, request: Any, metadata: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call(request, metadata=metadata)
    return error.value.code(), error.value.details() or ""


async def _discharged_wh(pool: Any, installation_id: str, start: dt.datetime, end: dt.datetime) -> float:
    """Discharge energy in [start, end] from the stored samples, by resampling the piecewise-linear
    power every millisecond: a different method from the report's exact trapezoids."""
    rows = await pool.fetch("SELECT extract(epoch FROM ts)::float8 AS t, battery_power_w FROM telemetry_samples "
                            "WHERE installation_id = $1 ORDER BY ts", installation_id)
    t = np.array([r["t"] for r in rows])
    p = np.array([r["battery_power_w"] for r in rows])
    grid = np.arange(start.timestamp(), end.timestamp(), 0.001)
    grid = grid[(grid >= t[0]) & (grid <= t[-1])]
    power = np.maximum(np.interp(grid, t, p), 0.0)
    return float(np.trapezoid(power, grid) / 3_600)


async def test_an_event_through_the_vpp_service(twins: Twins, isolated: Settings, assets: Any) -> None:
    pool = assets.pool
    options = FleetOptions(devices=4, fleet_secret="ctl", id_prefix="vs", load_source="bdew")
    await register_devices(pool, registrations(options))
    sites = [r.installation_id for r in registrations(options)]
    await _program(pool, sites)
    root = bearer(await assets.token(Scope.COMMAND))
    reader = bearer(await assets.token(Scope.READ))
    elsewhere = bearer(await assets.token(Scope.COMMAND, paths=("util.south",)))

    async with Stack(isolated, pool, ingest=True) as stack:
        fleet = fleet_of(stack, 4, "vs")
        async with fleet, services.vpp(_vpp_settings(twins, stack)) as api, \
                grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            stub = pb_grpc.VppServiceStub(channel)
            await fleet.wait_connected(20)
            await stack.wait_registered([d.device_id for d in fleet.devices])
            # Site 1's battery is offline when the event is dispatched; it comes back 3 s later.
            await fleet.disconnect([1], offline_s=3.0)
            async with asyncio.timeout(10):
                while await pool.fetchval("SELECT count(*) FROM control_device_sessions WHERE device_id = $1",
                                          fleet.devices[1].device_id):
                    await asyncio.sleep(0.05)

            start = dt.datetime.now(dt.UTC) + 7 * S
            end = start + 6 * S
            spec = pb.GridEventSpec(program="util.vpp", target_group="util.north", start_unix_ms=_ms(start),
                                    end_unix_ms=_ms(end), target_power_w=12_000.0, precharge_s=4.0,
                                    name="evening peak", external_id="grid-op-1")
            event = await stub.CreateEvent(pb.CreateEventRequest(spec=spec), metadata=root)
            assert event.participants == 4 and event.rate_per_kwh == "2.0000" and event.currency == "USD"
            assert event.state == pb.EVENT_STATE_SCHEDULED and event.source == "grpc" and event.fanout_id
            again = await stub.CreateEvent(pb.CreateEventRequest(spec=spec), metadata=root)
            assert again.event_id == event.event_id                       # the operator's retry: one event
            listed = await stub.ListParticipants(pb.ListParticipantsRequest(event_id=event.event_id),
                                                 metadata=reader)
            assert [(p.installation_id, p.status) for p in listed.participants] == \
                [(s, pb.PARTICIPANT_STATUS_ACCEPTED) for s in sites]
            assert {p.power_w for p in listed.participants} == {3_000.0}

            stream = stub.StreamContribution(pb.StreamContributionRequest(
                path="util.vpp", installation_id=sites[0], interval_ms=200), metadata=reader)
            seen: list[pb.Contribution] = []

            async def collect() -> None:
                async for message in stream:
                    seen.append(message)
            collecting = asyncio.create_task(collect())

            async with asyncio.timeout(20):   # every plan acknowledged, the reconnected device's too
                while (await stub.GetEventProgress(pb.GetEventProgressRequest(event_id=event.event_id),
                                                        metadata=reader)).acknowledged < 4:
                    await asyncio.sleep(0.1)

            opted = await stub.OptOut(pb.OptOutRequest(event_id=event.event_id, installation_id=sites[3]),
                                      metadata=root)
            assert opted.status == pb.PARTICIPANT_STATUS_OPTED_OUT
            assert (await _refused(stub.OptOut, pb.OptOutRequest(event_id=event.event_id, installation_id="nobody"),
                                   root))[0] == grpc.StatusCode.NOT_FOUND
            assert (await _refused(stub.OptOut, pb.OptOutRequest(event_id=event.event_id, installation_id=sites[0]),
                                   elsewhere))[0] == grpc.StatusCode.PERMISSION_DENIED

            await asyncio.sleep((end - dt.datetime.now(dt.UTC)).total_seconds() + 1.5)
            stream.cancel()
            await asyncio.gather(collecting, return_exceptions=True)
            await fleet.stop_streaming()
            await fleet.wait_drained(20)
            async with asyncio.timeout(20):
                while await pool.fetchval("SELECT count(*) FROM telemetry_samples") < \
                        fleet.ledger.generated_total():
                    await asyncio.sleep(0.1)

            # Live: the program's sum rose by the three discharging homes' shares within a couple
            # of seconds of the start (site 3, opted out, discharges only into its own load), and
            # site 0's own figure is its share.
            before = max(m.discharge_w for m in seen if m.at_unix_ms < _ms(start))
            during = [m for m in seen if _ms(start) + 2_500 <= m.at_unix_ms <= _ms(end) - 500]
            assert during and all(m.discharge_w >= 9_000.0 * 0.98 and m.installations_reporting == 4
                                  for m in during), [(m.at_unix_ms, m.discharge_w) for m in seen]
            assert before < 9_000.0 * 0.5
            assert any(m.installation.discharge_w == pytest.approx(3_000.0, rel=0.02) for m in seen)
            assert all(m.path == "util.vpp" for m in seen)
            assert all(m.installation.installation_id == sites[0] for m in seen if m.HasField("installation"))

            got = await stub.GetEvent(pb.GetEventRequest(event_id=event.event_id), metadata=reader)
            assert got.state == pb.EVENT_STATE_COMPLETED
            report = await stub.GetEventReport(pb.GetEventReportRequest(event_id=event.event_id), metadata=reader)

    assert report.complete and report.rate_per_kwh == "2.0000"
    by_site = {i.installation_id: i for i in report.installations}
    assert set(by_site) == set(sites)
    for site in sites:
        independent = await _discharged_wh(pool, site, start, end)
        assert by_site[site].discharged_wh == pytest.approx(independent, rel=1e-3, abs=1e-3)
        assert by_site[site].coverage > 0.9
    for site in sites[:3]:     # 3 kW for 6 s is 5 Wh, less the ramp to the first sample; paid at 2 per kWh
        assert 3.5 < by_site[site].discharged_wh < 5.05
        paid = (Decimal(repr(by_site[site].discharged_wh)) / 1000 * 2).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert by_site[site].compensation == str(paid)
    assert by_site[sites[3]].status == pb.PARTICIPANT_STATUS_OPTED_OUT and by_site[sites[3]].compensation == "0.00"
    assert report.discharged_wh == pytest.approx(sum(by_site[s].discharged_wh for s in sites[:3]))


def _openadr_body(start: dt.datetime, kw: float, program_id: str = "44") -> dict[str, Any]:
    examples = json.loads(EXAMPLES.read_text())["examples"]
    caption = "Example 8.5-1: Create load control event"
    body = copy.deepcopy(next(e["json"] for e in examples if e["caption"] == caption))
    body["programID"] = program_id
    body["intervalPeriod"] = {"start": start.isoformat().replace("+00:00", "Z"), "duration": "PT1H"}
    body["intervals"][0]["payloads"][0]["values"] = [-kw]
    body["targets"] = ["util.north"]
    return body


async def test_openadr_events_and_refusals(twins: Twins, isolated: Settings, assets: Any) -> None:
    pool = assets.pool
    options = FleetOptions(devices=3, fleet_secret="ctl", id_prefix="oa")
    await register_devices(pool, registrations(options))
    await _program(pool, [r.installation_id for r in registrations(options)])
    await pool.execute("UPDATE vpp_program_terms SET openadr_program_id = '44' WHERE program = 'util.vpp'")
    root, reader = await assets.token(Scope.COMMAND), await assets.token(Scope.READ)
    south = {"Authorization": f"Bearer {await assets.token(Scope.COMMAND, paths=('util.south',))}"}
    settings = _vpp_settings(twins)
    url = f"http://127.0.0.1:{settings.vpp.rest_port}/openadr3/events"
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + 3_600 * S

    async with services.vpp(settings) as api, grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel, \
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {root}"}) as http:
        stub = pb_grpc.VppServiceStub(channel)
        async with http.post(url, json=_openadr_body(start, 300)) as r:        # 300 kW for the group
            assert r.status == 201, await r.text()
            created = await r.json()
        assert created["objectType"] == "EVENT" and created["programID"] == "44" and created["state"] == "scheduled"
        event = await stub.GetEvent(pb.GetEventRequest(event_id=created["id"]), metadata=bearer(reader))
        assert (event.source, event.spec.program, event.spec.target_group) == ("openadr", "util.vpp", "util.north")
        assert event.spec.target_power_w == 300_000.0 and event.participants == 3
        assert event.spec.start_unix_ms == _ms(start)
        async with asyncio.timeout(10):                 # the twins' plans became commands in its fan-out
            while (await stub.GetEventProgress(pb.GetEventProgressRequest(event_id=event.event_id),
                                               metadata=bearer(reader))).total < 3:
                await asyncio.sleep(0.1)

        # A token for another group neither sees nor changes the event, nor posts one for util.north.
        async with http.get(f"{url}/{created['id']}", headers=south) as r:
            assert r.status == 403 and "outside this token's groups" in await r.text()
        async with http.put(f"{url}/{created['id']}", json=_openadr_body(start, 1), headers=south) as r:
            assert r.status == 403
        async with http.delete(f"{url}/{created['id']}", headers=south) as r:
            assert r.status == 403
        async with http.get(url, headers=south) as r:
            assert await r.json() == []
        async with http.post(url, json=_openadr_body(start, 1), headers=south) as r:
            assert r.status == 403

        async with http.put(f"{url}/{created['id']}", json=_openadr_body(start, 150)) as r:
            assert r.status == 200, await r.text()
        updated = await stub.GetEvent(pb.GetEventRequest(event_id=created["id"]), metadata=bearer(reader))
        assert updated.revision == 2 and updated.spec.target_power_w == 150_000.0
        async with http.get(url, params={"programID": "44"}) as r:
            assert [e["id"] for e in await r.json()] == [created["id"]]
        async with http.get(url, params={"programID": "nope"}) as r:
            assert await r.json() == []
        async with http.delete(f"{url}/{created['id']}") as r:
            assert r.status == 200 and (await r.json())["state"] == "cancelled"
        participants = await stub.ListParticipants(pb.ListParticipantsRequest(event_id=created["id"]),
                                                   metadata=bearer(reader))
        assert {p.status for p in participants.participants} == {pb.PARTICIPANT_STATUS_CANCELLED}

        # REST refusals: malformed, unknown program, a window in the past, no token, read-only token.
        async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400 and r.content_type == "application/problem+json"
        async with http.post(url, json=_openadr_body(start, 300, program_id="99")) as r:
            assert r.status == 400 and "unknown program" in (await r.json())["problems"][0]["message"]
        async with http.post(url, json=_openadr_body(start - 3 * 3_600 * S, 300)) as r:
            assert r.status == 400 and "past" in await r.text()
        async with aiohttp.ClientSession() as anonymous, anonymous.post(url, json=_openadr_body(start, 1)) as r:
            assert r.status == 401
        async with http.post(url, json=_openadr_body(start, 1), headers={"Authorization": f"Bearer {reader}"}) as r:
            assert r.status == 403
        async with http.get(f"{url}/ev-unknown") as r:
            assert r.status == 404

        # gRPC refusals, each with its status and a reason.
        now = dt.datetime.now(dt.UTC)

        def spec(**change: Any) -> pb.CreateEventRequest:
            fields = {"program": "util.vpp", "start_unix_ms": _ms(now + 60 * S), "end_unix_ms": _ms(now + 120 * S),
                      "target_power_w": 1_000.0} | change
            return pb.CreateEventRequest(spec=pb.GridEventSpec(**fields))

        cases = [
            (spec(start_unix_ms=_ms(now - 3_600 * S), end_unix_ms=_ms(now - 60 * S)), bearer(root),
             grpc.StatusCode.INVALID_ARGUMENT, "past"),
            (spec(target_power_w=-5.0), bearer(root), grpc.StatusCode.INVALID_ARGUMENT, "positive"),
            (spec(target_power_w=float("nan")), bearer(root), grpc.StatusCode.INVALID_ARGUMENT, "positive"),
            (spec(target_group="util.nowhere"), bearer(root), grpc.StatusCode.NOT_FOUND, "group"),
            (spec(program="util.other"), bearer(root), grpc.StatusCode.NOT_FOUND, "program"),
            (spec(program="util.vpp'; DROP TABLE vpp_events; --"), bearer(root), grpc.StatusCode.INVALID_ARGUMENT,
             "hierarchy path"),
            (spec(start_unix_ms=0), bearer(root), grpc.StatusCode.INVALID_ARGUMENT, "start_unix_ms"),
            (spec(), bearer(reader), grpc.StatusCode.PERMISSION_DENIED, "command scope"),
            (spec(), (), grpc.StatusCode.UNAUTHENTICATED, "authorization"),
        ]
        for request, metadata, code, reason in cases:
            got_code, detail = await _refused(stub.CreateEvent, request, metadata)
            assert (got_code, reason in detail) == (code, True), (request, got_code, detail)
        assert (await _refused(stub.GetEvent, pb.GetEventRequest(event_id="ev-nope"), bearer(reader)))[0] == \
            grpc.StatusCode.NOT_FOUND
        assert (await _refused(stub.GetEventReport, pb.GetEventReportRequest(event_id=""), bearer(reader)))[0] == \
            grpc.StatusCode.INVALID_ARGUMENT
        bad_stream = stub.StreamContribution(pb.StreamContributionRequest(path="util.*"), metadata=bearer(reader))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await bad_stream.read()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await pool.fetchval("SELECT count(*) FROM vpp_events") == 1       # nothing refused was stored


async def _walk(call: Any, request: Any, metadata: Any, items: str) -> tuple[list[Any], int]:
    """Every item of a paged list, following next_page_token; and how many pages it took."""
    walked: list[Any] = []
    pages = 0
    while True:
        answer = await call(request, metadata=metadata)
        assert len(getattr(answer, items)) <= (request.page_size or 1_000)
        walked.extend(getattr(answer, items))
        pages += 1
        if not answer.next_page_token:
            return walked, pages
        request.page_token = answer.next_page_token


async def test_events_and_participants_page(twins: Twins, isolated: Settings, assets: Any) -> None:
    pool = assets.pool
    await _program(pool, [])
    await pool.execute("INSERT INTO hierarchy_groups (path) VALUES ('util.south')")
    # 30 events, starts in whole ms as the service writes them, several sharing a start (ties by id);
    # every third one over already; north and south groups alternate.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows = [(f"ev-{i:02d}", "util.north" if i % 2 else "util.south",
             _ms(now + ((i // 3) * 60 - (7_200 if i % 3 == 0 else 0)) * S)) for i in range(30)]
    await pool.executemany(
        "INSERT INTO vpp_events (event_id, program, target_group, source, start_at, end_at, precharge_s, "
        "target_power_w, rate_per_kwh, state) VALUES ($1, 'util.vpp', $2::text::ltree, 'grpc', control_ts($3), "
        "control_ts($3) + interval '30 minutes', 0, 1000, 2, 'scheduled')", rows)
    await pool.executemany("INSERT INTO vpp_participants (event_id, installation_id, power_w, status) "
                           "VALUES ('ev-01', $1, 10, 'accepted')", [(f"site-{i:03d}",) for i in range(25)])
    reader = bearer(await assets.token(Scope.READ))
    south = bearer(await assets.token(Scope.READ, paths=("util.south",)))
    newest_first = sorted(rows, key=lambda r: (-r[2], r[0]))

    async with services.vpp(_vpp_settings(twins)) as api, \
            grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        stub = pb_grpc.VppServiceStub(channel)
        for include_ended in (True, False):
            expected = [r[0] for r in newest_first if include_ended or (r[2] > _ms(now - 1_800 * S))]
            walked, pages = await _walk(stub.ListEvents, pb.ListEventsRequest(include_ended=include_ended,
                                                                              page_size=4), reader, "events")
            assert [e.event_id for e in walked] == expected          # nothing missed or repeated, in order
            assert pages == -(-len(expected) // 4)
            # a token limited to util.south: pages may come out short, the walk still finds them all
            walked, _ = await _walk(stub.ListEvents, pb.ListEventsRequest(include_ended=include_ended,
                                                                          page_size=4), south, "events")
            assert [e.event_id for e in walked] == [e for e in expected if int(e[3:]) % 2 == 0]

        walked, pages = await _walk(stub.ListParticipants, pb.ListParticipantsRequest(event_id="ev-01", page_size=10),
                                    reader, "participants")
        assert [p.installation_id for p in walked] == [f"site-{i:03d}" for i in range(25)] and pages == 3
        whole = await stub.ListParticipants(pb.ListParticipantsRequest(event_id="ev-01"), metadata=reader)
        assert len(whole.participants) == 25 and whole.next_page_token == ""

        events_token = (await stub.ListEvents(pb.ListEventsRequest(include_ended=True, page_size=4),
                                              metadata=reader)).next_page_token
        people_token = (await stub.ListParticipants(pb.ListParticipantsRequest(event_id="ev-01", page_size=10),
                                                    metadata=reader)).next_page_token

        def tampered(token: str) -> str:
            return token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]

        refusals = [
            (stub.ListEvents, pb.ListEventsRequest(include_ended=False, page_token=events_token)),   # another query
            (stub.ListEvents, pb.ListEventsRequest(include_ended=True, page_token=tampered(events_token))),
            (stub.ListEvents, pb.ListEventsRequest(include_ended=True, page_token=people_token)),
            (stub.ListEvents, pb.ListEventsRequest(page_size=1_001)),
            (stub.ListParticipants, pb.ListParticipantsRequest(event_id="ev-03", page_token=people_token)),
            (stub.ListParticipants, pb.ListParticipantsRequest(event_id="ev-01", page_token=tampered(people_token))),
            (stub.ListParticipants, pb.ListParticipantsRequest(event_id="ev-01", page_token="site-004")),
        ]
        for call, request in refusals:
            code, detail = await _refused(call, request, reader)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (request, code, detail)
