"""Sending limits: how fast one bot may send, overall and to each chat (Telegram's flood limits).

Telegram answers 429 ``retry_after`` to a bot that sends more than about 30 messages a second
overall, more than one a second to one private chat, or more than 20 a minute to one group.
The outbox reader (``bot/channels/outbox.py``) asks this limiter before it claims a chat's next
row, so a reply waits its turn here, unclaimed, instead of being refused by Telegram.

The limiter is GCRA (the generic cell rate algorithm, as in redis-cell and throttled): each
bucket keeps one number, its *theoretical arrival time* (TAT). Once the chat's TAT has passed,
a request books the bot's slot ``max(now, bot TAT)`` and moves the bot's TAT one bot interval
past it and the chat's one chat interval past it; the caller sleeps until its slot, once, so a
hundred chats queue in order instead of polling for the same slot. With no burst tolerance,
slots are at least ``interval`` apart, so no rolling window of ``seconds`` ever holds more than
``messages``: the strictest reading of the limits, and the one that leaves no 429 to clean up.
While a chat's TAT has not passed nothing is booked (the answer is how long to wait), so a
chat's waiting never costs another chat its turn.

Two implementations of one port:

- ``MemorySendLimiter`` — the embedded default (one process): a dict, a monotonic clock.
- ``RedisSendLimiter`` — several processes share one bot token, so they must share its budget:
  both buckets are checked and moved in one Lua script, on Redis's own clock (``TIME``), since
  the processes' clocks need not agree. Keys come from the app's ``KeyBuilder`` (its prefix)
  and expire once their TAT has passed (an idle chat costs nothing).

Time is injectable (``clock``, ``sleep``) so tests run on a fake clock with no real waiting.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from redis.asyncio import Redis

from storage.redis_state import redis_errors
from storage.state import KeyBuilder

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``messages`` in any ``seconds``: one every ``interval`` seconds."""

    messages: int
    seconds: float

    def __post_init__(self) -> None:
        if self.messages < 1 or not self.seconds > 0:
            raise ValueError(f"a rate needs messages >= 1 and seconds > 0, got {self.messages}/{self.seconds}")

    @property
    def interval(self) -> float:
        return self.seconds / self.messages


@dataclass(frozen=True, slots=True)
class Turn:
    """A limiter's answer: ``granted`` — a send is booked ``wait`` seconds from now (sleep, then
    send); not granted — the chat's own turn is ``wait`` seconds away and nothing was booked."""

    granted: bool
    wait: float


class SendLimiter(ABC):
    """One bot's sending budget: ``bot`` overall, and a rate per chat given with each request.

    A request books the bot's next free slot as soon as its chat may send, and the chat's next
    turn one interval after that slot: each waiter sleeps once, in order, instead of a hundred
    chats polling for the same slot. While the chat may not send yet, nothing is booked (its
    waiting costs other chats nothing).
    """

    bot: Rate
    _sleeper: Sleep | None = None  # asyncio.sleep unless a test gives its own

    @abstractmethod
    async def reserve(self, chat: str, rate: Rate) -> Turn:
        """Book one send to ``chat`` (see the class docstring)."""

    async def acquire(self, chat: str, rate: Rate) -> float:
        """Wait until one send to ``chat`` is allowed, booked for now; returns the seconds waited."""
        waited = 0.0
        while True:
            turn = await self.reserve(chat, rate)
            if turn.wait > 0:
                await self._sleep(turn.wait)
                waited += turn.wait
            if turn.granted:
                return waited

    async def _sleep(self, seconds: float) -> None:
        await (self._sleeper or asyncio.sleep)(seconds)

    async def close(self) -> None:
        """Free what the limiter holds (not the Redis client it was given)."""


class MemorySendLimiter(SendLimiter):
    """The embedded default: this process is the only sender."""

    def __init__(
        self, bot: Rate, *, clock: Clock = time.monotonic, sleep: Sleep | None = None, max_chats: int = 10_000
    ) -> None:
        self.bot = bot
        self.clock = clock
        self._sleeper = sleep
        self._max_chats = max_chats
        self._bot_tat = -math.inf
        self._chat_tat: dict[str, float] = {}

    async def reserve(self, chat: str, rate: Rate) -> Turn:
        now = self.clock()
        chat_wait = self._chat_tat.get(chat, -math.inf) - now
        if chat_wait > 0:
            return Turn(False, chat_wait)
        slot = max(now, self._bot_tat)
        self._bot_tat = slot + self.bot.interval
        if len(self._chat_tat) >= self._max_chats:
            self._forget(now)
        self._chat_tat[chat] = slot + rate.interval
        return Turn(True, slot - now)

    def _forget(self, now: float) -> None:
        """Drop chats whose TAT has passed: they would be allowed anyway."""
        for chat in [chat for chat, tat in self._chat_tat.items() if tat <= now]:
            del self._chat_tat[chat]


# KEYS[1] the bot's bucket, KEYS[2] the chat's; ARGV[1] bot interval µs, ARGV[2] chat interval µs,
# ARGV[3] now in µs, or "" for Redis's clock. Returns {1, µs until the booked slot} or {0, µs
# until the chat's turn} (nothing booked). Numbers are written with %.0f: Lua 5.1 prints a large
# number as 1.7e+15, losing digits.
_GCRA = """
local now
if ARGV[3] == '' then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
    now = tonumber(ARGV[3])
end
local chat_tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if chat_tat > now then
    return {0, math.ceil(chat_tat - now)}
end
local bot_tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, bot_tat)
local bot_next = slot + tonumber(ARGV[1])
local chat_next = slot + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', bot_next),
           'PX', string.format('%.0f', math.ceil((bot_next - now) / 1000) + 1000))
redis.call('SET', KEYS[2], string.format('%.0f', chat_next),
           'PX', string.format('%.0f', math.ceil((chat_next - now) / 1000) + 1000))
return {1, math.ceil(slot - now)}
"""


def _translated() -> AbstractContextManager[None]:
    return redis_errors("redis send limiter")


def _us(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1_000_000))


class RedisSendLimiter(SendLimiter):
    """``RedisSendLimiter(redis, keys, bot)``: the budget every process sending as ``name`` shares.

    ``clock`` (seconds) replaces Redis's ``TIME`` in tests; keys expire a second after their TAT,
    so a key left behind still tells late requests to wait. At most ``in_flight`` bookings are
    on the wire at once: hundreds of chats may want a turn at the same moment, and the client
    is shared (the state store's), whose pool refuses connections beyond its size (redis-py 8:
    ``MaxConnectionsError`` at 100) instead of queueing them.
    """

    def __init__(
        self,
        redis: Redis,
        keys: KeyBuilder,
        bot: Rate,
        *,
        name: str = "telegram",
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        in_flight: int = 8,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.bot = bot
        self.name = name
        self.clock = clock
        self._sleeper = sleep
        self._script = redis.register_script(_GCRA)
        self._in_flight = asyncio.Semaphore(in_flight)

    async def reserve(self, chat: str, rate: Rate) -> Turn:
        async with self._in_flight:
            return await self._reserve(chat, rate)

    async def _reserve(self, chat: str, rate: Rate) -> Turn:
        now = "" if self.clock is None else str(_us(self.clock()))
        with _translated():
            granted, wait = await self._script(
                keys=[self.keys.send_limit(self.name, None), self.keys.send_limit(self.name, chat)],
                args=[_us(self.bot.interval), _us(rate.interval), now],
            )
        return Turn(bool(granted), int(wait) / 1_000_000)
