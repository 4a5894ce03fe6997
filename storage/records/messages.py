"""The conversation log: inbound and outbound messages, stored in the turn's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from common.errors import DuplicateDelivery
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
DELIVERY_KEY_CONSTRAINT = "uq_message_delivery"
# How each database names the violated key: PostgreSQL the constraint, SQLite its columns.
_DELIVERY_KEY_VIOLATIONS = (DELIVERY_KEY_CONSTRAINT, "messages.channel, messages.delivery_key")


def _duplicate_delivery(exc: IntegrityError) -> bool:
    """Whether the insert broke the messages' unique ``(channel, delivery_key)``, no other key."""
    detail = str(exc.orig)
    return any(name in detail for name in _DELIVERY_KEY_VIOLATIONS)


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

        Rows are ``Message`` column values; missing optional columns get their defaults. A
        row whose ``(channel, delivery_key)`` is stored already raises ``DuplicateDelivery``
        (the transaction is then only good for rolling back); other constraints raise as they are.
        """
        if not rows:
            return []
        now = utcnow()
        values = [{**MESSAGE_DEFAULTS, "created_at": now, **row} for row in rows]
        # Core, not the ORM: no unit-of-work bookkeeping for rows nobody reads this turn.
        connection = await self.db.connection()
        try:
            result = await connection.execute(INSERT_MESSAGES, values)
        except IntegrityError as exc:
            if _duplicate_delivery(exc):
                keys = sorted({f"{row['channel']}:{row['delivery_key']}" for row in values if row["delivery_key"]})
                raise DuplicateDelivery(f"delivery stored already: {', '.join(keys)}") from exc
            raise
        return [row_id for (row_id,) in result.all()]

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

    async def move_messages(self, from_ticket_id: int, to_ticket_id: int) -> None:
        """Every message of one ticket now belongs to another (a merge)."""
        await self.db.execute(
            update(Message).where(Message.ticket_id == from_ticket_id).values(ticket_id=to_ticket_id),
            execution_options={"synchronize_session": False},
        )

    async def save_message(self, message: Message) -> int:
        """Write a message added in this transaction now, for its id. ``DuplicateDelivery``
        when its ``(channel, delivery_key)`` is stored already (the transaction is then only
        good for rolling back); other constraints raise as they are."""
        try:
            await self.db.flush()
        except IntegrityError as exc:
            if _duplicate_delivery(exc):
                raise DuplicateDelivery(f"delivery stored already: {message.channel}:{message.delivery_key}") from exc
            raise
        return message.id
