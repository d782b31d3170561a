"""The agent's time: the wall clock, corrected by the skew the gateway reveals, or (for tests and
benchmarks) a simulated clock that starts at a given instant and runs faster than real time.

Every timestamp the agent makes (readings, samples, state reports) and every sampling or polling
interval goes through one `Clock`, so a simulated hour of readings is an hour on every one of
them. Network timeouts and reconnect backoff stay in real seconds.
"""

from __future__ import annotations

import asyncio
import time

from gridtwin.unixtime import now_ms


class Clock:
    """The wall clock, plus `offset_ms` (set from the skew the gateway measured, when correcting)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return now_ms() + self.offset_ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    @property
    def simulated(self) -> bool:
        return False


class SimulatedClock(Clock):
    """Starts at `start_ms` and runs `rate` times as fast as real time."""

    def __init__(self, start_ms: int, rate: float) -> None:
        super().__init__()
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._start_ms = start_ms
        self._rate = rate
        self._origin = time.monotonic()

    def now_ms(self) -> int:
        return self._start_ms + int((time.monotonic() - self._origin) * 1_000 * self._rate) + self.offset_ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds / self._rate))

    @property
    def simulated(self) -> bool:
        return True


def parse_simulated(text: str) -> SimulatedClock:
    """`START_MS:RATE`, START_MS relative to now when it starts with + or - (`-3600000:100`)."""
    start, _, rate = text.partition(":")
    start_ms = int(start)
    if start.startswith(("+", "-")):
        start_ms += now_ms()
    return SimulatedClock(start_ms, float(rate or 1))


def correction_ms(skew_ms: int, tolerance_ms: int) -> int:
    """The offset to add to the agent's clock for a measured skew: none within the tolerance (the
    hello's round trip blurs small skews), the whole skew beyond it."""
    return skew_ms if abs(skew_ms) > tolerance_ms else 0
