"""Helpers for the agents' group tests: an app over both backend pairs, Telegram JSON builders."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from bot.app import App

AGENTS_CHAT = -100777
_ids = itertools.count(1)


@pytest.fixture
def desk_app(app: App) -> App:
    """The whole app (``tests/conftest.py``'s ``app``, over both backend pairs), under the
    name the agents' group tests use."""
    return app


PATIENCE_SECONDS = 20.0  # a generous bound, not a speed requirement: only a hang trips it


async def eventually(condition: Callable[[], object], what: str) -> None:
    """Wait until ``condition()`` holds (events cross the bus asynchronously); fail naming ``what``."""
    try:
        async with asyncio.timeout(PATIENCE_SECONDS):
            while not condition():  # noqa: ASYNC110 - the state belongs to other tasks and a fake
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


def user(user_id: int, name: str = "Sam") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name}


def group_message(
    user_id: int, text: str, *, thread_id: int | None = None, reply_to: dict[str, Any] | None = None,
    chat_id: int = AGENTS_CHAT,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 10_000 + next(_ids),
        "date": 1_700_000_000,
        "chat": {"id": chat_id, "type": "supergroup", "title": "Agents"},
        "from": user(user_id),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if thread_id is not None:
        message |= {"message_thread_id": thread_id, "is_topic_message": True}
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    return {"update_id": next(_ids), "message": message}


def button_press(user_id: int, data: str, message_id: int, chat_id: int = AGENTS_CHAT) -> dict[str, Any]:
    return {
        "update_id": next(_ids),
        "callback_query": {
            "id": f"cb{next(_ids)}",
            "from": user(user_id),
            "chat_instance": "agents",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": 1_700_000_000,
                "chat": {"id": chat_id, "type": "supergroup"},
                "from": {"id": 999, "is_bot": True, "first_name": "deskbot"},
                "text": "card",
            },
        },
    }


class VirtualTime:
    """A clock that advances only when slept on: rate limits and retry waits run instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)
