"""The leader's lease on a real Redis: one holder, renewal by its token only, release, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from common.errors import StoreUnavailable
from storage.leases import LocalLease, RedisLease
from storage.state import KeyBuilder
from tests.conftest import _delete_keys

LeaseFactory = Callable[..., RedisLease]


@pytest.fixture
async def redis(redis_server: str, redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server)
    try:
        yield client
    finally:
        await client.aclose()
        await _delete_keys(redis_server, redis_prefix)


@pytest.fixture
async def leases(redis_server: str, redis_prefix: str) -> AsyncIterator[LeaseFactory]:
    made: list[RedisLease] = []
    key = KeyBuilder(redis_prefix).lease("leader")

    def make(ttl: float = 5.0) -> RedisLease:
        lease = RedisLease.from_url(redis_server, key, ttl)
        made.append(lease)
        return lease

    yield make
    for lease in made:
        await lease.close()


async def test_one_holder_at_a_time(leases: LeaseFactory, redis: Redis) -> None:
    first, second = leases(), leases()
    assert first.token != second.token
    assert await first.acquire()
    assert not await second.acquire()
    assert await first.acquire()  # ours already: granted again (and extended)
    assert await first.holder() == first.token == (await redis.get(first.key)).decode()
    assert 4000 < await redis.pttl(first.key) <= 5000


async def test_renew_extends_only_the_holders_lease(leases: LeaseFactory, redis: Redis) -> None:
    first, second = leases(), leases()
    assert await first.acquire()
    await redis.pexpire(first.key, 50)  # as if most of the TTL had passed
    assert await first.renew()
    assert await redis.pttl(first.key) > 4000
    assert not await second.renew()  # not the holder: neither extended nor taken
    assert await first.holder() == first.token


async def test_the_lease_is_lost_when_another_token_holds_the_key(leases: LeaseFactory, redis: Redis) -> None:
    first, second = leases(), leases()
    assert await first.acquire()
    await redis.delete(first.key)  # expired, say, while the holder was paused
    assert await second.acquire()
    assert not await first.renew()  # compare-and-extend refuses: the key is another's
    await first.release()  # compare-and-delete leaves the new holder's lease alone
    assert await second.holder() == second.token
    assert not await first.acquire()


async def test_release_frees_the_lease_for_a_successor_at_once(leases: LeaseFactory, redis: Redis) -> None:
    first, second = leases(), leases()
    assert await first.acquire()
    await first.release()
    assert await redis.exists(first.key) == 0
    assert await second.acquire()
    assert not await first.renew()


async def test_an_unrenewed_lease_expires_and_another_process_takes_it(leases: LeaseFactory, redis: Redis) -> None:
    first, second = leases(ttl=0.2), leases()
    assert await first.acquire()
    assert not await second.acquire()
    async with asyncio.timeout(10):  # only a bound for a broken run; Redis expires the key
        while await redis.exists(first.key):  # noqa: ASYNC110 - polling Redis, not a task
            await asyncio.sleep(0.05)
    assert await second.acquire()
    assert not await first.renew()


async def test_an_unreachable_redis_is_store_unavailable() -> None:
    lease = RedisLease.from_url("redis://127.0.0.1:1/0", "deskbot-test:lease:leader", 5.0, socket_connect_timeout=1)
    try:
        with pytest.raises(StoreUnavailable):
            await lease.renew()
    finally:
        await lease.close()


async def test_the_local_lease_is_always_this_process() -> None:
    lease = LocalLease(10.0)
    assert await lease.holder() is None
    assert await lease.acquire()
    assert await lease.renew()
    assert await lease.holder() == lease.token
    await lease.release()
    assert not await lease.renew()


def test_a_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LocalLease(0)
