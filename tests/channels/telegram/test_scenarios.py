"""The customer side of Telegram, end to end: real aiogram / PTB clients against the fake Bot API.

Every scenario runs for both libraries and both intake modes (see ``conftest.py``).
"""

from __future__ import annotations

from tests.channels.telegram.conftest import TelegramBot

ALICE = 5001


async def test_presale_question(telegram_bot: TelegramBot) -> None:
    replies = await telegram_bot.say(ALICE, "/start")
    assert any("assistant" in r for r in replies)
    replies = await telegram_bot.say(ALICE, "how much is the hoodie?")
    assert any("49.90" in r for r in replies)
    sent = telegram_bot.fake.sent(ALICE)
    assert all(m["parse_mode"] == "HTML" for m in sent)
