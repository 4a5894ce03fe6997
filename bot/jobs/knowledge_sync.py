"""Keeps every process's view of the shop's knowledge in step with what admins teach it.

An admin's new FAQ phrasing or product alias is stored in the ticket store; the process that
stored it rebuilds its :class:`~knowledge.bundle.ShopKnowledge` off the event loop and swaps
``services.shop`` (a turn in flight keeps the one it started with), and a ``knowledge_changed``
event on the bus makes every other process — web fronts, workers, the Telegram poller — do the
same. No restart anywhere.

Reloads are serialised and coalesced: a burst of changes costs one rebuild per process, and a
rebuild that started before a change never overwrites one that saw it. Pub/sub is
fire-and-forget, so a process whose subscription was lost reloads once it is back, in case it
missed an event meanwhile. A failed rebuild (the shop's file was just broken by hand) keeps the
knowledge the process had and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from common.errors import StorageError
from handlers.context import Services
from knowledge.bundle import ShopKnowledge
from storage.events import EventBus
from storage.missed import KNOWLEDGE_CHANGED, announce_change
from storage.tickets import TicketSession

log = logging.getLogger("deskbot.knowledge")

# How long start-up waits for the bus subscription (Redis confirms within its own timeout).
SUBSCRIBE_WAIT_SECONDS = 10.0
RETRY_SECONDS = (1.0, 2.0, 5.0, 15.0, 60.0)


class KnowledgeSync:
    """``await sync.reload()`` rebuilds and swaps; ``async with sync.watching():`` follows the bus."""

    def __init__(self, load: Callable[[], Awaitable[ShopKnowledge]], services: Services, bus: EventBus) -> None:
        self._load = load
        self.services = services
        self.bus = bus
        # Tells this process's own events apart from other processes' (it reloaded already).
        self.origin = uuid.uuid4().hex
        self._lock = asyncio.Lock()
        self._requested = 0
        self._done = 0
        self.reloads = 0  # rebuilds done, for tests and logs

    async def reload(self) -> ShopKnowledge:
        """Rebuild from the shop's files and the stored additions, then swap it in.

        Returns once a rebuild that started after this call has been swapped in, so the
        caller's change is in effect; concurrent callers share one rebuild.
        """
        self._requested += 1
        wanted = self._requested
        async with self._lock:
            if self._done >= wanted:
                return self.services.shop
            covers = self._requested
            shop = await self._load()
            self.services.shop = shop
            self._done = covers
            self.reloads += 1
        log.info("shop knowledge reloaded", extra={"reloads": self.reloads})
        return shop

    def announce(self, tx: TicketSession, actor: str) -> None:
        """Have ``tx`` tell the other processes, once it commits, to reload."""
        announce_change(tx, actor, {"origin": self.origin})

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Reload whenever another process announces a change, for the duration of the block."""
        subscribed = asyncio.Event()
        task = asyncio.create_task(self._watch(subscribed), name="knowledge-sync")
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_SECONDS)
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, subscribed: asyncio.Event) -> None:
        failures = 0
        while True:
            try:
                async with self.bus.subscribe() as events:
                    subscribed.set()
                    if failures:
                        await self._reload_logged()  # an event may have been lost meanwhile
                    failures = 0
                    async for event in events:
                        if event.kind == KNOWLEDGE_CHANGED and event.data.get("origin") != self.origin:
                            await self._reload_logged()
            except StorageError as exc:
                subscribed.set()  # start-up goes on; the bus is retried below
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("knowledge sync: bus unavailable", extra={"error": str(exc), "retry_in": delay})
                await asyncio.sleep(delay)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:  # noqa: BLE001 - a broken file must not stop the watch; the old knowledge stays
            log.exception("shop knowledge could not be reloaded; keeping the current one")
