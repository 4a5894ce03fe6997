"""The state one ``TicketSession`` shares across its aggregates' records (see storage/tickets.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.events import BusEvent


class Records:
    """One transaction: the SQLAlchemy session and the events to publish after its commit."""

    def __init__(self, session: AsyncSession) -> None:
        self.db = session
        self.pending_events: list[BusEvent] = []

    async def write_now(self) -> None:
        """Write the changes made so far: new rows get their ids, unique keys are checked.
        Still one transaction, committed or rolled back as a whole."""
        await self.db.flush()
