"""Redis implementation of the per-customer rate limit (``storage/customer_limits.py``).

Every worker process shares a customer's log, so the limit holds whichever worker takes the
customer's next message. One Lua script does the whole check atomically (a crash between
steps can leave nothing half-counted): the log is a sorted set (score: arrival time in µs,
member: the message's id), the notice a key holding the time it runs until. Time is Redis's
own (``TIME``), since the workers' clocks need not agree; ``clock`` replaces it in tests.
Both keys come from the app's ``KeyBuilder`` (its prefix) and expire a window after the last
message, so a quiet customer costs nothing.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager

from redis.asyncio import Redis

from storage.customer_limits import Clock, CustomerLimiter, CustomerRate, Pace
from storage.redis_state import redis_errors
from storage.state import KeyBuilder

# KEYS[1] the customer's log (sorted set), KEYS[2] their notice; ARGV[1] now in µs or "" for
# Redis's clock, ARGV[2] the window in µs, ARGV[3] the messages allowed in it, ARGV[4] the
# message's id. Returns 0 answer, 1 notice, 2 quiet. Numbers are written with %.0f: Lua 5.1
# prints a large number as 1.7e+15, losing digits.
_CHECK = """
local now
if ARGV[1] == '' then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
    now = tonumber(ARGV[1])
end
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
    return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local earlier = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(limit + 1))
local ttl_ms = string.format('%.0f', math.ceil(window / 1000) + 1000)
redis.call('PEXPIRE', KEYS[1], ttl_ms)
if earlier < limit then
    return 0
end
local told_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if told_until > now then
    return 2
end
redis.call('SET', KEYS[2], string.format('%.0f', now + window), 'PX', ttl_ms)
return 1
"""

_PACES = {0: Pace.ANSWER, 1: Pace.NOTICE, 2: Pace.QUIET}


def _translated() -> AbstractContextManager[None]:
    return redis_errors("redis customer limiter")


def _us(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1_000_000))


class RedisCustomerLimiter(CustomerLimiter):
    """``RedisCustomerLimiter(redis, keys, rate)``: the limit every worker applies alike."""

    def __init__(self, redis: Redis, keys: KeyBuilder, rate: CustomerRate, *, clock: Clock | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.rate = rate
        self.clock = clock
        self._script = redis.register_script(_CHECK)

    async def check(self, customer_id: int, message: str) -> Pace:
        now = "" if self.clock is None else str(_us(self.clock()))
        name = f"customer:{customer_id}"
        with _translated():
            verdict = await self._script(
                keys=[self.keys.rate(name), self.keys.rate(f"{name}:notice")],
                args=[now, _us(self.rate.seconds), self.rate.messages, message],
            )
        return _PACES[int(verdict)]
