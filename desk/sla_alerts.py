"""SLA watch: raise each breach and near-breach once, as a ticket event the agents see.

A due time nobody looks at is no SLA. The watch runs periodically, finds open tickets
whose first response or resolution is due within ``warn_minutes`` (or already overdue),
and records one ``sla_alert {target, level, due}`` event per ticket, target, level and
due time: the event is the memory (a restart never repeats an alert) and, through the
event bus, the notification (the Telegram agents' group, dashboards). A priority change
moves the due time, so the new deadline is watched afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.models import Ticket, utcnow
from storage.sla_queries import SLA_ALERT, open_tickets_due_by, sla_alerts_of
from storage.tickets import TicketStore

TARGETS = ("first_response", "resolution")


@dataclass(frozen=True, slots=True)
class SlaAlert:
    ticket_id: int
    number: str
    target: str  # first_response | resolution
    level: str  # near | breached
    due: datetime


def _pending_targets(ticket: Ticket) -> list[tuple[str, datetime]]:
    out: list[tuple[str, datetime]] = []
    if ticket.first_response_at is None and ticket.first_response_due is not None:
        out.append(("first_response", ticket.first_response_due))
    if ticket.resolution_due is not None:
        out.append(("resolution", ticket.resolution_due))
    return out


class SlaWatch:
    def __init__(self, tickets: TicketStore, warn_minutes: int, clock: Callable[[], datetime] = utcnow) -> None:
        self.tickets = tickets
        self.warn = timedelta(minutes=warn_minutes)
        self.clock = clock

    async def check(self) -> list[SlaAlert]:
        """Record the alerts due now; returns the new ones (already-raised alerts are skipped)."""
        now = self.clock()
        raised: list[SlaAlert] = []
        async with self.tickets.session() as tx:
            tickets = await open_tickets_due_by(tx, now + self.warn)
            seen = {
                (e.ticket_id, e.data.get("target"), e.data.get("level"), e.data.get("due"))
                for e in await sla_alerts_of(tx, [t.id for t in tickets])
            }
            for ticket in tickets:
                for target, due in _pending_targets(ticket):
                    if due > now + self.warn:
                        continue
                    level = "breached" if due <= now else "near"
                    key = (ticket.id, target, level, due.isoformat())
                    if key in seen:
                        continue
                    await tx.add_event(ticket, "sla", SLA_ALERT, {"target": target, "level": level,
                                                                  "due": due.isoformat()})
                    seen.add(key)
                    raised.append(SlaAlert(ticket.id, ticket.number, target, level, due))
        return raised
