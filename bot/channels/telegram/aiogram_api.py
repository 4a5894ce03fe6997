"""The Telegram port on aiogram 3: Bot API calls through ``aiogram.Bot``, intake through its ``Dispatcher``.

aiogram's exceptions become the port's neutral errors here and nowhere else, so the
delivery policy never depends on the library. The dispatcher gets one outer middleware
that hands every update, as Telegram's JSON, to deskbot's sink: aiogram still does the
long poll (offsets, backoff), the webhook parsing and the model validation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
    TelegramObject,
    Update,
)
from pydantic import ValidationError

from bot.channels.telegram.api import (
    BadRequest,
    BotUser,
    ChatInfo,
    FileInfo,
    Forbidden,
    InlineKeyboard,
    NetworkError,
    RetryAfter,
    SentMessage,
    ServerError,
    TelegramApi,
    TelegramError,
)
from bot.channels.telegram.intake import (
    ALLOWED_UPDATES,
    ClientOptions,
    TelegramClient,
    UpdateSink,
    UpdateSource,
)

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
    if isinstance(exc, TelegramUnauthorizedError):
        return TelegramError(f"the bot token was refused: {message}")
    if isinstance(exc, TelegramAPIError):
        return BadRequest(message)
    return TelegramError(message)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except AiogramError as exc:
        raise translate(exc) from exc


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


def raw_update(update: TelegramObject) -> dict[str, Any]:
    """aiogram's model back to Telegram's JSON (aliases such as ``from``, no nulls)."""
    data: dict[str, Any] = update.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


class AiogramUpdates(UpdateSource):
    """aiogram's ``Dispatcher`` fetching (polling) or parsing (webhook) updates for the sink."""

    def __init__(self, bot: Bot, polling_timeout: int = 10) -> None:
        self.bot = bot
        self.polling_timeout = polling_timeout
        self.dispatcher = Dispatcher()
        self._sink: UpdateSink | None = None
        self._polling: asyncio.Task[None] | None = None
        self.dispatcher.update.outer_middleware(self._to_sink)

    async def _to_sink(
        self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]], event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        sink = data.get("deskbot_sink") or self._sink
        if sink is None:
            log.error("update arrived before a sink was set", extra={"update": getattr(event, "update_id", None)})
            return None
        await sink(raw_update(event))
        return True

    async def start_polling(self, sink: UpdateSink, allowed_updates: Sequence[str] = ALLOWED_UPDATES) -> None:
        self._sink = sink
        # aiogram's polling does not remove a webhook; a stale one means 409 forever.
        async with _translated():
            await self.bot.delete_webhook()
        started = asyncio.Event()
        self.dispatcher.startup.register(started.set)
        self._polling = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot,
                polling_timeout=self.polling_timeout,
                handle_as_tasks=False,  # in order; confirmed only once handled
                allowed_updates=list(allowed_updates),
                handle_signals=False,
                close_bot_session=False,
            ),
            name="telegram-polling-aiogram",
        )
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait({waiting, self._polling}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._polling.done():
            self._polling.result()  # polling died while starting: raise its error

    async def feed_webhook(self, raw: dict[str, Any], sink: UpdateSink) -> None:
        try:
            update = Update.model_validate(raw, context={"bot": self.bot})
        except ValidationError as exc:
            raise ValueError(f"not a Telegram update: {exc.error_count()} invalid fields") from None
        await self.dispatcher.feed_update(self.bot, update, deskbot_sink=sink)

    async def stop(self) -> None:
        if self._polling is None:
            return
        polling, self._polling = self._polling, None
        if not polling.done():
            with contextlib.suppress(RuntimeError):  # "Polling is not started": already ending
                await self.dispatcher.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await polling


def open_aiogram(options: ClientOptions) -> TelegramClient:
    session = AiohttpSession(api=TelegramAPIServer.from_base(options.api_base.rstrip("/")))
    session.timeout = options.request_timeout
    bot = Bot(options.token, session=session)
    api = AiogramApi(bot, options.request_timeout)
    return TelegramClient("aiogram", api, AiogramUpdates(bot, options.polling_timeout))
