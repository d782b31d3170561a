"""The gateway's in-flight limit: bounded, first come first served, safe under cancellation."""

import asyncio

from services.telemetry.capacity import Capacity


async def test_waiters_get_permits_in_order_and_the_limit_holds():
    capacity = Capacity(2)
    await capacity.acquire()
    await capacity.acquire()
    order: list[int] = []

    async def wait(i: int) -> None:
        await capacity.acquire()
        order.append(i)

    waiters = [asyncio.create_task(wait(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert order == [] and capacity.in_use == 2
    for _ in range(3):
        capacity.release()
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2] and capacity.in_use == 2


async def test_a_cancelled_waiter_loses_nothing():
    capacity = Capacity(1)
    await capacity.acquire()
    cancelled = asyncio.create_task(capacity.acquire())
    second = asyncio.create_task(capacity.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    capacity.release()  # goes to `second`, not to the cancelled waiter
    await second
    assert cancelled.cancelled() and capacity.in_use == 1
    capacity.release()
    assert capacity.in_use == 0


async def test_permit_granted_during_cancellation_is_passed_on():
    capacity = Capacity(1)
    await capacity.acquire()
    first = asyncio.create_task(capacity.acquire())
    second = asyncio.create_task(capacity.acquire())
    await asyncio.sleep(0)
    capacity.release()   # granted to `first` …
    first.cancel()       # … which is cancelled before it runs
    await asyncio.gather(first, return_exceptions=True)
    await second
    assert capacity.in_use == 1
