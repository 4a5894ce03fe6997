"""The Telegram port on python-telegram-bot 22: every Bot API call through its ``ExtBot``.

PTB's exceptions become the port's neutral errors here and nowhere else. PTB's ``Updater``
is not used: it moves the offset as soon as a batch is queued, so a stop lost every update
fetched but not yet handled. The long poll is deskbot's own (``intake.py``); ``getUpdates``
goes through the bot's own request path (``Bot._post``, the one private name used here,
which ``Bot.get_updates`` itself calls) so the result stays Telegram's raw JSON — PTB's
``get_updates`` parses into ``Update`` and one it cannot parse would fail the batch for ever.
The ``Application`` is kept only for its lifecycle (``initialize``/``shutdown`` of the bot
and its HTTP pools).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram import error as ptb
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.channels.telegram.api import (
    BadRequest,
    BotUser,
    ChatInfo,
    ClientOptions,
    Conflict,
    FileInfo,
    Forbidden,
    InlineKeyboard,
    NetworkError,
    RetryAfter,
    SentMessage,
    TelegramApi,
    TelegramError,
    Unauthorized,
)
from bot.config import token_problem

log = logging.getLogger("deskbot.telegram.ptb")

PtbApplication = Application[Any, Any, Any, Any, Any, Any]


def translate(exc: ptb.TelegramError) -> TelegramError:
    """PTB's exception → the port's; subclasses first (``BadRequest`` is a ``NetworkError`` in PTB)."""
    message = exc.message
    if isinstance(exc, ptb.RetryAfter):
        # ``retry_after`` as an int is deprecated (a warning) in 22.x; PTB itself reads this.
        return RetryAfter(exc._retry_after.total_seconds())
    if isinstance(exc, ptb.Forbidden):
        return Forbidden(message)
    if isinstance(exc, ptb.BadRequest | ptb.ChatMigrated | ptb.EndPointNotFound):
        return BadRequest(message)
    if isinstance(exc, ptb.NetworkError):  # timeouts, connection errors and 5xx alike
        return NetworkError(message)
    if isinstance(exc, ptb.InvalidToken):
        # PTB's message quotes the token itself: never repeat it.
        return Unauthorized("Telegram refused the bot token (401/404): check secrets.telegram_token")
    if isinstance(exc, ptb.Conflict):
        return Conflict(message)
    return TelegramError(message)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except ptb.TelegramError as exc:
        raise translate(exc) from exc


def _markup(keyboard: InlineKeyboard | None) -> InlineKeyboardMarkup | None:
    if keyboard is None:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.text, callback_data=b.callback_data) for b in row] for row in keyboard]
    )


class PtbApi(TelegramApi):
    def __init__(self, application: PtbApplication, read_timeout: float = 20.0,
                 requests: Sequence[HTTPXRequest] = ()) -> None:
        self.application = application
        self.bot = application.bot
        self._read_timeout = read_timeout
        self._requests = tuple(requests)  # closed here too: PTB skips them if initialize() failed (bad token)

    async def _ready(self) -> None:
        """PTB wants ``initialize()`` (getMe, HTTP pools) before use; it is idempotent."""
        async with _translated():
            await self.application.initialize()

    async def get_me(self) -> BotUser:
        await self._ready()
        async with _translated():
            me = await self.bot.get_me()
        return BotUser(me.id, me.username)

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_markup: InlineKeyboard | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> SentMessage:
        await self._ready()
        reply = (
            ReplyParameters(reply_to_message_id, allow_sending_without_reply=True)
            if reply_to_message_id is not None
            else None
        )
        async with _translated():
            sent = await self.bot.send_message(
                chat_id, text, parse_mode="HTML", reply_markup=_markup(reply_markup),
                message_thread_id=message_thread_id, reply_parameters=reply,
            )
        return SentMessage(sent.chat.id, sent.message_id, sent.message_thread_id)

    async def edit_message_text(
        self, chat_id: int | str, message_id: int, text: str, *, reply_markup: InlineKeyboard | None = None
    ) -> None:
        await self._ready()
        async with _translated():
            await self.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode="HTML", reply_markup=_markup(reply_markup)
            )

    async def answer_callback_query(self, callback_query_id: str, text: str | None = None) -> None:
        await self._ready()
        async with _translated():
            await self.bot.answer_callback_query(callback_query_id, text=text)

    async def send_chat_action(
        self, chat_id: int | str, action: str = "typing", *, message_thread_id: int | None = None
    ) -> None:
        await self._ready()
        async with _translated():
            await self.bot.send_chat_action(chat_id, action, message_thread_id=message_thread_id)

    async def get_chat(self, chat_id: int | str) -> ChatInfo:
        await self._ready()
        async with _translated():
            chat = await self.bot.get_chat(chat_id)
        return ChatInfo(chat.id, str(chat.type), bool(chat.is_forum))

    async def get_chat_member_status(self, chat_id: int | str, user_id: int) -> str:
        await self._ready()
        async with _translated():
            member = await self.bot.get_chat_member(chat_id, user_id)
        return str(member.status)

    async def create_forum_topic(self, chat_id: int | str, name: str) -> int:
        await self._ready()
        async with _translated():
            topic = await self.bot.create_forum_topic(chat_id, name)
        return int(topic.message_thread_id)

    async def edit_forum_topic(self, chat_id: int | str, message_thread_id: int, name: str) -> None:
        await self._ready()
        async with _translated():
            await self.bot.edit_forum_topic(chat_id, message_thread_id, name=name)

    async def pin_chat_message(self, chat_id: int | str, message_id: int) -> None:
        await self._ready()
        async with _translated():
            await self.bot.pin_chat_message(chat_id, message_id, disable_notification=True)

    async def get_file(self, file_id: str) -> FileInfo:
        await self._ready()
        async with _translated():
            file = await self.bot.get_file(file_id)
        path = file.file_path
        prefix = f"{self.bot.base_file_url}/"
        if path and path.startswith(prefix):
            path = path[len(prefix):]  # PTB turns the path into a URL; the port speaks paths
        return FileInfo(file.file_id, path, file.file_size)

    async def download_file(self, file_path: str) -> bytes:
        await self._ready()
        async with _translated():
            content: bytes = await self.bot.request.retrieve(f"{self.bot.base_file_url}/{file_path}")
        return content

    async def get_updates(
        self, offset: int | None, timeout: int, allowed_updates: Sequence[str] | None = None, *, limit: int = 100,  # noqa: ASYNC109 - the long-poll seconds Telegram waits, not a deadline
    ) -> list[dict[str, Any]]:
        await self._ready()
        data: dict[str, Any] = {"offset": offset, "limit": limit, "timeout": timeout,
                                "allowed_updates": list(allowed_updates) if allowed_updates is not None else None}
        async with _translated():
            # As ``Bot.get_updates`` does, minus its parsing; None values are dropped by ``_post``.
            result = await self.bot._post("getUpdates", data, read_timeout=self._read_timeout + timeout)
        return list(result)

    async def set_webhook(
        self, url: str, *, secret_token: str, allowed_updates: Sequence[str] | None = None
    ) -> None:
        await self._ready()
        async with _translated():
            await self.bot.set_webhook(
                url, secret_token=secret_token,
                allowed_updates=list(allowed_updates) if allowed_updates is not None else None,
            )

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        await self._ready()
        async with _translated():
            await self.bot.delete_webhook(drop_pending_updates=drop_pending_updates)

    async def set_my_commands(
        self, commands: Sequence[tuple[str, str]], *, language_code: str | None = None
    ) -> None:
        await self._ready()
        async with _translated():
            await self.bot.set_my_commands(
                [BotCommand(name, description) for name, description in commands], language_code=language_code
            )

    async def close(self) -> None:
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        for request in self._requests:
            await request.shutdown()  # a no-op when already closed


def open_ptb(options: ClientOptions) -> TelegramApi:
    problem = token_problem(options.token)
    if problem is not None:  # PTB would only find out at the first call (404)
        raise Unauthorized(problem)
    # PTB 22 warns on every 429 (its RetryAfter reads the int-valued, deprecated
    # ``retry_after`` in its own constructor) unless time periods are opted into as
    # ``timedelta`` — the behaviour of its next major version, which is all we read.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    base = options.api_base.rstrip("/")
    timeout = options.request_timeout

    def request(read_timeout: float) -> HTTPXRequest:
        return HTTPXRequest(
            connection_pool_size=16, read_timeout=read_timeout, write_timeout=timeout, connect_timeout=timeout,
            pool_timeout=timeout, media_write_timeout=timeout,
        )

    application: PtbApplication = (
        ApplicationBuilder()
        .token(options.token)
        .base_url(f"{base}/bot")  # PTB appends the token to this
        .base_file_url(f"{base}/file/bot")
        .request(calls := request(timeout))
        .get_updates_request(polls := request(timeout))  # getUpdates adds its long-poll time to this
        .build()
    )
    return PtbApi(application, timeout, (calls, polls))
