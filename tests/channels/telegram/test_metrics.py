"""The Telegram channel of a built app reports to the app's metrics: messages in from the
pipeline, messages out from the outbox reader once the (fake) Bot API accepted them."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from storage.models import DeliveryStatus, Direction
from tests.channels.telegram.conftest import TelegramBot

VARIANTS = [("aiogram", "polling", "sqlite"), ("python-telegram-bot", "webhook", "postgres")]


def value(bot: TelegramBot, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(bot.app.metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.mark.parametrize("telegram_bot", VARIANTS, ids=["-".join(v) for v in VARIANTS], indirect=True)
async def test_telegram_messages_in_and_out_are_counted(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    assert await bot.say(7001, "hello")
    assert await bot.say(7001, "where is my order?")
    assert await bot.say(7002, "hi")

    sent = 0
    async with bot.app.tickets.session() as tx:
        for user in ("7001", "7002"):
            customer = await tx.find_customer("telegram", user)
            assert customer is not None
            rows = await tx.conversation(customer.id, limit=100)
            sent += sum(1 for m in rows if m.direction == Direction.OUTBOUND and m.status == DeliveryStatus.SENT)
    assert sent >= 3
    assert value(bot, "deskbot_messages_in_total", channel="telegram") == 3
    assert value(bot, "deskbot_messages_out_total", channel="telegram") == sent
    assert value(bot, "deskbot_pipeline_turn_seconds_count", channel="telegram") == 3
    assert value(bot, "deskbot_send_failures_total", channel="telegram", outcome="transient") is None
