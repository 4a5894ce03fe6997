"""Calling the Bot API with Telegram's rules, in two shapes.

- ``send_parts`` — a customer message (the outbox reader's one attempt, through
  ``TelegramChannel.send``): its HTML parts in order, from the first one not accepted yet,
  stopping at the first failure, which it classifies for the reader (``bot/channels/port.py``)
  instead of sleeping through it. A 429 held here would hold every other chat.
- ``Sender.call`` — every other call (getMe, answerCallbackQuery, getFile, setMyCommands):
  retried in place, since nothing queues behind them and they are not stored:

  - ``RetryAfter`` (429) — sleep exactly ``retry_after``, then call again (nothing happened,
    so the retry cannot duplicate); up to ``max_rate_limited`` times.
  - ``ServerError`` / ``NetworkError`` (5xx, timeouts) — capped exponential backoff, up to
    ``max_attempts``.
  - ``Forbidden`` (403) and ``BadRequest`` (400) — final at once.

Neither aiogram nor python-telegram-bot retries a call by itself, so this is the one policy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.channels.port import DeliveryResult, Outcome
from bot.channels.telegram.api import (
    Forbidden,
    NetworkError,
    RetryAfter,
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


def classify(exc: BaseException) -> tuple[Outcome, float | None]:
    """A failed send → what the outbox reader should do (and the wait a 429 asked for)."""
    if isinstance(exc, RetryAfter):
        return Outcome.RETRY_AFTER, exc.retry_after or 1.0
    if isinstance(exc, (ServerError, NetworkError)):
        return Outcome.TRANSIENT, None
    if isinstance(exc, Forbidden):
        return Outcome.UNREACHABLE, None
    if isinstance(exc, TelegramError):
        return Outcome.PERMANENT, None
    return Outcome.TRANSIENT, None  # not the API's: a bug or a resource limit, retried then failed


async def send_parts(
    api: TelegramApi,
    chat_id: int | str,
    chunks: Sequence[Chunk],
    *,
    start: int = 0,
    message_thread_id: int | None = None,
    pace: Callable[[], Awaitable[object]] | None = None,
) -> DeliveryResult:
    """One attempt: ``chunks[start:]`` in order, stopping at the first that is not accepted.

    ``parts_sent`` in the result counts every part accepted so far (``start`` included), so
    the next attempt starts after them and never shows the customer a part twice. ``pace``
    waits for the sending limits before every part but the attempt's first (which the outbox
    reader paced before claiming the message).
    """
    first = sent = min(max(start, 0), len(chunks))
    for index in range(sent, len(chunks)):
        chunk = chunks[index]
        try:
            if pace is not None and index > first:
                await pace()
            await api.send_message(
                chat_id, chunk.text, reply_markup=chunk.keyboard, message_thread_id=message_thread_id
            )
        except Exception as exc:  # noqa: BLE001 - classified for the reader, never lost
            if not isinstance(exc, TelegramError):
                log.exception("unexpected error while sending", extra={"chat": str(chat_id)})
            outcome, retry_after = classify(exc)
            where = f" (part {index + 1} of {len(chunks)})" if len(chunks) > 1 else ""
            return DeliveryResult(outcome, f"{exc.__class__.__name__}: {exc}{where}", retry_after, sent)
        sent = index + 1
    return DeliveryResult(Outcome.OK, parts_sent=sent)
