"""Replies queued where this process hears no event (another worker, a script) still go out.

The channel sends queued replies when the event bus announces them; the periodic sweep is
the safety net for everything else. Here a reply is queued straight in the database, with
no event, and must still reach the customer once.
"""

from __future__ import annotations

import pytest

from storage.models import Author, DeliveryStatus, Direction
from tests.channels.telegram.conftest import TelegramBot

CAROL = 5301


@pytest.fixture
def telegram_env() -> dict[str, str]:
    return {"DESKBOT_CHANNELS__TELEGRAM__RELAY_INTERVAL_SECONDS": "0.2"}


async def test_a_reply_queued_without_an_event_is_swept_out_once(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    await bot.say(CAROL, "hello")
    async with bot.app.tickets.session() as tx:
        customer = await tx.find_customer("telegram", str(CAROL))
        assert customer is not None
        queued = await tx.add_message(customer, channel="telegram", chat_id=str(CAROL), direction=Direction.OUTBOUND,
                                      author=Author.AGENT, text="Written by another worker", status=DeliveryStatus.QUEUED)
    await fake.wait_until(lambda: "Written by another worker" in fake.texts(CAROL))
    assert await bot.channel.relay_queued() == 0  # nothing left (and the send in flight settled)
    async with bot.app.tickets.session() as tx:
        stored = await tx.get_message(queued.id)
        assert stored is not None and stored.status == DeliveryStatus.SENT and stored.sent_at is not None
    assert fake.texts(CAROL).count("Written by another worker") == 1
