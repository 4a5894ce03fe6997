"""Telegram's sending limits, per chat kind, over the shared limiter (``storage/send_limits.py``).

Telegram documents its flood limits loosely: about 30 messages a second per bot, no more than
one a second to one chat, 20 a minute to one group (``channels.telegram.limits`` sets them).
Which limit a chat gets is read from its id: Telegram gives groups, supergroups and channels
negative ids and users positive ones, so no ``getChat`` call is needed per send.

If the shared (Redis) limiter cannot answer, sending goes on under this process's own limiter
rather than stopping every reply (for ``RETRY_SHARED`` seconds, then the shared one is asked
again): the limits are a courtesy that avoids 429s, and a 429 that
slips through still holds only its own chat (the outbox reader's ``retry_after``).
"""

from __future__ import annotations

import logging
import time

from common.errors import StorageError
from storage.send_limits import MemorySendLimiter, Rate, SendLimiter, Turn

log = logging.getLogger("deskbot.telegram.limits")
RETRY_SHARED = 30.0


def is_group(chat_id: int | str) -> bool:
    """Groups, supergroups and channels have negative ids on Telegram; users positive ones."""
    return str(chat_id).lstrip().startswith("-")


class ChatLimits:
    """``await limits.pace(chat_id)`` before each message: waits for the bot's and the chat's turn."""

    def __init__(self, limiter: SendLimiter, *, private: Rate, group: Rate) -> None:
        self.limiter = limiter
        self.private = private
        self.group = group
        self._local = MemorySendLimiter(limiter.bot)  # while the shared limiter fails
        self._local_until = 0.0

    def rate_for(self, chat_id: int | str) -> Rate:
        return self.group if is_group(chat_id) else self.private

    async def reserve(self, chat_id: int | str) -> Turn:
        """Book ``chat_id``'s next send if it may send (see ``SendLimiter.reserve``)."""
        chat, rate = str(chat_id), self.rate_for(chat_id)
        if time.monotonic() >= self._local_until:
            try:
                return await self.limiter.reserve(chat, rate)
            except StorageError as exc:
                self._fall_back(exc)
        return await self._local.reserve(chat, rate)

    async def pace(self, chat_id: int | str) -> float:
        """Wait for ``chat_id``'s next turn and take it; returns the seconds waited."""
        chat, rate = str(chat_id), self.rate_for(chat_id)
        if time.monotonic() >= self._local_until:
            try:
                return await self.limiter.acquire(chat, rate)
            except StorageError as exc:
                self._fall_back(exc)
        return await self._local.acquire(chat, rate)

    def _fall_back(self, exc: StorageError) -> None:
        log.warning(
            "shared send limits unavailable; this process limits itself",
            extra={"error": str(exc), "for_seconds": RETRY_SHARED},
        )
        self._local_until = time.monotonic() + RETRY_SHARED

    async def close(self) -> None:
        await self.limiter.close()
