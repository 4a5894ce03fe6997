"""The electronics shop's scripted conversations, one test each, through the REST channel."""

from __future__ import annotations

import pytest

from bot.app import App
from tests.shops import conversations_electronics
from tests.shops.harness import SHOPS, Conversation, conversation_cases, play

SHOP = conversations_electronics.SHOP


@pytest.mark.parametrize("script", conversation_cases(SHOP))
async def test_conversation(shop_app: App, script: Conversation) -> None:
    await play(SHOPS[SHOP], shop_app, script)
