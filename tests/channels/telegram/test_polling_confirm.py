"""Polling through the real channel: a stop in the middle of a burst loses no update.

The sink is deskbot's own ``TelegramChannel.process`` (the pipeline, the database), with
each library. The stop's grace period is cut short so turns are still running when it
ends: whatever Telegram was told is confirmed must be in the database, and a new intake
gets the rest, so every customer's message ends up stored exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from bot.channels.telegram.intake import PollingIntake
from tests.channels.telegram.conftest import TelegramBot

POLLING_VARIANTS = [("aiogram", "polling", "sqlite"), ("python-telegram-bot", "polling", "sqlite")]


async def stored_keys(bot: TelegramBot) -> Counter[str]:
    async with bot.app.tickets.session() as tx:
        rows = await tx.db.execute(text(  # type: ignore[attr-defined]
            "SELECT delivery_key FROM messages WHERE channel = 'telegram' AND delivery_key IS NOT NULL"))
        return Counter(str(r[0]) for r in rows.all())


async def until(condition: Callable[[], bool], within: float = 60.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the channel and the fake change many things; a short poll reads them
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("telegram_bot", POLLING_VARIANTS, ids=["-".join(v) for v in POLLING_VARIANTS],
                         indirect=True)
async def test_a_stop_mid_burst_confirms_only_stored_updates_and_loses_none(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    await bot.channel.client.updates.stop()  # the fixture's intake; this test runs its own
    options = replace(bot.channel.client.updates.options, grace_seconds=0.05)
    held = asyncio.Event()  # never set: the last customers' turns are still waiting at the stop

    async def slow(raw: dict[str, Any]) -> None:
        if raw["message"]["chat"]["id"] >= 9030:
            await held.wait()
        await bot.channel.process(raw)

    updates = [{"update_id": fake.next_update_id(), "message": fake.message(9000 + n, "where is my order?")}
               for n in range(40)]
    ids = [int(u["update_id"]) for u in updates]
    await fake.push_batch(updates)
    intake = PollingIntake(bot.channel.api, options)
    await intake.start_polling(slow)
    await until(lambda: len(bot.handled) >= 20)
    await intake.stop()  # SIGTERM in the middle of the burst

    confirmed = fake.confirmed_below
    stored = await stored_keys(bot)
    assert [u for u in ids if u < confirmed and str(u) not in stored] == []  # nothing confirmed unstored
    assert confirmed <= ids[30]  # the held customers' messages were not confirmed

    again = PollingIntake(bot.channel.api, options)  # the next start
    await again.start_polling(bot.channel.process)
    await until(lambda: fake.confirmed_below > max(ids))
    await again.stop()
    stored = await stored_keys(bot)
    assert {str(u): stored[str(u)] for u in ids} == {str(u): 1 for u in ids}  # every message, once
