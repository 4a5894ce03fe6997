"""Relational model of the ticket store (SQLAlchemy 2 typed mappings).

The same models run on SQLite (embedded default) and PostgreSQL; only portable column
types are used (JSON, not JSONB) so one Alembic history serves both.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

TICKET_NUMBER_OFFSET = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Every constraint gets a predictable name, so later migrations can drop or alter it by
# name, which SQLite batch migrations (table copies) need and PostgreSQL would otherwise
# pick itself.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class TicketKind(str, enum.Enum):
    RETURN = "return"
    EXCHANGE = "exchange"
    COMPLAINT = "complaint"
    QUESTION = "question"
    HANDOFF = "handoff"


class TicketStatus(str, enum.Enum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(str, enum.Enum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Owner(str, enum.Enum):
    """Who answers the customer right now; stored, never inferred."""

    BOT = "bot"
    QUEUED = "queued"
    AGENT = "agent"


class Direction(str, enum.Enum):
    INBOUND = "in"
    OUTBOUND = "out"


class Author(str, enum.Enum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class DeliveryStatus(str, enum.Enum):
    RECEIVED = "received"  # inbound
    QUEUED = "queued"  # in the outbox: waiting to be sent (push) or picked up and acknowledged (poll)
    SENDING = "sending"  # handed to the platform under a lease; the outcome is not known yet
    SENT = "sent"  # the platform accepted it, or the client acknowledged it
    FAILED = "failed"


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store values (not names) as plain strings: portable and readable in SQL.
    return Enum(cls, values_callable=lambda e: [m.value for m in e], native_enum=False, length=16)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # The queue: customers waiting for an agent, in ticket order.
        Index("ix_customers_owner_handoff", "owner", "handoff_ticket_id"),
        # Queue text search by customer name (storage/queue.py): trigram GIN on PostgreSQL.
        Index(
            "ix_customers_display_name_trgm",
            "display_name",
            postgresql_using="gin",
            postgresql_ops={"display_name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    unreachable: Mapped[bool] = mapped_column(default=False)
    owner: Mapped[Owner] = mapped_column(_enum(Owner), default=Owner.BOT)
    # The ticket the conversation is handed off on while owner is queued/agent. No FK:
    # tickets already point at customers, and a cycle would complicate deletes.
    handoff_ticket_id: Mapped[int | None] = mapped_column(Integer)
    # Where replies from agents go: the channel the customer last wrote from.
    last_channel: Mapped[str | None] = mapped_column(String(32))
    last_chat_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    identities: Mapped[list[Identity]] = relationship(back_populates="customer")


class Identity(Base):
    """One channel account of a customer (Telegram user, REST sender, web chat visitor)."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    chat_id: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the proof a client must show to act as this identity (the REST channel's
    # sender token); NULL for channels whose platform proves the identity (Telegram, web chat).
    proof_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    telegram_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_priority", "status", "priority"),
        Index("ix_tickets_customer_status", "customer_id", "status"),
        # The agents' queue (storage/queue.py): keyset pages in SLA order, overall, per
        # status and per assignee, and in last-update order.
        Index("ix_tickets_sla_queue", "sla_due_at", "id"),
        Index("ix_tickets_status_sla", "status", "sla_due_at", "id"),
        Index("ix_tickets_assignee_sla", "assignee_id", "sla_due_at", "id"),
        Index("ix_tickets_updated_queue", "updated_at", "id"),
        # Queue text search in subjects: trigram GIN on PostgreSQL (needs pg_trgm).
        Index(
            "ix_tickets_subject_trgm", "subject", postgresql_using="gin", postgresql_ops={"subject": "gin_trgm_ops"}
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[TicketKind] = mapped_column(_enum(TicketKind))
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus), default=TicketStatus.NEW)
    priority: Mapped[Priority] = mapped_column(_enum(Priority), default=Priority.NORMAL)
    subject: Mapped[str] = mapped_column(String(300))
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    first_response_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)  # analytics: resolved per day
    # Set when this ticket was merged into another (a duplicate); no FK, like
    # Customer.handoff_ticket_id, so a self-reference never complicates deletes.
    merged_into_id: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    # The deadline that matters now, kept by ``sla_due_at_of`` on every ORM flush: the
    # first-response due while nobody answered, else the resolution due; NULL once resolved
    # or closed. Stored (not computed in the query) so the queue's default order is an index.
    sla_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship()
    assignee: Mapped[Agent | None] = relationship()

    @property
    def number(self) -> str:
        """Human-readable number derived from the key, so it can never collide."""
        return format_ticket_number(self.id)

    @property
    def is_open(self) -> bool:
        return self.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED)


CLOSED_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


def sla_due_at_of(ticket: Ticket) -> datetime | None:
    """The queue's urgency key (see ``Ticket.sla_due_at``).

    An open ticket without any SLA target queues by its creation time, so it is never
    sorted behind closed tickets; rows written with Core (bulk loads, migrations) must
    apply the same rule.
    """
    if ticket.status in CLOSED_STATUSES:
        return None
    if ticket.first_response_at is None and ticket.first_response_due is not None:
        return ticket.first_response_due
    return ticket.resolution_due or ticket.first_response_due or ticket.created_at


@event.listens_for(Ticket, "before_insert")
@event.listens_for(Ticket, "before_update")
def _keep_sla_due_at(_mapper: Any, _connection: Any, ticket: Ticket) -> None:
    ticket.sla_due_at = sla_due_at_of(ticket)


# The trigram indexes above need the extension; ``create_all`` creates it first (the
# migration does the same).
event.listen(
    Base.metadata,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
)

# SQLite's counterpart of those trigram indexes: FTS5 tables with the trigram tokenizer
# (SQLite >= 3.34) over tickets.subject and customers.display_name, kept in step by
# triggers; ``storage/queue.py`` searches them. They are not models (virtual tables), so
# the migration and ``create_all`` create them with this SQL; migration 0003 repeats it.
SEARCH_INDEXES = {"tickets_subject_fts": ("tickets", "subject"), "customers_name_fts": ("customers", "display_name")}


def sqlite_search_tables() -> list[str]:
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({column}, content='{table}', content_rowid='id', "
        "tokenize='trigram')"
        for fts, (table, column) in SEARCH_INDEXES.items()
    ]


def sqlite_search_triggers() -> list[str]:
    statements = []
    for fts, (table, column) in SEARCH_INDEXES.items():
        add = f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});"  # noqa: S608 - constant names
        remove = f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});"  # noqa: S608 - constant names
        statements += [
            f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table} BEGIN {add} END",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table} BEGIN {remove} END",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {column} ON {table} BEGIN {remove} {add} END",
        ]
    return statements


@event.listens_for(Base.metadata, "after_create")
def _create_sqlite_search(_target: Any, connection: Any, **_kw: Any) -> None:
    if connection.dialect.name != "sqlite":
        return
    for statement in sqlite_search_tables() + sqlite_search_triggers():
        connection.exec_driver_sql(statement)


def format_ticket_number(ticket_id: int) -> str:
    return f"T-{ticket_id + TICKET_NUMBER_OFFSET}"


MAX_TICKET_ID = 2**31 - 1


def parse_ticket_number(number: str) -> int | None:
    """``"T-1042"`` (any case, with or without ``T-``) → 42; None when it is not a number."""
    raw = number.strip().upper().removeprefix("T-").removeprefix("T")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:  # "²" is a digit that int() refuses
        return None
    ticket_id = int(raw) - TICKET_NUMBER_OFFSET
    # Ids are 32-bit INTEGER columns: a longer number is no ticket, not a database error.
    return ticket_id if 0 < ticket_id <= MAX_TICKET_ID else None


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "delivery_key", name="uq_message_delivery"),
        Index("ix_messages_customer_created", "customer_id", "id"),
        Index("ix_messages_outbox", "customer_id", "status"),
        # Analytics per day and retention by age (storage/analytics.py, storage/data_rights.py).
        Index("ix_messages_created", "created_at"),
        # The outbox reader: pending outbound messages of a channel, oldest first.
        Index("ix_messages_pending", "status", "channel", "id"),
        Index("ix_messages_reply_to", "reply_to_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(200))
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    author: Mapped[Author] = mapped_column(_enum(Author))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivery_key: Mapped[str | None] = mapped_column(String(200))
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None]
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The outbox (outbound rows): send attempts so far, not before when the next one may go
    # (a 429's retry_after, a 5xx back-off), the lease of the process sending it now, and
    # when the platform accepted it or the polling client acknowledged it.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A bot reply: the inbound message it answers (a retried REST request gets the same replies).
    reply_to_id: Mapped[int | None] = mapped_column(Integer)


class ProcessedUpdate(Base):
    """A platform update already handled, for intakes whose work is not one message row
    (the agents' Telegram group: commands, claims, replies). Durable whatever the state
    backend, so a redelivery after a restart is recognised."""

    __tablename__ = "processed_updates"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class TicketEvent(Base):
    """Audit log: every change to a ticket, who made it and when."""

    __tablename__ = "ticket_events"
    # Analytics: handovers (owner_changed) in a date range.
    __table_args__ = (Index("ix_ticket_events_kind_created", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(48))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Order(Base):
    """A shop order imported from CSV (one row here per order, items as JSON)."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    total: Mapped[float] = mapped_column(Numeric(12, 2, asdecimal=False), default=0.0)
    currency: Mapped[str] = mapped_column(String(8), default="EUR")
    status: Mapped[str] = mapped_column(String(16))
    ordered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TelegramTicketLink(Base):
    """Where a ticket lives in the Telegram agents' group, so later changes edit it in place.

    One row per ticket, reserved before anything is posted (the primary key is the ticket),
    so two workers reacting to the same event cannot post the ticket twice. ``thread_id``
    is the forum topic (None when the group has no topics); ``card_message_id`` is the
    pinned card edited on every change; ``ticket_message_id`` is the message agents reply
    to; ``title`` and ``card_digest`` remember what is shown, so unchanged renders cost no
    API call.
    """

    __tablename__ = "telegram_tickets"
    __table_args__ = (
        Index("ix_telegram_tickets_thread", "chat_id", "thread_id"),
        Index("ix_telegram_tickets_message", "chat_id", "ticket_message_id"),
    )

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[int | None] = mapped_column(Integer)
    card_message_id: Mapped[int | None] = mapped_column(Integer)
    ticket_message_id: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(String(128))
    card_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


# -- agents' workspace: sessions, API tokens, login throttling, canned responses ---------
class AgentSession(Base):
    """A browser login. Only a hash of the cookie's token is stored, so a leaked table
    cannot be replayed; ``csrf_token`` is what forms and scripts must echo back."""

    __tablename__ = "agent_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ApiToken(Base):
    """A bearer token for integrations; shown once, stored as a hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    # The first characters, so an agent can tell their tokens apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LoginThrottle(Base):
    """Failed logins per account (``account:<email>``) and per address (``ip:<addr>``).

    In the database, not in memory, so the lockout holds across processes and restarts.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CannedResponse(Base):
    """A reply agents reuse; ``{customer_name}``-style placeholders are filled per ticket."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(120), unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# -- learning from what the bot missed (issue 10) ----------------------------------------
class MissedReason(str, enum.Enum):
    """Why a customer message counts as missed (``handlers.context.Turn.missed`` names one)."""

    FALLBACK = "fallback"  # not understood: out of scope, or no handler for the intent
    FAQ_UNKNOWN = "faq_unknown"  # a question the FAQ has no answer to
    PRODUCT_UNKNOWN = "product_unknown"  # a product question naming no product the catalog knows
    LOW_CONFIDENCE = "low_confidence"  # answered, but the classifier was unsure


class MissedResolution(str, enum.Enum):
    FAQ_PHRASING = "faq_phrasing"
    PRODUCT_ALIAS = "product_alias"
    DISMISSED = "dismissed"


class AdditionKind(str, enum.Enum):
    FAQ_PHRASING = "faq_phrasing"
    PRODUCT_ALIAS = "product_alias"


class KnowledgeAddition(Base):
    """A phrasing or alias an admin taught the bot from the workspace.

    Kept apart from the shop's files (which the shop owns and may replace) and merged into
    them at every load by ``knowledge.additions``; ``folded`` (the text as lookups compare
    it) makes the same form for the same target unique, so two admins cannot add it twice.
    """

    __tablename__ = "knowledge_additions"
    __table_args__ = (UniqueConstraint("kind", "target", "language", "folded", name="uq_knowledge_addition_form"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[AdditionKind] = mapped_column(_enum(AdditionKind))
    target: Mapped[str] = mapped_column(String(64))  # the FAQ entry id or the product sku
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(String(500))
    folded: Mapped[str] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class MissedQuestion(Base):
    """A customer message the bot did not answer, or answered unsure: what admins learn from.

    The text is not copied: it is read from the message, so what data rights and retention
    erase there is gone here too. ``customer_id`` only counts distinct customers and finds a
    handoff that followed the miss; it is never shown.
    """

    __tablename__ = "missed_questions"
    # The list: open misses, newest first, within a window.
    __table_args__ = (Index("ix_missed_questions_open", "resolved_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    reason: Mapped[MissedReason] = mapped_column(_enum(MissedReason))
    language: Mapped[str] = mapped_column(String(8))
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution: Mapped[MissedResolution | None] = mapped_column(_enum(MissedResolution))
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    addition_id: Mapped[int | None] = mapped_column(ForeignKey("knowledge_additions.id", ondelete="SET NULL"))
