"""What the agents' group is given: its settings, and its way into the core (``DeskAccess``).

The group reaches the core only through ``DeskAccess`` — the ticket store, the event bus,
the agents' desk, the business calendar's time zone and the clock — handed over by the
composition root (``bot/app.py``), so nothing here knows the app that wires it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from desk.agent_desk import AgentDesk
from storage.events import EventBus
from storage.models import utcnow
from storage.tickets import TicketStore

Localize = Callable[[datetime], datetime]


@dataclass(frozen=True, slots=True)
class AgentsGroupSettings:
    chat_id: int
    use_topics: Literal["auto", "yes", "no"] = "auto"
    topics_per_minute: int = 20
    sla_check_seconds: float = 60.0
    sla_warn_minutes: int = 30
    membership_ttl_seconds: float = 300.0

    @classmethod
    def from_config(cls, telegram: Any) -> AgentsGroupSettings | None:
        """From ``settings.channels.telegram``; None when no agents' group is configured."""
        chat_id = getattr(telegram, "agents_chat_id", None)
        if chat_id is None:
            return None
        return cls(
            chat_id=int(chat_id),
            use_topics=getattr(telegram, "agents_use_topics", "auto"),
            topics_per_minute=int(getattr(telegram, "topics_per_minute", 20)),
            sla_check_seconds=float(getattr(telegram, "sla_check_seconds", 60.0)),
            sla_warn_minutes=int(getattr(telegram, "sla_warn_minutes", 30)),
        )


@dataclass(frozen=True, slots=True)
class DeskAccess:
    """The parts of the core the agents' group uses."""

    tickets: TicketStore  # tickets, their links to the group, agents' accounts
    bus: EventBus  # every ticket's events, posted as lines
    desk: AgentDesk  # what agents do from the group: reply, claim, resolve, commands
    local: Localize  # the business calendar's time zone, for times on cards
    clock: Callable[[], datetime] = utcnow  # when SLA targets are due
