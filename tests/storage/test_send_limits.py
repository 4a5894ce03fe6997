"""The sending limiter (storage/send_limits.py): one contract over the in-memory and the Redis
GCRA, on an injected clock (a sleep advances it), so nothing here waits for real time.

What it guarantees: grants to one chat are at least its interval apart, so no rolling window
of ``seconds`` holds more than ``messages``; the bot's budget spans every chat; a denied
request changes nothing and says how long to wait; on Redis every limiter under one prefix
shares the bot's budget (several processes, one token), and keys are the app's and expire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from storage.send_limits import MemorySendLimiter, Rate, RedisSendLimiter, SendLimiter, Turn
from storage.state import KeyBuilder
from tests.conftest import _delete_keys

PRIVATE = Rate(1, 1.0)
GROUP = Rate(20, 60.0)


@dataclass
class FakeTime:
    """A clock whose sleeps advance it (and are recorded)."""

    now: float = 1_000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


Make = Callable[[Rate], SendLimiter]


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[tuple[Make, FakeTime]]:
    """A factory of limiters on one fake clock; on Redis all share one client and prefix."""
    clock = FakeTime()
    if request.param == "memory":
        yield (lambda bot: MemorySendLimiter(bot, clock=clock, sleep=clock.sleep)), clock
        return
    url: str = request.getfixturevalue("redis_server")
    redis = Redis.from_url(url)
    keys = KeyBuilder(redis_prefix)
    try:
        yield (lambda bot: RedisSendLimiter(redis, keys, bot, clock=clock, sleep=clock.sleep)), clock
    finally:
        await redis.aclose()
        await _delete_keys(url, redis_prefix)


def most_in_window(times: list[float], seconds: float) -> int:
    """The most grants in any half-open window ``[t, t + seconds)``."""
    return max(sum(1 for u in times if t <= u < t + seconds) for t in times)


async def test_one_chat_is_granted_once_per_interval_and_a_denial_books_nothing(
    make_limiter: tuple[Make, FakeTime],
) -> None:
    make, clock = make_limiter
    limiter = make(Rate(30, 1.0))
    assert await limiter.reserve("501", PRIVATE) == Turn(True, 0.0)
    clock.now += 0.25
    turn = await limiter.reserve("501", PRIVATE)
    assert not turn.granted and turn.wait == pytest.approx(0.75, abs=1e-5)
    clock.now += 0.25
    # The denial above booked nothing: the chat's turn is still 1 s after the grant.
    turn = await limiter.reserve("501", PRIVATE)
    assert not turn.granted and turn.wait == pytest.approx(0.5, abs=1e-5)
    clock.now += 0.5
    assert await limiter.reserve("501", PRIVATE) == Turn(True, 0.0)
    # Another chat may send (501 does not hold it), at the bot's next slot: 1/30 s on.
    turn = await limiter.reserve("502", PRIVATE)
    assert turn.granted and turn.wait == pytest.approx(1 / 30, abs=1e-5)
    clock.now += 1 / 30
    # 502's turn is counted from its booked slot, not from when it asked.
    turn = await limiter.reserve("502", PRIVATE)
    assert not turn.granted and turn.wait == pytest.approx(1.0, abs=1e-5)


async def test_waiting_chats_book_the_bots_slots_in_order(make_limiter: tuple[Make, FakeTime]) -> None:
    make, _clock = make_limiter
    limiter = make(Rate(10, 1.0))
    turns = [await limiter.reserve(str(600 + i), PRIVATE) for i in range(5)]
    assert all(t.granted for t in turns)
    assert [t.wait for t in turns] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-5)


async def test_a_group_never_gets_more_than_its_messages_in_a_rolling_window(
    make_limiter: tuple[Make, FakeTime],
) -> None:
    make, clock = make_limiter
    limiter = make(Rate(30, 1.0))
    grants: list[float] = []
    for _ in range(50):
        await limiter.acquire("-100777", GROUP)
        grants.append(clock.now)
    assert most_in_window(grants, GROUP.seconds) == 20
    assert grants[-1] - grants[0] == pytest.approx(49 * 3.0, abs=1e-3)  # evenly: one every 3 s
    assert min(b - a for a, b in zip(grants, grants[1:], strict=False)) == pytest.approx(3.0, abs=1e-5)


async def test_the_bot_budget_spans_chats_and_acquire_waits_exactly_for_the_turn(
    make_limiter: tuple[Make, FakeTime],
) -> None:
    make, clock = make_limiter
    limiter = make(Rate(4, 1.0))
    start = clock.now
    grants = []
    for chat in range(12):  # twelve chats, one message each: only the bot's 4/s holds them
        waited = await limiter.acquire(str(2000 + chat), PRIVATE)
        grants.append(clock.now)
        assert waited == pytest.approx(0.0 if chat == 0 else 0.25, abs=1e-5)
    assert grants[-1] - start == pytest.approx(11 * 0.25, abs=1e-4)
    assert most_in_window(grants, 1.0) == 4


async def test_limiters_on_one_redis_share_the_bot_budget(redis_server: str, redis_prefix: str) -> None:
    clock = FakeTime()
    redis = Redis.from_url(redis_server)
    try:
        bot = Rate(2, 1.0)
        one, two = (RedisSendLimiter(redis, KeyBuilder(redis_prefix), bot, clock=clock) for _ in range(2))
        assert await one.reserve("1", PRIVATE) == Turn(True, 0.0)
        turn = await two.reserve("2", PRIVATE)  # "another process": the slot after one's
        assert turn.granted and turn.wait == pytest.approx(0.5, abs=1e-5)
        clock.now += 0.5
        turn = await one.reserve("2", PRIVATE)  # chat 2's own turn, whoever sends
        assert not turn.granted and turn.wait == pytest.approx(1.0, abs=1e-5)
        keys = sorted([k.decode() async for k in redis.scan_iter(match=f"{redis_prefix}:*")])
        assert keys == [
            f"{redis_prefix}:sendlimit:telegram",
            f"{redis_prefix}:sendlimit:telegram:chat:1",
            f"{redis_prefix}:sendlimit:telegram:chat:2",
        ]
        ttls = [await redis.pttl(key) for key in keys]
        assert all(0 < ttl <= 2_500 for ttl in ttls), ttls  # a second after its TAT: gone once idle
    finally:
        await redis.aclose()
        await _delete_keys(redis_server, redis_prefix)


async def test_redis_on_its_own_clock_spaces_real_grants(redis_server: str, redis_prefix: str) -> None:
    """Without an injected clock the script reads Redis's TIME (the processes' clocks may differ)."""
    redis = Redis.from_url(redis_server)
    try:
        limiter = RedisSendLimiter(redis, KeyBuilder(redis_prefix), Rate(30, 1.0))
        assert (await limiter.reserve("9", Rate(1, 60.0))).granted
        turn = await limiter.reserve("9", Rate(1, 60.0))
        assert not turn.granted and 50.0 < turn.wait <= 60.0
    finally:
        await redis.aclose()
        await _delete_keys(redis_server, redis_prefix)


def test_a_rate_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Rate(0, 1.0)
    with pytest.raises(ValueError):
        Rate(1, 0.0)
    assert Rate(20, 60.0).interval == 3.0


class Counting(SendLimiter):
    """Counts the bookings asked of the limiter it wraps."""

    def __init__(self, inner: SendLimiter) -> None:
        self.inner, self.bot, self.calls = inner, inner.bot, 0

    async def reserve(self, chat: str, rate: Rate) -> Turn:
        self.calls += 1
        return await self.inner.reserve(chat, rate)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_hundreds_of_waiting_chats_book_once_each_without_exhausting_the_client(
    backend: str, request: pytest.FixtureRequest, redis_prefix: str
) -> None:
    """300 chats want a turn at once (real time, a fast bot rate): each books once and sleeps
    once — nobody polls — and the shared client's pool (100 connections) is never exhausted."""
    redis: Redis | None = None
    if backend == "memory":
        inner: SendLimiter = MemorySendLimiter(Rate(20_000, 1.0))
    else:
        url: str = request.getfixturevalue("redis_server")
        redis = Redis.from_url(url)
        inner = RedisSendLimiter(redis, KeyBuilder(redis_prefix), Rate(20_000, 1.0))
    try:
        limiter = Counting(inner)
        waited = await asyncio.gather(*(limiter.acquire(f"chat{i}", PRIVATE) for i in range(300)))
        assert limiter.calls == 300 and len(waited) == 300
    finally:
        if redis is not None:
            await redis.aclose()
            await _delete_keys(request.getfixturevalue("redis_server"), redis_prefix)
