"""Server-Sent Events over gRPC server streams, one upstream stream shared by many clients.

A `Topic` is one upstream call (a method, a request and a credential): every browser that asks
for the same resource with the same credential subscribes to it, so 1,000 tabs on one twin cost
one gRPC stream. Sharing stops at the credential, because the service authorized that stream for
that caller alone.

Guarantees:
- Per client, events arrive in upstream order. Each client has a queue of at most `queue_events`;
  a client whose queue is full is dropped (its response ends) and never slows the others or
  makes the process buffer without limit.
- A topic keeps its last `replay_events` events. `Last-Event-ID` resumes: events after that id
  are replayed from there; a snapshot stream (twin, progress, contribution) gives its newest
  state, unless the client has seen it. An id older than the replay buffer of a resumable
  stream (weather changes) opens a stream of its own from that id (`resume_field`).
- The upstream stream ends when its last client leaves (after `linger_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    id: str
    data: bytes      # JSON
    name: str = ""   # the SSE `event:` field ("" = message)

    @functools.cached_property
    def frame(self) -> bytes:
        """The bytes on the wire, made once for all the clients of the event."""
        lines = [b"id: " + self.id.encode()]
        if self.name:
            lines.append(b"event: " + self.name.encode())
        lines.append(b"data: " + self.data)
        return b"\n".join(lines) + b"\n\n"


@dataclass(frozen=True)
class Ended:
    """The upstream stream ended: `error` (a problem body) when it failed, None when it finished."""

    error: dict[str, object] | None = None


class Subscriber:
    """One client's bounded queue."""

    def __init__(self, limit: int) -> None:
        self._items: deque[Event | Ended] = deque()
        self._limit = limit
        self._ready = asyncio.Event()
        self.dropped = False

    def offer(self, item: Event | Ended) -> None:
        if self.dropped:
            return
        if isinstance(item, Event) and len(self._items) >= self._limit:
            self.dropped = True    # too slow: its response ends; nothing more is kept for it
            self._items.clear()
        else:
            self._items.append(item)
        self._ready.set()

    async def next(self, timeout_s: float) -> Event | Ended | None:
        """The next item; None after `timeout_s` without one (time for a heartbeat)."""
        if not self._items and not self.dropped:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout_s)
        if self.dropped:
            return Ended({"type": "/problems/too-slow", "title": "Too Slow", "status": 503,
                          "detail": f"the client read too slowly: {self._limit} events were waiting"})
        return self._items.popleft() if self._items else None


Opener = Callable[[], grpc.aio.UnaryStreamCall]
Encode = Callable[[object], Event]


@dataclass
class Topic:
    key: tuple[str, ...]
    open: Opener
    encode: Encode
    replay_events: int
    subscribers: set[Subscriber] = field(default_factory=set)
    recent: deque[Event] = field(default_factory=deque)
    ended: Ended | None = None
    first: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    delivered: int = 0
    start: str = ""          # the position the upstream stream was opened after (resumable streams)

    async def run(self) -> None:
        call = self.open()
        try:
            async for message in call:
                event = self.encode(message)
                self.recent.append(event)
                if len(self.recent) > self.replay_events:
                    self.recent.popleft()
                self.delivered += 1
                self.first.set()
                for subscriber in list(self.subscribers):
                    subscriber.offer(event)
            self.ended = Ended()
        except grpc.aio.AioRpcError as error:
            from services.http.problems import from_grpc

            self.ended = Ended(from_grpc(error, ""))
        except asyncio.CancelledError:
            call.cancel()
            self.ended = Ended()
            raise
        finally:
            self.first.set()
            for subscriber in list(self.subscribers):
                subscriber.offer(self.ended or Ended())


class Hub:
    """The topics of one process."""

    def __init__(self, *, queue_events: int, replay_events: int, linger_s: float = 2.0) -> None:
        self._topics: dict[tuple[str, ...], Topic] = {}
        self._queue_events, self._replay_events, self._linger_s = queue_events, replay_events, linger_s
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def topics(self) -> int:
        return len(self._topics)

    def live(self, key: tuple[str, ...]) -> bool:
        topic = self._topics.get(key)
        return topic is not None and topic.ended is None

    @property
    def subscribers(self) -> int:
        return sum(len(t.subscribers) for t in self._topics.values())

    async def subscribe(self, key: tuple[str, ...], open_: Opener, encode: Encode, *, last_event_id: str = "",
                        snapshot: bool, first_wait_s: float, start: str = "") -> tuple[Topic, Subscriber]:
        """Joins (or starts) the topic `key`; waits up to `first_wait_s` for a new topic's first
        event so that a refusal (unauthenticated, not found) is known before any byte is sent.
        The subscriber's queue starts with what `last_event_id` has not seen."""
        topic = self._topics.get(key)
        if topic is None or topic.ended is not None:
            topic = Topic(key, open_, encode, self._replay_events, start=start)
            self._topics[key] = topic
            topic.task = asyncio.create_task(topic.run())
            topic.task.add_done_callback(functools.partial(self._forget, key, topic))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(topic.first.wait()), first_wait_s)
        subscriber = Subscriber(self._queue_events)
        backlog = list(topic.recent)
        if snapshot:
            backlog = backlog[-1:] if backlog and backlog[-1].id != last_event_id else []
        elif last_event_id:
            ids = [e.id for e in backlog]
            backlog = backlog[ids.index(last_event_id) + 1:] if last_event_id in ids else backlog
        for event in backlog:
            subscriber.offer(event)
        if topic.ended is not None:
            subscriber.offer(topic.ended)
        topic.subscribers.add(subscriber)
        return topic, subscriber

    def covers(self, key: tuple[str, ...], position: str) -> bool:
        """Can topic `key` serve a client that has seen everything up to `position`: from its
        replay buffer, or from its start when it has forgotten nothing since?"""
        topic = self._topics.get(key)
        if topic is None or topic.ended is not None:
            return False
        if position == topic.start and topic.delivered == len(topic.recent):
            return True
        return any(e.id == position for e in topic.recent)

    def leave(self, topic: Topic, subscriber: Subscriber) -> None:
        topic.subscribers.discard(subscriber)
        if not topic.subscribers and topic.task is not None and not topic.task.done():
            task = asyncio.create_task(self._stop_if_unused(topic))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _stop_if_unused(self, topic: Topic) -> None:
        await asyncio.sleep(self._linger_s)
        if not topic.subscribers and topic.task is not None:
            topic.task.cancel()

    def _forget(self, key: tuple[str, ...], topic: Topic, _: object = None) -> None:
        if self._topics.get(key) is topic and not topic.subscribers:
            del self._topics[key]

    async def close(self) -> None:
        tasks = [t.task for t in self._topics.values() if t.task is not None] + list(self._closing)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._topics.clear()


HEARTBEAT = b": heartbeat\n\n"


async def stream(hub: Hub, topic: Topic, subscriber: Subscriber, *, heartbeat_s: float,
                 encode_end: Callable[[Ended], bytes]) -> AsyncIterator[bytes]:
    """The response body of one client: its events, heartbeats while idle, and a last `error`
    event when the upstream failed or the client was dropped."""
    try:
        yield b"retry: 2000\n\n"
        while True:
            item = await subscriber.next(heartbeat_s)
            if item is None:
                yield HEARTBEAT
            elif isinstance(item, Ended):
                if item.error is not None:
                    yield encode_end(item)
                return
            else:
                yield item.frame
    finally:
        hub.leave(topic, subscriber)

