"""What the sending limiter costs per send, and that waiting chats do not poll it.

Two figures per implementation (``storage/send_limits.py``), against baselines measured in
the same process:

- **cost of one booking** — ``reserve`` on a chat that may send, µs per call, beside the
  baseline: a plain dict update (memory) or one Redis ``GET`` round trip (Redis), so the ratio
  says what GCRA adds over the cheapest possible check.
- **bookings per send under contention** — 200 chats all want to send at once under a bot rate
  of 2,000/s: each waiter books its slot once and sleeps once, so the ratio of ``reserve``
  calls to sends should be 1.0 (a polling limiter would make it grow with the waiters).

Run: ``.venv/bin/python bench/send_limits.py [--redis redis://127.0.0.1:6379/0] [--calls N]``
(without a reachable Redis only the memory figures are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from storage.send_limits import MemorySendLimiter, Rate, RedisSendLimiter, SendLimiter, Turn  # noqa: E402
from storage.state import KeyBuilder  # noqa: E402

FAST = Rate(1_000_000, 1.0)  # never makes anyone wait: the cost of the check alone


class Counting(SendLimiter):
    """Counts the bookings a limiter is asked for."""

    def __init__(self, inner: SendLimiter) -> None:
        self.inner = inner
        self.bot = inner.bot
        self.calls = 0

    async def reserve(self, chat: str, rate: Rate) -> Turn:
        self.calls += 1
        return await self.inner.reserve(chat, rate)


async def per_call(limiter: SendLimiter, calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        await limiter.reserve(str(i % 1000), FAST)
    return (time.perf_counter() - start) / calls * 1e6


async def dict_baseline(calls: int) -> float:
    tats: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(calls):
        tats[str(i % 1000)] = time.monotonic() + 1.0
    return (time.perf_counter() - start) / calls * 1e6


async def redis_baseline(redis: Redis, key: str, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await redis.get(key)
    return (time.perf_counter() - start) / calls * 1e6


async def contention(limiter: SendLimiter, chats: int) -> tuple[float, float]:
    """``chats`` waiters at once, one send each; returns (bookings per send, seconds)."""
    counting = Counting(limiter)
    start = time.perf_counter()
    await asyncio.gather(*(counting.acquire(f"c{i}", Rate(1, 1.0)) for i in range(chats)))
    return counting.calls / chats, time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    bot = Rate(2000, 1.0)

    memory_us, dict_us = await per_call(MemorySendLimiter(FAST), args.calls), await dict_baseline(args.calls)
    ratio, seconds = await contention(MemorySendLimiter(bot), 200)
    print(
        f"memory: {memory_us:.2f} µs/booking vs dict update {dict_us:.2f} µs (x{memory_us / dict_us:.1f}); "
        f"200 waiters at 2000/s: {ratio:.2f} bookings/send, {seconds:.3f} s (ideal 0.100 s)"
    )

    redis = Redis.from_url(args.redis)
    prefix = f"bench-send-limits:{uuid.uuid4().hex[:8]}"
    try:
        await redis.ping()
    except Exception as exc:  # noqa: BLE001 - the memory figures stand alone
        print(f"redis: not reachable ({exc.__class__.__name__}); skipped")
        return
    try:
        keys = KeyBuilder(prefix)
        redis_us = await per_call(RedisSendLimiter(redis, keys, FAST), args.calls)
        get_us = await redis_baseline(redis, f"{prefix}:absent", args.calls)
        ratio, seconds = await contention(RedisSendLimiter(redis, keys, bot), 200)
        print(
            f"redis:  {redis_us:.1f} µs/booking vs GET round trip {get_us:.1f} µs (x{redis_us / get_us:.2f}); "
            f"200 waiters at 2000/s: {ratio:.2f} bookings/send, {seconds:.3f} s (ideal 0.100 s)"
        )
    finally:
        found = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        if found:
            await redis.delete(*found)
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
