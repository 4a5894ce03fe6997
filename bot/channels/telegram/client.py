"""One Telegram client: the configured library's Bot API calls, and deskbot's intake over them.

Kept apart from both halves it joins: the adapters (``aiogram_api.py``, ``ptb_api.py``) and
the intake (``intake.py``) each know only the port (``api.py``), and this module is the one
that picks a library and puts the two together. A library is imported only when chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.channels.telegram.api import ClientOptions, TelegramApi
from bot.channels.telegram.intake import PollingIntake

LIBRARIES = ("aiogram", "python-telegram-bot")


@dataclass(frozen=True, slots=True)
class TelegramClient:
    """What one library provides: the Bot API calls; and the intake built on them."""

    library: str
    api: TelegramApi
    updates: PollingIntake

    async def close(self) -> None:
        await self.updates.stop()
        await self.api.close()


def open_api(library: str, options: ClientOptions) -> TelegramApi:
    """The configured library's Bot API port (no network yet)."""
    if library == "aiogram":
        from bot.channels.telegram.aiogram_api import open_aiogram

        return open_aiogram(options)
    if library == "python-telegram-bot":
        from bot.channels.telegram.ptb_api import open_ptb

        return open_ptb(options)
    raise ValueError(f"unknown Telegram library {library!r}")


def open_client(library: str, options: ClientOptions) -> TelegramClient:
    """The configured library's client; the library is imported only when chosen."""
    api = open_api(library, options)
    return TelegramClient(library, api, PollingIntake(api, options))
