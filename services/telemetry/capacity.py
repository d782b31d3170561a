"""A counting limit with O(1) acquire and release, first come first served.

asyncio.Semaphore in Python 3.11 rescans woken-but-not-yet-running waiters on every release, so
when a broker acknowledgement releases thousands of permits at once it turns quadratic and eats
the gateway's CPU exactly when the gateway is under pressure. Here a release hands its permit
straight to the oldest waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Capacity:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releaser counted our permit for us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted while being cancelled: pass it on
            elif waiter in self._waiters:  # a release may already have skipped and dropped it
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_use -= 1
