"""A VPP event end to end on the real components: grid event → participants resolved in PostGIS/
ltree → twins on Ray arbitrate (one declines for a storm, by its priority) → plans as commands in
one fan-out → gateway → simulated batteries acknowledge and execute them → telemetry shows the
pre-charge and the discharge at each battery's share; an opt-out is honoured; bad events are
refused with a reason."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from actors.twin import stormwatch as sw
from services.access.credentials import register_devices
from services.control.model import CommandState
from services.control.vpp.dispatch import UnknownTarget, VppDispatcher
from services.control.vpp.intents import IntentRelay
from services.control.vpp.model import GridEventSpec, InvalidEvent
from services.weather.model import AlertId, ChangeKind
from simulator.fleet import FleetOptions, registrations
from tests.integration.test_control_delivery import Stack, fleet_of
from tests.integration.twins_support import Twins

pytestmark = pytest.mark.integration

S = dt.timedelta(seconds=1)


async def _program(pool, installations: list[str]) -> None:
    await pool.execute("TRUNCATE hierarchy_groups, programs, group_memberships, vpp_events, vpp_program_terms, "
                       "twin_control_intents, customer_notifications CASCADE")
    await pool.execute("INSERT INTO hierarchy_groups (path) VALUES ('util'), ('util.north'), ('util.vpp'), "
                       "('util.vpp.enrolled')")
    await pool.execute("INSERT INTO programs (path) VALUES ('util.vpp')")
    await pool.execute("INSERT INTO vpp_program_terms (program, rate_per_kwh) VALUES ('util.vpp', 2.0)")
    await pool.execute(
        "INSERT INTO group_memberships (installation_id, path, program, enrollment_state) "
        "SELECT i, 'util.vpp.enrolled', 'util.vpp', 'enrolled' FROM unnest($1::text[]) AS i", installations)
    await pool.execute("INSERT INTO group_memberships (installation_id, path) "
                       "SELECT i, 'util.north' FROM unnest($1::text[]) AS i", installations)
    await pool.execute("UPDATE installations SET battery_nominal_energy_wh = 13500, max_discharge_power_w = 5000, "
                       "backup_reserve_pct = 20 WHERE installation_id = ANY($1)", installations)


async def test_an_event_is_dispatched_arbitrated_delivered_and_executed(twins: Twins, isolated, clean_db) -> None:
    options = FleetOptions(devices=4, fleet_secret="ctl", id_prefix="vp", load_source="bdew")
    await register_devices(clean_db, registrations(options))
    sites = [r.installation_id for r in registrations(options)]
    await _program(clean_db, sites)
    now = dt.datetime.now(dt.UTC)
    # Site 2 watches a storm and puts StormWatch first: it must decline the event.
    storm = sw.StormAlertEvent(ChangeKind.ACTIVATED, AlertId("HU-1"), "Hurricane Warning", now, now + 6 * 3600 * S,
                               now + 30 * 3600 * S)
    await twins.runtime.router.tell([(sites[2], storm)])

    async with Stack(isolated, clean_db, ingest=True) as stack:
        relay = IntentRelay(clean_db, stack.store)
        vpp = VppDispatcher(clean_db, twins.runtime.router, stack.store, relay)
        fleet = fleet_of(stack, 4, "vp")
        async with fleet:
            await fleet.wait_connected(20)
            await stack.wait_registered([d.device_id for d in fleet.devices])
            start = dt.datetime.now(dt.UTC) + 6 * S
            event = await vpp.create(GridEventSpec("util.vpp", "util.north", start, start + 8 * S, 12_000.0,
                                                   precharge_s=4.0, name="evening peak"))
            assert event.participants == 4 and float(event.rate_per_kwh) == 2.0
            by_site = {r["installation_id"]: r for r in await vpp.participants(event.event_id)}
            assert by_site[sites[2]]["status"] == "declined" and "StormWatch" in by_site[sites[2]]["reason"]
            assert {by_site[s]["status"] for s in (sites[0], sites[1], sites[3])} == {"accepted"}
            assert by_site[sites[0]]["power_w"] == pytest.approx(3_000.0)

            async with asyncio.timeout(20):          # every plan acknowledged by its device
                while (p := await vpp.progress(event.event_id)) is None or \
                        p.counts.get(CommandState.ACKNOWLEDGED, 0) < 3:
                    await asyncio.sleep(0.1)

            await vpp.opt_out(event.event_id, sites[3])              # the customer leaves before the start
            assert {r["installation_id"]: r["status"] for r in await vpp.participants(event.event_id)}[
                sites[3]] == "opted_out"
            await asyncio.sleep((start + 8 * S - dt.datetime.now(dt.UTC)).total_seconds() + 1.5)
            await fleet.stop_streaming()
            await fleet.wait_drained(20)

        async with asyncio.timeout(20):
            while await clean_db.fetchval("SELECT count(*) FROM telemetry_samples") < fleet.ledger.generated_total():
                await asyncio.sleep(0.1)
        window = await clean_db.fetch(
            "SELECT installation_id, battery_power_w FROM telemetry_samples "
            "WHERE ts >= to_timestamp($1) AND ts < to_timestamp($2)",
            (start + 1.5 * S).timestamp(), (start + 7 * S).timestamp())
        power = {s: [r["battery_power_w"] for r in window if r["installation_id"] == s] for s in sites}
        assert power[sites[0]] and all(p == pytest.approx(3_000.0, rel=0.01) for p in power[sites[0]])
        assert all(p != pytest.approx(3_000.0, rel=0.01) for p in power[sites[2]])     # declined: its own mode
        assert all(p != pytest.approx(3_000.0, rel=0.01) for p in power[sites[3]])     # opted out
        precharge = await clean_db.fetch(
            "SELECT battery_power_w FROM telemetry_samples WHERE installation_id = $1 "
            "AND ts >= to_timestamp($2) AND ts < to_timestamp($3)",
            sites[1], (start - 2.5 * S).timestamp(), (start - 0.5 * S).timestamp())
        assert precharge and all(r["battery_power_w"] < 0 for r in precharge)          # charging before it


async def test_bad_events_are_refused_with_a_reason(twins: Twins, isolated, clean_db) -> None:
    await _program(clean_db, [])
    async with Stack(isolated, clean_db) as stack:
        vpp = VppDispatcher(clean_db, twins.runtime.router, stack.store, IntentRelay(clean_db, stack.store))
        now = dt.datetime.now(dt.UTC)
        with pytest.raises(InvalidEvent, match="past"):
            await vpp.create(GridEventSpec("util.vpp", "", now - 3_600 * S, now - 60 * S, 1_000.0))
        with pytest.raises(InvalidEvent, match="positive"):
            await vpp.create(GridEventSpec("util.vpp", "", now + 60 * S, now + 120 * S, -5.0))
        with pytest.raises(UnknownTarget, match="group"):
            await vpp.create(GridEventSpec("util.vpp", "util.nowhere", now + 60 * S, now + 120 * S, 1_000.0))
        with pytest.raises(UnknownTarget, match="program"):
            await vpp.create(GridEventSpec("util.other", "", now + 60 * S, now + 120 * S, 1_000.0))
        with pytest.raises(InvalidEvent, match="hierarchy path"):
            await vpp.create(GridEventSpec("util.vpp'; DROP TABLE x; --", "", now + 60 * S, now + 120 * S, 1.0))
