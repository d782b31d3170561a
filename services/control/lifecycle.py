"""The command lifecycle, pure: each function takes a record and `now_ms` and returns the changed
record (or the same one when nothing changes). No I/O; the store persists what these decide.

    queued ──send──▶ sent ──ACCEPTED/COMPLETED──▶ acknowledged ──COMPLETED──▶ (completed_ms set)
      │               │ ╰── unacknowledged: sent again after `retry_delay_s` (exponential, jittered)
      │               ├── REJECTED, or `max_attempts` sends without an ack ──▶ failed
      ╰───────────────┴── `expires_ms` reached, or the device answered EXPIRED ──▶ expired
    queued/sent ──▶ superseded (a newer control plan for the same device) | cancelled

Guarantees:
- final states (failed, expired, superseded, cancelled) never change again; an acknowledgement
  arriving late is kept in `outcome` but does not move the state;
- applying the same acknowledgement twice changes nothing the second time (redelivered acks,
  consumer restarts), and acknowledged never goes back to sent;
- a command is never sent at or after its expiry: `decide_send` expires it instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from services.control.model import (
    CommandId,
    CommandKind,
    CommandRecord,
    CommandState,
    NotCancellable,
    Outcome,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Retry timing of unacknowledged sends. After the n-th send (n ≥ 1) the command is sent
    again after a delay drawn uniformly from [d/2, d], d = min(max_delay_s, base_delay_s·2^(n-1))
    ("equal jitter": exponential, never sooner than half of it, spread so that a fleet that lost
    its acks together is not retried in lockstep). After `max_attempts` sends without an
    acknowledgement the command fails."""

    base_delay_s: float = 5.0
    max_delay_s: float = 300.0
    max_attempts: int = 6

    def __post_init__(self) -> None:
        if not (0 < self.base_delay_s <= self.max_delay_s) or self.max_attempts < 1:
            raise ValueError("need 0 < base_delay_s <= max_delay_s and max_attempts >= 1")


def retry_delay_s(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to wait after send number `attempt` (1-based) before sending again."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** max(0, min(attempt - 1, 60)))
    return rng.uniform(ceiling / 2.0, ceiling)


def _finish(record: CommandRecord, state: CommandState, now_ms: int, detail: str, **changes: object) -> CommandRecord:
    return replace(record, state=state, finished_ms=now_ms, detail=detail, **changes)  # type: ignore[arg-type]


# ------------------------------------------------------------------ sending


@dataclass(frozen=True)
class Send:
    record: CommandRecord   # already marked sent (attempts + 1, next attempt time)


@dataclass(frozen=True)
class Finish:
    record: CommandRecord   # expired or failed instead of being sent


@dataclass(frozen=True)
class Wait:
    """Not due: sent to this very session and its retry time has not come."""


SendDecision = Send | Finish | Wait


def decide_send(record: CommandRecord, session_id: str, gateway_id: str, now_ms: int,
                policy: RetryPolicy, rng: random.Random) -> SendDecision:
    """Whether a pending command goes out now to the device's current session.

    Due: queued; or sent and unacknowledged past its retry time; or sent to a session that is
    gone (the device reconnected: it is sent again at once, the earlier send may have been lost).
    """
    if not record.state.pending:
        return Wait()
    if now_ms >= record.expires_ms:
        return Finish(_finish(record, CommandState.EXPIRED, now_ms, "expired before it was acknowledged"))
    resend_now = record.sent_session != session_id
    if record.state is CommandState.SENT and not resend_now and now_ms < record.next_attempt_ms:
        return Wait()
    if record.attempts >= policy.max_attempts:
        return Finish(_finish(record, CommandState.FAILED, now_ms,
                              f"no acknowledgement after {record.attempts} attempts"))
    attempts = record.attempts + 1
    next_ms = now_ms + int(retry_delay_s(attempts, policy, rng) * 1_000)
    return Send(replace(record, state=CommandState.SENT, attempts=attempts, last_sent_ms=now_ms,
                        next_attempt_ms=next_ms, sent_session=session_id, sent_gateway=gateway_id))


def expire(record: CommandRecord, now_ms: int) -> CommandRecord:
    """Pending and past its expiry → expired; anything else unchanged."""
    if record.state.pending and now_ms >= record.expires_ms:
        return _finish(record, CommandState.EXPIRED, now_ms, "expired before it was acknowledged")
    return record


# ------------------------------------------------------------------ acknowledgements


def apply_ack(record: CommandRecord, outcome: Outcome, detail: str, now_ms: int) -> CommandRecord:
    """The device's answer. Idempotent; see the module docstring for what moves."""
    detail = detail[:500]
    if record.state in (CommandState.SUPERSEDED, CommandState.CANCELLED):
        # The device may have run it before the newer plan or the cancellation reached it.
        if record.outcome is outcome:
            return record
        return replace(record, outcome=outcome)
    if record.state in (CommandState.FAILED, CommandState.EXPIRED):
        return record
    if record.state is CommandState.ACKNOWLEDGED:
        if outcome is Outcome.COMPLETED and record.outcome is not Outcome.COMPLETED:
            return replace(record, outcome=Outcome.COMPLETED, completed_ms=now_ms)
        return record
    # queued or sent (an ack may overtake the store's own "sent" record after a reconnect)
    match outcome:
        case Outcome.ACCEPTED:
            return replace(record, state=CommandState.ACKNOWLEDGED, outcome=outcome, acked_ms=now_ms,
                           finished_ms=now_ms, detail=detail)
        case Outcome.COMPLETED:
            return replace(record, state=CommandState.ACKNOWLEDGED, outcome=outcome, acked_ms=now_ms,
                           completed_ms=now_ms, finished_ms=now_ms, detail=detail)
        case Outcome.REJECTED:
            return _finish(record, CommandState.FAILED, now_ms, f"rejected by the device: {detail}",
                           outcome=outcome, acked_ms=now_ms)
        case Outcome.EXPIRED:
            return _finish(record, CommandState.EXPIRED, now_ms, f"the device found it expired: {detail}".rstrip(": "),
                           outcome=outcome, acked_ms=now_ms)


# ------------------------------------------------------------------ supersession and cancellation


def supersedes(newer: CommandRecord, older: CommandRecord) -> bool:
    """A newer control plan replaces an older one for the same device that is still pending
    (not acknowledged: it has not been taken, so it must never be sent or run)."""
    return (newer.kind is CommandKind.CONTROL_PLAN and older.kind is CommandKind.CONTROL_PLAN
            and newer.device_id == older.device_id and newer.command_id != older.command_id
            and older.state.pending
            and (older.created_ms, older.command_id) < (newer.created_ms, newer.command_id))


def supersede(older: CommandRecord, newer_id: CommandId, now_ms: int) -> CommandRecord:
    return _finish(older, CommandState.SUPERSEDED, now_ms, f"replaced by the newer plan {newer_id}",
                   superseded_by=newer_id)


def cancel(record: CommandRecord, now_ms: int) -> CommandRecord:
    """Pending → cancelled; raises NotCancellable for a finished command (a cancelled one stays)."""
    if record.state is CommandState.CANCELLED:
        return record
    if not record.state.pending:
        raise NotCancellable(f"command {record.command_id} is already {record.state.value}")
    return _finish(record, CommandState.CANCELLED, now_ms, "cancelled")
