"""Twin decisions on the real components (gateway, broker, ingest, Postgres, Ray, control service's
dispatcher and acknowledgement consumer, simulated batteries), with devices written from the
contracts alone where the simulator would hide the defect:

- a device offline for six hours whose twin passivated replays its buffer: every stored sample
  applied once, twin state and alerts equal to the pure twin over the stored samples;
- a storm alert, a second one, and the second cancelled (A → A+X → A): every device ends on A's
  plan again (a new revision), no command executed twice, and the twin shows the plan and mode the
  devices report (StateReports reach the twins);
- an ongoing alert's last_seen and sample count in the store follow the newest sample within
  seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from websockets.asyncio.client import connect

from bench.fault_audit import (
    TwinFigures,
    compare_alerts,
    compare_twins,
    model_twins,
    stored_alerts,
    stored_rows_by_installation,
)
from gridtwin import unixtime
from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.settings import Settings
from services.access.credentials import CredentialDirectory, DeviceRegistration, register_devices
from services.control.model import OperationMode
from services.control.vpp.intents import IntentRelay
from services.telemetry.device_state import StateReportConsumer
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from simulator.fleet import installation_id
from tests import weather_data as wd
from tests.integration.test_control_delivery import Stack, fleet_of
from tests.integration.test_stormwatch_runtime import MOVED, SITES, STORM, Stand, stand  # noqa: F401
from tests.integration.twins_support import RULES, Twins, twin_runtime, until

pytestmark = pytest.mark.integration

S = dt.timedelta(seconds=1)
H = dt.timedelta(hours=1)
STEP_MS = 10_000              # the backlog device samples every 10 s
BACKLOG_DEVICES = 12


@pytest.fixture
async def quick_twins(isolated: Settings, ray_cluster: Settings, pool: asyncpg.Pool) -> AsyncIterator[Twins]:
    """Twins that passivate after 2 s idle (the backlog test needs them gone before it replays)."""
    async with twin_runtime(isolated, ray_cluster, pool, tick_interval_s=0.5, snapshot_interval_s=0.5,
                            passivation_idle_s=2.0) as runtime:
        yield runtime


def _samples(device: int, start_ms: int, end_ms: int, negative: list[tuple[int, int]]) -> list[pb.Sample]:
    """A battery swinging around and solar that goes negative (a faulty meter) inside `negative`."""
    out = []
    for ts in range(start_ms, end_ms, STEP_MS):
        bad = any(a <= ts < b for a, b in negative)
        solar = -60.0 if bad else 800.0 + device
        battery = 400.0 * ((ts // STEP_MS + device) % 5 - 2)
        site = 250.0
        out.append(pb.Sample(timestamp_unix_ms=ts, site_power_w=site, battery_power_w=battery, solar_power_w=solar,
                             load_power_w=site + battery + solar, state_of_charge_pct=55.0, grid_status=1))
    return out


async def _stream(url: str, device_id: str, credential: str, samples: list[pb.Sample], first_sequence: int,
                  per_batch: int = 500) -> int:
    """A device client from the protocol alone: hello, then its buffer in acknowledged batches."""
    async with connect(url, max_size=None) as ws:
        await ws.send(pb.DeviceFrame(hello=pb.Hello(device_id=device_id, credential=credential,
                                                    protocol_version=1)).SerializeToString())
        reply = pb.CloudFrame.FromString(await ws.recv())
        assert reply.WhichOneof("body") == "hello_reply", reply
        # The whole buffer at once, as a device replays after reconnecting (the gateway reads up
        # to max_in_flight_batches ahead of its acks; TCP holds the rest back).
        batches = [samples[k:k + per_batch] for k in range(0, len(samples), per_batch)]
        for n, batch in enumerate(batches):
            await ws.send(pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=first_sequence + n,
                                                                     samples=batch)).SerializeToString())
        acked = 0
        while acked < len(batches):
            frame = pb.CloudFrame.FromString(await ws.recv())
            assert frame.WhichOneof("body") != "batch_rejected", frame
            if frame.WhichOneof("body") == "ack":
                assert frame.ack.accepted_samples == len(batches[frame.ack.sequence - first_sequence])
                acked += 1
        return first_sequence + len(batches)


async def test_a_device_offline_for_six_hours_replays_into_its_passivated_twin(quick_twins: Twins, clean_db) -> None:
    t = quick_twins
    regs = [DeviceRegistration(f"bk-dev-{k}", f"bk-site-{k}", f"secret-{k}") for k in range(BACKLOG_DEVICES)]
    await register_devices(clean_db, regs)
    sites = [r.installation_id for r in regs]
    now_ms = unixtime.now_ms()
    offline_ms = now_ms - 6 * 3_600_000          # the device went offline six hours ago
    gateway = Gateway(t.settings.gateway, t.settings.kafka, CredentialDirectory(clean_db))
    ingest = IngestConsumer(t.settings.ingest, t.settings.kafka,
                            TelemetryStore(clean_db, t.settings.ingest.max_gap_s), t.runtime.router)
    async with gateway, ingest:
        url = f"ws://127.0.0.1:{gateway.port}"
        # Online before the outage: ten minutes; a third of the devices raise and clear an alert.
        before = {r.device_id: _samples(k, offline_ms - 600_000, offline_ms,
                                        [(offline_ms - 400_000, offline_ms - 300_000)] if k % 3 == 0 else [])
                  for k, r in enumerate(regs)}
        sequences = await asyncio.gather(*(_stream(url, r.device_id, r.credential, before[r.device_id], 1)
                                           for r in regs))

        async def applied_all(expected: dict[str, int]) -> bool:
            views = [await t.runtime.router.view(s) for s in sites]
            return all(v is not None and v.counts.applied == expected[v.installation_id] for v in views)

        await until(lambda: applied_all({s: 60 for s in sites}), 60)
        async def passivated() -> bool:
            stats = await t.runtime.router.stats()
            return sum(s["resident"] for s in stats) == 0

        await until(passivated, 30)                  # every twin gone: snapshot stored, nothing resident

        # Back online: six hours of buffered samples. Every device has a fault in the middle of its
        # outage (raised and cleared while nobody watched); half of them are still faulty now.
        backlog = {r.device_id: _samples(k, offline_ms, now_ms,
                                         [(offline_ms + 2 * 3_600_000, offline_ms + 3 * 3_600_000)]
                                         + ([(now_ms - 600_000, now_ms)] if k % 2 == 0 else []))
                   for k, r in enumerate(regs)}
        await asyncio.gather(*(_stream(url, r.device_id, r.credential, backlog[r.device_id], seq)
                               for r, seq in zip(regs, sequences, strict=True)))
        total = sum(len(b) for b in before.values()) + sum(len(b) for b in backlog.values())

        async def all_stored() -> bool:   # acknowledged once in the broker; stored by ingest after
            return await clean_db.fetchval("SELECT count(*) FROM telemetry_samples") == total

        await until(all_stored, 60)
        stored = await stored_rows_by_installation(clean_db, sites)
        counts = {s: len(rows) for s, rows in stored.items()}
        await until(lambda: applied_all(counts), 60)

    views = {s: await t.runtime.router.view(s) for s in sites}
    model, last = model_twins(stored, RULES, unixtime.now_ms())
    audit = compare_twins(counts, {s: TwinFigures.of(v) if v else None for s, v in views.items()}, model)
    assert audit.ok, audit                           # every stored sample applied once, in time order
    alerts = compare_alerts(last, await stored_alerts(clean_db, sites))
    assert alerts.ok and alerts.expected >= BACKLOG_DEVICES + BACKLOG_DEVICES // 3, alerts
    open_now = {a.installation_id for v in views.values() if v is not None for a in v.alerts}
    assert open_now == {s for k, s in enumerate(sites) if k % 2 == 0}


async def test_a_cancelled_second_alert_puts_every_device_back_on_the_first_plan(clean_db, isolated,
                                                                                  stand: Stand) -> None:  # noqa: F811
    """Real weather alerts from a feed file through the weather service's store, the Weather API
    and the poller singleton's two-step match to the twins; the twins' commands through the relay,
    the dispatcher and the gateway to simulated batteries, their StateReports back to the twins."""
    from simulator.fleet import FleetOptions, registrations

    options = FleetOptions(devices=3, fleet_secret="ctl", id_prefix="rv", load_source="bdew")
    await register_devices(clean_db, registrations(options))
    sites = [installation_id("rv", i) for i in range(3)]
    (lon, lat), _, _ = SITES["sw-both"]                 # inside the hurricane's area and the tornado's
    await clean_db.execute("UPDATE installations SET location = ST_SetSRID(ST_MakePoint($1, $2), 4326) "
                           "WHERE installation_id = ANY($3)", lon, lat, sites)
    router = stand.twins.runtime.router
    t0 = stand.now - 0.5 * H
    hurricane = wd.alert_feature("HU-1", "Alert", STORM, t0)
    tornado = wd.alert_feature("TO-1", "Alert", MOVED, t0 + 0.1 * H, event="Tornado Warning", hours=40)
    cancel = wd.alert_feature("TO-2", "Cancel", None, t0 + 0.2 * H, refs=("TO-1",), event="Tornado Warning")
    feeds = [(hurricane,), (hurricane, tornado), (hurricane, tornado, cancel)]   # A → A+X → A
    async with Stack(isolated, clean_db) as stack, \
            StateReportConsumer(stack.kafka, f"state-{uuid.uuid4().hex[:8]}", router):
        relay = IntentRelay(clean_db, stack.store, sweep_s=0.2, sweep_after_s=0.0)
        await relay.start()
        fleet = fleet_of(stack, 3, "rv")
        try:
            async with fleet:
                await fleet.wait_connected(20)
                await stack.wait_registered([d.device_id for d in fleet.devices])

                async def devices_on(revision: int) -> bool:
                    return all(fleet.controller.active_plan_id(i) == f"{sites[i]}:r{revision}" for i in range(3))

                ends = []
                for revision, features in enumerate(feeds, start=1):
                    stand.write(*features, at=revision)
                    await stand.poll()
                    await until(lambda r=revision: devices_on(r), 20)   # type: ignore[misc]
                    ends.append([s.end_unix_ms for s in fleet.controller._devices[0].plan.steps])  # type: ignore[union-attr]
                assert ends[2] == ends[0] != ends[1]           # back on the hurricane's plan (r3), not the tornado's
                assert list(fleet.controller.executions) == [3, 3, 3]   # each revision executed once, nothing twice

                async def twins_see_the_device() -> bool:
                    views = [await router.view(s) for s in sites]
                    return all(v is not None and v.desired.reported_plan_id == v.desired.plan_id
                               == f"{v.installation_id}:r3" and v.reported.mode is OperationMode.SELF_CONSUMPTION
                               for v in views)

                await until(twins_see_the_device, 20)          # StateReports reached the twins
                await fleet.stop_streaming()
        finally:
            await relay.stop()
    commands = await clean_db.fetch("SELECT installation_id, state FROM control_commands ORDER BY command_id")
    assert len(commands) == 9 and all(c["state"] in ("acknowledged", "superseded") for c in commands)
    outcomes = await clean_db.fetch("SELECT intent_id, outcome FROM twin_control_intents "
                                    "WHERE installation_id = ANY($1) ORDER BY intent_id", sites)
    assert [o["intent_id"] for o in outcomes] == sorted(f"{s}:r{r}" for s in sites for r in (1, 2, 3))
    assert all(o["outcome"] for o in outcomes)


async def test_an_ongoing_alert_in_the_store_follows_the_newest_sample(quick_twins: Twins, clean_db) -> None:
    from tests.integration.twins_support import stream

    t = quick_twins
    store = TelemetryStore(clean_db, 300.0)
    chunks = stream(4, 120, per_record=5, prefix="fresh")   # site 0 has solar negative from sample 60 on
    for records in chunks:
        await store.write(records)
        await t.runtime.router.deliver(records)
    newest = max(s.timestamp_unix_ms for r in chunks[-1] if r.installation_id == "fresh-0" for s in r.samples)

    async def current() -> bool:
        row = await clean_db.fetchrow("SELECT (extract(epoch FROM last_seen) * 1000)::bigint AS ls, samples "
                                      "FROM twin_alerts WHERE installation_id = 'fresh-0' AND state <> 'cleared'")
        return row is not None and row["ls"] == newest and row["samples"] == 60

    await until(current, 5)     # written within seconds, not every five minutes of sample time
    view = await t.runtime.router.view("fresh-0")
    assert view is not None and [a.samples for a in view.alerts] == [60]
