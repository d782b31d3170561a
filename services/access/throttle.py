"""Login throttling and lockout, as a pure function of the failures so far and `now`.

Failures are counted per key (a username, a source address) within a window; the `max_failures`th
failure locks the key for `lockout_s`. While locked, logins of the key are refused before the
password is looked at (RESOURCE_EXHAUSTED, with the time left), and a success resets the count.
The state lives in Postgres so that every replica of the service sees the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    window_s: float = 15 * 60.0
    lockout_s: float = 15 * 60.0


@dataclass(frozen=True)
class Failures:
    """A key's recent failures: how many since `first_unix_ms`, and until when it is locked."""

    count: int = 0
    first_unix_ms: int = 0
    locked_until_unix_ms: int = 0


def locked_for_s(state: Failures, now_unix_ms: int) -> float | None:
    """Seconds the key stays locked, or None when it is not."""
    if state.locked_until_unix_ms > now_unix_ms:
        return (state.locked_until_unix_ms - now_unix_ms) / 1_000
    return None


def after_failure(state: Failures, now_unix_ms: int, policy: ThrottlePolicy) -> Failures:
    """The state after one more failure at `now`: a new window when the last one has passed; locked
    when the count reaches the limit (the count starts again after the lockout)."""
    if state.count == 0 or now_unix_ms - state.first_unix_ms > policy.window_s * 1_000 \
            or state.locked_until_unix_ms and state.locked_until_unix_ms <= now_unix_ms:
        state = Failures(0, now_unix_ms, 0)
    count = state.count + 1
    if count >= policy.max_failures:
        return Failures(count, state.first_unix_ms, now_unix_ms + round(policy.lockout_s * 1_000))
    return Failures(count, state.first_unix_ms, 0)
