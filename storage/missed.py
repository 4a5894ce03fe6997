"""Repository of what the bot missed and of what admins taught it from that.

``MissedQuestion`` rows mark customer messages the bot did not answer (or answered unsure);
``KnowledgeAddition`` rows are the FAQ phrasings and product aliases admins added from them.
Plain functions over a ``TicketSession`` (one transaction), like ``storage/telegram_links.py``:
only the pipeline (recording) and the workspace (listing, resolving) need them.

A change to the additions is announced as a ``knowledge_changed`` bus event, published after
the commit like every ticket event, so every process reloads the shop's knowledge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Insert, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from common.errors import Conflict, NotFound
from storage.events import BusEvent
from storage.models import (
    AdditionKind,
    Direction,
    KnowledgeAddition,
    Message,
    MissedQuestion,
    MissedReason,
    MissedResolution,
    Ticket,
    TicketEvent,
    utcnow,
)
from storage.tickets import TicketSession

KNOWLEDGE_CHANGED = "knowledge_changed"
# A handoff this soon after a miss counts as caused by it (the customer gave up on the bot).
HANDOFF_WINDOW = timedelta(minutes=30)
# What data rights and retention leave of an erased message (storage/data_rights.py).
_ERASED = "[erased]"


@dataclass(frozen=True, slots=True)
class MissedRow:
    """One open miss with the customer's words as stored (unmasked: mask before showing)."""

    id: int
    text: str
    language: str
    reason: MissedReason
    intent: str | None
    confidence: float | None
    created_at: datetime
    customer_id: int
    handed_off: bool = False


# -- recording (the pipeline, inside the turn's transaction) ------------------------------
async def record(
    tx: TicketSession,
    *,
    message_id: int,
    customer_id: int,
    reason: MissedReason,
    language: str,
    intent: str | None = None,
    confidence: float | None = None,
) -> None:
    """Mark a stored inbound message as missed (Core insert: the hot path of a turn)."""
    await tx.db.execute(
        insert(MissedQuestion).values(
            message_id=message_id,
            customer_id=customer_id,
            reason=reason,
            language=language[:8],
            intent=intent,
            confidence=confidence,
            created_at=utcnow(),
        )
    )


# -- the workspace's list ----------------------------------------------------------------
OPEN_MISSED = (
    select(MissedQuestion, Message.text)
    .join(Message, Message.id == MissedQuestion.message_id)
    .where(
        MissedQuestion.resolved_at.is_(None),
        MissedQuestion.created_at >= bindparam("since"),
        Message.direction == Direction.INBOUND,
        Message.text != _ERASED,
        Message.text != "",
    )
    .order_by(MissedQuestion.created_at.desc(), MissedQuestion.id.desc())
    .limit(bindparam("limit"))
)


async def open_missed(
    tx: TicketSession, since: datetime, *, limit: int = 2000, language: str | None = None
) -> list[MissedRow]:
    """Unresolved misses since ``since``, newest first, at most ``limit``; erased texts left out.

    ``handed_off`` tells whether the customer was queued for a person within
    :data:`HANDOFF_WINDOW` after the miss (an ``owner_changed`` event to ``queued`` on any of
    their tickets, whether the ticket was new or reused).
    """
    query = OPEN_MISSED
    if language:
        query = query.where(MissedQuestion.language == language)
    found = (await tx.db.execute(query, {"since": since, "limit": limit})).all()
    handoffs = await _handoffs(tx, {missed.customer_id for missed, _ in found}, since)
    rows = []
    for missed, text in found:
        times = handoffs.get(missed.customer_id, ())
        handed_off = any(missed.created_at <= at <= missed.created_at + HANDOFF_WINDOW for at in times)
        rows.append(
            MissedRow(
                id=missed.id,
                text=text,
                language=missed.language,
                reason=missed.reason,
                intent=missed.intent,
                confidence=missed.confidence,
                created_at=missed.created_at,
                customer_id=missed.customer_id,
                handed_off=handed_off,
            )
        )
    return rows


async def _handoffs(tx: TicketSession, customer_ids: Iterable[int], since: datetime) -> dict[int, list[datetime]]:
    """When each customer was queued for a person since ``since``."""
    wanted = sorted(customer_ids)
    if not wanted:
        return {}
    query = (
        select(Ticket.customer_id, TicketEvent.created_at, TicketEvent.data)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(
            TicketEvent.kind == "owner_changed",
            TicketEvent.created_at >= since,
            Ticket.customer_id.in_(wanted),
        )
    )
    times: dict[int, list[datetime]] = {}
    for customer_id, at, data in (await tx.db.execute(query)).all():
        if (data or {}).get("to") == "queued":
            times.setdefault(customer_id, []).append(at)
    return times


async def resolve(
    tx: TicketSession,
    ids: Sequence[int],
    resolution: MissedResolution,
    *,
    agent_id: int | None,
    addition_id: int | None = None,
) -> int:
    """Close the open misses among ``ids`` (turned into ``addition_id``, or dismissed); how many."""
    if not ids:
        return 0
    result = await tx.db.execute(
        update(MissedQuestion)
        .where(MissedQuestion.id.in_(list(ids)), MissedQuestion.resolved_at.is_(None))
        .values(resolved_at=utcnow(), resolution=resolution, resolved_by_id=agent_id, addition_id=addition_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- knowledge additions -------------------------------------------------------------------
def _insert_unless_known(tx: TicketSession) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id``: no row back means it existed."""
    dialect = tx.db.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(KnowledgeAddition).on_conflict_do_nothing().returning(KnowledgeAddition.id)
    if dialect == "sqlite":
        return sqlite.insert(KnowledgeAddition).on_conflict_do_nothing().returning(KnowledgeAddition.id)
    return insert(KnowledgeAddition).returning(KnowledgeAddition.id)  # pragma: no cover - other databases


async def add_addition(
    tx: TicketSession,
    *,
    kind: AdditionKind,
    target: str,
    language: str,
    text: str,
    folded: str,
    agent_id: int | None,
) -> KnowledgeAddition:
    """Store a phrasing or alias; :class:`Conflict` when the same form is stored for the target.

    ``folded`` is the text as the shop's lookups compare it (``knowledge.shop.fold_text``),
    the key of the uniqueness check, so ``PayPal?`` and ``paypal?`` are one form.
    """
    statement = _insert_unless_known(tx).values(
        kind=kind, target=target, language=language, text=text, folded=folded,
        created_by_id=agent_id, created_at=utcnow(),
    )
    added = (await tx.db.execute(statement)).scalar_one_or_none()
    if added is None:
        raise Conflict(f"'{text}' is already a {kind.value.replace('_', ' ')} of {target} ({language})")
    row = await tx.db.get(KnowledgeAddition, added)
    assert row is not None
    return row


async def additions(tx: TicketSession) -> Sequence[KnowledgeAddition]:
    """Every stored addition, oldest first (the order they are merged in)."""
    return (await tx.db.execute(select(KnowledgeAddition).order_by(KnowledgeAddition.id))).scalars().all()


async def delete_addition(tx: TicketSession, addition_id: int) -> KnowledgeAddition:
    """Forget an addition (the misses it resolved stay resolved); :class:`NotFound` if unknown."""
    row = await tx.db.get(KnowledgeAddition, addition_id)
    if row is None:
        raise NotFound(f"no knowledge addition with id {addition_id}")
    await tx.db.delete(row)
    await tx.db.flush()
    return row


def announce_change(tx: TicketSession, actor: str, data: dict[str, object]) -> None:
    """Tell every process, after this transaction commits, that the additions changed."""
    tx.pending_events.append(
        BusEvent(kind=KNOWLEDGE_CHANGED, ticket_id=None, ticket_number=None, actor=actor, data=dict(data), at=utcnow())
    )
