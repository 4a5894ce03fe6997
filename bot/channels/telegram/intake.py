"""How updates arrive, whichever library makes the calls: one long poll, one webhook entry.

An update is confirmed to Telegram only after it is stored. Telegram forgets every update
below the ``offset`` of a ``getUpdates`` call, so the offset is the confirmation: this loop
hands each fetched update to the sink (``TelegramChannel.process``, which returns once the
update is stored) and only then moves the offset, which the next ``getUpdates`` sends. The
libraries' own pollers could not promise that: PTB's ``Updater`` moves the offset as soon as
a batch is queued (a stop lost every update fetched but not yet handled), so the loop is
written once here and drives ``getUpdates`` through each library's bot (``TelegramApi``),
which still builds the requests and checks the answers.

A batch is processed per chat: one chat's updates one after another in ``update_id`` order
(a conversation is never reordered), different chats concurrently, at most ``concurrency``
at a time. The batch is confirmed only when all of it is stored. That is safe because the
offset is one mark for every chat: confirming ``N + 1`` forgets every update up to ``N``, and
all of them have returned from the sink by then. If the process dies mid-batch, nothing of
the batch was confirmed: Telegram hands it all over again, and what was already stored is
dropped by its delivery key (``channel`` + ``update_id``, unique in the database) — at
least once in, exactly once stored. An update the sink fails on is not confirmed either:
the offset stops just below it (everything below is stored), that chat's later updates
wait, and the next fetch, after a back-off, hands it over again.

Stopping (SIGTERM → ``stop``): no new fetch, the long poll in flight is cancelled, the
batch being handled gets ``grace_seconds`` to finish, then a last ``getUpdates(offset,
timeout=0)`` confirms what was stored (as PTB does) — never what was not. A cancelled loop
task confirms nothing more; the unconfirmed updates come again at the next start.

The webhook (``feed_webhook``) hands the same raw JSON to the same sink, and its 200 is the
confirmation (``bot/web/telegram.py`` answers only after the sink returned). Updates cross this module
as Telegram's raw JSON in both modes: the libraries' models are not used for intake, since
a field a library does not know yet would otherwise block the long poll for ever (the batch
cannot be parsed, so it is never confirmed) or turn a webhook call into a 4xx; the body is
read defensively by ``updates.py`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.channels.telegram.api import (
    ClientOptions,
    Conflict,
    NetworkError,
    RetryAfter,
    ServerError,
    TelegramApi,
    TelegramError,
    Unauthorized,
)
from bot.channels.telegram.updates import chat_command, chat_key, group_sighting

log = logging.getLogger("deskbot.telegram.intake")

UpdateSink = Callable[[dict[str, Any]], Awaitable[None]]
Sleep = Callable[[float], Coroutine[Any, Any, None]]

# What deskbot handles. Sent explicitly: Telegram remembers the last list it was given.
# ``my_chat_member``: the bot was added to (or removed from) a group — see ``GroupWatch``.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")


@dataclass
class _Batch:
    """One ``getUpdates`` answer and which of its updates the sink has stored."""

    ids: list[int]
    stored: set[int] = field(default_factory=set)

    def safe_offset(self) -> int:
        """The offset that confirms only stored updates: just below the first one not stored."""
        for update_id in self.ids:
            if update_id not in self.stored:
                return update_id
        return self.ids[-1] + 1


class GroupWatch:
    """Set-up help for the agents' group: says where the bot is, answers ``/chatid``.

    When the bot is added to a group, or sees a message in a group that is not the
    configured agents' chat, it logs once per chat the chat id to put in
    ``channels.telegram.agents_chat_id``; ``/chatid`` in any group answers with the id.
    Best effort: a failed answer is logged, never retried, never blocks the intake.
    """

    def __init__(self, api: TelegramApi, agents_chat_id: int | None = None) -> None:
        self.api = api
        self.agents_chat_id = agents_chat_id
        self._bot_username: str | None = None
        self._announced: set[int] = set()

    async def see(self, raw: dict[str, Any]) -> bool:
        """True if the update was a ``/chatid`` command, answered here and nothing else."""
        sighting = group_sighting(raw)
        if sighting is None:
            return False
        chat_id, title = sighting
        if chat_id != self.agents_chat_id and chat_id not in self._announced:
            self._announced.add(chat_id)
            log.info(f"bot is in group {title} (chat id {chat_id}): set channels.telegram.agents_chat_id "
                     "to this id to make it the agents' group", extra={"chat": chat_id})
        command = chat_command(raw)
        if command is None or command[0] != "chatid":
            return False
        try:
            if command[1] and command[1].lower() != (await self._username()).lower():
                return False  # /chatid@another_bot
            await self.api.send_message(chat_id, f"This chat's id is <code>{chat_id}</code> "
                                                 "(channels.telegram.agents_chat_id).")
        except TelegramError as exc:
            log.warning("could not answer /chatid", extra={"chat": chat_id, "error": str(exc)})
        return True

    async def _username(self) -> str:
        if self._bot_username is None:
            self._bot_username = (await self.api.get_me()).username or ""
        return self._bot_username


class PollingIntake:
    """The long poll and the webhook entry, shared by both libraries (see the module docstring)."""

    def __init__(self, api: TelegramApi, options: ClientOptions, *, sleep: Sleep = asyncio.sleep) -> None:
        self.api = api
        self.options = options
        self.groups = GroupWatch(api, options.agents_chat_id)
        self._sleep = sleep
        self._offset: int | None = None  # the next offset to send: confirms everything below
        self._confirmed: int | None = None  # the last offset Telegram accepted
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fetch: asyncio.Task[list[dict[str, Any]]] | None = None
        self._batch: _Batch | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start_polling(self, sink: UpdateSink, allowed_updates: Sequence[str] = ALLOWED_UPDATES) -> None:
        """Delete any webhook (a stale one means 409 for ever), then poll in the background."""
        await self.api.delete_webhook()
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(sink, allowed_updates), name="telegram-polling")

    async def run(self, sink: UpdateSink, allowed_updates: Sequence[str] = ALLOWED_UPDATES) -> None:
        """The loop itself, until ``stop`` (or cancelled, or the token is refused)."""
        backoff = self.options.backoff_seconds
        while not self._stopping.is_set():
            try:
                batch = await self._next_batch(allowed_updates)
            except RetryAfter as exc:
                wait = exc.retry_after or backoff
                log.warning("getUpdates rate-limited", extra={"retry_after": wait})
                await self._pause(wait)
                continue
            except Conflict as exc:
                log.error("getUpdates conflict: a webhook is set for this bot, or another process polls with "
                          "the same token; only one may. Stop the other one, or run `deskbot telegram "
                          "delete-webhook` to poll", extra={"error": str(exc), "retry_in": backoff})
                await self._pause(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_seconds)
                continue
            except Unauthorized as exc:
                log.error("Telegram refused the bot token (secrets.telegram_token): polling stopped",
                          extra={"error": str(exc)})
                return
            except (ServerError, NetworkError) as exc:
                log.warning("getUpdates failed; retrying", extra={"error": str(exc), "retry_in": backoff})
                await self._pause(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_seconds)
                continue
            except TelegramError as exc:  # 400 and the like: our request is wrong; keep trying, slowly
                log.error("getUpdates refused", extra={"error": str(exc), "retry_in": backoff})
                await self._pause(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_seconds)
                continue
            except Exception:  # a bug in a library or here: the intake must outlive it
                log.exception("getUpdates failed unexpectedly; retrying", extra={"retry_in": backoff})
                await self._pause(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_seconds)
                continue
            if batch is None:  # the long poll was cancelled by ``stop``
                break
            if not batch:
                backoff = self.options.backoff_seconds
                continue
            if await self._handle(batch, sink):
                backoff = self.options.backoff_seconds
            else:  # a sink failed: fetch it again, after a pause (the database may be down)
                await self._pause(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_seconds)

    async def stop(self) -> None:
        """Stop fetching; let the batch in hand finish (bounded); confirm what was stored."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        if self._fetch is not None:
            self._fetch.cancel()
        done, _ = await asyncio.wait({task}, timeout=self.options.grace_seconds)
        if not done:
            log.warning("stopping: updates still being handled after the grace period are not confirmed",
                        extra={"grace_seconds": self.options.grace_seconds})
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._confirm_final()

    async def _confirm_final(self) -> None:
        if self._batch is not None:  # cut short: only what the sink stored
            self._offset = self._batch.safe_offset()
            self._batch = None
        if self._offset is None or self._offset == self._confirmed:
            return
        try:
            await self.api.get_updates(self._offset, 0, None, limit=1)
            self._confirmed = self._offset
            log.info("confirmed the stored updates before stopping", extra={"offset": self._offset})
        except TelegramError as exc:  # not confirmed: the next start fetches them again, the key drops them
            log.warning("could not confirm the stored updates", extra={"offset": self._offset, "error": str(exc)})

    # -- webhook ------------------------------------------------------------------------------
    async def feed_webhook(self, raw: dict[str, Any], sink: UpdateSink) -> None:
        """One webhook body to the sink; returns once stored, raises if it was not."""
        if not await self.groups.see(raw):
            await sink(raw)

    # -- the loop's steps -------------------------------------------------------------------------
    async def _next_batch(self, allowed_updates: Sequence[str]) -> list[dict[str, Any]] | None:
        """One long poll, sending the offset (which confirms the last batch); None if cancelled by ``stop``."""
        offset = self._offset
        self._fetch = asyncio.create_task(
            self.api.get_updates(offset, self.options.polling_timeout, allowed_updates)
        )
        try:
            await asyncio.wait({self._fetch})
        except asyncio.CancelledError:  # the loop itself was cancelled: so is its long poll
            self._fetch.cancel()
            raise
        fetch, self._fetch = self._fetch, None
        if fetch.cancelled():
            return None
        updates = fetch.result()
        self._confirmed = offset
        # Telegram answers in update_id order; anything at or above the offset is new.
        return [u for u in updates if isinstance(u.get("update_id"), int) and (offset is None or
                                                                               u["update_id"] >= offset)]

    async def _handle(self, updates: list[dict[str, Any]], sink: UpdateSink) -> bool:
        """The batch through the sink (per chat in order, chats concurrently); True if all stored."""
        updates = sorted(updates, key=lambda u: int(u["update_id"]))
        batch = self._batch = _Batch([int(u["update_id"]) for u in updates])
        chats: dict[object, list[dict[str, Any]]] = defaultdict(list)
        for update in updates:
            chats[chat_key(update)].append(update)
        slots = asyncio.Semaphore(max(1, self.options.concurrency))
        failed: list[int] = []

        async def one_chat(chat_updates: list[dict[str, Any]]) -> None:
            async with slots:
                for update in chat_updates:
                    update_id = int(update["update_id"])
                    try:
                        if not await self.groups.see(update):
                            await sink(update)
                    except Exception:
                        # Not stored: not confirmed; this chat's later updates wait for it.
                        log.exception("telegram update not stored; it will be fetched again",
                                      extra={"update": update_id})
                        failed.append(update_id)
                        return
                    batch.stored.add(update_id)

        async with asyncio.TaskGroup() as group:  # cancelling the loop cancels the chats' tasks
            for chat_updates in chats.values():
                group.create_task(one_chat(chat_updates))
        self._offset = batch.safe_offset()
        self._batch = None
        return not failed

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` unless ``stop`` comes first."""
        if self._stopping.is_set():
            return
        pause = asyncio.create_task(self._sleep(seconds))
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({pause, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pause.cancel()
            stopping.cancel()

