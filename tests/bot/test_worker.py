"""The intake worker in-process, on a real Redis stream and a real App (both backend pairs).

A former owner of a partition died holding its lease, with three of a conversation's messages
read and unacknowledged; two more arrived after. The worker must take the partition once the
lease expires, run the three pending ones first (claimed once idle for the lease's TTL), then
the new ones: the conversation's five messages stored once each, in order, every one
answered to the front that waits for it, and the stream left empty.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis.asyncio import Redis

from bot.app import App
from bot.config import IntakeConfig
from bot.worker import IntakeWorker
from common.messages import Incoming
from storage.intake_stream import (
    GROUP,
    KIND_INCOMING,
    IntakeKeys,
    RedisIntakeStream,
    decode_replies,
    encode_incoming,
    partition_of,
)
from storage.models import Direction
from tests.conftest import _delete_keys

PATIENCE = 60.0  # seconds: only stops a hung run, never a speed requirement
TTL = 0.5


async def _drained(stream: RedisIntakeStream, partitions: int) -> bool:
    for p in range(partitions):
        key = stream.keys.stream(p)
        if await stream.redis.exists(key) and (
            await stream.redis.xlen(key) or (await stream.redis.xpending(key, GROUP))["pending"]
        ):
            return False
    return True


async def test_a_dead_owners_pending_deliveries_run_first_and_once(
    app: App, redis_server: str, redis_prefix: str
) -> None:
    prefix = f"{redis_prefix}:w"
    partitions = 2
    stream = RedisIntakeStream(Redis.from_url(redis_server), IntakeKeys(prefix), partitions)
    answers = stream.redis.pubsub()
    await answers.subscribe("front-test")
    sender = "queued-visitor"
    partition = partition_of("rest", sender, partitions)
    messages = [
        Incoming("rest", sender, sender, text, delivery_key=f"m:{i}", replies_in_answer=True)
        for i, text in enumerate(["hello", "how much is the hoodie?", "do you ship to Germany?", "thanks", "bye"])
    ]
    try:
        for i, msg in enumerate(messages[:3]):
            await stream.append(partition, KIND_INCOMING, encode_incoming(msg), answer_to="front-test", request=f"r{i}")
        # The dead owner: its lease still runs for a moment, its three entries are pending.
        await stream.redis.set(stream.keys.lease(partition), "dead-worker", px=int(TTL * 1000))
        await stream.read_new(partition, "dead-worker", count=10, block_ms=10)
        for i, msg in enumerate(messages[3:], start=3):
            await stream.append(partition, KIND_INCOMING, encode_incoming(msg), answer_to="front-test", request=f"r{i}")

        config = IntakeConfig(queue="redis", redis_url=redis_server, partitions=partitions, lease_ttl_seconds=TTL)
        worker = IntakeWorker(app, stream, config, name="heir")
        await worker.start()
        got: dict[str, dict[str, Any]] = {}
        try:
            async with asyncio.timeout(PATIENCE):
                while len(got) < len(messages) or not await _drained(stream, partitions):
                    message = await answers.get_message(ignore_subscribe_messages=True, timeout=0.2)
                    if message is not None:
                        answer = json.loads(message["data"])
                        got[answer["request"]] = answer
        finally:
            await worker.stop()
        assert worker.processed == len(messages)
        assert await stream.redis.get(stream.keys.lease(partition)) is None  # released on stop
    finally:
        await answers.aclose()
        await stream.close()
        await _delete_keys(redis_server, prefix)

    async with app.tickets.session() as tx:
        customer = await tx.find_customer("rest", sender)
        assert customer is not None
        rows = list(await tx.conversation(customer.id, limit=100))
    inbound = [r for r in rows if r.direction == Direction.INBOUND]
    assert [r.text for r in inbound] == [m.text for m in messages]  # once each, in the order sent
    assert [r.delivery_key for r in inbound] == [m.delivery_key for m in messages]
    assert sorted(r.id for r in inbound) == [r.id for r in inbound]
    for i, row in enumerate(inbound):
        answer = got[f"r{i}"]
        assert answer["status"] == "ok"
        stored = sorted((r for r in rows if r.reply_to_id == row.id), key=lambda r: r.id)
        assert stored  # every message answered
        assert [(o.text, o.message_id) for o in decode_replies(answer["replies"])] == [(r.text, r.id) for r in stored]
