"""Telegram's sending limits, end to end: the real aiogram and python-telegram-bot clients
against the fake Bot API server, every reply through the outbox reader.

What is checked is behaviour on the server's side of the wire, by the arrival times the fake
records: a burst to one private chat arrives spaced by the chat's interval; a group never gets
more than its ``messages`` in any rolling ``seconds``; the bot's overall rate spans chats; a
long message's parts are spaced too; and one chat's 429 holds that chat only — the other 99
chats' messages arrive while it waits, the held one arrives once after ``retry_after`` — with
exact counts (nothing lost, nothing sent twice). The limits are configured small
(``channels.telegram.limits``) so the test takes seconds; a tolerance of a fifth of the
interval absorbs the request's own travel time on a busy machine. The PostgreSQL variants run
on Redis state, i.e. through the shared Redis limiter.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.app import App, build_app
from bot.channels.telegram.api import CHANNEL
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.limits import ChatLimits
from bot.config import load_settings
from common.messages import Outgoing
from intents.classifier import BuiltinClassifier
from storage.models import Author, DeliveryStatus, Direction, Priority, TicketKind
from storage.send_limits import MemorySendLimiter, Rate, RedisSendLimiter, Turn
from storage.state import KeyBuilder
from tests.conftest import _delete_keys, empty_tables, storage_environ
from tests.fakes.telegram_server import TOKEN, Call, FakeTelegram

ROOT = Path(__file__).resolve().parents[3]
VARIANTS = [
    ("aiogram", "sqlite"),
    ("python-telegram-bot", "sqlite"),
    ("aiogram", "postgres"),  # PostgreSQL + Redis state: the shared Redis limiter
]
PRIVATE_INTERVAL = 0.5  # private_chat: 1 message / 0.5 s
GROUP_MESSAGES, GROUP_SECONDS = 3, 0.9  # group_chat: 3 messages / 0.9 s (one every 0.3 s)
TOLERANCE = 0.2  # of an interval: the request's own travel time
AGENTS_CHAT = -100777


@dataclass
class Limited:
    app: App
    channel: TelegramChannel
    fake: FakeTelegram
    backend: str
    env: dict[str, str]
    arrivals: list[tuple[Call, float]] = field(default_factory=list)

    def sends(self, chat: str, *, ok_only: bool = True) -> list[tuple[Call, float]]:
        """sendMessage calls to ``chat`` as they arrived (and were accepted, unless ``ok_only=False``)."""
        return [
            (c, t)
            for c, t in self.arrivals
            if c.method == "sendMessage" and str(c.params.get("chat_id")) == chat and (c.status == 200 or not ok_only)
        ]

    async def queue(self, chat: str, *texts: str) -> list[int]:
        """Replies written to the outbox for ``chat`` (as an agent's would be), not yet sent."""
        return (await self.queue_many({chat: texts}))[chat]

    async def queue_many(self, texts: dict[str, tuple[str, ...]]) -> dict[str, list[int]]:
        """``queue`` for several chats, in one transaction."""
        ids: dict[str, list[int]] = {}
        async with self.app.tickets.session() as tx:
            for chat, chat_texts in texts.items():
                customer, _ = await tx.resolve_customer(CHANNEL, chat, chat)
                ticket = await tx.open_ticket(
                    customer,
                    kind=TicketKind.HANDOFF,
                    subject="help",
                    channel=CHANNEL,
                    actor="test",
                    priority=Priority.NORMAL,
                )
                ids[chat] = await tx.insert_messages(
                    [
                        {
                            "customer_id": customer.id,
                            "ticket_id": ticket.id,
                            "channel": CHANNEL,
                            "chat_id": chat,
                            "direction": Direction.OUTBOUND,
                            "author": Author.AGENT,
                            "text": text,
                            "status": DeliveryStatus.QUEUED,
                            "payload": {},
                        }
                        for text in chat_texts
                    ]
                )
        return ids

    async def statuses(self, ids: list[int]) -> list[DeliveryStatus]:
        async with self.app.tickets.session() as tx:
            rows = [await tx.get_message(i) for i in ids]
        return [r.status for r in rows if r is not None]


@pytest.fixture
def limits_env() -> dict[str, str]:
    return {}


@pytest.fixture(params=VARIANTS, ids=["-".join(v) for v in VARIANTS])
async def limited(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    trained_classifier: BuiltinClassifier,
    redis_prefix: str,
    limits_env: dict[str, str],
) -> AsyncIterator[Limited]:
    library, backend = request.param
    async with FakeTelegram() as fake:
        env = {
            "DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "unused.npz"),
            "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true",
            "DESKBOT_CHANNELS__TELEGRAM__LIBRARY": library,
            "DESKBOT_CHANNELS__TELEGRAM__API_BASE": fake.base,
            "DESKBOT_CHANNELS__TELEGRAM__REQUEST_TIMEOUT_SECONDS": "5",
            "DESKBOT_CHANNELS__TELEGRAM__LIMITS__PRIVATE_CHAT__SECONDS": str(PRIVATE_INTERVAL),
            "DESKBOT_CHANNELS__TELEGRAM__LIMITS__GROUP_CHAT__MESSAGES": str(GROUP_MESSAGES),
            "DESKBOT_CHANNELS__TELEGRAM__LIMITS__GROUP_CHAT__SECONDS": str(GROUP_SECONDS),
            "DESKBOT_CHANNELS__TELEGRAM__LIMITS__BOT__MESSAGES": "200",
            "DESKBOT_SECRETS__TELEGRAM_TOKEN": TOKEN,
        }
        sqlite = backend == "sqlite"
        env |= storage_environ(request, tmp_path, redis_prefix, server=not sqlite)
        env |= limits_env
        settings = load_settings(ROOT / "config.yaml", environ=env)
        async with build_app(settings, classifier=trained_classifier, create_schema=sqlite) as app:
            if not sqlite:
                await empty_tables(app.tickets.engine)  # type: ignore[attr-defined]
            channel = app.telegram
            assert channel is not None and channel.limits is not None
            shared = RedisSendLimiter if not sqlite else MemorySendLimiter
            assert isinstance(channel.limits.limiter, shared)  # Redis state → the shared budget
            bot = Limited(app, channel, fake, backend, env)
            fake.observers.append(lambda call: bot.arrivals.append((call, time.monotonic())))
            fake.make_forum(AGENTS_CHAT)  # used when a test sets channels.telegram.agents_chat_id
            await channel.start(polling=False)
            try:
                yield bot
            finally:
                await channel.stop()
        if not sqlite:
            await _delete_keys(settings.state.redis_url, redis_prefix)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def most_in_window(times: list[float], seconds: float) -> int:
    """The most arrivals in any half-open window ``[t, t + seconds)``."""
    return max(sum(1 for u in times if t <= u < t + seconds) for t in times)


async def test_a_burst_to_one_chat_is_spaced_by_its_interval(limited: Limited) -> None:
    texts = [f"reply {i}" for i in range(4)]
    ids = await limited.queue("501", *texts)
    await limited.channel.relay_queued()
    sent = limited.sends("501")
    assert [c.params["text"] for c, _ in sent] == texts  # each once, in order
    assert min(gaps([t for _, t in sent])) >= PRIVATE_INTERVAL * (1 - TOLERANCE)
    assert await limited.statuses(ids) == [DeliveryStatus.SENT] * 4


async def test_a_long_messages_parts_are_spaced_too(limited: Limited) -> None:
    text = " ".join(f"word{i}" for i in range(1800))  # about 14,000 characters: several parts
    parts = [chunk.text for chunk in limited.channel.chunks(text)]
    assert len(parts) >= 3
    # When each part was cleared to go, seen from the sender: the fake server runs on the test's
    # event loop, so on a busy machine it may stamp one arrival late and two look close together.
    limits = limited.channel.limits
    assert limits is not None
    cleared: list[float] = []
    reserve, pace = limits.reserve, limits.pace

    async def reserve_and_note(chat_id: int | str) -> Turn:
        turn = await reserve(chat_id)
        if turn.granted and str(chat_id) == "502":
            cleared.append(time.monotonic() + turn.wait)  # the reader sleeps turn.wait, then sends
        return turn

    async def pace_and_note(chat_id: int | str) -> float:
        waited = await pace(chat_id)
        if str(chat_id) == "502":
            cleared.append(time.monotonic())
        return waited

    limits.reserve, limits.pace = reserve_and_note, pace_and_note  # type: ignore[method-assign]
    await limited.queue("502", text)
    await limited.channel.relay_queued()
    sent = limited.sends("502")
    assert [c.params["text"] for c, _ in sent] == parts
    assert len(cleared) == len(parts)  # every part waited for its turn
    assert min(gaps(cleared)) >= PRIVATE_INTERVAL * (1 - TOLERANCE)


async def test_a_group_never_gets_more_than_its_limit_in_a_rolling_window(limited: Limited) -> None:
    texts = [f"group line {i}" for i in range(7)]
    await limited.queue("-100900", *texts)
    await limited.queue("503", "a private reply meanwhile")
    await limited.channel.relay_queued()
    sent = limited.sends("-100900")
    assert [c.params["text"] for c, _ in sent] == texts
    window = GROUP_SECONDS - TOLERANCE * GROUP_SECONDS / GROUP_MESSAGES
    assert most_in_window([t for _, t in sent], window) == GROUP_MESSAGES
    assert min(gaps([t for _, t in sent])) >= GROUP_SECONDS / GROUP_MESSAGES * (1 - TOLERANCE)
    # The private chat is not held behind the group's slow lane.
    assert len(limited.sends("503")) == 1 and limited.sends("503")[0][1] < sent[2][1]


@pytest.mark.parametrize("limits_env", [{"DESKBOT_CHANNELS__TELEGRAM__LIMITS__BOT__MESSAGES": "10"}])
async def test_the_bots_rate_spans_chats(limited: Limited) -> None:
    chats = [str(3000 + i) for i in range(12)]
    await limited.queue_many({chat: (f"hello {chat}",) for chat in chats})
    await limited.channel.relay_queued()
    times = sorted(t for chat in chats for _, t in limited.sends(chat))
    assert len(times) == 12
    # Granted 0.1 s apart; each send then claims its row first, so arrivals jitter by a few
    # tens of ms: a window one interval short of the second never holds more than 10.
    assert most_in_window(times, 1.0 - 0.1) <= 10
    assert times[-1] - times[0] >= 11 * 0.1 * (1 - TOLERANCE)


async def test_one_chats_429_holds_only_that_chat_and_its_message_arrives_once_after_retry_after(
    limited: Limited,
) -> None:
    retry_after = 2
    held = "4000"
    chats = [str(4000 + i) for i in range(100)]
    limited.fake.fault("sendMessage", 429, retry_after=retry_after, chat_id=held)
    queued = await limited.queue_many({chat: (f"for {chat}",) for chat in chats})
    ids = [queued[chat][0] for chat in chats]
    await limited.channel.relay_queued()  # every chat attempted once: 99 sent, one held
    await limited.fake.wait_until(lambda: len(limited.sends(held)) == 1, within=retry_after + 10)

    attempts = limited.sends(held, ok_only=False)
    assert [c.status for c, _ in attempts] == [429, 200]  # refused once, then sent once
    refused_at, sent_at = attempts[0][1], attempts[1][1]
    assert sent_at - refused_at >= retry_after - 0.05
    others = [chat for chat in chats if chat != held]
    for chat in others:  # exactly once each, none refused
        assert [(c.status, c.params["text"]) for c, _ in limited.sends(chat, ok_only=False)] == [(200, f"for {chat}")]
    # The other chats did not wait for the held one: all of them arrived before its retry.
    assert max(t for chat in others for _, t in limited.sends(chat)) < sent_at
    assert sum(1 for chat in others for _, t in limited.sends(chat) if refused_at < t < sent_at) > 0
    await limited.channel.relay_queued()  # waits for the held chat's drain (its settle) to end
    assert await limited.statuses(ids) == [DeliveryStatus.SENT] * 100
    assert len([c for c, _ in limited.arrivals if c.method == "sendMessage"]) == 101


@pytest.mark.parametrize("limits_env", [{"DESKBOT_CHANNELS__TELEGRAM__AGENTS_CHAT_ID": str(AGENTS_CHAT)}])
async def test_the_agents_group_posts_within_the_group_limit(limited: Limited) -> None:
    """Each handed-off ticket gets a card in the agents' group: posted through the same limits."""
    chats = [str(5000 + i) for i in range(5)]
    await limited.queue_many({chat: (f"we are on it, {chat}",) for chat in chats})  # five handoff tickets
    cards = lambda: limited.sends(str(AGENTS_CHAT))  # noqa: E731
    await limited.fake.wait_until(lambda: len(cards()) == 5)
    times = [t for _, t in cards()]
    window = GROUP_SECONDS - TOLERANCE * GROUP_SECONDS / GROUP_MESSAGES
    assert most_in_window(times, window) <= GROUP_MESSAGES
    assert min(gaps(times)) >= GROUP_SECONDS / GROUP_MESSAGES * (1 - TOLERANCE)
    numbers = sorted(m.group(0) for c, _ in cards() if (m := re.search(r"T-\d+", c.params["text"])))
    assert numbers == [f"T-{1001 + i}" for i in range(5)]  # one card each


@pytest.mark.parametrize("limits_env", [{"DESKBOT_CHANNELS__TELEGRAM__LIMITS__PRIVATE_CHAT__SECONDS": "1.5"}])
async def test_a_turn_is_not_held_up_by_its_chats_turn(limited: Limited) -> None:
    """``deliver`` (what a polling batch, a worker or a webhook call awaits after a turn) returns
    once the chat must wait for its turn: the intake is never paced, only the sends are."""
    await limited.queue("601", "first")
    await limited.channel.relay_queued()
    second = await limited.queue("601", "second")  # 601 must now wait 1.5 s for its turn
    other = await limited.queue("602", "another customer")
    await limited.channel.outbox.deliver(
        [
            Outgoing(CHANNEL, "601", "second", message_id=second[0]),
            Outgoing(CHANNEL, "602", "another customer", message_id=other[0]),
        ]
    )
    assert [c.params["text"] for c, _ in limited.sends("602")] == ["another customer"]
    assert [c.params["text"] for c, _ in limited.sends("601")] == ["first"]  # not yet: its turn is to come
    await limited.channel.outbox.idle()
    sent = limited.sends("601")
    assert [c.params["text"] for c, _ in sent] == ["first", "second"]
    assert sent[1][1] - sent[0][1] >= 1.5 * (1 - TOLERANCE)


def test_a_chats_kind_is_read_from_its_id() -> None:
    limits = ChatLimits(MemorySendLimiter(Rate(30, 1.0)), private=Rate(1, 1.0), group=Rate(20, 60.0))
    assert limits.rate_for(501) == limits.rate_for("501") == Rate(1, 1.0)
    assert limits.rate_for(-100777) == limits.rate_for("-4242") == Rate(20, 60.0)


async def test_without_redis_the_process_limits_itself(caplog: pytest.LogCaptureFixture) -> None:
    """The shared limiter unreachable: replies still go, under this process's own limits."""
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        limits = ChatLimits(
            RedisSendLimiter(unreachable, KeyBuilder("deskbot-test-nowhere"), Rate(30, 1.0)),
            private=Rate(1, 60.0),
            group=Rate(20, 60.0),
        )
        assert (await limits.reserve("701")).granted
        turn = await limits.reserve("701")  # the local limiter remembers: 60 s until 701's next turn
        assert not turn.granted and turn.wait > 59
        assert "shared send limits unavailable" in caplog.text
    finally:
        await unreachable.aclose()


@pytest.mark.parametrize(
    "limited",
    [("aiogram", "postgres"), ("python-telegram-bot", "postgres")],
    indirect=True,
    ids=["aiogram-postgres", "python-telegram-bot-postgres"],
)
@pytest.mark.parametrize("limits_env", [{"DESKBOT_CHANNELS__TELEGRAM__LIMITS__BOT__MESSAGES": "10"}])
async def test_two_processes_share_the_bots_budget(limited: Limited, trained_classifier: BuiltinClassifier) -> None:
    """A second deskbot on the same PostgreSQL + Redis (its calls tagged ``second``): both
    send, and together they keep the bot's 10 a second (each alone would allow 10)."""
    env = limited.env | {"DESKBOT_CHANNELS__TELEGRAM__API_BASE": limited.fake.base_for("second")}
    settings = load_settings(ROOT / "config.yaml", environ=env)
    async with build_app(settings, classifier=trained_classifier, create_schema=False) as second_app:
        second = second_app.telegram
        assert second is not None and second.limits is not None
        assert isinstance(second.limits.limiter, RedisSendLimiter)
        await second.start(polling=False)
        chats: list[str] = []
        try:
            # Which process claims which row is up to the race; a burst in which one process
            # happened to send everything shows nothing about sharing, so another follows.
            for burst in range(4):
                batch = [str(6000 + 100 * burst + i) for i in range(24)]
                chats += batch
                await limited.queue_many({chat: (f"hi {chat}",) for chat in batch})
                await asyncio.gather(limited.channel.relay_queued(), second.relay_queued())
                await asyncio.gather(limited.channel.outbox.idle(), second.outbox.idle())
                if {c.via for chat in chats for c, _ in limited.sends(chat)} == {"", "second"}:
                    break
        finally:
            await second.stop()
    sends = [(c, t) for chat in chats for c, t in limited.sends(chat)]
    assert sorted(c.params["text"] for c, _ in sends) == sorted(f"hi {chat}" for chat in chats)  # each once
    assert {c.via for c, _ in sends} == {"", "second"}  # both processes sent
    assert most_in_window(sorted(t for _, t in sends), 1.0 - 0.1) <= 10
