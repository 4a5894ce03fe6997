"""The agents' chat as the group's parts talk to it: every call retried on 429 and 5xx.

One place for the chat id, the bot's own identity (``getMe``) and the retry policy
(``topics.call_with_retry``: five attempts, ``retry_after`` honoured), so the poster, the
relay and the buttons answer agents the same way. Every message it posts first waits for the
bot's sending limits (``pace``: the group's 20 a minute, the bot's 30 a second; see
``bot/channels/telegram/limits.py``), so a busy desk queues here instead of meeting 429s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any, TypeVar

from bot.channels.telegram.agents.topics import Sleep, call_with_retry
from bot.channels.telegram.api import BotUser, TelegramApi

T = TypeVar("T")
MAX_CALLBACK_ANSWER = 200
Pace = Callable[[str], Awaitable[object]]


class GroupChat:
    def __init__(self, api: TelegramApi, chat_id: int, *, sleep: Sleep = asyncio.sleep,
                 pace: Pace | None = None) -> None:
        self.api = api
        self.chat_id = chat_id
        self._sleep = sleep
        self._pace = pace
        self.me: BotUser | None = None

    async def introduce(self) -> None:
        """Learn who the bot is (its username addresses commands, its id its own messages)."""
        self.me = await self.retry(self.api.get_me, "getMe")

    @property
    def username(self) -> str | None:
        return self.me.username if self.me else None

    @property
    def bot_id(self) -> int | None:
        return self.me.id if self.me else None

    async def retry(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await call_with_retry(call, sleep=self._sleep, attempts=5, what=what)

    async def post(self, call: Callable[[], Awaitable[T]]) -> T:
        """A new message in the group (``call`` sends it): once the sending limits allow, retried."""
        if self._pace is not None:
            await self._pace(str(self.chat_id))
        return await self.retry(call, "sendMessage")

    async def say(self, thread_id: int | None, ticket_message_id: int | None, text: str) -> None:
        """A line in the ticket's topic; without topics, a reply to the ticket's message."""
        reply_to = ticket_message_id if thread_id is None else None
        await self.post(
            lambda: self.api.send_message(
                self.chat_id, text, message_thread_id=thread_id, reply_to_message_id=reply_to
            ),
        )

    async def answer(self, message: dict[str, Any], text: str) -> None:
        """Reply in the same topic, quoting the agent's message."""
        thread_id = message.get("message_thread_id") if message.get("is_topic_message") else None
        await self.post(
            lambda: self.api.send_message(
                self.chat_id, escape(text, quote=False), message_thread_id=thread_id,
                reply_to_message_id=message.get("message_id"),
            ),
        )

    async def answer_callback(self, query_id: str, text: str) -> None:
        await self.retry(lambda: self.api.answer_callback_query(query_id, text[:MAX_CALLBACK_ANSWER]),
                         "answerCallbackQuery")
