"""Events handled one ticket at a time, in order ("lanes"), tickets side by side.

A customer message never overtakes the card it belongs under, while a ticket waiting for
its rate-limited topic does not hold up the others. A lane lives while it has events: its
task ends when the lane is empty, and the next event of the ticket starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from storage.events import BusEvent

log = logging.getLogger("deskbot.telegram.agents")


class TicketLanes:
    def __init__(self, handle: Callable[[BusEvent], Awaitable[None]]) -> None:
        self._handle = handle
        self._lanes: dict[int, deque[BusEvent]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def busy(self) -> bool:
        """Events still being handled."""
        return bool(self._tasks)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The lanes running now."""
        return list(self._tasks.values())

    def dispatch(self, event: BusEvent) -> None:
        """Queue ``event`` behind its ticket's earlier ones (events of no ticket are dropped)."""
        if event.ticket_id is None:
            return
        lane = self._lanes.setdefault(event.ticket_id, deque())
        lane.append(event)
        if event.ticket_id not in self._tasks:
            self._tasks[event.ticket_id] = asyncio.create_task(self._run(event.ticket_id))

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancel every lane; returns their tasks, for the caller to await."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        return tasks

    async def close(self) -> None:
        for task in self.cancel():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, ticket_id: int) -> None:
        lane = self._lanes[ticket_id]
        try:
            while lane:
                event = lane.popleft()
                try:
                    await self._handle(event)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one failed post must not stop the ticket's lane
                    log.exception("agents' group: event not posted",
                                  extra={"ticket": event.ticket_number, "kind": event.kind})
        finally:
            # No await between the emptiness check and these deletions: nothing can slip in.
            del self._lanes[ticket_id]
            del self._tasks[ticket_id]
