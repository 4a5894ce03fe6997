"""The furniture shop's scripted conversations, one test each, through the REST channel."""

from __future__ import annotations

import pytest

from bot.app import App
from tests.shops import conversations_furniture
from tests.shops.harness import CONVERSATIONS, SHOPS, Conversation, play

SHOP = conversations_furniture.SHOP


@pytest.mark.parametrize("script", CONVERSATIONS[SHOP], ids=lambda script: script.__name__)
async def test_conversation(shop_app: App, script: Conversation) -> None:
    await play(SHOPS[SHOP], shop_app, script)
