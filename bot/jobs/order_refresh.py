"""Keeps the shop's order ids in step with the ticket store while deskbot runs.

Orders arrive while the bot serves customers: ``deskbot orders import`` from another
process, a scheduled export, another worker. A customer quoting a just-imported id must be
understood, and a new id format must teach the bot its shape. So before a turn the pipeline
asks :meth:`OrderIdsRefresher.check`: at most every few seconds it reads the store's orders
version (count, highest row id and order id: one query), and only when that changed does it
re-read the ids, rebuild :class:`~knowledge.order_ids.OrderIds` off the event loop and swap
``services.shop`` for a copy holding them. A turn never waits on another turn's rebuild.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from common.errors import StoreUnavailable
from handlers.context import Services
from knowledge.order_ids import OrderIds
from storage.tickets import TicketStore

log = logging.getLogger("deskbot.orders")

Version = tuple[int, int, str]


class OrderIdsRefresher:
    """Rebuilds the shop's :class:`OrderIds` when the store's orders changed."""

    def __init__(
        self,
        tickets: TicketStore,
        services: Services,
        pattern: str | None = None,
        *,
        version: Version | None = None,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``version``: the store's orders version read before the ids ``services.shop`` holds
        (None: unknown, so the first check rebuilds). ``every``: seconds between checks."""
        self.tickets = tickets
        self.services = services
        self.pattern = pattern
        self.every = every
        self._version = version
        # The ids that version describes; another swap of the whole shop (an admin's new FAQ
        # phrasing reloads everything) may bring ids of another moment: then the version is moot.
        self._installed: OrderIds | None = services.shop.order_ids if version is not None else None
        self._clock = clock
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    async def read_version(tickets: TicketStore) -> Version:
        async with tickets.session() as tx:
            return await tx.orders_version()

    async def check(self, *, force: bool = False) -> bool:
        """Swap in new order ids if the store's orders changed; True when it did.

        Unforced, it looks at most every ``every`` seconds (the first call always looks) and
        returns at once while another task rebuilds; it never raises (a failed check keeps
        the ids the bot has, and is logged). ``force`` looks now and waits for a running rebuild.
        """
        now = self._clock()
        recent = self._checked_at is not None and now - self._checked_at < self.every
        if not force and (self._lock.locked() or recent):
            return False
        async with self._lock:
            self._checked_at = now
            try:
                return await self._refresh()
            except StoreUnavailable as exc:  # an outage (/readyz reports it): a later turn looks again
                log.warning("order ids not refreshed: the store is unavailable", extra={"error": str(exc)})
                return False
            except Exception:  # noqa: BLE001 - a failed refresh must not fail the customer's turn
                log.exception("order ids not refreshed")
                return False

    async def _refresh(self) -> bool:
        async with self.tickets.session() as tx:
            version = await tx.orders_version()
            if version == self._version and self.services.shop.order_ids is self._installed:
                return False
            ids: list[str] = []
            async for batch in tx.order_id_batches():
                ids.extend(batch)
                await asyncio.sleep(0)  # other turns and requests run between batches
        order_ids = await asyncio.to_thread(OrderIds, ids, self.pattern)
        # Read the current shop at the swap (no await in between): another swap (an FAQ
        # phrasing an admin added) made meanwhile is kept.
        self.services.shop = self.services.shop.with_order_ids(order_ids)
        self._version, self._installed = version, order_ids
        shapes = [shape.describe() for shape in order_ids.shapes]
        log.info("order ids refreshed", extra={"orders": version[0], "shapes": shapes})
        return True
