"""Topic creation in the agents' group: rate limited, queued, retried — never dropped."""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.app import App, agents_desk
from bot.channels.telegram.agents.group import AgentsGroup, AgentsGroupSettings
from bot.channels.telegram.agents.topics import SlidingWindowLimiter, TopicCreator, call_with_retry
from bot.channels.telegram.api import BadRequest, NetworkError, RetryAfter, ServerError
from bot.cli.agents_telegram import link_telegram
from tests.channels.telegram.agents_support import AGENTS_CHAT, VirtualTime, desk_app, eventually
from tests.factories import Chat
from tests.fakes.recording_api import RecordingTelegramApi

__all__ = ["desk_app"]


async def test_the_limiter_allows_limit_per_period_and_makes_the_rest_wait() -> None:
    clock = VirtualTime()
    limiter = SlidingWindowLimiter(2, 60.0, clock=clock.monotonic, sleep=clock.sleep)
    times = []
    for _ in range(5):
        await limiter.acquire()
        times.append(clock.now)
    assert times == [0.0, 0.0, 60.0, 60.0, 120.0]


async def test_transient_errors_are_retried_and_permanent_ones_are_not() -> None:
    clock = VirtualTime()
    api = RecordingTelegramApi(forums={AGENTS_CHAT})
    api.fail("createForumTopic", RetryAfter(7))
    api.fail("createForumTopic", ServerError("Internal Server Error"))
    api.fail("createForumTopic", NetworkError("timeout"))
    thread = await call_with_retry(lambda: api.create_forum_topic(AGENTS_CHAT, "T-1001"), sleep=clock.sleep)
    assert api.topics[thread] == "T-1001"
    assert clock.slept == [7.0, 1.0, 2.0]  # retry_after, then backoff
    api.fail("sendMessage", BadRequest("Bad Request: chat not found"))
    with pytest.raises(BadRequest):
        await call_with_retry(lambda: api.send_message(AGENTS_CHAT, "x"), sleep=clock.sleep)
    assert api.count("sendMessage") == 1
    api.fail("sendMessage", ServerError("Bad Gateway"), times=3)
    with pytest.raises(ServerError):
        await call_with_retry(lambda: api.send_message(AGENTS_CHAT, "x"), sleep=clock.sleep, attempts=3)


async def test_requests_are_created_in_order_and_closing_cancels_the_waiting_ones() -> None:
    clock = VirtualTime()
    api = RecordingTelegramApi(forums={AGENTS_CHAT}, clock=clock.monotonic)
    creator = TopicCreator(api, AGENTS_CHAT, per_minute=2, clock=clock.monotonic, sleep=clock.sleep)
    first = await asyncio.gather(*(creator.create(f"T-{1001 + i}") for i in range(5)))
    assert [api.topics[t] for t in first] == [f"T-{1001 + i}" for i in range(5)]
    assert api.topic_times == [0.0, 0.0, 60.0, 60.0, 120.0]

    blocked = RecordingTelegramApi(forums={AGENTS_CHAT})
    blocked.fail("createForumTopic", lambda: RetryAfter(10**6), times=10**6)
    stuck = TopicCreator(blocked, AGENTS_CHAT, clock=clock.monotonic, sleep=asyncio.sleep)
    waiting = asyncio.ensure_future(stuck.create("T-2001"))
    await eventually(lambda: blocked.count("createForumTopic") >= 1, "first attempt")
    assert stuck.waiting == 1
    await stuck.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await creator.close()


async def test_a_burst_of_30_escalations_under_429_gets_30_topics_once_each(desk_app: App) -> None:
    clock = VirtualTime()
    # Telegram allows 20 a minute; the group is configured a little too generously (25),
    # so Telegram's 429s are hit and must be waited out, not dropped.
    api = RecordingTelegramApi(forums={AGENTS_CHAT}, topic_limit=(20, 60.0), clock=clock.monotonic)
    await link_telegram(desk_app.tickets, "sam@shop.example", "501", name="Sam")
    group = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT, topics_per_minute=25),
                        sleep=clock.sleep, monotonic=clock.monotonic)
    await group.start()
    try:
        numbers = []
        for i in range(30):
            chat = Chat(desk_app, f"burst-{i}")
            await chat.say("I want to talk to a human please")
            numbers.append(re.search(r"T-\d+", chat.text).group(0))  # type: ignore[union-attr]
        await eventually(lambda: len(api.topics) == 30 and not group.busy, "30 topics")
        titles = list(api.topics.values())
        assert sorted(n for t in titles for n in re.findall(r"T-\d+", t)) == sorted(numbers)  # each once
        rejected = api.count("createForumTopic") - 30
        assert rejected >= 1  # Telegram said 429 at least once ...
        assert any(s >= 1 for s in clock.slept)  # ... and its retry_after was waited out
        for start in api.topic_times:  # never more than Telegram's 20 in any minute
            assert sum(1 for t in api.topic_times if start <= t < start + 60) <= 20
        # every ticket has its card in its own topic
        threads = {p.thread_id for p in api.posted if p.thread_id is not None}
        assert len(threads) == 30
    finally:
        await group.close()


async def test_the_configured_limit_alone_keeps_under_telegrams(desk_app: App) -> None:
    clock = VirtualTime()
    api = RecordingTelegramApi(forums={AGENTS_CHAT}, topic_limit=(20, 60.0), clock=clock.monotonic)
    group = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT, topics_per_minute=20),
                        sleep=clock.sleep, monotonic=clock.monotonic)
    await group.start()
    try:
        for i in range(23):
            await Chat(desk_app, f"calm-{i}").say("I want to talk to a human please")
        await eventually(lambda: len(api.topics) == 23 and not group.busy, "23 topics")
        assert api.count("createForumTopic") == 23  # no 429 needed
    finally:
        await group.close()
