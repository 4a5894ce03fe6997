"""Redis pub/sub implementation of the event-bus port: events cross worker processes.

Pub/sub is fire-and-forget: a subscriber gets what is published while it is subscribed,
which is what a live dashboard needs (it loads history from the ticket store). Work that
must not be lost goes through a Redis stream, not through this bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from common.errors import StorageError, StoreUnavailable
from storage.events import BusEvent, EventBus
from storage.redis_state import REDIS_UNAVAILABLE
from storage.state import KeyBuilder

log = logging.getLogger(__name__)

# How long subscribe() waits for Redis to confirm the subscription.
_SUBSCRIBE_TIMEOUT = 5.0


class _Closed:
    """Queue sentinel: the reader stopped (``error`` set when Redis failed)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class RedisEventBus(EventBus):
    """``RedisEventBus(redis, key_builder=KeyBuilder("shop"))`` publishes on ``shop:events``."""

    def __init__(self, redis: Redis, key_builder: KeyBuilder | None = None, queue_size: int = 1000) -> None:
        self.redis = redis
        self.keys = key_builder or KeyBuilder()
        self.channel = self.keys.events()
        self._queue_size = queue_size

    @classmethod
    def from_url(
        cls, url: str, key_builder: KeyBuilder | None = None, queue_size: int = 1000, **kwargs: Any
    ) -> RedisEventBus:
        """Build the client from a ``redis://`` URL; ``kwargs`` go to ``Redis.from_url``."""
        return cls(Redis.from_url(url, **kwargs), key_builder=key_builder, queue_size=queue_size)

    async def publish(self, event: BusEvent) -> None:
        payload = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"))
        try:
            await self.redis.publish(self.channel, payload)
        except REDIS_UNAVAILABLE as exc:
            raise StoreUnavailable("redis", f"redis event bus: publish: {exc.__class__.__name__}") from exc
        except RedisError as exc:
            raise StorageError(f"redis event bus: publish: {exc.__class__.__name__}: {exc}") from exc

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[BusEvent]]:
        pubsub = self.redis.pubsub()
        try:
            try:
                await pubsub.subscribe(self.channel)
                # SUBSCRIBE is asynchronous: wait for the confirmation so that whatever is
                # published after this context is entered is guaranteed to arrive.
                await _confirmed(pubsub)
            except REDIS_UNAVAILABLE as exc:
                raise StoreUnavailable("redis", f"redis event bus: subscribe: {exc.__class__.__name__}") from exc
            except (RedisError, TimeoutError) as exc:
                raise StorageError(f"redis event bus: subscribe: {exc.__class__.__name__}: {exc}") from exc
            # A reader task drains the socket into a bounded queue, so a stalled consumer
            # loses its oldest events (like the in-process bus) instead of making Redis
            # buffer without bound and eventually drop the connection.
            queue: asyncio.Queue[BusEvent | _Closed] = asyncio.Queue(self._queue_size)
            reader = asyncio.create_task(self._read(pubsub, queue), name=f"redis-bus:{self.channel}")
            try:
                yield _Events(queue)
            finally:
                reader.cancel()
                with suppress(asyncio.CancelledError):
                    await reader
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    async def _read(self, pubsub: PubSub, queue: asyncio.Queue[BusEvent | _Closed]) -> None:
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    event = BusEvent.from_dict(json.loads(message["data"]))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("redis event bus: dropped a malformed message on %s: %s", self.channel, exc)
                    continue
                _put_dropping_oldest(queue, event)
        except Exception as exc:  # noqa: BLE001 - whatever stops the reader must reach the consumer
            _put_dropping_oldest(queue, _Closed(exc))

    async def ping(self) -> None:
        """Reachable now? StoreUnavailable otherwise (the readiness probe)."""
        try:
            await self.redis.ping()
        except REDIS_UNAVAILABLE as exc:
            raise StoreUnavailable("redis", f"redis event bus: ping: {exc.__class__.__name__}") from exc
        except RedisError as exc:
            raise StorageError(f"redis event bus: ping: {exc.__class__.__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the client and its connection pool (also when it was passed in)."""
        await self.redis.aclose(close_connection_pool=True)


async def _confirmed(pubsub: PubSub) -> None:
    async with asyncio.timeout(_SUBSCRIBE_TIMEOUT):
        while True:
            message = await pubsub.get_message(timeout=_SUBSCRIBE_TIMEOUT)
            if message is not None and message.get("type") == "subscribe":
                return


def _put_dropping_oldest(queue: asyncio.Queue[BusEvent | _Closed], item: BusEvent | _Closed) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


class _Events:
    """A subscriber's events; safe to cancel mid-wait (unlike an async generator)."""

    def __init__(self, queue: asyncio.Queue[BusEvent | _Closed]) -> None:
        self._queue = queue

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> BusEvent:
        item = await self._queue.get()
        if isinstance(item, _Closed):
            self._queue.put_nowait(item)  # every later call fails the same way
            if isinstance(item.error, REDIS_UNAVAILABLE):
                raise StoreUnavailable("redis", "redis event bus: subscription lost") from item.error
            raise StorageError(f"redis event bus: subscription lost: {item.error}") from item.error
        return item
