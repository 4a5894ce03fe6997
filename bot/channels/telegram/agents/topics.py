"""Forum-topic creation for the agents' group: queued, rate limited, never dropped.

Telegram lets a bot create only about 20 topics a minute in a group and answers more
with 429. A burst of escalations (a delivery van breaks down, 30 complaints in a minute)
must still give every ticket its topic, in order, without tripping the limit: requests
wait in a FIFO queue, one worker creates them at most ``per_minute`` per sliding minute,
waits ``retry_after`` on a 429, backs off on 5xx/timeouts, and retries the same request
until it succeeds. Only a request Telegram refuses for good (400/403: not a forum, no
rights) fails its caller, which then posts the ticket as a plain message instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.channels.telegram.api import NetworkError, RetryAfter, ServerError, TelegramApi

log = logging.getLogger("deskbot.telegram.topics")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

MAX_BACKOFF_SECONDS = 60.0


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``period`` seconds (clock and sleep injectable)."""

    def __init__(self, limit: int, period: float = 60.0, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._recent: deque[float] = deque()

    async def acquire(self) -> None:
        while True:
            now = self._clock()
            while self._recent and now - self._recent[0] >= self.period:
                self._recent.popleft()
            if len(self._recent) < self.limit:
                self._recent.append(now)
                return
            await self._sleep(self.period - (now - self._recent[0]))


async def call_with_retry(
    call: Callable[[], Awaitable[T]], *, sleep: Sleep = asyncio.sleep, attempts: int | None = 5,
    what: str = "telegram call",
) -> T:
    """Run ``call``, waiting ``retry_after`` on 429 and backing off on 5xx/timeouts.

    ``attempts=None`` retries forever (topic creation: never dropped). 400/403 are raised at once.
    """
    backoff = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except RetryAfter as exc:
            if attempts is not None and attempt >= attempts:
                raise
            delay = float(exc.retry_after or 1.0)
            log.warning("rate limited", extra={"call": what, "retry_after": delay, "attempt": attempt})
        except (ServerError, NetworkError) as exc:
            if attempts is not None and attempt >= attempts:
                raise
            delay = backoff
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            log.warning("transient error", extra={"call": what, "error": str(exc), "attempt": attempt})
        await sleep(delay)


@dataclass
class _Request:
    name: str
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class TopicCreator:
    """``thread_id = await creator.create(name)`` — queued behind earlier requests, rate limited."""

    def __init__(
        self,
        api: TelegramApi,
        chat_id: int,
        per_minute: int = 20,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.api = api
        self.chat_id = chat_id
        self._sleep = sleep
        self._limiter = SlidingWindowLimiter(per_minute, 60.0, clock=clock, sleep=sleep)
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._current: _Request | None = None

    @property
    def waiting(self) -> int:
        """Requests not yet created (including the one in progress)."""
        return self._queue.qsize() + (0 if self._current is None else 1)

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="telegram-topic-creator")

    async def close(self) -> None:
        """Stop the worker; callers still waiting get CancelledError (their tickets are retried on restart)."""
        pending = [self._current] if self._current is not None else []  # before the worker's finally clears it
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for request in pending:
            if not request.done.done():
                request.done.cancel()
        self._current = None

    async def create(self, name: str) -> int:
        self.start()
        request = _Request(name)
        await self._queue.put(request)
        return await request.done

    async def _work(self) -> None:
        while True:
            request = await self._queue.get()
            self._current = request
            try:
                if request.done.cancelled():
                    continue  # the caller gave up (shutting down)
                try:
                    thread_id = await call_with_retry(
                        functools.partial(self._limited_create, request.name), sleep=self._sleep, attempts=None,
                        what="createForumTopic",
                    )
                except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                    if not request.done.done():
                        request.done.set_exception(exc)
                else:
                    if not request.done.done():
                        request.done.set_result(thread_id)
            finally:
                self._current = None

    async def _limited_create(self, name: str) -> int:
        await self._limiter.acquire()
        return await self.api.create_forum_topic(self.chat_id, name)
