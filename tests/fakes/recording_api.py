"""An in-memory ``TelegramApi`` that records every call: unit tests of code written against the port.

Behaves like the Bot API where the code under test can tell (message ids per chat, forum
topics, edits of unknown messages fail, "message is not modified"), and lets a test
inject the errors the adapters translate to (``fail("createForumTopic", RetryAfter(3), times=2)``).
End-to-end tests use the HTTP fake in ``telegram_server.py`` with the real libraries instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.channels.telegram.api import (
    BadRequest,
    BotUser,
    ChatInfo,
    FileInfo,
    InlineKeyboard,
    RetryAfter,
    SentMessage,
    TelegramApi,
    TelegramError,
)


@dataclass
class Posted:
    chat_id: int
    message_id: int
    text: str
    thread_id: int | None = None
    reply_to: int | None = None
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)


@dataclass
class RecordingTelegramApi(TelegramApi):
    bot: BotUser = field(default_factory=lambda: BotUser(id=999, username="deskbot_test_bot"))
    forums: set[int] = field(default_factory=set)  # chats that are forum supergroups
    members: dict[tuple[int, int], str] = field(default_factory=dict)  # (chat, user) -> status
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    posted: list[Posted] = field(default_factory=list)
    topics: dict[int, str] = field(default_factory=dict)  # thread id -> current name
    topic_renames: list[tuple[int, str]] = field(default_factory=list)
    pinned: list[tuple[int, int]] = field(default_factory=list)
    answers: list[tuple[str, str | None]] = field(default_factory=list)
    # Telegram's own topic flood limit, on a test clock: (creations, per seconds) → 429 beyond it.
    topic_limit: tuple[int, float] | None = None
    clock: Callable[[], float] = lambda: 0.0
    topic_times: list[float] = field(default_factory=list)  # when each topic was created
    _faults: dict[str, list[Callable[[], TelegramError]]] = field(default_factory=dict)
    _ids: dict[int, itertools.count[int]] = field(default_factory=dict)
    _threads: itertools.count[int] = field(default_factory=lambda: itertools.count(500))

    # -- test controls ---------------------------------------------------------------
    def fail(self, method: str, error: Callable[[], TelegramError] | TelegramError, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error`` (an instance or a factory)."""
        if isinstance(error, TelegramError):
            instance = error
            self._faults.setdefault(method, []).extend([lambda: instance] * times)
        else:
            self._faults.setdefault(method, []).extend([error] * times)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    def in_thread(self, thread_id: int) -> list[str]:
        return [p.text for p in self.posted if p.thread_id == thread_id]

    def message(self, chat_id: int, message_id: int) -> Posted:
        for posted in self.posted:
            if posted.chat_id == chat_id and posted.message_id == message_id:
                return posted
        raise KeyError((chat_id, message_id))

    def _record(self, method: str, **params: Any) -> None:
        self.calls.append((method, params))
        pending = self._faults.get(method)
        if pending:
            raise pending.pop(0)()

    def _next_id(self, chat_id: int) -> int:
        return next(self._ids.setdefault(chat_id, itertools.count(1)))

    # -- the port ----------------------------------------------------------------------
    async def get_me(self) -> BotUser:
        self._record("getMe")
        return self.bot

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_markup: InlineKeyboard | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> SentMessage:
        self._record("sendMessage", chat_id=chat_id, text=text, message_thread_id=message_thread_id,
                     reply_to_message_id=reply_to_message_id)
        if not text or len(text) > 4096:
            raise BadRequest("Bad Request: message text is empty or too long")
        chat = int(chat_id)
        if message_thread_id is not None and message_thread_id not in self.topics:
            raise BadRequest("Bad Request: message thread not found")
        posted = Posted(chat, self._next_id(chat), text, message_thread_id, reply_to_message_id,
                        [[(b.text, b.callback_data) for b in row] for row in reply_markup or ()])
        self.posted.append(posted)
        return SentMessage(chat, posted.message_id, message_thread_id)

    async def edit_message_text(
        self, chat_id: int | str, message_id: int, text: str, *, reply_markup: InlineKeyboard | None = None
    ) -> None:
        self._record("editMessageText", chat_id=chat_id, message_id=message_id, text=text)
        try:
            posted = self.message(int(chat_id), message_id)
        except KeyError:
            raise BadRequest("Bad Request: message to edit not found") from None
        buttons = [[(b.text, b.callback_data) for b in row] for row in reply_markup or ()]
        if posted.text == text and posted.buttons == buttons:
            raise BadRequest("Bad Request: message is not modified")
        posted.text, posted.buttons = text, buttons

    async def answer_callback_query(self, callback_query_id: str, text: str | None = None) -> None:
        self._record("answerCallbackQuery", callback_query_id=callback_query_id, text=text)
        self.answers.append((callback_query_id, text))

    async def send_chat_action(
        self, chat_id: int | str, action: str = "typing", *, message_thread_id: int | None = None
    ) -> None:
        self._record("sendChatAction", chat_id=chat_id, action=action)

    async def get_chat(self, chat_id: int | str) -> ChatInfo:
        self._record("getChat", chat_id=chat_id)
        chat = int(chat_id)
        return ChatInfo(chat, "supergroup" if chat < 0 else "private", chat in self.forums)

    async def get_chat_member_status(self, chat_id: int | str, user_id: int) -> str:
        self._record("getChatMember", chat_id=chat_id, user_id=user_id)
        return self.members.get((int(chat_id), user_id), "left")

    async def create_forum_topic(self, chat_id: int | str, name: str) -> int:
        self._record("createForumTopic", chat_id=chat_id, name=name)
        if int(chat_id) not in self.forums:
            raise BadRequest("Bad Request: the chat is not a forum")
        if not 1 <= len(name) <= 128:
            raise BadRequest("Bad Request: TOPIC_TITLE_EMPTY or too long")
        now = self.clock()
        if self.topic_limit is not None:
            limit, period = self.topic_limit
            recent = [t for t in self.topic_times if now - t < period]
            if len(recent) >= limit:
                raise RetryAfter(max(1, int(period - (now - recent[0]))), "Too Many Requests: retry later")
        self.topic_times.append(now)
        thread_id = next(self._threads)
        self.topics[thread_id] = name
        return thread_id

    async def edit_forum_topic(self, chat_id: int | str, message_thread_id: int, name: str) -> None:
        self._record("editForumTopic", chat_id=chat_id, message_thread_id=message_thread_id, name=name)
        if message_thread_id not in self.topics:
            raise BadRequest("Bad Request: TOPIC_ID_INVALID")
        if self.topics[message_thread_id] == name:
            raise BadRequest("Bad Request: TOPIC_NOT_MODIFIED")
        self.topics[message_thread_id] = name
        self.topic_renames.append((message_thread_id, name))

    async def pin_chat_message(self, chat_id: int | str, message_id: int) -> None:
        self._record("pinChatMessage", chat_id=chat_id, message_id=message_id)
        self.pinned.append((int(chat_id), message_id))

    async def get_file(self, file_id: str) -> FileInfo:
        self._record("getFile", file_id=file_id)
        raise BadRequest("Bad Request: invalid file_id")

    async def download_file(self, file_path: str) -> bytes:
        self._record("downloadFile", file_path=file_path)
        raise BadRequest("Bad Request: file not found")

    async def set_webhook(self, url: str, *, secret_token: str, allowed_updates: Sequence[str] | None = None) -> None:
        self._record("setWebhook", url=url)

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        self._record("deleteWebhook")

    async def get_updates(
        self, offset: int | None, timeout: int, allowed_updates: Sequence[str] | None = None, *, limit: int = 100,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        self._record("getUpdates", offset=offset, timeout=timeout)
        return []  # updates reach the code under test directly, not through a poll

    async def set_my_commands(self, commands: Sequence[tuple[str, str]], *, language_code: str | None = None) -> None:
        self._record("setMyCommands", commands=list(commands))

    async def close(self) -> None:
        self._record("close")
