"""The event-bus port: ticket events reach dashboards, notifiers and workers live.

Publishing happens after the ticket store commits, so a subscriber never sees an event
for a change that was rolled back.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class BusEvent:
    """A change worth telling agents about (a ticket event, a new message)."""

    kind: str
    ticket_id: int | None
    ticket_number: str | None
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = self.at.isoformat() if self.at else None
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BusEvent:
        at = raw.get("at")
        return cls(
            kind=str(raw["kind"]),
            ticket_id=raw.get("ticket_id"),
            ticket_number=raw.get("ticket_number"),
            actor=str(raw.get("actor", "")),
            data=dict(raw.get("data") or {}),
            at=datetime.fromisoformat(at) if at else None,
        )


class EventBus(ABC):
    """Port: publish events; subscribe to the live feed."""

    @abstractmethod
    async def publish(self, event: BusEvent) -> None:
        """Deliver to every current subscriber; never blocks on a slow one."""

    @abstractmethod
    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[BusEvent]]:
        """``async with bus.subscribe() as events: async for e in events: ...``

        Events published after ``__aenter__`` returned reach the subscriber, in order.
        """

    async def close(self) -> None:
        """Release connections."""


class InProcessEventBus(EventBus):
    """Embedded default: fan-out to asyncio queues in this process."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[BusEvent]] = set()

    async def publish(self, event: BusEvent) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                # A stalled dashboard must not stall the bot: drop its oldest event.
                queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[BusEvent]]:
        queue: asyncio.Queue[BusEvent] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield _QueueEvents(queue)
        finally:
            self._subscribers.discard(queue)


class _QueueEvents:
    """A subscriber's events. Not an async generator: a cancelled wait (a dashboard's
    ``wait_for(anext(events), heartbeat)``) would close a generator for good."""

    def __init__(self, queue: asyncio.Queue[BusEvent]) -> None:
        self._queue = queue

    def __aiter__(self) -> _QueueEvents:
        return self

    async def __anext__(self) -> BusEvent:
        return await self._queue.get()
