"""Reconnect delays: exponential, capped, with full jitter (a neighbourhood of agents that lost the
same gateway does not come back in lockstep)."""

from __future__ import annotations

import random


def backoff_s(attempt: int, *, initial_s: float, maximum_s: float, rand: random.Random | None = None) -> float:
    """The wait before reconnect `attempt` (1, 2, ...): uniform in [cap/10, cap], where cap doubles
    from `initial_s` up to `maximum_s`."""
    cap = min(maximum_s, initial_s * 2 ** min(max(attempt - 1, 0), 30))
    return (rand or random).uniform(0.1 * cap, cap)
