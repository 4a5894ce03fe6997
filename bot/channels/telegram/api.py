"""What deskbot needs from the Telegram Bot API, whichever client library makes the calls.

The customer channel, the agents' group and the delivery policy (split, escape, retry)
are written once against ``TelegramApi``; ``aiogram_api.py`` and ``ptb_api.py`` implement it
with aiogram 3 and python-telegram-bot 22, translating each library's exceptions into the
errors below so retry decisions never depend on which library is configured. Updates cross
this boundary as Telegram's own JSON (``dict``), which both libraries can produce, so the
parsing of an update into ``Incoming`` is shared too.

``ClientOptions`` is here too, beside the port: the adapters read it to open their bot, the
intake (``intake.py``) to pace its long poll, and ``client.py`` hands it to both — so neither
side imports the other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import ChannelError

CHANNEL = "telegram"


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How to reach the Bot API (token, server, timeouts) and how to poll it."""

    token: str
    api_base: str = "https://api.telegram.org"
    request_timeout: float = 20.0  # a send; getUpdates adds its long-poll time
    polling_timeout: int = 10
    concurrency: int = 8  # chats of one batch handled at the same time
    grace_seconds: float = 10.0  # on stop, how long the batch in hand may take to finish
    backoff_seconds: float = 1.0  # first wait after a 5xx or network error; doubles
    max_backoff_seconds: float = 30.0
    agents_chat_id: int | None = None  # the agents' group: not announced as "set agents_chat_id"


@dataclass(frozen=True, slots=True)
class InlineButton:
    text: str
    callback_data: str  # at most 64 bytes: Telegram's limit


InlineKeyboard = Sequence[Sequence[InlineButton]]


@dataclass(frozen=True, slots=True)
class BotUser:
    id: int
    username: str | None


@dataclass(frozen=True, slots=True)
class SentMessage:
    chat_id: int
    message_id: int
    message_thread_id: int | None = None


@dataclass(frozen=True, slots=True)
class ChatInfo:
    id: int
    type: str  # private, group, supergroup, channel
    is_forum: bool = False


@dataclass(frozen=True, slots=True)
class FileInfo:
    file_id: str
    file_path: str | None
    file_size: int | None


class TelegramError(ChannelError):
    """A Bot API call failed; subclasses say what the caller should do about it."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(CHANNEL, message, retry_after)


class RetryAfter(TelegramError):
    """429 Too Many Requests: wait ``retry_after`` seconds, then the same call may succeed."""

    def __init__(self, retry_after: float, message: str = "Too Many Requests") -> None:
        super().__init__(f"{message} (retry after {retry_after:g} s)", retry_after)


class Forbidden(TelegramError):
    """403: the user blocked the bot or the bot was removed; retrying never helps."""


class BadRequest(TelegramError):
    """400: the request itself is wrong (message not found, text too long, bad markup)."""


class ServerError(TelegramError):
    """5xx from the Bot API: transient, retry with backoff."""


class NetworkError(TelegramError):
    """Timeout or connection failure: transient, retry with backoff."""


class Conflict(TelegramError):
    """409 on getUpdates: a webhook is set, or another process polls with the same token."""


class Unauthorized(TelegramError):
    """401/404 on every call: Telegram refuses the bot token; nothing works until it is fixed."""


class TelegramApi(ABC):
    """The Bot API calls deskbot makes. ``parse_mode`` is always HTML (see ``render.py``)."""

    @abstractmethod
    async def get_me(self) -> BotUser: ...

    @abstractmethod
    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_markup: InlineKeyboard | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> SentMessage: ...

    @abstractmethod
    async def edit_message_text(
        self, chat_id: int | str, message_id: int, text: str, *, reply_markup: InlineKeyboard | None = None
    ) -> None: ...

    @abstractmethod
    async def answer_callback_query(self, callback_query_id: str, text: str | None = None) -> None: ...

    @abstractmethod
    async def send_chat_action(
        self, chat_id: int | str, action: str = "typing", *, message_thread_id: int | None = None
    ) -> None: ...

    @abstractmethod
    async def get_chat(self, chat_id: int | str) -> ChatInfo: ...

    @abstractmethod
    async def get_chat_member_status(self, chat_id: int | str, user_id: int) -> str:
        """creator, administrator, member, restricted, left or kicked."""

    @abstractmethod
    async def create_forum_topic(self, chat_id: int | str, name: str) -> int:
        """The new topic's ``message_thread_id``."""

    @abstractmethod
    async def edit_forum_topic(self, chat_id: int | str, message_thread_id: int, name: str) -> None: ...

    @abstractmethod
    async def pin_chat_message(self, chat_id: int | str, message_id: int) -> None: ...

    @abstractmethod
    async def get_file(self, file_id: str) -> FileInfo: ...

    @abstractmethod
    async def download_file(self, file_path: str) -> bytes: ...

    @abstractmethod
    async def get_updates(
        self, offset: int | None, timeout: int, allowed_updates: Sequence[str] | None = None, *, limit: int = 100,  # noqa: ASYNC109 - the long-poll seconds Telegram waits, not a deadline
    ) -> list[dict[str, Any]]:
        """One ``getUpdates`` call, the updates as Telegram's raw JSON (never the library's models).

        ``offset`` confirms every update below it. Raw JSON because a result the library cannot
        parse would otherwise fail the call and the same batch would be fetched forever. The
        client's read timeout is ``timeout`` plus the request timeout, so a long poll is not
        mistaken for a dead connection.
        """

    @abstractmethod
    async def set_webhook(
        self, url: str, *, secret_token: str, allowed_updates: Sequence[str] | None = None
    ) -> None: ...

    @abstractmethod
    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> None: ...

    @abstractmethod
    async def set_my_commands(
        self, commands: Sequence[tuple[str, str]], *, language_code: str | None = None
    ) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...
