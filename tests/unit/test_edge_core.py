"""The edge agent's pure core and its disk buffer: combining readings into samples, command
decisions and plans, the device side of the protocol, sequence numbers across restarts, the
configuration's errors."""

from __future__ import annotations

import random

import pytest

from edge import config, link
from edge.backoff import backoff_s
from edge.buffer import DiskBuffer
from edge.clock import SimulatedClock, correction_ms
from edge.combine import Combination, combine
from edge.control import (
    NO_CONTROL,
    ActivePlan,
    ApplyBatteryPower,
    ApplyMode,
    ApplyReserve,
    Capabilities,
    ControlState,
    decide,
    plan_setpoint,
)
from edge.model import (
    BATTERY,
    LOAD,
    SITE,
    SOC,
    SOLAR,
    ChargeTo,
    Command,
    Discharge,
    GridStatus,
    Hold,
    OperationMode,
    Outcome,
    PlanStep,
    Reading,
    RunPlan,
    SampleValues,
    SetBackupReserve,
    SetMode,
    Snapshot,
    Unit,
    Unsupported,
)
from gridtwin.api.device.v1 import device_pb2 as pb


def snap(source: str, at_ms: int, grid: GridStatus | None = None, **values: float) -> Snapshot:
    return Snapshot(source, at_ms, tuple(Reading(k, v, Unit.WATT, at_ms) for k, v in values.items()), grid)


POLICY = Combination(order=("p1", "pv", "battery"), max_age_ms={"p1": 5_000, "pv": 5_000, "battery": 5_000})


# ------------------------------------------------------------------ combine


def test_first_source_wins_and_unreported_signals_stay_unset():
    snaps = {"p1": snap("p1", 1_000, site_power_w=500.0), "pv": snap("pv", 1_000, site_power_w=480.0,
                                                                      solar_power_w=0.0)}
    sample = combine(snaps, 2_000, POLICY)
    assert sample == SampleValues(2_000, site_power_w=500.0, solar_power_w=0.0)   # 0 W measured: set
    assert sample is not None and sample.battery_power_w is None and sample.load_power_w is None


def test_owners_pick_the_source_and_stale_readings_are_dropped():
    snaps = {"p1": snap("p1", 0, site_power_w=500.0), "pv": snap("pv", 9_000, site_power_w=480.0)}
    assert combine(snaps, 9_500, POLICY) == SampleValues(9_500, site_power_w=480.0)       # p1 went stale
    owned = Combination(POLICY.order, POLICY.max_age_ms, owners={SITE: "p1"})
    assert combine(snaps, 9_500, owned) is None                    # the owner is stale: nothing reported at all
    assert combine({}, 0, POLICY) is None


def test_load_is_derived_only_from_measured_signals():
    policy = Combination(POLICY.order, POLICY.max_age_ms, derive_load_from=(SITE, SOLAR))
    sample = combine({"p1": snap("p1", 0, site_power_w=-700.0), "pv": snap("pv", 0, solar_power_w=2_000.0)}, 0, policy)
    assert sample is not None and sample.load_power_w == 1_300.0
    partial = combine({"p1": snap("p1", 0, site_power_w=-700.0)}, 0, policy)
    assert partial is not None and partial.load_power_w is None


def test_extras_and_grid_status_come_from_the_first_fresh_source():
    snaps = {"p1": snap("p1", 0, site_power_w=1.0, grid_frequency_hz=50.0),
             "battery": snap("battery", 0, GridStatus.ISLANDED, battery_power_w=2.0, grid_frequency_hz=49.9)}
    sample = combine(snaps, 0, POLICY)
    assert sample is not None and sample.extra == (("grid_frequency_hz", 50.0),)
    assert sample.grid_status is GridStatus.ISLANDED


# ------------------------------------------------------------------ commands

POWERWALL = Capabilities("the Powerwall", frozenset(OperationMode), backup_reserve=True)
STORAGE = Capabilities("the inverter", frozenset({OperationMode.SELF_CONSUMPTION}), backup_reserve=True,
                       power_setpoints=True)
NOW = 1_000_000


def command(body, *, expires_ms: int = 0, issued_ms: int = NOW, command_id: str = "c1") -> Command:  # type: ignore[no-untyped-def]
    return Command(command_id, expires_ms, issued_ms, body)


def plan(*steps: tuple[int, int, object], plan_id: str = "p1") -> RunPlan:
    return RunPlan(plan_id, tuple(PlanStep(NOW + a, NOW + b, action) for a, b, action in steps))  # type: ignore[arg-type]


def test_mode_and_reserve_on_a_powerwall():
    decision = decide(command(SetMode(OperationMode.BACKUP)), POWERWALL, ControlState(), NOW)
    assert decision.ack.outcome is Outcome.COMPLETED and decision.actions == (ApplyMode(OperationMode.BACKUP),)
    decision = decide(command(SetBackupReserve(35)), POWERWALL, ControlState(), NOW)
    assert decision.actions == (ApplyReserve(35),)
    assert decide(command(SetBackupReserve(135)), POWERWALL, ControlState(), NOW).ack.outcome is Outcome.REJECTED
    rejected = decide(command(plan((0, 60_000, Hold()))), POWERWALL, ControlState(), NOW).ack
    assert rejected.outcome is Outcome.REJECTED and "takes no battery power setpoints" in rejected.detail
    assert "the Powerwall" in rejected.detail and "backup reserve" in rejected.detail


def test_what_nothing_can_do_is_rejected_with_a_reason():
    nothing = decide(command(SetMode(OperationMode.BACKUP)), NO_CONTROL, ControlState(), NOW).ack
    assert "control = true" in nothing.detail
    firmware = decide(command(Unsupported("update_firmware")), POWERWALL, ControlState(), NOW).ack
    assert firmware.outcome is Outcome.REJECTED and "firmware" in firmware.detail
    mode = decide(command(SetMode(OperationMode.BACKUP)), STORAGE, ControlState(), NOW).ack
    assert mode.outcome is Outcome.REJECTED and "cannot switch to backup" in mode.detail
    expired = decide(command(SetMode(OperationMode.BACKUP), expires_ms=NOW - 5), POWERWALL, ControlState(), NOW).ack
    assert expired.outcome is Outcome.EXPIRED


def test_plans_are_validated_accepted_outdated_and_cleared():
    accepted = decide(command(plan((0, 60_000, Discharge(2_000, 30)))), STORAGE, ControlState(), NOW)
    assert accepted.ack.outcome is Outcome.ACCEPTED and accepted.state is not None and accepted.state.plan
    older = decide(command(plan((0, 60_000, Hold())), issued_ms=NOW - 1, command_id="c0"), STORAGE,
                   accepted.state, NOW)
    assert older.ack.outcome is Outcome.REJECTED and "older than the newest plan" in older.ack.detail
    cleared = decide(command(RunPlan("p2", ()), issued_ms=NOW + 1, command_id="c2"), STORAGE, accepted.state, NOW)
    assert cleared.ack.detail == "plan cleared" and cleared.actions == (ApplyBatteryPower(None),)
    assert cleared.state is not None and cleared.state.plan is None
    for bad in (plan((0, 10, Hold()), (5, 20, Hold())), plan((-20, -10, Hold())), plan((10, 5, Hold())),
                plan((0, 10, None)), plan((0, 10, Discharge(-5, 10)))):
        assert decide(command(bad), STORAGE, ControlState(), NOW).ack.outcome is Outcome.REJECTED


def test_a_plan_becomes_setpoints_over_time():
    active = ActivePlan("c1", "p1", NOW, plan((0, 100, ChargeTo(80, 0)), (100, 200, Discharge(3_000, 40)),
                                              (300, 400, Hold())).steps)
    assert plan_setpoint(active, NOW + 10, soc_pct=50, reserve_pct=20, max_power_w=5_000).power_w == -5_000
    assert plan_setpoint(active, NOW + 10, soc_pct=80, reserve_pct=20, max_power_w=5_000).power_w == 0.0
    assert plan_setpoint(active, NOW + 150, soc_pct=60, reserve_pct=20, max_power_w=5_000).power_w == 3_000
    assert plan_setpoint(active, NOW + 150, soc_pct=45, reserve_pct=50, max_power_w=5_000).power_w == 0.0  # reserve
    assert plan_setpoint(active, NOW + 250, soc_pct=45, reserve_pct=20, max_power_w=5_000).power_w is None  # gap
    assert plan_setpoint(active, NOW + 350, soc_pct=None, reserve_pct=None, max_power_w=None).power_w == 0.0
    assert plan_setpoint(active, NOW + 400, soc_pct=None, reserve_pct=None, max_power_w=None).done


# ------------------------------------------------------------------ the protocol


def test_samples_set_only_what_was_reported():
    payload = link.sample_bytes(SampleValues(5, site_power_w=0.0, state_of_charge_pct=50.0,
                                             grid_status=GridStatus.CONNECTED, extra=(("grid_frequency_hz", 50.0),)))
    message = pb.Sample.FromString(payload)
    assert message.HasField("site_power_w") and message.site_power_w == 0.0      # a measured zero is sent
    assert not message.HasField("battery_power_w") and not message.HasField("load_power_w")
    assert message.grid_status == pb.GRID_STATUS_CONNECTED and dict(message.extra) == {"grid_frequency_hz": 50.0}
    assert link.sample_values(payload).reported() == {SITE: 0.0, SOC: 50.0}


def test_telemetry_frames_equal_protobuf_encoding():
    samples = [link.sample_bytes(SampleValues(t, load_power_w=float(t))) for t in range(300)]
    frame = pb.DeviceFrame.FromString(link.telemetry_frame(2**40 + 3, samples))
    expected = pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=2**40 + 3,
                                                          samples=[pb.Sample.FromString(s) for s in samples]))
    assert frame == expected


def test_session_window_acks_refusals_commands_and_skew():
    session = link.Session(hello_sent_ms=1_000)
    assert not session.can_send()
    reply = pb.CloudFrame(hello_reply=pb.HelloReply(installation_id="home", server_time_unix_ms=61_050,
                                                    max_samples_per_batch=100, max_in_flight_batches=2))
    welcomed = session.receive(reply.SerializeToString(), 1_100)
    assert isinstance(welcomed, link.Welcomed) and welcomed.skew_ms == 60_000 and session.max_batch == 100
    session.sent(1)
    session.sent(2)
    assert not session.can_send()
    ack = pb.CloudFrame(ack=pb.Ack(sequence=1, accepted_samples=9, rejections=[
        pb.SampleRejection(index=3, reason=pb.REJECT_REASON_TIMESTAMP_TOO_OLD, detail="old")]))
    assert session.receive(ack.SerializeToString(), 0) == link.Acked(1, 9, ((3, "timestamp_too_old", "old"),))
    assert session.can_send()
    limited = pb.CloudFrame(batch_rejected=pb.BatchRejected(sequence=2, reason=pb.REJECT_REASON_RATE_LIMITED))
    refused = session.receive(limited.SerializeToString(), 0)
    assert isinstance(refused, link.BatchRefused) and refused.requeue and refused.rate_limited
    command_frame = pb.CloudFrame(command=pb.Command(command_id="x", set_backup_reserve=pb.SetBackupReserve(
        backup_reserve_pct=30), expires_unix_ms=9))
    arrived = session.receive(command_frame.SerializeToString(), 0)
    assert arrived == link.CommandArrived(Command("x", 9, 0, SetBackupReserve(30)))
    assert isinstance(session.receive(b"\xff\xff", 0), link.Garbled)
    assert correction_ms(60_000, 2_000) == 60_000 and correction_ms(1_500, 2_000) == 0


def test_commands_and_plans_round_trip_through_protobuf():
    steps = plan((0, 10, ChargeTo(90, 1_000)), (10, 20, Discharge(500, 20)), (20, 30, Hold())).steps
    stored = link.plan_from_bytes(link.plan_to_bytes("c9", "p9", 77, steps))
    assert stored == Command("c9", 0, 77, RunPlan("p9", steps))
    unknown = link.command_from_pb(pb.Command(command_id="f", update_firmware=pb.UpdateFirmware(version="2")))
    assert unknown.body == Unsupported("update_firmware")


# ------------------------------------------------------------------ the disk buffer


def test_sequences_batches_and_acks_survive_reopening(tmp_path):
    path = tmp_path / "buffer.sqlite3"
    buffer = DiskBuffer(path)
    for t in range(10):
        buffer.add(t, b"s%d" % t)
    buffer.add(3, b"again")                                   # same timestamp: ignored
    assert buffer.take_batch(4) == (1, [b"s0", b"s1", b"s2", b"s3"])
    assert buffer.take_batch(4) == (2, [b"s4", b"s5", b"s6", b"s7"])
    buffer.ack(1)
    buffer.put("identity", b"me")
    buffer.remember_ack("cmd", b"ack")
    buffer.outbox_add(b"frame")
    buffer.close()                                             # power off

    again = DiskBuffer(path)
    assert again.unacked() == [2] and again.batch(2) == [b"s4", b"s5", b"s6", b"s7"]
    assert (again.pending, again.unacked_samples) == (2, 4)
    assert again.take_batch(10) == (3, [b"s8", b"s9"])         # numbers go on from where they were
    assert again.requeue(2) == 4 and again.pending == 4
    assert again.take_batch(10) == (4, [b"s4", b"s5", b"s6", b"s7"])
    assert again.get("identity") == b"me" and again.known_ack("cmd") == b"ack"
    assert [f for _, f in again.outbox()] == [b"frame"]
    again.close()


def test_the_oldest_unsent_samples_go_first_when_the_buffer_is_full(tmp_path):
    buffer = DiskBuffer(tmp_path / "b.sqlite3", max_samples=5)
    for t in range(3):
        buffer.add(t, b"x")
    buffer.take_batch(2)                                       # samples 0, 1 in flight
    for t in range(3, 8):
        buffer.add(t, b"y")
    assert buffer.dropped == 3 and buffer.unacked() == [1]
    assert buffer.take_batch(10) == (2, [b"y", b"y", b"y"])    # 2, 3, 4 dropped; 5, 6, 7 kept
    buffer.close()


def test_batches_respect_a_byte_budget(tmp_path):
    buffer = DiskBuffer(tmp_path / "b.sqlite3")
    buffer.add_many([(t, b"z" * 400) for t in range(10)])
    sequence, samples = buffer.take_batch(10, max_bytes=1_024) or (0, [])
    assert len(samples) == 2 and buffer.pending == 8
    buffer.close()


# ------------------------------------------------------------------ configuration, time


def test_configuration_errors_name_their_place():
    with pytest.raises(config.ConfigError) as raised:
        config.parse({"agent": {"sample_interval_s": 0, "gatway_url": "x"}, "sources": [
            {"kind": "dsmr", "name": "p1", "version": "9"},
            {"kind": "fronius", "name": "pv", "url": "ftp://x"},
            {"kind": "mqtt", "name": "ha", "host": "h", "topics": {"t": {"signal": SOC, "unit": "W"}}}]})
    problems = raised.value.problems
    assert any(p.startswith("agent.sample_interval_s:") for p in problems)
    assert any(p.startswith("agent.gatway_url: Extra inputs") for p in problems)
    assert any(p.startswith("sources[0] 'p1'.version:") for p in problems)
    assert any(p.startswith("sources[1] 'pv'.url:") for p in problems)
    assert any("cannot carry state_of_charge_pct" in p for p in problems)
    with pytest.raises(config.ConfigError, match="only one source may have control"):
        config.parse({"sources": [{"kind": "powerwall", "name": "a", "host": "h", "password": "p", "control": True},
                                  {"kind": "sunspec", "name": "b", "host": "h", "control": True}]})
    with pytest.raises(config.ConfigError, match="no source is named 'nope'"):
        config.parse({"combine": {"owners": {SITE: "nope"}}, "sources": [{"kind": "fronius", "name": "a",
                                                                           "url": "http://x"}]})
    with pytest.raises(config.ConfigError, match="claim_code needs assets_url"):
        config.parse({"identity": {"claim_code": "X"}, "sources": [{"kind": "fronius", "name": "a", "url": "http://x"}]})


def test_a_valid_file(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text("""
[agent]
gateway_url = "wss://gw.example:8765"
[combine]
derive_load_from = ["site_power_w", "solar_power_w"]
[[sources]]
name = "p1"
kind = "dsmr"
serial_port = "/dev/ttyUSB0"
[[sources]]
name = "inverter"
kind = "sunspec"
host = "192.168.1.70"
control = true
""")
    loaded = config.load(path)
    assert loaded.control_source == "inverter" and loaded.sources[0].kind == "dsmr"
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        path.write_text("[agent\n")
        config.load(path)


def test_backoff_and_simulated_clock():
    rand = random.Random(1)
    delays = [backoff_s(n, initial_s=0.5, maximum_s=30, rand=rand) for n in range(1, 12)]
    assert all(0.05 <= d <= 30 for d in delays) and max(delays[-3:]) > 3
    clock = SimulatedClock(1_000, rate=100)
    assert 1_000 <= clock.now_ms() < 2_000 and clock.simulated


def test_battery_and_load_names_are_the_protocols():
    names = tuple(f.name for f in pb.Sample.DESCRIPTOR.fields if f.name not in ("timestamp_unix_ms", "grid_status",
                                                                                 "extra"))
    assert names == (SITE, BATTERY, SOLAR, LOAD, SOC)


def test_claim_codes_forgive_how_people_type_them():
    from services.assets import claims

    code = claims.new_claim_code()
    assert len(code) == 24 and code.count("-") == 4
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert claims.code_sha256(typed) == claims.code_sha256(code) is not None
    assert claims.normalize("too-short") is None and claims.normalize("U" * 20) is None


def test_the_command_line_checks_the_file(tmp_path):
    from typer.testing import CliRunner

    from edge.cli import app

    good = tmp_path / "good.toml"
    good.write_text('[[sources]]\nname = "pv"\nkind = "fronius"\nurl = "http://192.168.1.60"\n')
    result = CliRunner().invoke(app, ["check", "--config", str(good)])
    assert result.exit_code == 0 and "pv: fronius, every 1 s" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sources]]\nname = "p1"\nkind = "dsmr"\nversion = "5"\n')
    result = CliRunner().invoke(app, ["check", "--config", str(bad)])
    assert result.exit_code == 2 and "sources[0] 'p1': give serial_port" in result.output
