"""The per-customer rate limit's contract, on the in-memory and the Redis limiter alike.

A fake clock moves time (the Redis limiter takes it in place of Redis's ``TIME``), so windows
pass without sleeping and both implementations must give the same verdicts step by step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from storage.customer_limits import CustomerLimiter, CustomerRate, MemoryCustomerLimiter, Pace
from storage.redis_customer_limits import RedisCustomerLimiter
from storage.state import KeyBuilder
from tests.conftest import _delete_keys

ANSWER, NOTICE, QUIET = Pace.ANSWER, Pace.NOTICE, Pace.QUIET


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


MakeLimiter = Callable[[CustomerRate], CustomerLimiter]


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(
    request: pytest.FixtureRequest, redis_prefix: str, clock: FakeClock
) -> AsyncIterator[MakeLimiter]:
    if request.param == "memory":
        yield lambda rate: MemoryCustomerLimiter(rate, clock=clock)
        return
    url: str = request.getfixturevalue("redis_server")
    redis = Redis.from_url(url)
    try:
        yield lambda rate: RedisCustomerLimiter(redis, KeyBuilder(redis_prefix), rate, clock=clock)
    finally:
        await redis.aclose()
        await _delete_keys(url, redis_prefix)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _checks(limiter: CustomerLimiter, customer: int, ids: list[str]) -> list[Pace]:
    return [await limiter.check(customer, message) for message in ids]


async def test_over_the_rate_one_notice_then_quiet(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(CustomerRate(3, 60))
    paces = await _checks(limiter, 1, [f"m{i}" for i in range(7)])
    assert paces == [ANSWER, ANSWER, ANSWER, NOTICE, QUIET, QUIET, QUIET]


async def test_the_window_passing_answers_again_and_a_new_flood_is_told_again(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    limiter = make_limiter(CustomerRate(2, 60))
    assert await _checks(limiter, 1, ["a", "b", "c", "d"]) == [ANSWER, ANSWER, NOTICE, QUIET]
    clock.now += 59.9
    assert await limiter.check(1, "e") == QUIET  # a, b, c, d are all still in the window
    clock.now += 59.95  # only "e" left in the window, and the notice (until a + 60) is over
    assert await _checks(limiter, 1, ["f", "g", "h"]) == [ANSWER, NOTICE, QUIET]


async def test_every_message_counts_so_a_steady_flood_stays_quiet_until_a_pause(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    limiter = make_limiter(CustomerRate(2, 60))
    start = clock.now
    verdicts = []
    for second in (0, 1, 2, 30, 61, 62, 100, 131, 200):
        clock.now = start + second
        verdicts.append(await limiter.check(1, f"at-{second}"))
    # 2: the third in 60 s, told; 30, 61, 62, 100: two or more in the 60 s before each;
    # 62 is past the notice (2 + 60): told again; 131: only 100 in (71, 131]; 200: none.
    assert verdicts == [ANSWER, ANSWER, NOTICE, QUIET, QUIET, NOTICE, QUIET, ANSWER, ANSWER]


async def test_a_redelivery_is_not_counted_twice(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(CustomerRate(2, 60))
    assert await _checks(limiter, 1, ["rest:k1", "rest:k1", "rest:k1", "rest:k2"]) == [ANSWER] * 4
    assert await limiter.check(1, "rest:k3") == NOTICE
    assert await limiter.check(1, "rest:k3") == ANSWER  # its copy: the ticket store replays the notice
    assert await limiter.check(1, "rest:k4") == QUIET


async def test_customers_are_counted_apart(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(CustomerRate(1, 60))
    assert await _checks(limiter, 1, ["a", "b"]) == [ANSWER, NOTICE]
    assert await _checks(limiter, 2, ["a", "b", "c"]) == [ANSWER, NOTICE, QUIET]
    assert await limiter.check(1, "c") == QUIET


def test_a_rate_must_allow_something() -> None:
    for messages, seconds in ((0, 60), (1, 0), (1, -1), (1, float("inf"))):
        with pytest.raises(ValueError, match="messages >= 1 and seconds > 0"):
            CustomerRate(messages, seconds)


async def test_redis_keys_live_under_the_prefix_and_expire(redis_server: str, redis_prefix: str) -> None:
    redis = Redis.from_url(redis_server)
    try:
        limiter = RedisCustomerLimiter(redis, KeyBuilder(redis_prefix), CustomerRate(1, 30))  # Redis's own clock
        assert [await limiter.check(7, m) for m in ("a", "b", "c")] == [ANSWER, NOTICE, QUIET]
        keys = sorted([k.decode() async for k in redis.scan_iter(match=f"{redis_prefix}:*")])
        assert keys == [f"{redis_prefix}:rate:customer:7", f"{redis_prefix}:rate:customer:7:notice"]
        for key in keys:
            assert 30_000 < await redis.pttl(key) <= 31_000
        assert await redis.zcard(keys[0]) == 1  # only the newest `messages` entries are kept
    finally:
        await redis.aclose()
        await _delete_keys(redis_server, redis_prefix)


async def test_memory_forgets_idle_customers_past_its_bound(clock: FakeClock) -> None:
    limiter = MemoryCustomerLimiter(CustomerRate(1, 10), clock=clock, max_customers=2)
    assert await _checks(limiter, 1, ["a", "b"]) == [ANSWER, NOTICE]
    await limiter.check(2, "a")
    clock.now += 5
    assert await limiter.check(2, "b") == NOTICE
    clock.now += 5
    await limiter.check(3, "a")  # the dict is full: 1 is idle and forgotten, 2 is not
    assert set(limiter._logs) == {2, 3} and set(limiter._notice_until) == {2}
    assert await limiter.check(2, "c") == QUIET
