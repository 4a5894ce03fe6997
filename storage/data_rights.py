"""Customer data rights: export everything about one customer, erase a customer, retention.

What "erased" means, the same for an erase request and for retention:

* **Messages**: text → ``[erased]``, payload (buttons, attachments, form data) and
  delivery error emptied, chat id blanked. Kept: who wrote (customer/bot/agent), when,
  channel, direction, predicted intent and confidence, the ticket link — the statistics.
* **Tickets**: subject → ``[erased]``; form fields, order id, escalation reason and
  rating comment removed. Kept: number, kind, status, priority, channel, assignee, all
  timestamps and SLA due times, the 1–5 rating. Audit events that carry text (customer
  messages, notes, rating comments, creation details, delivery errors) lose their data;
  who did what and when stays.
* **Customer** (erase request only, or retention once no identity is left): name,
  e-mail, phone, tags, notes, reply address removed; every channel identity deleted, so
  the next message from that account starts a new, unrelated customer. The row itself
  stays (marked unreachable) because tickets and messages count against it.
* **Orders** (erase request): the imported copies linked to the customer lose e-mail,
  phone and name and are unlinked; amounts and dates stay.

Retention anonymises, per channel, messages older than that channel's period and the
resolved/closed tickets of that channel untouched for longer. Identities of the channel
whose customer has not written on it within the period are deleted. A conversation still
going on is never touched: a customer with an open ticket, or with a reply still waiting
in the outbox (queued, or being sent), keeps every identity and message — deleting the
identity would turn their next message into a new customer and strand the queued reply
(a REST poll or a Telegram send could no longer reach them). Every statement is idempotent
(rows already erased are skipped), so a run after a crash just finishes the job.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, not_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from common.errors import NotFound
from storage.models import (
    CLOSED_STATUSES,
    Customer,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    Order,
    Owner,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from storage.state import StateKey, StateStore
from storage.tickets import TicketSession, TicketStore

log = logging.getLogger(__name__)

ERASED = "[erased]"
# Audit events whose data can hold what a customer wrote or personal details.
EVENTS_WITH_TEXT = ("customer_message", "note", "rating_comment", "created", "delivery_failed")
# An outbound message in these states has not reached the customer yet (CONTRACT: the outbox).
PENDING_DELIVERY = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every column of a row, JSON-ready (enums as values, datetimes ISO 8601)."""
    data: dict[str, Any] = {}
    for column in obj.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(obj, column.key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, enum.Enum):
            value = value.value
        data[column.key] = value
    return data


async def export_customer(tx: TicketSession, customer_id: int) -> dict[str, Any]:
    """Everything stored about one customer (for a data access request), as JSON data."""
    customer = await tx.get_customer(customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    tickets = (
        (await tx.db.execute(select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id)))
        .scalars()
        .all()
    )
    ticket_ids = [t.id for t in tickets]
    events = (
        (
            await tx.db.execute(
                select(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids)).order_by(TicketEvent.id)
            )
        )
        .scalars()
        .all()
        if ticket_ids
        else []
    )
    messages = (
        (await tx.db.execute(select(Message).where(Message.customer_id == customer_id).order_by(Message.id)))
        .scalars()
        .all()
    )
    by_ticket: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        by_ticket.setdefault(event.ticket_id, []).append(_row(event, skip=("ticket_id",)))
    return {
        "customer": _row(customer),
        # proof_hash verifies a REST sender token: a credential, not data about the person.
        "identities": [_row(i, skip=("customer_id", "proof_hash")) for i in await tx.identities(customer_id)],
        "messages": [_row(m, skip=("customer_id",)) for m in messages],
        "tickets": [
            {**_row(t, skip=("customer_id", "sla_due_at")), "number": t.number, "events": by_ticket.get(t.id, [])}
            for t in tickets
        ],
        "ratings": [
            {"ticket": t.number, "score": t.rating, "comment": t.rating_comment}
            for t in tickets
            if t.rating is not None
        ],
        "orders": [_row(o) for o in await tx.orders_for(customer)],
    }


# -- anonymising statements (shared by erase and retention) -------------------------------
async def _scrub_messages(tx: TicketSession, condition: ColumnElement[bool], limit: int | None = None) -> int:
    """Anonymise the messages matching ``condition`` (at most ``limit`` of them)."""
    todo = and_(condition, Message.text != ERASED)
    if limit is not None:
        # correlate(None): a subquery of the UPDATE's own table must stay a subquery, or
        # the LIMIT would apply per row.
        todo = Message.id.in_(select(Message.id).where(todo).limit(limit).correlate(None))
    result = await tx.db.execute(
        update(Message)
        .where(todo)
        .values(text=ERASED, payload={}, chat_id="", error=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _scrub_tickets(tx: TicketSession, ticket_ids: Select[Any], limit: int | None = None) -> int:
    """Anonymise the tickets ``ticket_ids`` selects (at most ``limit``) and their audit text."""
    todo = select(Ticket.id).where(Ticket.id.in_(ticket_ids), Ticket.subject != ERASED)
    if limit is not None:
        todo = todo.limit(limit)
    ids = [int(i) for i in (await tx.db.execute(todo)).scalars()]
    if not ids:
        return 0
    await tx.db.execute(
        update(Ticket)
        .where(Ticket.id.in_(ids))
        .values(subject=ERASED, fields={}, order_id=None, escalation_reason=None, rating_comment=None)
        .execution_options(synchronize_session=False)
    )
    await tx.db.execute(
        update(TicketEvent)
        .where(TicketEvent.ticket_id.in_(ids), TicketEvent.kind.in_(EVENTS_WITH_TEXT))
        .values(data={})
        .execution_options(synchronize_session=False)
    )
    return len(ids)


def _forget_person(customer: Customer) -> None:
    customer.display_name = None
    customer.email = None
    customer.phone = None
    customer.tags = []
    customer.notes = None
    customer.last_chat_id = None
    customer.unreachable = True
    customer.owner = Owner.BOT
    customer.handoff_ticket_id = None


@dataclass(frozen=True)
class ErasureResult:
    customer_id: int
    messages: int
    tickets: int
    identities: int
    orders: int


async def erase_customer(
    tx: TicketSession, customer_id: int, *, actor: str, state: StateStore | None = None
) -> ErasureResult:
    """Erase one customer (see the module docstring); their open tickets are closed."""
    customer = await tx.get_customer(customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    orders = list(await tx.orders_for(customer))
    tickets = (await tx.db.execute(select(Ticket).where(Ticket.customer_id == customer_id))).scalars().all()
    for ticket in tickets:
        if ticket.status not in CLOSED_STATUSES:
            ticket.status = TicketStatus.CLOSED
        await tx.add_event(ticket, actor, "erased", {})
    await tx.db.flush()
    own_tickets = select(Ticket.id).where(Ticket.customer_id == customer_id)
    scrubbed_tickets = await _scrub_tickets(tx, own_tickets)
    await tx.db.execute(  # audit text added since an earlier erasure (notes, say)
        update(TicketEvent)
        .where(TicketEvent.ticket_id.in_(own_tickets), TicketEvent.kind.in_(EVENTS_WITH_TEXT))
        .values(data={})
        .execution_options(synchronize_session=False)
    )
    scrubbed_messages = await _scrub_messages(tx, Message.customer_id == customer_id)
    identities = await tx.db.execute(delete(Identity).where(Identity.customer_id == customer_id))
    for order in orders:
        order.email = order.phone = order.customer_name = None
        order.customer_id = None
    _forget_person(customer)
    await tx.db.flush()
    if state is not None:
        await state.delete(StateKey(customer_id))
    result = ErasureResult(
        customer_id,
        scrubbed_messages,
        scrubbed_tickets,
        int(getattr(identities, "rowcount", 0) or 0),
        len(orders),
    )
    log.info("customer erased", extra={"customer_id": customer_id, "actor": actor})
    return result


# Every table an erasure rewrites: PostgreSQL keeps the old row versions (with the text)
# as dead tuples until VACUUM reclaims them.
ERASED_TABLES: tuple[str, ...] = tuple(
    str(model.__tablename__) for model in (Message, Ticket, TicketEvent, Identity, Customer, Order)
)


@dataclass
class _Vacuums:
    """One VACUUM at a time per engine, and at most one more waiting: a VACUUM that starts
    after an erasure committed covers it, so a burst of erasures (a script calling the API)
    costs two runs and one pooled connection, not one each."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: bool = False


_VACUUMS: weakref.WeakKeyDictionary[AsyncEngine, _Vacuums] = weakref.WeakKeyDictionary()


async def vacuum_erased(store: TicketStore) -> bool:
    """``VACUUM`` the tables an erasure touched, so the erased text does not linger in dead
    row versions until autovacuum gets round to them. Returns whether it ran (or one that
    will cover this erasure is already waiting to start).

    PostgreSQL only: VACUUM cannot run inside a transaction, so it gets an autocommit
    connection of its own, after the erasure committed; a plain VACUUM takes no lock that
    stops reads or writes. Skipped on SQLite, where VACUUM rewrites the whole file under the
    only writer lock (every turn would wait); run it there in a maintenance window. A failure
    is logged, never raised: the erasure itself is done.
    """
    engine = getattr(store, "engine", None)
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "postgresql":
        return False
    runs = _VACUUMS.setdefault(engine, _Vacuums())
    if runs.waiting:
        return True
    runs.waiting = queued = True
    try:
        async with runs.lock:
            runs.waiting = queued = False
            async with engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.exec_driver_sql("VACUUM " + ", ".join(f'"{name}"' for name in ERASED_TABLES))
    except (SQLAlchemyError, OSError):
        log.warning("VACUUM after an erasure failed; autovacuum will reclaim the rows later", exc_info=True)
        return False
    finally:
        if queued:  # cancelled while waiting: the next erasure must not count on this run
            runs.waiting = False
    log.info("vacuumed after an erasure", extra={"tables": list(ERASED_TABLES)})
    return True


# -- retention ------------------------------------------------------------------------------
@dataclass
class RetentionResult:
    """What one retention run anonymised, per channel."""

    messages: dict[str, int] = field(default_factory=dict)
    tickets: dict[str, int] = field(default_factory=dict)
    identities: dict[str, int] = field(default_factory=dict)
    customers: int = 0

    @property
    def total(self) -> int:
        return sum(self.messages.values()) + sum(self.tickets.values()) + sum(self.identities.values())


async def apply_retention(
    tx: TicketSession, days_by_channel: Mapping[str, int], *, now: datetime, batch: int | None = None
) -> RetentionResult:
    """Anonymise what is older than each channel's retention period (module docstring);
    with ``batch``, at most that many rows of each kind per channel (call again until done)."""
    result = RetentionResult()
    for channel, days in sorted(days_by_channel.items()):
        cutoff = now - timedelta(days=days)
        old_tickets = select(Ticket.id).where(
            Ticket.channel == channel, Ticket.status.in_(CLOSED_STATUSES), Ticket.updated_at < cutoff
        )
        result.tickets[channel] = await _scrub_tickets(tx, old_tickets, batch)
        result.messages[channel] = await _scrub_messages(
            tx,
            and_(
                Message.channel == channel,
                Message.created_at < cutoff,
                Message.customer_id.not_in(_conversations_going_on()),
            ),
            batch,
        )
        recent = exists().where(
            Message.customer_id == Identity.customer_id, Message.channel == channel, Message.created_at >= cutoff
        )
        stale = (
            select(Identity.id)
            .where(
                Identity.channel == channel,
                Identity.created_at < cutoff,
                not_(recent),
                Identity.customer_id.not_in(_conversations_going_on()),
            )
            .correlate(None)
        )
        gone = await tx.db.execute(
            delete(Identity)
            .where(Identity.id.in_(stale.limit(batch) if batch is not None else stale))
            .execution_options(synchronize_session=False)
        )
        result.identities[channel] = int(getattr(gone, "rowcount", 0) or 0)
    result.customers = await _forget_unreachable_customers(tx)
    return result


def _conversations_going_on() -> Select[Any]:
    """The customers retention leaves alone: an open ticket, or a reply not delivered yet."""
    open_ticket = select(Ticket.customer_id).where(Ticket.status.not_in(CLOSED_STATUSES)).correlate(None)
    pending_reply = (
        select(Message.customer_id)
        .where(Message.direction == Direction.OUTBOUND, Message.status.in_(PENDING_DELIVERY))
        .correlate(None)
    )
    return open_ticket.union(pending_reply).subquery().select()


async def _forget_unreachable_customers(tx: TicketSession) -> int:
    """Customers left without any identity have no channel left to own them: anonymise."""
    has_identity = exists().where(Identity.customer_id == Customer.id)
    forgotten = await tx.db.execute(
        update(Customer)
        .where(
            not_(has_identity),
            Customer.id.not_in(_conversations_going_on()),
            or_(
                Customer.display_name.is_not(None),
                Customer.email.is_not(None),
                Customer.phone.is_not(None),
                Customer.notes.is_not(None),
                Customer.last_chat_id.is_not(None),
            ),
        )
        .values(
            display_name=None,
            email=None,
            phone=None,
            tags=[],
            notes=None,
            last_chat_id=None,
            unreachable=True,
            owner=Owner.BOT,
            handoff_ticket_id=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(forgotten, "rowcount", 0) or 0)


RETENTION_BATCH = 2000


def _add(total: RetentionResult, part: RetentionResult) -> None:
    for mine, theirs in ((total.messages, part.messages), (total.tickets, part.tickets),
                         (total.identities, part.identities)):
        for channel, count in theirs.items():
            mine[channel] = mine.get(channel, 0) + count
    total.customers += part.customers


async def run_retention(
    store: TicketStore, days_by_channel: Mapping[str, int], *, now: datetime, batch: int = RETENTION_BATCH
) -> RetentionResult:
    """Retention in short transactions of at most ``batch`` rows of each kind, until
    nothing is left: on SQLite, a long first run never holds the only writer lock for long."""
    total = RetentionResult()
    while True:
        async with store.session() as tx:
            part = await apply_retention(tx, days_by_channel, now=now, batch=batch)
        _add(total, part)
        if part.total == 0 and part.customers == 0:
            break
    log.info(
        "retention run",
        extra={"messages": sum(total.messages.values()), "tickets": sum(total.tickets.values()),
               "identities": sum(total.identities.values()), "customers": total.customers},
    )
    return total
