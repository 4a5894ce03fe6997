"""What a handler receives: the message, the customer, the state and the stores.

Handlers are plain async functions ``async def handle(turn: Turn) -> None`` that add
replies with ``turn.say``; they never import a channel or a concrete store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from common.messages import Button, Incoming
from desk.sla import BusinessCalendar
from handlers.conversation import ConversationState
from handlers.responses import Responses
from intents.base import Prediction
from knowledge.bundle import ShopKnowledge
from knowledge.faq_search import FaqSearch
from knowledge.shop import Catalog
from storage.models import Customer, Priority
from storage.tickets import TicketSession


@dataclass(frozen=True, slots=True)
class Policy:
    """The shop's rules that handlers apply (from config)."""

    return_window_days: int
    high_value_order: float
    fallback_after: int
    complaint_repeat_days: int
    sla_minutes: dict[Priority, tuple[int, int]]  # priority -> (first response, resolution)
    calendar: BusinessCalendar
    # A customer writing within this long after an agent resolved their ticket reopens it.
    reopen_hours: float = 48.0


@dataclass(slots=True)
class Services:
    """Long-lived collaborators shared by every turn.

    ``shop`` is replaced as a whole when the shop's data changes (new orders, a phrasing an
    admin added): read it once per use, never keep a part of it across awaits.
    """

    shop: ShopKnowledge
    responses: Responses
    policy: Policy
    clock: Callable[[], datetime]
    shop_name: str = "our shop"

    @property
    def catalog(self) -> Catalog:
        return self.shop.catalog

    @property
    def faq(self) -> FaqSearch:
        return self.shop.faq


# Why the bot could not answer a turn (the values of storage.models.MissedReason): the
# pipeline records it, and the workspace lists such questions for admins to learn from.
Missed = Literal["fallback", "faq_unknown", "product_unknown", "low_confidence"]


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    ticket_id: int | None = None


@dataclass(slots=True)
class Turn:
    msg: Incoming
    customer: Customer
    state: ConversationState
    prediction: Prediction
    tx: TicketSession
    services: Services
    replies: list[Reply] = field(default_factory=list)
    ticket_id: int | None = None  # ticket the inbound message belongs to, once known
    missed: Missed | None = None  # set by a handler that could not answer (see Missed)

    @property
    def lang(self) -> str:
        return self.state.language

    def t(self, key: str, **params: Any) -> str:
        params.setdefault("shop", self.services.shop_name)
        return self.services.responses.text(self.lang, key, **params)

    def say(self, key: str, buttons: tuple[Button, ...] = (), ticket_id: int | None = None, **params: Any) -> None:
        self.replies.append(Reply(self.t(key, **params), buttons, ticket_id or self.ticket_id))

    def say_text(self, text: str, buttons: tuple[Button, ...] = ()) -> None:
        self.replies.append(Reply(text, buttons, self.ticket_id))

    def button(self, key: str, payload: str, **params: Any) -> Button:
        return Button(self.t(key, **params), payload)

    def now(self) -> datetime:
        return self.services.clock()
