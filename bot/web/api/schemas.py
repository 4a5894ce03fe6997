"""The REST API's public shapes (separate from the row models) and the builders that fill them.

Inputs forbid unknown fields and validate text (no NUL, no lone surrogates: neither fits in
a database) so a bad request is a clear 422 and never half-applied. Outputs are what the
dashboard and integrations read; datetimes are ISO 8601 UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from common.messages import stored_buttons
from storage.models import (
    Agent,
    Customer,
    Identity,
    Message,
    Order,
    Priority,
    Ticket,
    TicketEvent,
    TicketStatus,
    format_ticket_number,
)
from storage.queue import MAX_ROW_ID, sla_status

MAX_TEXT_CHARS = 10_000
# Row ids are 32-bit INTEGER columns: a larger number is a 422 here, not a database overflow.
RowIdField = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a row id")]


def _clean_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains invalid Unicode (a lone surrogate)") from None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_clean_text)]
RequiredText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_clean_text),
                         AfterValidator(_not_blank)]
ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_clean_text), AfterValidator(_not_blank)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- inputs ------------------------------------------------------------------------------
class TextIn(Input):
    text: RequiredText


class AssignIn(Input):
    agent_id: RowIdField | None = Field(description="the agent to assign; null unassigns")


class PriorityIn(Input):
    priority: Priority


class StatusIn(Input):
    status: TicketStatus


class MergeIn(Input):
    into: Annotated[str, Field(min_length=1, max_length=40, description="the ticket number to keep, e.g. T-1042")]


class RenderCannedIn(Input):
    id: RowIdField


class CannedIn(Input):
    title: Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_clean_text), AfterValidator(_not_blank)]
    text: RequiredText


class AgentCreate(Input):
    email: Annotated[str, Field(min_length=3, max_length=320), AfterValidator(_clean_text)]
    name: ShortText
    role: Literal["agent", "admin"] = "agent"
    password: Annotated[str, Field(min_length=8, max_length=1024), AfterValidator(_clean_text)]


class AgentUpdate(Input):
    name: ShortText | None = None
    role: Literal["agent", "admin"] | None = None
    active: bool | None = None
    password: Annotated[str, Field(min_length=8, max_length=1024), AfterValidator(_clean_text)] | None = None


class CustomerUpdate(Input):
    tags: list[Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_clean_text)]] | None = Field(
        default=None, max_length=50
    )
    notes: Text | None = None


# -- outputs -----------------------------------------------------------------------------
class AgentRef(BaseModel):
    id: int
    name: str
    email: str


class AgentOut(AgentRef):
    role: str
    active: bool
    telegram_user_id: str | None
    created_at: datetime


class Me(AgentRef):
    role: str
    csrf_token: str | None = Field(description="send as X-CSRF-Token on unsafe requests (session logins only)")


class CustomerRef(BaseModel):
    id: int
    display_name: str | None


class Sla(BaseModel):
    state: Literal["ok", "warning", "breached"]
    due_at: datetime | None
    target: Literal["first_response", "resolution"] | None


class TicketSummary(BaseModel):
    number: str
    kind: str
    status: str
    priority: str
    subject: str
    channel: str
    customer: CustomerRef
    assignee: AgentRef | None
    created_at: datetime
    updated_at: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    sla: Sla
    rating: int | None


class TicketPage(BaseModel):
    items: list[TicketSummary]
    next_cursor: str | None


class AttachmentOut(BaseModel):
    kind: str | None = None
    name: str | None = None
    size: int | None = None
    mime_type: str | None = None


class ButtonOut(BaseModel):
    title: str
    payload: str


class MessageOut(BaseModel):
    id: int
    direction: str
    author: str
    agent: AgentRef | None
    channel: str
    text: str
    status: str
    error: str | None
    created_at: datetime
    attachments: list[AttachmentOut]
    buttons: list[ButtonOut]


class NoteOut(BaseModel):
    id: int
    agent: AgentRef | None
    text: str
    created_at: datetime


class EventOut(BaseModel):
    id: int
    actor: str
    kind: str
    data: dict[str, Any]
    created_at: datetime


class IdentityOut(BaseModel):
    channel: str
    external_id: str


class CustomerOut(CustomerRef):
    email: str | None
    phone: str | None
    language: str
    tags: list[str]
    notes: str | None
    unreachable: bool
    owner: str
    created_at: datetime
    identities: list[IdentityOut]
    tickets: list[TicketSummary]


class OrderOut(BaseModel):
    order_id: str
    status: str
    customer_name: str | None
    items: list[dict[str, Any]]
    total: float
    currency: str
    ordered_at: datetime
    delivered_at: datetime | None


class TicketDetail(TicketSummary):
    customer: CustomerOut
    fields: dict[str, Any]
    order_id: str | None
    order: OrderOut | None
    escalation_reason: str | None
    rating_comment: str | None
    merged_into: str | None
    messages: list[MessageOut]
    notes: list[NoteOut]
    events: list[EventOut]


class CannedOut(BaseModel):
    id: int
    title: str
    text: str
    created_at: datetime


class RenderedCanned(BaseModel):
    text: str


# -- builders ----------------------------------------------------------------------------
def agent_ref(agent: Agent | None) -> AgentRef | None:
    return AgentRef(id=agent.id, name=agent.name, email=agent.email) if agent is not None else None


def agent_out(agent: Agent) -> AgentOut:
    return AgentOut(
        id=agent.id,
        name=agent.name,
        email=agent.email,
        role=agent.role,
        active=agent.active,
        telegram_user_id=agent.telegram_user_id,
        created_at=agent.created_at,
    )


def ticket_summary(ticket: Ticket, now: datetime) -> TicketSummary:
    sla = sla_status(ticket, now)
    return TicketSummary(
        number=ticket.number,
        kind=ticket.kind.value,
        status=ticket.status.value,
        priority=ticket.priority.value,
        subject=ticket.subject,
        channel=ticket.channel,
        customer=CustomerRef(id=ticket.customer.id, display_name=ticket.customer.display_name),
        assignee=agent_ref(ticket.assignee),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        first_response_due=ticket.first_response_due,
        resolution_due=ticket.resolution_due,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
        sla=Sla(state=sla.state, due_at=sla.due_at, target=sla.target),
        rating=ticket.rating,
    )


def _attachments(payload: dict[str, Any]) -> list[AttachmentOut]:
    raw = payload.get("attachments") if isinstance(payload, dict) else None
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            out.append(
                AttachmentOut(
                    kind=_str_or_none(item.get("kind")),
                    name=_str_or_none(item.get("name")),
                    size=item.get("size") if isinstance(item.get("size"), int) else None,
                    mime_type=_str_or_none(item.get("mime_type")),
                )
            )
    return out


def _buttons(payload: dict[str, Any]) -> list[ButtonOut]:
    return [ButtonOut(title=b.title, payload=b.payload)
            for b in stored_buttons(payload if isinstance(payload, dict) else None)]


def _str_or_none(value: object) -> str | None:
    return str(value) if value is not None else None


def message_out(message: Message, agents: dict[int, Agent]) -> MessageOut:
    return MessageOut(
        id=message.id,
        direction=message.direction.value,
        author=message.author.value,
        agent=agent_ref(agents.get(message.agent_id)) if message.agent_id is not None else None,
        channel=message.channel,
        text=message.text,
        status=message.status.value,
        error=message.error,
        created_at=message.created_at,
        attachments=_attachments(message.payload),
        buttons=_buttons(message.payload),
    )


def note_out(event: TicketEvent, agents: dict[int, Agent]) -> NoteOut:
    agent_id = event.data.get("agent_id")
    return NoteOut(
        id=event.id,
        agent=agent_ref(agents.get(agent_id)) if isinstance(agent_id, int) else None,
        text=str(event.data.get("text", "")),
        created_at=event.created_at,
    )


def event_out(event: TicketEvent) -> EventOut:
    return EventOut(id=event.id, actor=event.actor, kind=event.kind, data=event.data, created_at=event.created_at)


def customer_out(
    customer: Customer, identities: Iterable[Identity], tickets: Sequence[Ticket], now: datetime
) -> CustomerOut:
    return CustomerOut(
        id=customer.id,
        display_name=customer.display_name,
        email=customer.email,
        phone=customer.phone,
        language=customer.language,
        tags=list(customer.tags or []),
        notes=customer.notes,
        unreachable=customer.unreachable,
        owner=customer.owner.value,
        created_at=customer.created_at,
        identities=[IdentityOut(channel=i.channel, external_id=i.external_id) for i in identities],
        tickets=[ticket_summary(t, now) for t in tickets],
    )


def order_out(order: Order | None) -> OrderOut | None:
    if order is None:
        return None
    return OrderOut(
        order_id=order.order_id,
        status=order.status,
        customer_name=order.customer_name,
        items=list(order.items or []),
        total=order.total,
        currency=order.currency,
        ordered_at=order.ordered_at,
        delivered_at=order.delivered_at,
    )


def merged_into(ticket: Ticket) -> str | None:
    return format_ticket_number(ticket.merged_into_id) if ticket.merged_into_id is not None else None


# -- what the bot missed, and what admins teach it (bot/web/api/missed.py) --------------------
MAX_MISSED_IDS = 2000
MissedIds = Annotated[list[RowIdField], Field(min_length=1, max_length=MAX_MISSED_IDS,
                                                               description="the group's `ids` from GET /missed")]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="e.g. en, zh")]
Phrasing = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_clean_text), AfterValidator(_not_blank)]
Alias = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_clean_text), AfterValidator(_not_blank)]


class PhrasingIn(Input):
    missed_ids: MissedIds
    faq_id: Annotated[str, Field(min_length=1, max_length=64, description="the FAQ entry's id")]
    language: LanguageCode
    text: Phrasing = Field(description="the question as customers ask it")


class AliasIn(Input):
    missed_ids: MissedIds
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    language: LanguageCode
    text: Alias = Field(description="the words customers use for the product, not their whole question")


class DismissIn(Input):
    missed_ids: MissedIds


class FaqChoice(BaseModel):
    id: str
    topic: str
    question: str = Field(description="the entry's first question, in the group's language where it has one")
    score: float | None = Field(default=None, description="similarity to the group's question, 0–100")


class ProductChoice(BaseModel):
    sku: str
    name: str
    score: float | None = None
    alias: str | None = Field(default=None, description="the part of the question that may name the product")


class MissedGroupOut(BaseModel):
    ids: list[int] = Field(description="the misses in this group, newest first")
    text: str = Field(description="the most frequent wording (e-mails and phone numbers masked)")
    language: str
    count: int
    customers: int = Field(description="distinct customers who asked")
    handoffs: int = Field(description="misses followed by a handoff to a person within 30 minutes")
    first_seen: datetime
    last_seen: datetime
    reasons: dict[str, int] = Field(description="fallback, faq_unknown, product_unknown, low_confidence → count")
    examples: list[str] = Field(description="other wordings, most frequent first (masked)")
    faq_suggestions: list[FaqChoice]
    product_suggestions: list[ProductChoice]


class MissedPage(BaseModel):
    since: datetime
    days: int
    total: int = Field(description="open misses in the window")
    truncated: bool = Field(description="more misses than were grouped (the newest were)")
    groups: list[MissedGroupOut]


class KnowledgeTargets(BaseModel):
    languages: list[str]
    faq: list[FaqChoice]
    products: list[ProductChoice]


class AdditionOut(BaseModel):
    id: int
    kind: Literal["faq_phrasing", "product_alias"]
    target: str
    language: str
    text: str
    created_at: datetime
    created_by: str | None = Field(description="the admin's name")
    active: bool = Field(description="in use now (false when the shop's files contradict it since)")


class LearnedOut(BaseModel):
    addition: AdditionOut | None
    resolved: int = Field(description="misses closed by this action")
