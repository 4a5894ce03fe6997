"""The intake's partition streams on a real Redis: append, read, pending, autoclaim, ack, leases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from common.messages import Attachment, Button, Incoming, Outgoing
from storage.intake_stream import (
    GROUP,
    KIND_INCOMING,
    IntakeKeys,
    RedisIntakeStream,
    decode_incoming,
    decode_replies,
    encode_incoming,
    encode_replies,
    partition_of,
)
from storage.leases import RedisLease
from tests.conftest import _delete_keys


@pytest.fixture
async def stream(redis_server: str, redis_prefix: str) -> AsyncIterator[RedisIntakeStream]:
    intake = RedisIntakeStream(Redis.from_url(redis_server), IntakeKeys(redis_prefix), partitions=4)
    yield intake
    await intake.close()
    await _delete_keys(redis_server, redis_prefix)


def test_partition_is_stable_and_spreads_conversations() -> None:
    seen = {partition_of("rest", f"visitor-{i}", 16) for i in range(200)}
    assert seen == set(range(16))  # 200 conversations reach every one of 16 partitions
    # The layout of the data: the same conversation lands on the same stream in every process
    # and release (CRC-32, not Python's per-process salted hash()).
    assert partition_of("rest", "visitor-7", 16) == 8
    assert partition_of("rest", "visitor-7", 1) == 0


def test_incoming_and_replies_survive_the_stream_encoding() -> None:
    msg = Incoming(
        "rest", "c1", "u1", "你好 hoodie", delivery_key="m:1", payload="/affirm", language="zh",
        attachments=(Attachment("photo", file_id="f1", size=10),), replies_in_answer=True,
    )  # fmt: skip
    assert decode_incoming(encode_incoming(msg)) == msg
    replies = [Outgoing("rest", "c1", "hi", (Button("Yes", "/affirm"),), message_id=5), Outgoing("rest", "c1", "x")]
    assert decode_replies(encode_replies(replies)) == replies


async def test_entries_are_read_in_order_and_gone_once_acknowledged(stream: RedisIntakeStream) -> None:
    ids = [await stream.append(1, KIND_INCOMING, f"body-{i}") for i in range(5)]
    got = await stream.read_new(1, "w1", count=10, block_ms=10)
    assert [e.id for e in got] == ids and [e.body for e in got] == [f"body-{i}" for i in range(5)]
    assert await stream.read_new(1, "w2", count=10, block_ms=10) == []  # delivered once to the group
    assert await stream.lag(1) == 0
    for entry in got[:3]:
        await stream.ack(entry)
    key = stream.keys.stream(1)
    assert await stream.redis.xlen(key) == 2  # acknowledged entries are deleted too
    assert (await stream.redis.xpending(key, GROUP))["pending"] == 2


async def test_autoclaim_takes_a_dead_consumers_pending_entries_in_order(stream: RedisIntakeStream) -> None:
    ids = [await stream.append(2, KIND_INCOMING, f"m{i}", answer_to="front-ch", request=f"r{i}") for i in range(4)]
    await stream.read_new(2, "dead", count=10, block_ms=10)  # read, never acknowledged: the worker died
    later = await stream.append(2, KIND_INCOMING, "new")
    assert await stream.youngest_pending_idle(2) is not None
    # Not idle long enough (the owner may still be running it): nothing is taken.
    assert await stream.claim_pending(2, "heir", min_idle_ms=60_000) == []
    claimed = await stream.claim_pending(2, "heir", min_idle_ms=0)
    assert [e.id for e in claimed] == ids  # the pending ones only, oldest first
    assert [(e.answer_to, e.request) for e in claimed] == [("front-ch", f"r{i}") for i in range(4)]
    pending = await stream.redis.xpending_range(stream.keys.stream(2), GROUP, "-", "+", 10)
    assert {p["consumer"] for p in pending} == {b"heir"}
    assert [p["times_delivered"] for p in pending] == [2, 2, 2, 2]
    fresh = await stream.read_new(2, "heir", count=10, block_ms=10)
    assert [e.id for e in fresh] == [later]


async def test_autoclaim_acknowledges_pending_entries_deleted_from_the_stream(stream: RedisIntakeStream) -> None:
    ids = [await stream.append(3, KIND_INCOMING, f"m{i}") for i in range(3)]
    await stream.read_new(3, "dead", count=10, block_ms=10)
    await stream.redis.xdel(stream.keys.stream(3), ids[1])  # trimmed while pending
    claimed = await stream.claim_pending(3, "heir", min_idle_ms=0)
    assert [e.id for e in claimed] == [ids[0], ids[2]]
    assert (await stream.redis.xpending(stream.keys.stream(3), GROUP))["pending"] == 2


async def test_a_partition_has_one_owner_until_released_or_expired(stream: RedisIntakeStream) -> None:
    key = stream.keys.lease(0)
    first = RedisLease(stream.redis, key, 30.0, token="worker-a")
    second = RedisLease(stream.redis, key, 30.0, token="worker-b")
    assert await first.acquire()
    assert not await second.acquire()
    assert not await second.renew()
    await second.release()  # not its lease: compare-and-delete leaves it alone
    assert await first.renew()
    assert await stream.redis.get(key) == b"worker-a"
    await first.release()
    assert await second.acquire()
    # Expiry frees it as well (PX): the dead owner's lease is simply gone.
    await stream.redis.pexpire(key, 1)
    while await stream.redis.exists(key):  # noqa: ASYNC110 - polls Redis
        await asyncio.sleep(0.005)
    assert await first.acquire()


async def test_workers_count_by_heartbeat(stream: RedisIntakeStream) -> None:
    assert await stream.heartbeat("w1", 30) == 1
    assert await stream.heartbeat("w2", 30) == 2
    assert await stream.heartbeat("w1", 30) == 2
    await stream.leave("w2")
    assert await stream.heartbeat("w1", 30) == 1
