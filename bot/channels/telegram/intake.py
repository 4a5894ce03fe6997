"""How updates arrive, whichever library fetches them: the ``UpdateSource`` port.

Each library keeps its own machinery for the intake: aiogram's ``Dispatcher`` and PTB's
``Application``/``Updater`` run the long poll (offsets, backoff, confirmation) and parse
webhook bodies into their models. Both then hand every update to one ``UpdateSink`` as
Telegram's raw JSON, so what happens next is written once (``channel.py``).

Updates are handled one at a time, in order: the library confirms an update (the next
``getUpdates`` offset) only after the sink returned, so a crash mid-turn re-fetches it and
the pipeline's delivery key drops what was already done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.channels.telegram.api import TelegramApi

UpdateSink = Callable[[dict[str, Any]], Awaitable[None]]

# What deskbot handles. Sent explicitly: Telegram remembers the last list it was given.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")


class UpdateSource(ABC):
    """A library's update intake, feeding ``sink`` with raw update JSON."""

    @abstractmethod
    async def start_polling(self, sink: UpdateSink, allowed_updates: Sequence[str] = ALLOWED_UPDATES) -> None:
        """Delete any webhook, then long-poll in the background until ``stop``."""

    @abstractmethod
    async def feed_webhook(self, raw: dict[str, Any], sink: UpdateSink) -> None:
        """One webhook body through the library's parsing to ``sink``; raises ``ValueError`` if malformed."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop polling (if running) and close the library's resources."""


@dataclass(frozen=True, slots=True)
class TelegramClient:
    """The two halves one library provides: the Bot API calls and the update intake."""

    library: str
    api: TelegramApi
    updates: UpdateSource

    async def close(self) -> None:
        await self.updates.stop()
        await self.api.close()


@dataclass(frozen=True, slots=True)
class ClientOptions:
    token: str
    api_base: str = "https://api.telegram.org"
    request_timeout: float = 20.0  # a send; getUpdates adds its long-poll time
    polling_timeout: int = 10


def open_client(library: str, options: ClientOptions) -> TelegramClient:
    """The configured library's client; the library is imported only when chosen."""
    if library == "aiogram":
        from bot.channels.telegram.aiogram_api import open_aiogram

        return open_aiogram(options)
    if library == "python-telegram-bot":
        from bot.channels.telegram.ptb_api import open_ptb

        return open_ptb(options)
    raise ValueError(f"unknown Telegram library {library!r}")
