"""Progress events for long work (uploads now, runs later): publish from any thread, follow
over a WebSocket.

`publish(channel, event)` is synchronous and thread-safe, so background work calls it
directly. `subscribe(channel)` is an async iterator that first yields the channel's latest
event (a late subscriber still learns the current state), then every new one. With
`REDIS_URL` set, events go through Redis pub/sub (every API process sees every worker's
events) and the latest event per channel is kept in a key for an hour; otherwise an
in-process hub does the same for a single process.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any, Protocol

LAST_TTL_SECONDS = 3600
LAST_KEPT = 10_000

Event = dict[str, Any]


class ProgressHub(Protocol):
    def publish(self, channel: str, event: Event) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[Event]: ...


class MemoryHub:
    """Single-process hub: asyncio queues fed with `call_soon_threadsafe`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = {}
        self._last: OrderedDict[str, Event] = OrderedDict()

    def publish(self, channel: str, event: Event) -> None:
        with self._lock:
            self._last[channel] = event
            self._last.move_to_end(channel)
            while len(self._last) > LAST_KEPT:
                self._last.popitem(last=False)
            subscribers = list(self._subscribers.get(channel, ()))
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            except RuntimeError:  # the subscriber's loop has closed
                continue

    async def subscribe(self, channel: str) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.setdefault(channel, set()).add(entry)
            last = self._last.get(channel)
        try:
            if last is not None:
                yield last
            while True:
                yield await queue.get()
        finally:
            with self._lock:
                self._subscribers.get(channel, set()).discard(entry)


class RedisHub:
    """Redis pub/sub; the latest event per channel is also stored under `progress:last:*`."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._client = redis.Redis.from_url(url)

    def publish(self, channel: str, event: Event) -> None:
        payload = json.dumps(event, default=str)
        with self._client.pipeline() as pipe:
            pipe.set(f"progress:last:{channel}", payload, ex=LAST_TTL_SECONDS)
            pipe.publish(f"progress:{channel}", payload)
            pipe.execute()

    async def subscribe(self, channel: str) -> AsyncIterator[Event]:
        from redis import asyncio as aioredis

        client = aioredis.Redis.from_url(self.url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(f"progress:{channel}")
            last = await client.get(f"progress:last:{channel}")
            if last is not None:
                yield json.loads(last)
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield json.loads(message["data"])
        finally:
            await pubsub.aclose()
            await client.aclose()


_hubs: dict[str | None, ProgressHub] = {}
_hubs_lock = threading.Lock()


def get_hub(redis_url: str | None) -> ProgressHub:
    """One hub per process and Redis URL (None: the in-process hub)."""
    with _hubs_lock:
        hub = _hubs.get(redis_url)
        if hub is None:
            hub = RedisHub(redis_url) if redis_url else MemoryHub()
            _hubs[redis_url] = hub
        return hub
