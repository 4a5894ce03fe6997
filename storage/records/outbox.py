"""Outbound messages on their way out: the push channels' outbox reader and the pull channels' polls."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from storage.models import (
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    utcnow,
)
from storage.records.base import Records


class OutboxRecords(Records):
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

    async def outbox_backlog(self) -> dict[tuple[str, DeliveryStatus], int]:
        """Outbound messages not delivered, per (channel, status): QUEUED and SENDING (on their
        way) and FAILED (given up, until an agent retries them). For monitoring (``/metrics``).

        Only outbound rows take these statuses (an inbound one is RECEIVED), so the status
        alone picks them and ``ix_messages_pending`` (status, channel, id) covers the count.
        """
        query = (
            select(Message.channel, Message.status, func.count())
            .where(Message.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.FAILED]))
            .group_by(Message.channel, Message.status)
        )
        rows = await self.db.execute(query)
        return {(channel, DeliveryStatus(status)): int(count) for channel, status, count in rows}

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
