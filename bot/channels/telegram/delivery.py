"""Sending with Telegram's rules: wait out 429s, retry transient failures, give up on 403.

Neither library retries a send (see ``TELEGRAM.md``), so the policy lives here, once, over
the port's neutral errors:

- ``RetryAfter`` (429) — sleep exactly ``retry_after``, then send again. Nothing was
  delivered, so the retry cannot duplicate; up to ``max_rate_limited`` times.
- ``ServerError`` / ``NetworkError`` (5xx, timeouts) — capped exponential backoff, up to
  ``max_attempts``. A timeout may hide a message that did arrive: retrying risks a
  duplicate, which beats a reply the customer never gets.
- ``Forbidden`` (403) and ``BadRequest`` (400) — final at once; the caller records them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.channels.telegram.api import (
    Forbidden,
    NetworkError,
    RetryAfter,
    SentMessage,
    ServerError,
    TelegramApi,
    TelegramError,
)
from bot.channels.telegram.render import Chunk

log = logging.getLogger("deskbot.telegram.delivery")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5  # for 5xx and network errors
    max_rate_limited: int = 20  # 429s in a row before giving up
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 600.0  # a longer flood wait is treated as a failure


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    sent: tuple[SentMessage, ...]
    error: str | None = None
    forbidden: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class Sender:
    """Runs Bot API calls under the retry policy; ``sleep`` is injectable for tests."""

    def __init__(self, api: TelegramApi, policy: RetryPolicy | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.api = api
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    async def call(self, make: Callable[[], Awaitable[T]], what: str = "call") -> T:
        """``make()`` until it succeeds or fails for good; raises the last ``TelegramError``."""
        policy = self.policy
        failures = rate_limited = 0
        while True:
            try:
                return await make()
            except RetryAfter as exc:
                rate_limited += 1
                wait = exc.retry_after or 1.0
                if rate_limited > policy.max_rate_limited or wait > policy.max_retry_after:
                    raise
                log.warning("rate limited", extra={"call": what, "retry_after": wait, "times": rate_limited})
                await self._sleep(wait)
            except (ServerError, NetworkError) as exc:
                failures += 1
                if failures >= policy.max_attempts:
                    raise
                delay = min(policy.max_delay, policy.base_delay * 2 ** (failures - 1))
                log.warning("transient failure, retrying",
                            extra={"call": what, "error": exc.__class__.__name__, "delay": delay})
                await self._sleep(delay)

    async def send(
        self,
        chat_id: int | str,
        chunks: Sequence[Chunk],
        *,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> DeliveryResult:
        """Send the chunks in order; stop at the first that cannot be delivered."""
        sent: list[SentMessage] = []
        for index, chunk in enumerate(chunks):
            try:
                send = functools.partial(
                    self.api.send_message,
                    chat_id,
                    chunk.text,
                    reply_markup=chunk.keyboard,
                    message_thread_id=message_thread_id,
                    reply_to_message_id=reply_to_message_id if index == 0 else None,
                )
                message = await self.call(send, "sendMessage")
            except Exception as exc:  # noqa: BLE001 - a reply that cannot go out is recorded, never lost
                if not isinstance(exc, TelegramError):
                    log.exception("unexpected error while sending", extra={"chat": str(chat_id)})
                where = f" (part {index + 1} of {len(chunks)})" if len(chunks) > 1 else ""
                error = f"{exc.__class__.__name__}: {exc}{where}"
                return DeliveryResult(tuple(sent), error, forbidden=isinstance(exc, Forbidden))
            sent.append(message)
        return DeliveryResult(tuple(sent))
