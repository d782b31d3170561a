"""The pure command lifecycle: transitions, backoff with jitter, supersession, validation."""

import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.control import lifecycle
from services.control.lifecycle import Finish, RetryPolicy, Send, Wait
from services.control.model import (
    ChangeConfiguration,
    ChargeTo,
    CommandId,
    CommandKind,
    CommandRecord,
    CommandState,
    ControlPlan,
    DeviceId,
    Discharge,
    Hold,
    InstallationId,
    InvalidArgument,
    NotCancellable,
    Outcome,
    PlanStep,
    SetBackupReserve,
    UpdateFirmware,
)
from services.control.validation import parse_command_id, parse_source, parse_ttl_s, validate_plan, validate_spec

NOW = 1_700_000_000_000
POLICY = RetryPolicy(base_delay_s=5, max_delay_s=60, max_attempts=3)


def record(**changes) -> CommandRecord:
    base = CommandRecord(CommandId("a" * 32), DeviceId("dev-1"), InstallationId("site-1"), CommandKind.CONTROL_PLAN,
                         CommandState.QUEUED, created_ms=NOW, expires_ms=NOW + 60_000)
    return replace(base, **changes)


def test_a_queued_command_is_sent_and_scheduled_for_a_retry():
    decision = lifecycle.decide_send(record(), "s1", "gw-0", NOW, POLICY, random.Random(1))
    assert isinstance(decision, Send)
    sent = decision.record
    assert sent.state is CommandState.SENT and sent.attempts == 1 and sent.last_sent_ms == NOW
    assert NOW + 2_500 <= sent.next_attempt_ms <= NOW + 5_000
    assert (sent.sent_session, sent.sent_gateway) == ("s1", "gw-0")


def test_a_sent_command_waits_for_its_retry_time_then_goes_again():
    sent = lifecycle.decide_send(record(), "s1", "gw-0", NOW, POLICY, random.Random(1)).record  # type: ignore[union-attr]
    early = lifecycle.decide_send(sent, "s1", "gw-0", sent.next_attempt_ms - 1, POLICY, random.Random())
    assert isinstance(early, Wait)
    again = lifecycle.decide_send(sent, "s1", "gw-0", sent.next_attempt_ms, POLICY, random.Random())
    assert isinstance(again, Send) and again.record.attempts == 2


def test_a_device_that_reconnected_gets_its_sent_command_again_at_once():
    sent = lifecycle.decide_send(record(), "s1", "gw-0", NOW, POLICY, random.Random(1)).record  # type: ignore[union-attr]
    again = lifecycle.decide_send(sent, "s2", "gw-1", NOW + 10, POLICY, random.Random())
    assert isinstance(again, Send) and again.record.sent_gateway == "gw-1"


def test_an_expired_command_is_never_sent():
    for state in (CommandState.QUEUED, CommandState.SENT):
        decision = lifecycle.decide_send(record(state=state), "s1", "gw", NOW + 60_000, POLICY, random.Random())
        assert isinstance(decision, Finish) and decision.record.state is CommandState.EXPIRED
    assert lifecycle.expire(record(), NOW + 59_999).state is CommandState.QUEUED
    assert lifecycle.expire(record(), NOW + 60_000).state is CommandState.EXPIRED
    acked = record(state=CommandState.ACKNOWLEDGED)
    assert lifecycle.expire(acked, NOW + 10**9) is acked


def test_out_of_attempts_fails_with_a_reason():
    tired = record(state=CommandState.SENT, attempts=3, sent_session="s1", next_attempt_ms=NOW)
    decision = lifecycle.decide_send(tired, "s1", "gw", NOW, POLICY, random.Random())
    assert isinstance(decision, Finish) and decision.record.state is CommandState.FAILED
    assert "no acknowledgement after 3 attempts" in decision.record.detail


@given(attempt=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_backoff_is_exponential_jittered_and_bounded(attempt, seed):
    delay = lifecycle.retry_delay_s(attempt, POLICY, random.Random(seed))
    ceiling = min(POLICY.max_delay_s, POLICY.base_delay_s * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_jitter_spreads_a_fleet():
    delays = [lifecycle.retry_delay_s(3, POLICY, random.Random(i)) for i in range(1000)]
    assert min(delays) >= 10 and max(delays) <= 20 and len({round(d, 3) for d in delays}) > 900


@pytest.mark.parametrize(("outcome", "state"), [
    (Outcome.ACCEPTED, CommandState.ACKNOWLEDGED), (Outcome.COMPLETED, CommandState.ACKNOWLEDGED),
    (Outcome.REJECTED, CommandState.FAILED), (Outcome.EXPIRED, CommandState.EXPIRED)])
def test_acks_move_a_sent_command_and_are_idempotent(outcome, state):
    sent = record(state=CommandState.SENT, attempts=1)
    once = lifecycle.apply_ack(sent, outcome, "why", NOW + 5)
    assert once.state is state and once.outcome is outcome and once.acked_ms == NOW + 5
    assert lifecycle.apply_ack(once, outcome, "why", NOW + 99) == once
    if outcome is Outcome.REJECTED:
        assert once.detail == "rejected by the device: why"


def test_completed_after_accepted_records_completion_and_never_goes_back():
    accepted = lifecycle.apply_ack(record(state=CommandState.SENT), Outcome.ACCEPTED, "", NOW)
    completed = lifecycle.apply_ack(accepted, Outcome.COMPLETED, "", NOW + 1_000)
    assert completed.state is CommandState.ACKNOWLEDGED and completed.completed_ms == NOW + 1_000
    assert lifecycle.apply_ack(completed, Outcome.ACCEPTED, "", NOW + 2_000) == completed  # redelivered ack
    assert lifecycle.apply_ack(completed, Outcome.REJECTED, "", NOW + 2_000) == completed


def test_final_states_do_not_move_but_keep_a_late_outcome():
    superseded = lifecycle.supersede(record(state=CommandState.SENT), CommandId("b" * 32), NOW)
    late = lifecycle.apply_ack(superseded, Outcome.ACCEPTED, "", NOW + 1)
    assert late.state is CommandState.SUPERSEDED and late.outcome is Outcome.ACCEPTED
    expired = lifecycle.expire(record(), NOW + 60_000)
    assert lifecycle.apply_ack(expired, Outcome.ACCEPTED, "", NOW + 60_001) == expired


def test_a_newer_plan_supersedes_only_older_pending_plans_of_the_same_device():
    older = record(command_id=CommandId("1" * 32), created_ms=NOW - 1)
    newer = record(command_id=CommandId("2" * 32))
    assert lifecycle.supersedes(newer, older) and not lifecycle.supersedes(older, newer)
    assert not lifecycle.supersedes(newer, replace(older, state=CommandState.ACKNOWLEDGED))
    assert not lifecycle.supersedes(newer, replace(older, device_id=DeviceId("dev-2")))
    assert not lifecycle.supersedes(newer, replace(older, kind=CommandKind.SET_MODE))
    done = lifecycle.supersede(older, newer.command_id, NOW)
    assert done.state is CommandState.SUPERSEDED and done.superseded_by == newer.command_id


def test_cancel():
    assert lifecycle.cancel(record(state=CommandState.SENT), NOW).state is CommandState.CANCELLED
    with pytest.raises(NotCancellable):
        lifecycle.cancel(record(state=CommandState.ACKNOWLEDGED), NOW)


# ------------------------------------------------------------------ validation


def plan(*steps: tuple[int, int, object]) -> ControlPlan:
    return ControlPlan(tuple(PlanStep(NOW + a, NOW + b, action) for a, b, action in steps))  # type: ignore[arg-type]


def test_a_good_plan_passes():
    good = plan((0, 60_000, ChargeTo(90)), (60_000, 120_000, Hold()), (120_000, 180_000, Discharge(3_000, 20)))
    assert validate_plan(good, NOW) is good


@pytest.mark.parametrize(("bad", "message"), [
    (plan(), "at least one step"),
    (plan((60_000, 60_000, Hold())), "start must be before end"),
    (plan((0, 60_000, Hold()), (30_000, 90_000, Hold())), "time order"),
    (plan((-3_600_000, -60_000, Hold())), "starts in the past"),
    (plan((0, 60_000, Discharge(-5, 20))), "power_w"),
    (plan((0, 60_000, Discharge(0, 20))), "> 0"),
    (plan((0, 60_000, ChargeTo(120))), "target_state_of_charge_pct"),
    (plan((0, 60_000, ChargeTo(50, float("nan")))), "max_power_w"),
    (plan((0, 60_000, Discharge(1_000, -1))), "floor_state_of_charge_pct"),
])
def test_bad_plans_are_refused_naming_the_field(bad, message):
    with pytest.raises(InvalidArgument, match=message):
        validate_plan(bad, NOW)


def test_other_specs_and_fields():
    with pytest.raises(InvalidArgument, match="backup_reserve_pct"):
        validate_spec(SetBackupReserve(101), NOW)
    with pytest.raises(InvalidArgument, match="config"):
        validate_spec(ChangeConfiguration({}), NOW)
    with pytest.raises(InvalidArgument, match="sha256"):
        validate_spec(UpdateFirmware("2.0", "https://x/fw.bin", "nothex"), NOW)
    with pytest.raises(InvalidArgument, match="needs one of"):
        validate_spec(None, NOW)
    for ttl in (0, -1, float("inf"), float("nan")):
        with pytest.raises(InvalidArgument, match="ttl_s"):
            parse_ttl_s(ttl)
    with pytest.raises(InvalidArgument, match="command id"):
        parse_command_id("../etc/passwd")
    with pytest.raises(InvalidArgument, match="source"):
        parse_source("VPP!")
    assert parse_source("") == "api"
