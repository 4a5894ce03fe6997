"""The Telegram port on aiogram 3: every Bot API call through ``aiogram.Bot``.

aiogram's exceptions become the port's neutral errors here and nowhere else, so the
delivery policy never depends on the library. aiogram's ``Dispatcher`` is not used: the
long poll is deskbot's own (``intake.py``), which confirms an update only once it is
stored; ``getUpdates`` goes through ``Bot`` as a method returning raw JSON, so aiogram's
session still builds the request and checks the response (errors, ``retry_after``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramAPIError,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from aiogram.utils.token import TokenValidationError

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
    ServerError,
    TelegramApi,
    TelegramError,
    Unauthorized,
)
from bot.config import token_problem

log = logging.getLogger("deskbot.telegram.aiogram")

T = TypeVar("T")


def translate(exc: AiogramError) -> TelegramError:
    """aiogram's exception → the port's; the most specific class first."""
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, TelegramRetryAfter):
        return RetryAfter(float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError):
        return Forbidden(message)
    if isinstance(exc, TelegramEntityTooLarge):
        return BadRequest(message)
    if isinstance(exc, TelegramServerError | ClientDecodeError):
        return ServerError(message)
    if isinstance(exc, TelegramNetworkError):
        return NetworkError(message)
    if isinstance(exc, TelegramUnauthorizedError | TelegramNotFound):
        return Unauthorized(f"Telegram refused the bot token ({message}): check secrets.telegram_token")
    if isinstance(exc, TelegramConflictError):
        return Conflict(message)
    if isinstance(exc, TelegramAPIError):
        return BadRequest(message)
    return TelegramError(message)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except AiogramError as exc:
        raise translate(exc) from exc


class RawGetUpdates(TelegramMethod[list[dict[str, Any]]]):
    """``getUpdates`` whose result stays Telegram's JSON: aiogram's ``GetUpdates`` parses into
    ``Update`` models, and one it cannot parse would fail the call (and the batch) for ever."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


def _markup(keyboard: InlineKeyboard | None) -> InlineKeyboardMarkup | None:
    if keyboard is None:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.text, callback_data=b.callback_data) for b in row] for row in keyboard
        ]
    )


class AiogramApi(TelegramApi):
    def __init__(self, bot: Bot, request_timeout: float = 20.0) -> None:
        self.bot = bot
        self._timeout = int(request_timeout)

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        async with _translated():
            return await make()

    async def get_me(self) -> BotUser:
        me = await self._call(lambda: self.bot.get_me(request_timeout=self._timeout))
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
        reply = (
            ReplyParameters(message_id=reply_to_message_id, allow_sending_without_reply=True)
            if reply_to_message_id is not None
            else None
        )
        sent = await self._call(
            lambda: self.bot.send_message(
                chat_id=chat_id,
                text=text,
                parse_mode="HTML",
                reply_markup=_markup(reply_markup),
                message_thread_id=message_thread_id,
                reply_parameters=reply,
                request_timeout=self._timeout,
            )
        )
        return SentMessage(sent.chat.id, sent.message_id, sent.message_thread_id)

    async def edit_message_text(
        self, chat_id: int | str, message_id: int, text: str, *, reply_markup: InlineKeyboard | None = None
    ) -> None:
        await self._call(
            lambda: self.bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=message_id, parse_mode="HTML",
                reply_markup=_markup(reply_markup), request_timeout=self._timeout,
            )
        )

    async def answer_callback_query(self, callback_query_id: str, text: str | None = None) -> None:
        await self._call(
            lambda: self.bot.answer_callback_query(callback_query_id, text=text, request_timeout=self._timeout)
        )

    async def send_chat_action(
        self, chat_id: int | str, action: str = "typing", *, message_thread_id: int | None = None
    ) -> None:
        await self._call(
            lambda: self.bot.send_chat_action(
                chat_id, action, message_thread_id=message_thread_id, request_timeout=self._timeout
            )
        )

    async def get_chat(self, chat_id: int | str) -> ChatInfo:
        chat = await self._call(lambda: self.bot.get_chat(chat_id, request_timeout=self._timeout))
        return ChatInfo(chat.id, chat.type, bool(chat.is_forum))

    async def get_chat_member_status(self, chat_id: int | str, user_id: int) -> str:
        member = await self._call(lambda: self.bot.get_chat_member(chat_id, user_id, request_timeout=self._timeout))
        return str(member.status.value if hasattr(member.status, "value") else member.status)

    async def create_forum_topic(self, chat_id: int | str, name: str) -> int:
        topic = await self._call(lambda: self.bot.create_forum_topic(chat_id, name, request_timeout=self._timeout))
        return topic.message_thread_id

    async def edit_forum_topic(self, chat_id: int | str, message_thread_id: int, name: str) -> None:
        await self._call(
            lambda: self.bot.edit_forum_topic(chat_id, message_thread_id, name=name, request_timeout=self._timeout)
        )

    async def pin_chat_message(self, chat_id: int | str, message_id: int) -> None:
        await self._call(
            lambda: self.bot.pin_chat_message(
                chat_id, message_id, disable_notification=True, request_timeout=self._timeout
            )
        )

    async def get_file(self, file_id: str) -> FileInfo:
        file = await self._call(lambda: self.bot.get_file(file_id, request_timeout=self._timeout))
        return FileInfo(file.file_id, file.file_path, file.file_size)

    async def download_file(self, file_path: str) -> bytes:
        async def download() -> bytes:
            buffer = await self.bot.download_file(file_path, timeout=self._timeout)
            assert buffer is not None
            return buffer.read()

        return await self._call(download)

    async def get_updates(
        self, offset: int | None, timeout: int, allowed_updates: Sequence[str] | None = None, *, limit: int = 100,  # noqa: ASYNC109 - the long-poll seconds Telegram waits, not a deadline
    ) -> list[dict[str, Any]]:
        method = RawGetUpdates(
            offset=offset, limit=limit, timeout=timeout,
            allowed_updates=list(allowed_updates) if allowed_updates is not None else None,
        )
        return await self._call(lambda: self.bot(method, request_timeout=self._timeout + timeout))

    async def set_webhook(self, url: str, *, secret_token: str, allowed_updates: Sequence[str] | None = None) -> None:
        await self._call(
            lambda: self.bot.set_webhook(
                url, secret_token=secret_token,
                allowed_updates=list(allowed_updates) if allowed_updates is not None else None,
                request_timeout=self._timeout,
            )
        )

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        await self._call(
            lambda: self.bot.delete_webhook(drop_pending_updates=drop_pending_updates, request_timeout=self._timeout)
        )

    async def set_my_commands(self, commands: Sequence[tuple[str, str]], *, language_code: str | None = None) -> None:
        listed = [BotCommand(command=name, description=description) for name, description in commands]
        await self._call(
            lambda: self.bot.set_my_commands(listed, language_code=language_code, request_timeout=self._timeout)
        )

    async def close(self) -> None:
        await self.bot.session.close()


def open_aiogram(options: ClientOptions) -> TelegramApi:
    problem = token_problem(options.token)
    if problem is not None:  # aiogram's own check would raise a bare "Token is invalid!"
        raise Unauthorized(problem)
    session = AiohttpSession(api=TelegramAPIServer.from_base(options.api_base.rstrip("/")))
    session.timeout = options.request_timeout
    try:
        bot = Bot(options.token, session=session)
    except TokenValidationError as exc:
        raise Unauthorized(f"secrets.telegram_token: {exc}") from None
    return AiogramApi(bot, options.request_timeout)
