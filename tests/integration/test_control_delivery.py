"""Commands end to end on the real components: store → dispatcher → commands topic → gateway →
simulated devices → acks → device-events → store, and the plans' effect in stored telemetry."""

import asyncio
import uuid

import pytest

from actors.handoff import NoTwins
from gridtwin.unixtime import now_ms
from services.access.credentials import CredentialDirectory, register_devices
from services.control.dispatcher import AckConsumer, Dispatcher, DispatcherOptions
from services.control.lifecycle import RetryPolicy
from services.control.model import (
    ChargeTo,
    CommandState,
    ControlPlan,
    Discharge,
    Outcome,
    PlanStep,
    SetBackupReserve,
)
from services.control.routing import SessionRegistry
from services.control.service import Control, NewCommand, Submitted
from services.control.store import CommandStore
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from simulator.device import DeviceOptions, SimulatedDevice
from simulator.fleet import Fleet, FleetOptions, registrations

pytestmark = pytest.mark.integration

CONTROL_TABLES = "control_commands, control_fanouts, control_device_sessions, control_gateways, control_device_state"


class Stack:
    def __init__(self, settings, pool, *, acks: bool = True, retry: RetryPolicy | None = None,
                 ingest: bool = False) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.kafka = settings.kafka.model_copy(update={"commands_topic": f"commands-{suffix}",
                                                       "commands_partitions": 2})
        self.pool = pool
        self.store = CommandStore(pool, retry=retry or RetryPolicy(base_delay_s=1.0, max_delay_s=2.0, max_attempts=5))
        self.control = Control(self.store)
        self.registry = SessionRegistry(pool, settings.gateway.gateway_id, heartbeat_interval_s=1.0)
        self.gateway = Gateway(settings.gateway, self.kafka, CredentialDirectory(pool), registry=self.registry)
        self.dispatcher = Dispatcher(self.store, self.kafka, settings.postgres.url, DispatcherOptions(idle_poll_s=0.2))
        self.acks = AckConsumer(self.store, self.kafka, f"acks-{suffix}")
        self.with_acks = acks
        self.with_ingest = ingest   # only where stored telemetry is looked at: a group join costs seconds
        self.ingest = IngestConsumer(settings.ingest, self.kafka, TelemetryStore(pool, settings.ingest.max_gap_s),
                                     NoTwins())

    async def __aenter__(self) -> "Stack":
        await self.pool.execute(f"TRUNCATE {CONTROL_TABLES}")
        await self.gateway.start()
        await self.dispatcher.start()
        if self.with_ingest:
            await self.ingest.start()
        if self.with_acks:
            await self.acks.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.with_acks:
            await self.acks.stop()
        if self.with_ingest:
            await self.ingest.stop()
        await self.dispatcher.stop()
        await self.gateway.stop()

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}"

    async def wait_state(self, command_id: str, *states: CommandState, timeout_s: float = 20.0):
        async with asyncio.timeout(timeout_s):
            while True:
                command = await self.control.get(command_id)
                if command.record.state in states:
                    return command
                await asyncio.sleep(0.05)

    async def wait_registered(self, device_ids, timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s):
            while await self.pool.fetchval("SELECT count(*) FROM control_device_sessions WHERE device_id = ANY($1)",
                                           list(device_ids)) < len(device_ids):
                await asyncio.sleep(0.05)


def fleet_of(stack: Stack, n: int, prefix: str) -> Fleet:
    return Fleet(FleetOptions(devices=n, fleet_secret="ctl", id_prefix=prefix, load_source="bdew"),
                 DeviceOptions(url=stack.url(), backoff_initial_s=0.2, backoff_max_s=1.0))


def plan(*steps: tuple[int, int, object]) -> ControlPlan:
    t = now_ms()
    return ControlPlan(tuple(PlanStep(t + a, t + b, action) for a, b, action in steps))  # type: ignore[arg-type]


async def test_a_plan_is_delivered_acknowledged_and_shows_in_stored_telemetry(isolated, clean_db):
    options = FleetOptions(devices=3, fleet_secret="ctl", id_prefix="cp", load_source="bdew")
    await register_devices(clean_db, registrations(options))
    async with Stack(isolated, clean_db, ingest=True) as stack:
        fleet = fleet_of(stack, 3, "cp")
        async with fleet:
            await fleet.wait_connected(20)
            await stack.wait_registered([d.device_id for d in fleet.devices])
            started = now_ms()
            submitted = await stack.control.submit_one(NewCommand(
                plan((0, 120_000, ChargeTo(100, max_power_w=4_321))), ttl_s=60, installation_id="cp-site-00000"),
                source="operator")
            command_id = submitted.command.record.command_id
            acked = await stack.wait_state(command_id, CommandState.ACKNOWLEDGED)
            assert acked.record.outcome is Outcome.ACCEPTED and acked.record.attempts == 1
            assert acked.record.acked_ms - started < 3_000
            await asyncio.sleep(4.5)      # at 1 Hz: at least two samples after the plan took hold, even under load
            await fleet.stop_streaming()
            await fleet.wait_drained(20)
        assert fleet.controller.active_plan_id(0) == command_id
        async with asyncio.timeout(20):
            while await clean_db.fetchval("SELECT count(*) FROM telemetry_samples") < fleet.ledger.generated_total():
                await asyncio.sleep(0.1)
        after = await clean_db.fetch(
            "SELECT device_id, battery_power_w FROM telemetry_samples WHERE ts > to_timestamp($1 / 1000.0) "
            "ORDER BY ts", acked.record.acked_ms + 1_200)
        mine = [r["battery_power_w"] for r in after if r["device_id"] == "cp-dev-00000"]
        others = [r["battery_power_w"] for r in after if r["device_id"] != "cp-dev-00000"]
        assert len(mine) >= 2 and all(p == pytest.approx(-4_321) for p in mine)   # charging at the plan's power
        assert all(p != pytest.approx(-4_321) for p in others)
        state = await stack.store.device_state("cp-dev-00000")
        assert state is not None and state["active_plan_id"] == command_id


async def test_an_offline_device_gets_its_still_valid_commands_on_reconnect_never_expired_ones(isolated, clean_db):
    options = FleetOptions(devices=2, fleet_secret="ctl", id_prefix="off", load_source="bdew")
    await register_devices(clean_db, registrations(options))
    async with Stack(isolated, clean_db) as stack:
        fleet = fleet_of(stack, 2, "off")
        async with fleet:
            await fleet.wait_connected(20)
            await stack.wait_registered(["off-dev-00001"])
            await fleet.disconnect([1], offline_s=4.0)
            async with asyncio.timeout(10):
                while await clean_db.fetchval("SELECT count(*) FROM control_device_sessions "
                                              "WHERE device_id = 'off-dev-00001'"):
                    await asyncio.sleep(0.05)
            short, valid = await stack.control.submit([
                NewCommand(SetBackupReserve(35), ttl_s=1.5, device_id="off-dev-00001"),
                NewCommand(plan((0, 600_000, Discharge(2_000))), ttl_s=60, device_id="off-dev-00001"),
            ], source="operator")
            assert isinstance(short, Submitted) and isinstance(valid, Submitted)
            # while offline nothing is sent
            await asyncio.sleep(1.0)
            assert (await stack.control.get(valid.command.record.command_id)).record.state is CommandState.QUEUED
            expired = await stack.wait_state(short.command.record.command_id, CommandState.EXPIRED, timeout_s=5)
            assert expired.record.attempts == 0
            delivered = await stack.wait_state(valid.command.record.command_id, CommandState.ACKNOWLEDGED)
        assert delivered.record.acked_ms >= delivered.record.created_ms + 2_500   # only after the reconnect
        received = fleet.ledger.commands_received["off-dev-00001"]
        assert valid.command.record.command_id in received
        assert short.command.record.command_id not in received
        assert fleet.model.backup_reserve_pct[1] == 20   # the expired reserve change never ran


async def test_a_command_resent_after_lost_acks_is_executed_once(isolated, clean_db):
    """The ack consumer is down at first, so the dispatcher sends again and again (the acks are
    'lost'); the device acknowledges each delivery but executes the command once."""
    options = FleetOptions(devices=1, fleet_secret="ctl", id_prefix="dup", load_source="bdew")
    await register_devices(clean_db, registrations(options))
    retry = RetryPolicy(base_delay_s=0.4, max_delay_s=0.8, max_attempts=20)
    async with Stack(isolated, clean_db, acks=False, retry=retry) as stack:
        fleet = fleet_of(stack, 1, "dup")
        async with fleet:
            await fleet.wait_connected(20)
            await stack.wait_registered(["dup-dev-00000"])
            submitted = await stack.control.submit_one(NewCommand(
                plan((0, 600_000, Discharge(1_500))), ttl_s=60, device_id="dup-dev-00000"))
            command_id = submitted.command.record.command_id
            async with asyncio.timeout(15):
                while fleet.ledger.commands_received["dup-dev-00000"].count(command_id) < 3:
                    await asyncio.sleep(0.05)
            assert fleet.controller.executions[0] == 1
            await stack.acks.start()   # the acks arrive after all: applied once, idempotently
            try:
                acked = await stack.wait_state(command_id, CommandState.ACKNOWLEDGED)
            finally:
                await stack.acks.stop()
        assert acked.record.attempts >= 3 and acked.record.outcome is Outcome.ACCEPTED
        assert fleet.controller.executions[0] == 1


async def _group(pool, path: str, installations: list[str]) -> None:
    labels = path.split(".")
    for i in range(1, len(labels) + 1):
        await pool.execute("INSERT INTO hierarchy_groups (path) VALUES ($1::text::ltree) ON CONFLICT DO NOTHING",
                           ".".join(labels[:i]))
    await pool.execute("INSERT INTO group_memberships (installation_id, path) "
                       "SELECT unnest($1::text[]), $2::text::ltree", installations, path)


async def test_group_fanout_progress_while_running_names_the_failing_device(isolated, clean_db):
    options = FleetOptions(devices=5, fleet_secret="ctl", id_prefix="grp", load_source="bdew")
    regs = registrations(options)
    await register_devices(clean_db, regs)
    await _group(clean_db, "utility.test.north", [r.installation_id for r in regs])
    async with Stack(isolated, clean_db) as stack:
        fleet = fleet_of(stack, 3, "grp")   # devices 0-2 obey; 3 refuses commands; 4 stays offline
        refuser = SimulatedDevice(regs[3].device_id, regs[3].credential,
                                  DeviceOptions(url=stack.url()), fleet.ledger, commands=None)
        refuser_task = asyncio.create_task(refuser.run())
        async with fleet:
            await fleet.wait_connected(20)
            await stack.wait_registered([r.device_id for r in regs[:4]])
            spec = plan((0, 300_000, ChargeTo(90)))
            fanout_id, total, dedup = await stack.control.submit_group(
                "utility.test", spec, ttl_s=120, source="operator", idempotency_key="storm-1")
            assert (total, dedup) == (5, False)
            again = await stack.control.submit_group(
                "utility.test", spec, ttl_s=120, source="operator", idempotency_key="storm-1")
            assert again[0] == fanout_id and again[2] is True     # the same fan-out, nothing new
            seen = []
            async with asyncio.timeout(20):
                async for progress in stack.control.watch_progress(fanout_id, interval_s=0.1):
                    seen.append(progress)
                    if progress.acknowledged == 3 and progress.unsuccessful == 1:
                        break
            running = seen[-1]
            assert not running.done and running.pending == 1 and running.total == 5
            (failure,) = running.failures
            assert failure.device_id == regs[3].device_id and failure.state is CommandState.FAILED
            assert failure.detail == "rejected by the device: this device takes no commands"
            cancelled = await stack.control.cancel_fanout(fanout_id)
            assert cancelled.done and cancelled.counts[CommandState.CANCELLED] == 1
        refuser_task.cancel()


async def test_idempotency_keys_and_supersession_in_the_store(isolated, clean_db):
    options = FleetOptions(devices=2, fleet_secret="ctl", id_prefix="idem")
    await register_devices(clean_db, registrations(options))
    await clean_db.execute(f"TRUNCATE {CONTROL_TABLES}")
    control = Control(CommandStore(clean_db))
    spec = plan((0, 60_000, ChargeTo(80)))
    first = await control.submit_one(NewCommand(spec, ttl_s=30, installation_id="idem-site-00000",
                                                idempotency_key="k1"))
    again = await control.submit_one(NewCommand(spec, ttl_s=30, installation_id="idem-site-00000",
                                                idempotency_key="k1"))
    assert again.deduplicated and again.command.record.command_id == first.command.record.command_id
    assert await clean_db.fetchval("SELECT count(*) FROM control_commands") == 1
    from services.control.model import Conflict
    with pytest.raises(Conflict, match="k1"):
        await control.submit_one(NewCommand(plan((0, 60_000, ChargeTo(50))), ttl_s=30,
                                            installation_id="idem-site-00000", idempotency_key="k1"))
    # a newer plan for the device supersedes the older pending one; other kinds are left alone
    newer = await control.submit_one(NewCommand(plan((0, 60_000, ChargeTo(95))), ttl_s=30,
                                                device_id="idem-dev-00000"))
    older = await control.get(first.command.record.command_id)
    assert older.record.state is CommandState.SUPERSEDED
    assert older.record.superseded_by == newer.command.record.command_id
    # a batch: thousands at once, one statement set; bad items refused, the rest stored
    results = await control.submit_plans(
        [*[_request(i) for i in range(2_000)]], source="vpp", ttl_s=30)
    assert sum(isinstance(r, Submitted) for r in results) == 2_000
    page, token = await control.list_for_installation("idem-site-00001", limit=500)
    assert len(page) == 500 and token
    more, token = await control.list_for_installation("idem-site-00001", limit=1_000, page_token=token)
    last, end = await control.list_for_installation("idem-site-00001", limit=1_000, page_token=token)
    rest = [*more, *last]
    assert len(rest) == 1_500 and end == ""
    assert [c.record.command_id for c in [*page, *rest]] == sorted((c.record.command_id for c in [*page, *rest]),
                                                                    reverse=True)
    assert sum(c.record.state is CommandState.QUEUED for c in [*page, *rest]) == 1   # newest plan wins


def _request(i: int):
    from services.control.service import PlanRequest

    return PlanRequest("idem-site-00001", plan((0, 60_000 + i, ChargeTo(60))), idempotency_key=f"batch-{i}")
