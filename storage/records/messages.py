"""The conversation log: inbound and outbound messages, stored in the turn's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update

from storage.models import (
    Author,
    Customer,
    DeliveryStatus,
    Direction,
    Message,
    utcnow,
)
from storage.records.base import Records

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


class MessageRecords(Records):
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
