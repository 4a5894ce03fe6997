"""The leader runs the singletons in one process; losing the lease stops them at once.

Two ``Leadership`` objects on one real Redis key stand for two processes. Rounds are driven
by hand (``tick``), so the tests say what happens at each renewal without waiting for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from bot.leader import Leadership, Singleton, TaskSingleton
from common.errors import StoreUnavailable
from storage.leases import Lease, LocalLease, RedisLease
from storage.state import KeyBuilder
from tests.conftest import _delete_keys


class Recorder:
    """A singleton that writes down what the leader did with it."""

    def __init__(self, log: list[str], name: str, *, fail_starts: int = 0) -> None:
        self.log = log
        self.name = name
        self.fail_starts = fail_starts
        self.graces: list[float] = []

    async def start(self) -> None:
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("telegram unreachable")
        self.log.append(f"start {self.name}")

    async def stop(self, grace: float) -> None:
        self.graces.append(grace)
        self.log.append(f"stop {self.name}")

    def singleton(self) -> Singleton:
        return Singleton(self.name, self.start, self.stop)


class CutLease(Lease):
    """A real Redis lease whose connection the test can cut (renewals then fail, unanswered)."""

    def __init__(self, inner: RedisLease) -> None:
        self.inner = inner
        self.ttl = inner.ttl
        self.cut = False

    async def acquire(self) -> bool:
        return await self._call(self.inner.acquire)

    async def renew(self) -> bool:
        return await self._call(self.inner.renew)

    async def release(self) -> None:
        await self.inner.release()

    async def _call(self, call: Callable[[], object]) -> bool:
        if self.cut:
            raise StoreUnavailable("redis", "redis lease: connection refused (cut by the test)")
        result = await call()  # type: ignore[misc]
        return bool(result)


@pytest.fixture
async def key(redis_server: str, redis_prefix: str) -> AsyncIterator[str]:
    yield KeyBuilder(redis_prefix).lease("leader")
    await _delete_keys(redis_server, redis_prefix)


@pytest.fixture
async def redis(redis_server: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server)
    yield client
    await client.aclose()


@pytest.fixture
async def lease_of(redis_server: str, key: str) -> AsyncIterator[Callable[[], RedisLease]]:
    made: list[RedisLease] = []

    def make() -> RedisLease:
        made.append(RedisLease.from_url(redis_server, key, 6.0))
        return made[-1]

    yield make
    for lease in made:
        await lease.close()


async def settle(leadership: Leadership) -> None:
    """Wait for the singletons being started in the background."""
    if leadership._starting is not None:
        await leadership._starting


async def test_one_of_two_processes_leads_and_runs_the_singletons(lease_of: Callable[[], RedisLease]) -> None:
    log: list[str] = []
    changes: list[tuple[str, bool]] = []
    a = Leadership(lease_of(), [Recorder(log, "a").singleton()], on_change=lambda v: changes.append(("a", v)))
    b = Leadership(lease_of(), [Recorder(log, "b").singleton()], on_change=lambda v: changes.append(("b", v)))
    await a.tick()
    await b.tick()
    await settle(a)
    await settle(b)
    assert (a.leader, b.leader) == (True, False)
    assert log == ["start a"]
    await a.tick()  # renewed: nothing changes
    await b.tick()
    await settle(a)
    assert log == ["start a"]
    assert changes == [("a", True)]


async def test_a_graceful_stop_releases_the_lease_and_the_other_takes_over_at_its_next_round(
    lease_of: Callable[[], RedisLease], redis: Redis, key: str
) -> None:
    log: list[str] = []
    a = Leadership(lease_of(), [Recorder(log, "a1").singleton(), Recorder(log, "a2").singleton()], stop_grace=3.0)
    b = Leadership(lease_of(), [Recorder(log, "b").singleton()])
    await a.tick()
    await settle(a)
    await b.tick()
    assert not b.leader
    await a.close()
    assert await redis.exists(key) == 0
    await b.tick()
    await settle(b)
    assert b.leader
    assert log == ["start a1", "start a2", "stop a2", "stop a1", "start b"]  # stopped in reverse order


async def test_a_lease_taken_by_another_token_stops_the_singletons_with_no_grace(
    lease_of: Callable[[], RedisLease], redis: Redis, key: str
) -> None:
    log: list[str] = []
    changes: list[bool] = []
    recorder = Recorder(log, "a")
    a = Leadership(lease_of(), [recorder.singleton()], on_change=changes.append)
    await a.tick()
    await settle(a)
    await redis.set(key, "another-process")  # the key expired while we were paused; someone took it
    await a.tick()
    assert not a.leader
    assert log == ["start a", "stop a"]
    assert recorder.graces == [0.0]
    assert changes == [True, False]
    await a.tick()  # a follower now: the other holder keeps the lease
    assert not a.leader
    assert (await redis.get(key)) == b"another-process"


async def test_an_unanswered_renewal_stops_the_singletons_before_the_lease_can_expire(
    lease_of: Callable[[], RedisLease],
) -> None:
    log: list[str] = []
    recorder = Recorder(log, "a")
    lease = CutLease(lease_of())
    a = Leadership(lease, [recorder.singleton()])
    await a.tick()
    await settle(a)
    lease.cut = True
    await a.tick()
    assert not a.leader
    assert log == ["start a", "stop a"]
    # Stopped within what is left of the last renewal's TTL, minus the margin: never after it.
    assert 0.0 < recorder.graces[0] < lease.ttl
    lease.cut = False
    await a.tick()  # the key is still ours: leading again
    await settle(a)
    assert a.leader
    assert log == ["start a", "stop a", "start a"]
    assert a.terms == 2


async def test_a_singleton_that_fails_to_start_is_retried_at_the_next_renewal() -> None:
    log: list[str] = []
    a = Leadership(
        LocalLease(3.0), [Recorder(log, "polling", fail_starts=1).singleton(), Recorder(log, "retention").singleton()]
    )
    await a.tick()
    await settle(a)
    assert log == ["start retention"]
    await a.tick()
    await settle(a)
    assert log == ["start retention", "start polling"]
    await a.close()
    assert log[2:] == ["stop retention", "stop polling"]


async def test_the_embedded_process_leads_at_once_and_a_task_singleton_runs_until_stopped() -> None:
    ran: list[str] = []

    async def forever() -> None:
        ran.append("running")
        await asyncio.Event().wait()

    task = TaskSingleton("retention", forever)
    async with Leadership(LocalLease(3.0), [task.singleton()]) as elected:
        assert elected.leader  # granted in ``start``, before serving
        await settle(elected)
        await asyncio.sleep(0)
        assert ran == ["running"]
        assert task._task is not None and not task._task.done()
        running = task._task
    assert running.cancelled()
