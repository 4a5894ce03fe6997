"""Agents on Telegram, end to end: real aiogram / PTB clients, the fake Bot API, the whole app.

A customer's complaint is posted in the agents' forum group, claimed there by button,
answered in its topic, and the answer reaches the customer in their own Telegram chat;
notes stay internal, strangers are refused, ``/priority`` renames the topic, ``/bot``
hands the conversation back; a burst of escalations under 429s still gets every topic.
Runs for every library × mode × backend variant of ``telegram_bot`` (see conftest.py).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from bot.cli.agents_telegram import link_telegram
from storage.models import Owner, Priority, TicketStatus
from tests.channels.telegram.conftest import TelegramBot
from tests.fakes.telegram_server import BOT_ID, FakeTelegram

GROUP = -1001234567
ALICE = 5101
SAM, EVE = 7001, 7002  # Sam is a linked agent; Eve is in the group but not an agent


@pytest.fixture
def telegram_env() -> dict[str, str]:
    # Telegram's 20-a-minute limit is enforced (and tested) by the unit tests on virtual time;
    # here the fake's 429s do the limiting, so the test does not sit out real minutes.
    return {
        "DESKBOT_CHANNELS__TELEGRAM__AGENTS_CHAT_ID": str(GROUP),
        "DESKBOT_CHANNELS__TELEGRAM__TOPICS_PER_MINUTE": "600",
    }


def _in_group(fake: FakeTelegram) -> list[dict[str, Any]]:
    return fake.sent(GROUP)


def _thread_of(fake: FakeTelegram, number: str) -> tuple[int, int] | None:
    """(thread id, card message id) of the ticket's card in the group, once posted."""
    for message in _in_group(fake):
        if message.get("message_thread_id") and re.search(rf"<b>{number}</b>", str(message["text"])):
            return int(message["message_thread_id"]), int(message["message_id"])
    return None


def _topic_texts(fake: FakeTelegram, thread: int) -> list[str]:
    return [str(m["text"]) for m in _in_group(fake) if str(m.get("message_thread_id")) == str(thread)]


async def _agent_says(bot: TelegramBot, user: int, text: str, thread: int) -> None:
    await bot.deliver(bot.fake.text(user, text, chat_id=GROUP, chat_type="supergroup", thread_id=thread))


async def _agent_presses(bot: TelegramBot, user: int, data: str, card_id: int, thread: int) -> str:
    fake = bot.fake
    query = {
        "id": f"cb{fake.next_update_id()}",
        "from": fake.user(user, "Agent"),
        "chat_instance": "agents",
        "data": data,
        "message": {
            "message_id": card_id,
            "date": int(time.time()),
            "chat": {"id": GROUP, "type": "supergroup", "title": "Agents", "is_forum": True},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Deskbot"},
            "text": "…",
            "message_thread_id": thread,
            "is_topic_message": True,
        },
    }
    before = len(fake.answered_callbacks)
    await bot.deliver(fake.push({"callback_query": query}))
    await fake.wait_until(lambda: len(fake.answered_callbacks) > before)
    return str(fake.answered_callbacks[-1].get("text"))


async def _ticket(bot: TelegramBot, number: str) -> Any:
    async with bot.app.tickets.session() as tx:
        return await tx.ticket_by_number(number)


async def test_a_complaint_is_worked_from_the_agents_group(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    fake.make_forum(GROUP)
    fake.set_member(GROUP, SAM, "member")
    fake.set_member(GROUP, EVE, "member")
    await link_telegram(bot.app.tickets, "sam@shop.example", str(SAM), name="Sam Agent")

    replies = await bot.say(ALICE, "I want to complain: the jacket arrived torn. UNACCEPTABLE!!!")
    number = re.search(r"T-\d{4,}", "\n".join(replies)).group(0)  # type: ignore[union-attr]
    await fake.wait_until(lambda: _thread_of(fake, number) is not None)
    thread, card_id = _thread_of(fake, number)  # type: ignore[misc]
    topic = fake.calls_of("createForumTopic")[0].params["name"]
    assert number in topic and "new" in topic and "high" in topic
    card = next(m for m in _in_group(fake) if m["message_id"] == card_id)
    assert "jacket arrived torn" in card["text"] and "Claim" in str(card["reply_markup"])
    await fake.wait_until(lambda: bool(fake.calls_of("pinChatMessage")))
    assert sum(f"<b>{number}</b>" in t for t in _topic_texts(fake, thread)) == 1  # one card

    # a group member who is not a registered agent changes nothing
    assert await _agent_presses(bot, EVE, f"dk:claim:{number}", card_id, thread) == (
        "⛔ Only registered agents can do that."
    )
    await _agent_says(bot, EVE, "I will handle it!", thread)
    await fake.wait_until(lambda: any("link-telegram EMAIL 7002" in t for t in _topic_texts(fake, thread)))
    assert (await _ticket(bot, number)).assignee_id is None

    # claimed by button, answered in the topic: the answer reaches Alice in her own chat
    assert await _agent_presses(bot, SAM, f"dk:claim:{number}", card_id, thread) == f"{number} is yours."
    await fake.wait_until(lambda: any("claimed by Sam Agent" in t for t in _topic_texts(fake, thread)))
    await _agent_says(bot, SAM, "Hello Alice, I am sorry — a new jacket ships today.", thread)
    await fake.wait_until(lambda: "Hello Alice, I am sorry — a new jacket ships today." in fake.texts(ALICE))
    assert fake.texts(ALICE).count("Hello Alice, I am sorry — a new jacket ships today.") == 1

    # Alice's answer appears in the topic; the bot stays silent
    assert await bot.say(ALICE, "Great, thank you!") == []
    await fake.wait_until(lambda: any("Great, thank you!" in t for t in _topic_texts(fake, thread)))

    # a note is stored, shown to colleagues, never sent
    sent_to_alice = len(fake.texts(ALICE))
    await _agent_says(bot, SAM, "/note offered express shipping", thread)
    await fake.wait_until(lambda: any("offered express shipping" in t for t in _topic_texts(fake, thread)))
    assert len(fake.texts(ALICE)) == sent_to_alice

    # priority change renames the topic
    await _agent_says(bot, SAM, "/priority urgent", thread)
    await fake.wait_until(lambda: any("urgent" in c.params.get("name", "") for c in fake.calls_of("editForumTopic")))
    ticket = await _ticket(bot, number)
    assert ticket.priority == Priority.URGENT

    # /bot hands the conversation back; Alice is told
    await _agent_says(bot, SAM, "/bot", thread)
    ticket = await _ticket(bot, number)
    assert ticket.customer.owner == Owner.BOT and ticket.status == TicketStatus.PENDING
    await fake.wait_until(lambda: len(fake.texts(ALICE)) > sent_to_alice)
    async with bot.app.tickets.session() as tx:
        kinds = [e.kind for e in await tx.ticket_events(ticket.id)]
    assert {"claimed", "agent_reply", "note", "priority_changed"} <= set(kinds)


async def test_a_burst_of_escalations_under_429_gets_every_topic(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    fake.make_forum(GROUP)
    fake.fault("createForumTopic", 429, retry_after=1, times=3)
    numbers = []
    for i in range(30):
        replies = await bot.say(ALICE + 1 + i, "I want to talk to a human please")
        numbers.append(re.search(r"T-\d{4,}", "\n".join(replies)).group(0))  # type: ignore[union-attr]
    await fake.wait_until(lambda: all(_thread_of(fake, n) is not None for n in numbers), within=120)
    created = [c for c in fake.calls_of("createForumTopic") if c.status == 200]
    rejected = [c for c in fake.calls_of("createForumTopic") if c.status == 429]
    assert len(rejected) == 3
    named = sorted(re.search(r"T-\d+", c.params["name"]).group(0) for c in created)  # type: ignore[union-attr]
    assert named == sorted(numbers)  # every ticket once, none dropped, none twice
