"""The webhook's 200 is the confirmation: answered only after the update is stored.

If the sink fails, the route answers 503 and Telegram (the fake does as Telegram does)
delivers the update again; the delivery key keeps it stored once — here even when the first
attempt had stored it and failed only afterwards. Both libraries' webhook paths.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.channels.telegram.conftest import TelegramBot

ALICE = 7101
WEBHOOK_VARIANTS = [("aiogram", "webhook", "sqlite"), ("python-telegram-bot", "webhook", "sqlite")]


async def stored_rows(bot: TelegramBot, update_id: int) -> int:
    async with bot.app.tickets.session() as tx:
        rows = await tx.db.execute(text(  # type: ignore[attr-defined]
            "SELECT count(*) FROM messages WHERE channel = 'telegram' AND delivery_key = :k"), {"k": str(update_id)})
        return int(rows.scalar_one())


@pytest.mark.parametrize("telegram_bot", WEBHOOK_VARIANTS, ids=["-".join(v) for v in WEBHOOK_VARIANTS],
                         indirect=True)
async def test_a_failed_sink_gets_503_and_the_redelivery_is_stored_once(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    process = bot.channel.process
    failed: list[int] = []

    async def crashes_after_storing(raw: dict[str, Any]) -> None:
        await process(raw)
        if not failed:  # the first attempt stored the update, then the process "crashed"
            failed.append(int(raw["update_id"]))
            raise RuntimeError("connection lost after the commit")

    bot.channel.process = crashes_after_storing  # type: ignore[method-assign]
    update_id = await bot.deliver(fake.text(ALICE, "hello"), times=2)
    await fake.settled(update_id)

    assert [r.status for r in fake.webhook_results if r.update_id == update_id] == [503, 200]
    assert failed == [update_id] and await stored_rows(bot, update_id) == 1
    await fake.wait_until(lambda: bool(fake.texts(ALICE)))
    # The redelivery is the delivery key's duplicate: no second turn, no second greeting.
    texts = fake.texts(ALICE)
    assert len(texts) == len(set(texts))


@pytest.mark.parametrize("telegram_bot", WEBHOOK_VARIANTS, ids=["-".join(v) for v in WEBHOOK_VARIANTS],
                         indirect=True)
async def test_a_webhook_body_is_handed_over_as_telegram_sent_it(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    process = bot.channel.process
    seen: list[dict[str, Any]] = []

    async def recording(raw: dict[str, Any]) -> None:
        seen.append(raw)
        await process(raw)

    bot.channel.process = recording  # type: ignore[method-assign]
    message = fake.message(ALICE, "hi", extra={"some_field_from_a_newer_bot_api": {"x": [1]}})
    update_id = await bot.deliver(fake.push({"message": message}))
    await fake.settled(update_id)
    assert seen == [{"update_id": update_id, "message": message}]  # no library model in between
    assert [r.status for r in fake.webhook_results if r.update_id == update_id] == [200]
