"""The ticket store: customers, messages, tickets, events, agents, orders.

One ``TicketSession`` is one transaction: the pipeline does all of a turn's writes
(inbound message, replies, ticket changes, events) in one session and commits once,
so a crash never leaves a ticket without its message or a reply without its ticket.
Events are published to the bus only after the commit succeeded.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, bindparam, event, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.pool import StaticPool

from common.errors import DeskbotError, StorageError, StoreUnavailable, TicketNotFound
from storage.events import BusEvent, EventBus
from storage.models import (
    Agent,
    Author,
    Base,
    Customer,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    Order,
    Owner,
    Priority,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    parse_ticket_number,
    utcnow,
)
from storage.sqlite_inline import WalCheckpointer, inline_creator

log = logging.getLogger(__name__)


# Statements built once: constructing them per call costs more than running them.
CUSTOMER_BY_IDENTITY = (
    select(Customer)
    .join(Identity, Identity.customer_id == Customer.id)
    .where(Identity.channel == bindparam("channel"), Identity.external_id == bindparam("external_id"))
)
TICKET_WITH_PEOPLE = (
    select(Ticket)
    .where(Ticket.id == bindparam("ticket_id"))
    .options(joinedload(Ticket.customer), joinedload(Ticket.assignee))
)
QUEUE_AHEAD = select(func.count(Customer.id)).where(
    Customer.owner == Owner.QUEUED,
    Customer.handoff_ticket_id.is_not(None),
    Customer.handoff_ticket_id <= bindparam("ticket_id"),
)
MESSAGES_TABLE = Message.__table__
INSERT_MESSAGES = insert(MESSAGES_TABLE).returning(MESSAGES_TABLE.c.id, sort_by_parameter_order=True)  # type: ignore[arg-type]
MESSAGE_DEFAULTS: dict[str, Any] = {
    "ticket_id": None,
    "agent_id": None,
    "payload": {},
    "delivery_key": None,
    "intent": None,
    "confidence": None,
    "error": None,
    "attempts": 0,
    "not_before": None,
    "lease_until": None,
    "sent_at": None,
    "reply_to_id": None,
}


class TicketSession:
    """Repository operations inside one transaction (see module docstring)."""

    def __init__(self, session: AsyncSession) -> None:
        self.db = session
        self.pending_events: list[BusEvent] = []

    # -- customers -------------------------------------------------------------------
    async def resolve_customer(
        self,
        channel: str,
        external_id: str,
        chat_id: str,
        display_name: str | None = None,
        language: str | None = None,
    ) -> tuple[Customer, bool]:
        """Find the customer behind a channel identity, creating both on first contact.

        Safe against a concurrent first contact (two workers, a resent message): the
        loser of the race gets the winner's customer instead of an IntegrityError.
        """
        row = await self._customer_by_identity(channel, external_id)
        if row is not None:
            return self._seen(row, channel, chat_id, display_name), False
        customer = Customer(
            display_name=display_name,
            language=language or "en",
            tags=[],
            owner=Owner.BOT,
            last_channel=channel,
            last_chat_id=chat_id,
        )
        self.db.add(customer)
        await self.db.flush()
        # A plain INSERT would fail the whole turn (and lose its message) when another
        # transaction inserted the same identity meanwhile; PostgreSQL makes this INSERT
        # wait for that transaction, then skip.
        inserted = await self.db.execute(
            self._insert_identity_unless_known().values(
                customer_id=customer.id, channel=channel, external_id=external_id, chat_id=chat_id, created_at=utcnow()
            )
        )
        if inserted.first() is not None:
            return customer, True
        await self.db.delete(customer)
        await self.db.flush()
        winner = await self._customer_by_identity(channel, external_id)
        if winner is None:  # pragma: no cover - the conflicting row is committed by then
            raise StorageError(f"identity {channel}:{external_id} conflicts but cannot be found")
        return self._seen(winner, channel, chat_id, display_name), False

    async def _customer_by_identity(self, channel: str, external_id: str) -> Customer | None:
        found = await self.db.execute(CUSTOMER_BY_IDENTITY, {"channel": channel, "external_id": external_id})
        return found.scalar_one_or_none()

    @staticmethod
    def _seen(customer: Customer, channel: str, chat_id: str, display_name: str | None) -> Customer:
        if display_name and not customer.display_name:
            customer.display_name = display_name
        if customer.last_channel != channel or customer.last_chat_id != chat_id:
            customer.last_channel, customer.last_chat_id = channel, chat_id
        if customer.unreachable:
            customer.unreachable = False  # they wrote to us: the block is lifted
        return customer

    def _insert_identity_unless_known(self) -> Insert:
        """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (no row back: it existed)."""
        conflict = [Identity.channel, Identity.external_id]
        dialect = self.db.get_bind().dialect.name
        if dialect == "postgresql":
            return postgresql.insert(Identity).on_conflict_do_nothing(index_elements=conflict).returning(Identity.id)
        if dialect == "sqlite":
            return sqlite.insert(Identity).on_conflict_do_nothing(index_elements=conflict).returning(Identity.id)
        return insert(Identity).returning(Identity.id)  # other databases: no race protection

    async def find_customer(self, channel: str, external_id: str) -> Customer | None:
        """The customer behind a channel identity, without creating one."""
        return await self._customer_by_identity(channel, external_id)

    async def get_customer(self, customer_id: int) -> Customer | None:
        return await self.db.get(Customer, customer_id)

    async def identities(self, customer_id: int) -> Sequence[Identity]:
        return (
            (await self.db.execute(select(Identity).where(Identity.customer_id == customer_id)))
            .scalars()
            .all()
        )

    # -- messages --------------------------------------------------------------------
    async def add_message(
        self,
        customer: Customer,
        *,
        channel: str,
        chat_id: str,
        direction: Direction,
        author: Author,
        text: str,
        status: DeliveryStatus,
        ticket_id: int | None = None,
        delivery_key: str | None = None,
        payload: dict[str, Any] | None = None,
        intent: str | None = None,
        confidence: float | None = None,
        agent_id: int | None = None,
    ) -> Message:
        message = Message(
            customer_id=customer.id,
            ticket_id=ticket_id,
            channel=channel,
            chat_id=chat_id,
            direction=direction,
            author=author,
            text=text,
            status=status,
            delivery_key=delivery_key,
            payload=payload or {},
            intent=intent,
            confidence=confidence,
            agent_id=agent_id,
            created_at=utcnow(),
        )
        self.db.add(message)
        return message

    async def insert_messages(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert several messages in one statement (the hot path of every turn); ids in order.

        Rows are ``Message`` column values; missing optional columns get their defaults.
        """
        if not rows:
            return []
        now = utcnow()
        values = [{**MESSAGE_DEFAULTS, "created_at": now, **row} for row in rows]
        # Core, not the ORM: no unit-of-work bookkeeping for rows nobody reads this turn.
        connection = await self.db.connection()
        result = await connection.execute(INSERT_MESSAGES, values)
        return [row_id for (row_id,) in result.all()]

    async def has_delivery(self, channel: str, delivery_key: str) -> bool:
        found = await self.db.execute(
            select(Message.id).where(Message.channel == channel, Message.delivery_key == delivery_key)
        )
        return found.first() is not None

    async def conversation(self, customer_id: int, limit: int = 200) -> Sequence[Message]:
        rows = (
            await self.db.execute(
                select(Message).where(Message.customer_id == customer_id).order_by(Message.id.desc()).limit(limit)
            )
        ).scalars().all()
        return list(reversed(rows))

    async def ticket_messages(self, ticket_id: int) -> Sequence[Message]:
        return (
            (await self.db.execute(select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)))
            .scalars()
            .all()
        )

    async def take_outbox(self, customer_id: int, channel: str) -> Sequence[Message]:
        """Queued replies for a polling channel, marked sent as they are handed over.

        One ``UPDATE … RETURNING``: two polls at the same moment cannot both take a reply.
        """
        taken = await self.db.execute(
            update(Message)
            .where(
                Message.customer_id == customer_id,
                Message.channel == channel,
                Message.status == DeliveryStatus.QUEUED,
            )
            .values(status=DeliveryStatus.SENT)
            .returning(Message),
            execution_options={"synchronize_session": False},
        )
        return sorted(taken.scalars().all(), key=lambda m: m.id)

    async def queued_customers(self, channel: str, limit: int = 500) -> Sequence[int]:
        """Customers with replies queued on a push channel (agent replies, rating requests)."""
        query = (
            select(Message.customer_id)
            .where(Message.channel == channel, Message.status == DeliveryStatus.QUEUED)
            .group_by(Message.customer_id)
            .order_by(func.min(Message.id))
            .limit(limit)
        )
        return (await self.db.execute(query)).scalars().all()

    async def get_message(self, message_id: int) -> Message | None:
        return await self.db.get(Message, message_id)

    async def mark_failed(self, message_id: int, error: str) -> None:
        """A delivery given up for good (whatever its status was): the error stays for agents."""
        await self.db.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=DeliveryStatus.FAILED, error=error, lease_until=None, not_before=None),
            execution_options={"synchronize_session": False},
        )

    # -- outbox (push side: bot/channels/outbox.py is the one reader) ---------------------
    # A row goes QUEUED → SENDING (claimed under a lease, just before the platform call) →
    # SENT, or back to QUEUED with ``not_before`` (retry), or FAILED. Every transition is one
    # conditional UPDATE, so two readers (two processes) never send the same row.
    async def claim_outbound(self, message_id: int, now: datetime, lease_until: datetime) -> Message | None:
        """QUEUED → SENDING with ``attempts + 1``; None when it is not due or someone else has it."""
        claimed = await self.db.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.status == DeliveryStatus.QUEUED,
                or_(Message.not_before.is_(None), Message.not_before <= now),
            )
            .values(status=DeliveryStatus.SENDING, attempts=Message.attempts + 1, lease_until=lease_until)
            .returning(Message),
            execution_options={"synchronize_session": False},
        )
        return claimed.scalars().first()

    async def mark_sent(self, message_id: int, sent_at: datetime) -> bool:
        """SENDING → SENT; False when the row is no longer ours (its lease was declared lost)."""
        done = await self.db.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.SENT, sent_at=sent_at, lease_until=None, not_before=None, error=None)
            .returning(Message.id),
            execution_options={"synchronize_session": False},
        )
        return done.first() is not None

    async def retry_later(
        self, message_id: int, not_before: datetime, error: str, payload: dict[str, Any] | None = None
    ) -> bool:
        """SENDING → QUEUED, not before ``not_before``; ``payload`` replaces the row's (the parts
        already accepted). False when the row is no longer ours."""
        values: dict[str, Any] = {
            "status": DeliveryStatus.QUEUED, "not_before": not_before, "lease_until": None, "error": error[:1000],
        }
        if payload is not None:
            values["payload"] = payload
        done = await self.db.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == DeliveryStatus.SENDING)
            .values(**values)
            .returning(Message.id),
            execution_options={"synchronize_session": False},
        )
        return done.first() is not None

    async def due_push_chats(self, channel: str, now: datetime, limit: int = 500) -> Sequence[str]:
        """Chats with a queued outbound row due now, the longest waiting first."""
        query = (
            select(Message.chat_id)
            .where(
                Message.status == DeliveryStatus.QUEUED,
                Message.channel == channel,
                Message.direction == Direction.OUTBOUND,
                or_(Message.not_before.is_(None), Message.not_before <= now),
            )
            .group_by(Message.chat_id)
            .order_by(func.min(Message.id))
            .limit(limit)
        )
        return (await self.db.execute(query)).scalars().all()

    async def next_push_due(self, channel: str, now: datetime) -> datetime | None:
        """When the earliest held row of the channel may be tried again (None: nothing held)."""
        query = select(func.min(Message.not_before)).where(
            Message.status == DeliveryStatus.QUEUED,
            Message.channel == channel,
            Message.direction == Direction.OUTBOUND,
            Message.not_before > now,
        )
        found = (await self.db.execute(query)).scalar_one_or_none()
        return found if isinstance(found, datetime) or found is None else None

    async def chat_outbox(self, channel: str, chat_id: str, limit: int = 20) -> Sequence[Message]:
        """A chat's unfinished outbound rows (queued or being sent), in the order they must go."""
        query = (
            select(Message)
            .where(
                Message.channel == channel,
                Message.chat_id == chat_id,
                Message.direction == Direction.OUTBOUND,
                Message.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.SENDING]),
            )
            .order_by(Message.id)
            .limit(limit)
        )
        return (await self.db.execute(query)).scalars().all()

    async def expired_leases(self, channel: str, now: datetime, limit: int = 500) -> Sequence[int]:
        """Rows left SENDING past their lease: the process sending them died mid-call."""
        query = (
            select(Message.id)
            .where(
                Message.status == DeliveryStatus.SENDING,
                Message.channel == channel,
                or_(Message.lease_until.is_(None), Message.lease_until < now),
            )
            .order_by(Message.id)
            .limit(limit)
        )
        return (await self.db.execute(query)).scalars().all()

    async def fail_interrupted(self, message_id: int, now: datetime, error: str) -> bool:
        """SENDING with an expired lease → FAILED; False when it finished (or was failed) meanwhile."""
        done = await self.db.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.status == DeliveryStatus.SENDING,
                or_(Message.lease_until.is_(None), Message.lease_until < now),
            )
            .values(status=DeliveryStatus.FAILED, error=error[:1000], lease_until=None)
            .returning(Message.id),
            execution_options={"synchronize_session": False},
        )
        return done.first() is not None

    # -- pull channels (REST, web chat: the client fetches and acknowledges) -------------
    async def delivery_replies(self, channel: str, delivery_key: str) -> Sequence[Message] | None:
        """None when no message has this delivery key; else the replies handed in its answer.

        Those are the rows whose ``reply_to_id`` is that inbound message, oldest first: a
        client retrying the same message id gets the same answer again.
        """
        inbound_id = await self.inbound_id(channel, delivery_key)
        if inbound_id is None:
            return None
        rows = await self.db.execute(
            select(Message)
            .where(Message.reply_to_id == inbound_id, Message.direction == Direction.OUTBOUND)
            .order_by(Message.id)
        )
        return rows.scalars().all()

    async def hand_out_replies(self, customer_id: int, channel: str) -> Sequence[Message]:
        """Every reply queued for a polling client and not acknowledged yet, oldest first.

        Each hand-out counts as an attempt: only replies handed out at least once can be
        acknowledged, so a reply committed late with a lower id than the client's cursor is
        not acknowledged unseen.
        """
        rows = await self.db.execute(
            update(Message)
            .where(
                Message.customer_id == customer_id,
                Message.channel == channel,
                Message.direction == Direction.OUTBOUND,
                Message.status == DeliveryStatus.QUEUED,
            )
            .values(attempts=Message.attempts + 1)
            .returning(Message),
            execution_options={"synchronize_session": False},
        )
        return sorted(rows.scalars().all(), key=lambda m: m.id)

    async def acknowledge_replies(self, customer_id: int, channel: str, up_to: int) -> int:
        """The client has every reply handed out up to ``up_to`` (its cursor): they are sent."""
        done = await self.db.execute(
            update(Message)
            .where(
                Message.customer_id == customer_id,
                Message.channel == channel,
                Message.direction == Direction.OUTBOUND,
                Message.status == DeliveryStatus.QUEUED,
                Message.attempts > 0,
                Message.id <= up_to,
            )
            .values(status=DeliveryStatus.SENT, sent_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return int(getattr(done, "rowcount", 0) or 0)

    async def hand_over_replies(self, customer_id: int, channel: str, answer_to: int | None) -> Sequence[Message]:
        """Queued replies handed in the answer to a customer's message, marked sent.

        ``answer_to`` (the inbound message, when it has a delivery key) becomes their
        ``reply_to_id``, so a retry of that message gets them again with the turn's replies.
        One ``UPDATE … RETURNING``: two answers at the same moment cannot both take a reply.
        """
        values: dict[str, Any] = {"status": DeliveryStatus.SENT, "sent_at": utcnow(), "attempts": Message.attempts + 1}
        if answer_to is not None:
            values["reply_to_id"] = answer_to
        taken = await self.db.execute(
            update(Message)
            .where(
                Message.customer_id == customer_id,
                Message.channel == channel,
                Message.direction == Direction.OUTBOUND,
                Message.status == DeliveryStatus.QUEUED,
            )
            .values(**values)
            .returning(Message),
            execution_options={"synchronize_session": False},
        )
        return sorted(taken.scalars().all(), key=lambda m: m.id)

    async def inbound_id(self, channel: str, delivery_key: str) -> int | None:
        found = await self.db.execute(
            select(Message.id).where(Message.channel == channel, Message.delivery_key == delivery_key)
        )
        return found.scalar_one_or_none()

    async def identity_proof(self, channel: str, external_id: str) -> tuple[bool, str | None]:
        """(whether the identity exists, the sha256 of its proof or None when it has none)."""
        found = await self.db.execute(
            select(Identity.proof_hash).where(Identity.channel == channel, Identity.external_id == external_id)
        )
        row = found.first()
        return (False, None) if row is None else (True, row[0])

    async def claim_identity_proof(self, channel: str, external_id: str, proof_hash: str) -> bool:
        """Give an identity without a proof this one; False when it has one already (a race lost)."""
        done = await self.db.execute(
            update(Identity)
            .where(
                Identity.channel == channel,
                Identity.external_id == external_id,
                Identity.proof_hash.is_(None),
            )
            .values(proof_hash=proof_hash)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(done, "rowcount", 0) or 0) == 1

    # -- tickets ---------------------------------------------------------------------
    async def open_ticket(
        self,
        customer: Customer,
        *,
        kind: TicketKind,
        subject: str,
        channel: str,
        actor: str,
        priority: Priority = Priority.NORMAL,
        order_id: str | None = None,
        fields: dict[str, Any] | None = None,
        reason: str | None = None,
        first_response_due: datetime | None = None,
        resolution_due: datetime | None = None,
    ) -> Ticket:
        now = utcnow()
        ticket = Ticket(
            kind=kind,
            status=TicketStatus.NEW,
            priority=priority,
            subject=subject[:300],
            order_id=order_id,
            fields=dict(fields or {}),
            customer_id=customer.id,
            channel=channel,
            escalation_reason=reason,
            first_response_due=first_response_due,
            resolution_due=resolution_due,
            created_at=now,
            updated_at=now,
        )
        self.db.add(ticket)
        await self.db.flush()
        await self.add_event(
            ticket,
            actor,
            "created",
            {"kind": kind.value, "priority": priority.value, "order_id": order_id, "reason": reason},
        )
        return ticket

    async def add_event(self, ticket: Ticket, actor: str, kind: str, data: dict[str, Any] | None = None) -> TicketEvent:
        now = utcnow()
        row = TicketEvent(ticket_id=ticket.id, actor=actor, kind=kind, data=dict(data or {}), created_at=now)
        self.db.add(row)
        ticket.updated_at = now
        self.pending_events.append(
            BusEvent(kind=kind, ticket_id=ticket.id, ticket_number=ticket.number, actor=actor, data=row.data, at=now)
        )
        return row

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        """The ticket with its customer and assignee loaded (one query)."""
        return (await self.db.execute(TICKET_WITH_PEOPLE, {"ticket_id": ticket_id})).scalar_one_or_none()

    async def ticket_by_number(self, number: str) -> Ticket:
        ticket_id = parse_ticket_number(number)
        ticket = await self.get_ticket(ticket_id) if ticket_id is not None else None
        if ticket is None:
            raise TicketNotFound(number)
        return ticket

    async def list_tickets(
        self,
        *,
        status: TicketStatus | None = None,
        kind: TicketKind | None = None,
        customer_id: int | None = None,
        limit: int = 100,
    ) -> Sequence[Ticket]:
        query = select(Ticket).options(selectinload(Ticket.customer)).order_by(Ticket.id.desc()).limit(limit)
        if status is not None:
            query = query.where(Ticket.status == status)
        if kind is not None:
            query = query.where(Ticket.kind == kind)
        if customer_id is not None:
            query = query.where(Ticket.customer_id == customer_id)
        return (await self.db.execute(query)).scalars().all()

    async def open_tickets(self, customer_id: int) -> Sequence[Ticket]:
        return (
            (
                await self.db.execute(
                    select(Ticket)
                    .where(
                        Ticket.customer_id == customer_id,
                        Ticket.status.not_in([TicketStatus.RESOLVED, TicketStatus.CLOSED]),
                    )
                    .order_by(Ticket.id)
                )
            )
            .scalars()
            .all()
        )

    async def count_tickets_since(self, customer_id: int, kind: TicketKind, since: datetime) -> int:
        found = await self.db.execute(
            select(func.count(Ticket.id)).where(
                Ticket.customer_id == customer_id, Ticket.kind == kind, Ticket.created_at >= since
            )
        )
        return int(found.scalar_one())

    async def queue_position(self, ticket: Ticket) -> int:
        """1-based place among tickets waiting for an agent (queued customers)."""
        found = await self.db.execute(QUEUE_AHEAD, {"ticket_id": ticket.id})
        return max(1, int(found.scalar_one()))

    async def ticket_events(self, ticket_id: int) -> Sequence[TicketEvent]:
        query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        return (await self.db.execute(query)).scalars().all()

    # -- orders ----------------------------------------------------------------------
    async def get_order(self, order_id: str) -> Order | None:
        """The order with this id, any case. The usual spellings are looked up through the
        unique index first; only an odd mix of cases falls back to comparing ``upper()``,
        which reads the whole table (measured by bench/agents_queue.py's ticket view)."""
        wanted = order_id.strip()
        spellings = {wanted, wanted.upper(), wanted.lower()}
        found = (await self.db.execute(select(Order).where(Order.order_id.in_(spellings)))).scalars().first()
        if found is not None:
            return found
        return (
            await self.db.execute(select(Order).where(func.upper(Order.order_id) == wanted.upper()))
        ).scalar_one_or_none()

    async def order_ids(self) -> list[str]:
        """Every order id in the store, as the shop writes it (for recognising them in messages)."""
        return list((await self.db.execute(select(Order.order_id))).scalars().all())

    async def order_id_batches(self, size: int = 20_000) -> AsyncIterator[list[str]]:
        """Every order id in batches by row id, so a reader of 500,000 can let other tasks run
        between batches instead of holding the event loop for the whole read."""
        after = 0
        while True:
            query = select(Order.id, Order.order_id).where(Order.id > after).order_by(Order.id).limit(size)
            rows = (await self.db.execute(query)).all()
            if not rows:
                return
            yield [order_id for _, order_id in rows]
            after = rows[-1][0]

    async def orders_version(self) -> tuple[int, int, str]:
        """(number of orders, highest row id, highest order id): changes whenever orders are
        added or removed (even when a table emptied and refilled reuses the row ids), cheaply
        enough for a running bot to poll it to notice an import."""
        # Three statements: a lone max() is an index lookup; combined, SQLite scans for each.
        count = await self.db.scalar(select(func.count()).select_from(Order))
        highest = await self.db.scalar(select(func.max(Order.id)))
        last = await self.db.scalar(select(func.max(Order.order_id)))
        return int(count or 0), int(highest or 0), str(last or "")

    async def orders_for(self, customer: Customer) -> Sequence[Order]:
        """Orders linked to the customer or matching their known e-mail/phone."""
        conditions = [Order.customer_id == customer.id]
        if customer.email:
            conditions.append(func.lower(Order.email) == customer.email.lower())
        if customer.phone:
            conditions.append(Order.phone == customer.phone)
        return (
            (await self.db.execute(select(Order).where(or_(*conditions)).order_by(Order.ordered_at.desc())))
            .scalars()
            .all()
        )

    async def upsert_orders(self, orders: Iterable[Order]) -> tuple[int, int]:
        """Insert new orders and update known ones by ``order_id``; returns (added, updated)."""
        added = updated = 0
        for order in orders:
            existing = await self.get_order(order.order_id)
            if existing is None:
                self.db.add(order)
                added += 1
                continue
            for attr in ("email", "phone", "customer_name", "items", "total", "currency", "status",
                         "ordered_at", "delivered_at"):
                setattr(existing, attr, getattr(order, attr))
            updated += 1
        await self.db.flush()
        return added, updated

    # -- agents ----------------------------------------------------------------------
    async def agent_by_email(self, email: str) -> Agent | None:
        return (
            await self.db.execute(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))
        ).scalar_one_or_none()

    async def add_agent(self, email: str, name: str, role: str = "agent", password_hash: str | None = None) -> Agent:
        agent = Agent(email=email.strip().lower(), name=name, role=role, password_hash=password_hash)
        self.db.add(agent)
        await self.db.flush()
        return agent


class TicketStore(ABC):
    """Port: hands out transactions over the ticket data."""

    @abstractmethod
    def session(self) -> AbstractAsyncContextManager[TicketSession]:
        """``async with store.session() as tx:`` — commits on success, rolls back on error."""

    @abstractmethod
    async def create_schema(self) -> None:
        """Create tables directly (tests, throwaway databases); production uses migrations."""

    @abstractmethod
    async def close(self) -> None:
        """Dispose connections."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; NORMAL sync is durable across app crashes
    # (only an OS crash can lose the last commits), the usual trade-off for WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints run in WalCheckpointer's thread (the serving connection never fsyncs).
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# SQLSTATE classes of a server that is going away or not there yet: 08 connection
# exception, 57P01-57P03 admin/crash shutdown and "the database system is starting up".
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The domain error for a failure that means "the database cannot be reached now".

    SQLAlchemy wraps most driver errors (``OperationalError``/``InterfaceError``, a
    ``DBAPIError`` whose connection was invalidated, a pool timeout); asyncpg's own errors
    and socket errors can escape while connecting, so those are recognised too. A domain
    error raised by the caller inside the transaction is never one of these.
    """
    if isinstance(exc, DeskbotError):
        return None
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return StoreUnavailable("database", exc.__class__.__name__)
    cause: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    seen = 0
    while cause is not None and seen < 5:  # the driver's error may sit under an adapter's
        sqlstate = str(getattr(cause, "sqlstate", "") or "")
        driver = type(cause).__module__.split(".")[0] in {"asyncpg", "aiosqlite", "sqlalchemy"}
        if _connection_oserror(cause) or (driver and (
            sqlstate.startswith(_UNAVAILABLE_SQLSTATES) or "Connection" in type(cause).__name__
        )):
            return StoreUnavailable("database", cause.__class__.__name__)
        cause, seen = cause.__cause__, seen + 1
    return None


def _connection_oserror(exc: BaseException) -> bool:
    """A socket that could not connect or was cut (not any OSError: a missing file is no outage)."""
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return isinstance(exc, OSError) and (
        exc.errno in _CONNECTION_ERRNOS or "connect call failed" in str(exc).lower()
    )


_CONNECTION_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)


async def _rollback_quietly(db: AsyncSession) -> None:
    """Roll back; on a dead connection the rollback fails too, and the first error is the news."""
    try:
        await db.rollback()
    except Exception as exc:  # noqa: BLE001 - the original error is re-raised by the caller
        log.debug("rollback failed", extra={"error": exc.__class__.__name__})


class SqlTicketStore(TicketStore):
    """SQLAlchemy implementation: SQLite (aiosqlite) embedded, PostgreSQL (asyncpg) in production."""

    def __init__(self, engine: AsyncEngine, bus: EventBus | None = None) -> None:
        self.engine = engine
        self.bus = bus
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer; in-process sessions take turns instead of waiting on its lock.
        self._serial: asyncio.Lock | None = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._serial_owner: asyncio.Task[Any] | None = None
        self._checkpointer: WalCheckpointer | None = None

    @classmethod
    def from_url(cls, url: str, bus: EventBus | None = None, echo: bool = False) -> SqlTicketStore:
        kwargs: dict[str, Any] = {"echo": echo}
        sqlite = make_url(url).get_backend_name() == "sqlite"
        if sqlite:
            database = make_url(url).database or ":memory:"
            # One connection, used inline (see storage/sqlite_inline.py), one session at a time.
            kwargs |= {"async_creator": inline_creator(database), "poolclass": StaticPool}
            checkpointer = WalCheckpointer(database) if database != ":memory:" else None
        else:
            kwargs["pool_pre_ping"] = True
            # A server that does not answer fails fast (503) instead of holding requests a minute.
            if make_url(url).get_driver_name() == "asyncpg":
                kwargs["connect_args"] = {"timeout": 5}
            kwargs["pool_timeout"] = 10
        engine = create_async_engine(url, **kwargs)
        if sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            store = cls(engine, bus)
            store._checkpointer = checkpointer
            return store
        return cls(engine, bus)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[TicketSession]:
        if self._serial is None:
            async with self._session() as tx:
                yield tx
            return
        if self._serial_owner is not None and self._serial_owner is asyncio.current_task():
            raise StorageError("nested ticket-store session in one task (SQLite allows one at a time)")
        async with self._serial:
            if self._checkpointer is not None:
                self._checkpointer.start()
            self._serial_owner = asyncio.current_task()
            try:
                async with self._session() as tx:
                    yield tx
            finally:
                self._serial_owner = None

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[TicketSession]:
        try:
            async with self._sessions() as db:
                tx = TicketSession(db)
                try:
                    yield tx
                    await db.commit()
                except BaseException:
                    await _rollback_quietly(db)
                    raise
        except (IntegrityError, DeskbotError):
            raise  # callers tell duplicates apart (a delivery key seen before, …); domain errors
        except Exception as exc:
            unavailable = _unavailable(exc)
            if unavailable is not None:
                raise unavailable from exc
            if isinstance(exc, SQLAlchemyError):
                raise StorageError(f"ticket store: {exc.__class__.__name__}: {exc}") from exc
            raise
        if self.bus is not None:
            for bus_event in tx.pending_events:
                try:
                    await self.bus.publish(bus_event)
                except StoreUnavailable as exc:
                    # Redis is down: expected during an outage, and said once per event
                    # without a traceback. Live views catch up on reload.
                    log.warning(
                        "event not published: %s",
                        exc,
                        extra={"event": bus_event.kind, "ticket": bus_event.ticket_number},
                    )
                except Exception:  # noqa: BLE001
                    # The change is committed: raising now would make the caller treat a
                    # done turn as failed and redo it. Live views catch up on reload.
                    log.exception("event %s of ticket %s not published", bus_event.kind, bus_event.ticket_number)

    async def ping(self) -> None:
        """The database answers ``SELECT 1``, or StoreUnavailable (the readiness probe; the
        caller bounds the wait with ``asyncio.timeout``)."""
        async with self.session() as tx:
            await tx.db.execute(select(1))

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
