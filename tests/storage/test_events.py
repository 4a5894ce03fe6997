"""The EventBus contract, run over every implementation (in-process, Redis pub/sub)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage.events import BusEvent, EventBus, InProcessEventBus
from storage.redis_events import RedisEventBus
from storage.state import KeyBuilder

REPO = Path(__file__).resolve().parents[2]
WAIT = 2.0  # seconds to wait for an event that should arrive
QUIET = 0.15  # seconds to watch for an event that should not


def event(n: int = 1, **changes: object) -> BusEvent:
    fields: dict[str, object] = {
        "kind": "created",
        "ticket_id": n,
        "ticket_number": f"T-{1000 + n}",
        "actor": "bot",
        "data": {"n": n},
        "at": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    }
    fields.update(changes)
    return BusEvent(**fields)  # type: ignore[arg-type]


async def receive(events: AsyncIterator[BusEvent], count: int = 1) -> list[BusEvent]:
    return [await asyncio.wait_for(anext(events), WAIT) for _ in range(count)]


async def assert_nothing(events: AsyncIterator[BusEvent]) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(events), QUIET)


class TestEventBusContract:
    async def test_subscriber_receives_event_intact(self, event_bus: EventBus) -> None:
        sent = event(
            7,
            kind="message",
            actor="agent:ann@example.com",
            data={"text": "您好 👋", "nested": {"a": [1, 2.5, None, True]}},
            at=datetime(2024, 5, 1, 20, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
        )
        async with event_bus.subscribe() as events:
            await event_bus.publish(sent)
            [got] = await receive(events)
        assert got == sent
        assert got.at is not None and got.at.utcoffset() is not None

    async def test_event_without_ticket_or_time(self, event_bus: EventBus) -> None:
        sent = BusEvent(kind="agent_online", ticket_id=None, ticket_number=None, actor="agent:1")
        async with event_bus.subscribe() as events:
            await event_bus.publish(sent)
            assert await receive(events) == [sent]

    async def test_order_is_kept(self, event_bus: EventBus) -> None:
        async with event_bus.subscribe() as events:
            for n in range(50):
                await event_bus.publish(event(n))
            got = await receive(events, 50)
        assert [e.ticket_id for e in got] == list(range(50))

    async def test_every_subscriber_gets_every_event(self, event_bus: EventBus) -> None:
        async with event_bus.subscribe() as first, event_bus.subscribe() as second:
            await event_bus.publish(event(1))
            await event_bus.publish(event(2))
            assert [e.ticket_id for e in await receive(first, 2)] == [1, 2]
            assert [e.ticket_id for e in await receive(second, 2)] == [1, 2]

    async def test_only_events_after_subscribing_arrive(self, event_bus: EventBus) -> None:
        await event_bus.publish(event(1))  # nobody listens: not an error, and gone
        async with event_bus.subscribe() as events:
            await event_bus.publish(event(2))
            assert [e.ticket_id for e in await receive(events)] == [2]
            await assert_nothing(events)

    async def test_a_timed_out_wait_keeps_the_subscription(self, event_bus: EventBus) -> None:
        # Dashboards wait with a timeout to send heartbeats; the feed must survive that.
        async with event_bus.subscribe() as events:
            await assert_nothing(events)
            await event_bus.publish(event(3))
            assert [e.ticket_id for e in await receive(events)] == [3]

    async def test_left_subscription_gets_nothing_and_publish_still_works(self, event_bus: EventBus) -> None:
        async with event_bus.subscribe() as events:
            pass
        await event_bus.publish(event(1))
        async with event_bus.subscribe() as again:
            await event_bus.publish(event(2))
            assert [e.ticket_id for e in await receive(again)] == [2]
        del events


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_stalled_subscriber_loses_oldest_events(
    kind: str, request: pytest.FixtureRequest, redis_prefix: str
) -> None:
    if kind == "memory":
        bus: EventBus = InProcessEventBus(queue_size=3)
    else:
        bus = RedisEventBus.from_url(
            request.getfixturevalue("redis_server"), key_builder=KeyBuilder(redis_prefix), queue_size=3
        )
    try:
        async with bus.subscribe() as events:
            for n in range(10):
                await bus.publish(event(n))
            await asyncio.sleep(0.2)  # let the Redis reader drain the socket
            assert [e.ticket_id for e in await receive(events, 3)] == [7, 8, 9]
    finally:
        await bus.close()


# -- Redis across clients and processes ------------------------------------------------------
@pytest.mark.parametrize("event_bus", ["redis"], indirect=True)
async def test_redis_events_from_another_process_arrive(event_bus: RedisEventBus, redis_server: str) -> None:
    publisher = (
        "import asyncio, sys\n"
        "from datetime import datetime, timezone\n"
        "from storage.events import BusEvent\n"
        "from storage.redis_events import RedisEventBus\n"
        "from storage.state import KeyBuilder\n"
        "async def main() -> None:\n"
        "    bus = RedisEventBus.from_url(sys.argv[1], key_builder=KeyBuilder(sys.argv[2]))\n"
        "    await bus.publish(BusEvent('resolved', 42, 'T-1042', 'agent:1', {'via': 'worker'},\n"
        "                               datetime(2024, 5, 1, tzinfo=timezone.utc)))\n"
        "    await bus.close()\n"
        "asyncio.run(main())\n"
    )
    async with event_bus.subscribe() as events:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", publisher, redis_server, event_bus.keys.prefix, cwd=REPO
        )
        assert await asyncio.wait_for(process.wait(), 30) == 0
        [got] = await receive(events)
    assert got == BusEvent(
        "resolved", 42, "T-1042", "agent:1", {"via": "worker"}, datetime(2024, 5, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize("event_bus", ["redis"], indirect=True)
async def test_redis_buses_share_a_prefix_and_nothing_else(event_bus: RedisEventBus, redis_server: str) -> None:
    same = RedisEventBus.from_url(redis_server, key_builder=KeyBuilder(event_bus.keys.prefix))
    other = RedisEventBus.from_url(redis_server, key_builder=KeyBuilder(f"{event_bus.keys.prefix}:other"))
    try:
        assert event_bus.channel == f"{event_bus.keys.prefix}:events"
        async with event_bus.subscribe() as events:
            await other.publish(event(1))
            await same.publish(event(2))
            assert [e.ticket_id for e in await receive(events)] == [2]
            await assert_nothing(events)
    finally:
        await same.close()
        await other.close()


@pytest.mark.parametrize("event_bus", ["redis"], indirect=True)
async def test_redis_malformed_message_is_skipped(event_bus: RedisEventBus) -> None:
    async with event_bus.subscribe() as events:
        await event_bus.redis.publish(event_bus.channel, "not json")
        await event_bus.redis.publish(event_bus.channel, '{"no": "kind"}')
        await event_bus.publish(event(5))
        assert [e.ticket_id for e in await receive(events)] == [5]
