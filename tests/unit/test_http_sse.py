"""The Server-Sent Events hub (services/http/sse.py) over a fake upstream stream: one upstream
for many clients, a slow client dropped without slowing the others, Last-Event-ID resumption."""

from __future__ import annotations

import asyncio
from typing import Any

from services.http import sse


class FakeCall:
    """Stands in for a grpc.aio UnaryStreamCall: yields what is put, until closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = False

    def __aiter__(self) -> FakeCall:
        return self

    async def __anext__(self) -> Any:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def cancel(self) -> None:
        self.cancelled = True


def encode(message: object) -> sse.Event:
    return sse.Event(str(message), f'{{"n":{message}}}'.encode())


async def test_clients_of_one_resource_share_one_upstream_stream() -> None:
    hub = sse.Hub(queue_events=8, replay_events=4, linger_s=0.01)
    calls: list[FakeCall] = []

    def open_() -> Any:
        calls.append(FakeCall())
        return calls[-1]

    joined = [await hub.subscribe(("k",), open_, encode, snapshot=False, first_wait_s=0.01) for _ in range(100)]
    assert len(calls) == 1 and hub.subscribers == 100
    await calls[0].queue.put(1)
    for _, subscriber in joined:
        item = await subscriber.next(1.0)
        assert isinstance(item, sse.Event) and item.id == "1"
    for topic, subscriber in joined:
        hub.leave(topic, subscriber)
    await asyncio.sleep(0.05)
    assert hub.topics == 0 and calls[0].cancelled
    await hub.close()


async def test_a_slow_client_is_dropped_and_the_others_get_everything() -> None:
    hub = sse.Hub(queue_events=4, replay_events=4)
    call = FakeCall()
    _, slow = await hub.subscribe(("k",), lambda: call, encode, snapshot=False, first_wait_s=0.01)
    _, fast = await hub.subscribe(("k",), lambda: call, encode, snapshot=False, first_wait_s=0.01)
    received = []
    for n in range(20):
        await call.queue.put(n)
        await asyncio.sleep(0)
        item = await fast.next(1.0)
        assert isinstance(item, sse.Event)
        received.append(int(item.id))
    assert received == list(range(20))
    assert slow.dropped
    ended = await slow.next(0.01)
    assert isinstance(ended, sse.Ended) and ended.error is not None
    await hub.close()


async def test_last_event_id_replays_what_was_missed() -> None:
    hub = sse.Hub(queue_events=16, replay_events=8)
    call = FakeCall()
    topic, first = await hub.subscribe(("k",), lambda: call, encode, snapshot=False, first_wait_s=0.01)
    for n in range(5):
        await call.queue.put(n)
    await asyncio.sleep(0.01)
    assert hub.covers(("k",), "2") and not hub.covers(("k",), "99")
    _, resumed = await hub.subscribe(("k",), lambda: call, encode, last_event_id="2", snapshot=False,
                                     first_wait_s=0.01)
    got = [await resumed.next(0.1) for _ in range(2)]
    assert [e.id for e in got if isinstance(e, sse.Event)] == ["3", "4"]
    assert await resumed.next(0.01) is None    # nothing more: a heartbeat is due
    await hub.close()


async def test_a_snapshot_stream_gives_a_new_client_the_newest_state_only() -> None:
    hub = sse.Hub(queue_events=16, replay_events=8)
    call = FakeCall()
    await hub.subscribe(("k",), lambda: call, encode, snapshot=True, first_wait_s=0.01)
    for n in range(3):
        await call.queue.put(n)
    await asyncio.sleep(0.01)
    _, late = await hub.subscribe(("k",), lambda: call, encode, snapshot=True, first_wait_s=0.01)
    item = await late.next(0.1)
    assert isinstance(item, sse.Event) and item.id == "2"
    _, seen = await hub.subscribe(("k",), lambda: call, encode, last_event_id="2", snapshot=True, first_wait_s=0.01)
    assert await seen.next(0.01) is None
    await hub.close()


async def test_the_body_has_heartbeats_and_ends_on_upstream_end() -> None:
    hub = sse.Hub(queue_events=16, replay_events=8)
    call = FakeCall()
    topic, subscriber = await hub.subscribe(("k",), lambda: call, encode, snapshot=False, first_wait_s=0.01)
    body = sse.stream(hub, topic, subscriber, heartbeat_s=0.01, encode_end=lambda e: b"end\n\n")
    assert await body.__anext__() == b"retry: 2000\n\n"
    assert await body.__anext__() == sse.HEARTBEAT
    await call.queue.put(7)
    assert await body.__anext__() == b'id: 7\ndata: {"n":7}\n\n'
    await call.queue.put(None)
    chunks = [chunk async for chunk in body]
    assert chunks in ([], [sse.HEARTBEAT])
    await hub.close()
