"""Delivery keys (issue 11, defect 2): the database says what was processed, a claim is a hint.

Runs on SQLite + memory state and on PostgreSQL + Redis state (the ``app`` fixture).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.app import App
from bot.pipeline import DeliveryInFlight
from common.messages import Incoming, Outgoing
from storage.models import Direction

QUESTION = "how much is the hoodie?"


def message(key: str, *, in_answer: bool = True, user: str = "dk-user") -> Incoming:
    return Incoming("rest", user, user, QUESTION, delivery_key=key, replies_in_answer=in_answer)


async def inbound_count(app: App, user: str = "dk-user") -> int:
    async with app.tickets.session() as tx:
        customer = await tx.find_customer("rest", user)
        if customer is None:
            return 0
        rows = await tx.conversation(customer.id, limit=1000)
    return sum(1 for m in rows if m.direction == Direction.INBOUND)


def shown(replies: list[Outgoing]) -> list[tuple[str, int | None]]:
    return [(r.text, r.message_id) for r in replies]


async def test_a_retry_of_a_stored_message_gets_the_same_replies(app: App) -> None:
    first = await app.pipeline.handle(message("k-1"))
    assert first and "49.90" in first[0].text
    again = await app.pipeline.handle(message("k-1"))
    assert shown(again) == shown(first)
    assert await inbound_count(app) == 1
    # The in-flight hint was released after the turn.
    assert await app.state.claim_delivery("rest", "k-1", ttl=5)


async def test_a_hint_left_by_a_dead_process_only_delays_the_retry(app: App) -> None:
    # The process that claimed the key died before its commit: its hint outlives it briefly.
    assert await app.state.claim_delivery("rest", "k-dead", ttl=0.5)
    replies = await app.pipeline.handle(message("k-dead"))
    assert replies and "49.90" in replies[0].text  # processed, not "200 []"
    assert await inbound_count(app) == 1


async def test_concurrent_copies_run_once_and_both_get_the_answer(app: App) -> None:
    first, second = await asyncio.gather(app.pipeline.handle(message("k-2")), app.pipeline.handle(message("k-2")))
    assert first and shown(first) == shown(second)
    assert await inbound_count(app) == 1


async def test_a_copy_still_in_flight_after_the_wait_is_refused_not_answered_empty(app: App) -> None:
    assert await app.state.claim_delivery("rest", "k-busy", ttl=60)
    app.pipeline.settings = replace(app.pipeline.settings, inflight_wait=0.2)
    with pytest.raises(DeliveryInFlight):
        await app.pipeline.handle(message("k-busy"))
    assert await inbound_count(app) == 0


async def test_a_push_channel_redelivery_is_not_answered_again(app: App) -> None:
    # A push channel's replies go out through the outbox, once: a redelivery gets nothing.
    first = await app.pipeline.handle(message("k-3", in_answer=False, user="push-user"))
    assert first
    assert await app.pipeline.handle(message("k-3", in_answer=False, user="push-user")) == []
    assert await inbound_count(app, "push-user") == 1
