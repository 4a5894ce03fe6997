"""What the Telegram agents' group keeps in the database, in its own words.

- ``TelegramTicketLink`` rows: which topic / message in the group is which ticket, the card
  posted there and what it last showed;
- the agents' Telegram accounts (``deskbot agents link-telegram``);
- the group's updates already acted on (``ProcessedUpdate``, source ``agents``) and the
  replies it relayed (``Message.delivery_key`` ``agents:{update_id}``), so a redelivered
  update is acted on once.

Plain functions over a ``TicketSession`` (one transaction), kept out of ``tickets.py``
because only the Telegram agents' group needs them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Insert, and_, delete, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import (
    Agent,
    Customer,
    Message,
    Owner,
    ProcessedUpdate,
    TelegramTicketLink,
    Ticket,
    TicketStatus,
    format_ticket_number,
    utcnow,
)
from storage.tickets import TicketSession


def _insert_unless_known(
    tx: TicketSession, table: type[TelegramTicketLink] | type[ProcessedUpdate], key: list[str]
) -> Insert:
    dialect = tx.db.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
    return insert(table)  # pragma: no cover - other databases: no race protection


async def reserve(tx: TicketSession, ticket_id: int, chat_id: int | str) -> bool:
    """Claim the right to post the ticket: True for the first caller only, ever."""
    now = utcnow()
    statement = _insert_unless_known(tx, TelegramTicketLink, ["ticket_id"]).values(
        ticket_id=ticket_id, chat_id=str(chat_id), created_at=now, updated_at=now
    ).returning(TelegramTicketLink.ticket_id)
    return (await tx.db.execute(statement)).first() is not None


async def get(tx: TicketSession, ticket_id: int) -> TelegramTicketLink | None:
    return await tx.db.get(TelegramTicketLink, ticket_id, populate_existing=True)


async def by_thread(tx: TicketSession, chat_id: int | str, thread_id: int) -> TelegramTicketLink | None:
    query = select(TelegramTicketLink).where(
        TelegramTicketLink.chat_id == str(chat_id), TelegramTicketLink.thread_id == thread_id
    )
    return (await tx.db.execute(query)).scalars().first()


async def by_message(tx: TicketSession, chat_id: int | str, message_id: int) -> TelegramTicketLink | None:
    """The ticket whose posted message (or pinned card) this is."""
    query = select(TelegramTicketLink).where(
        TelegramTicketLink.chat_id == str(chat_id),
        or_(TelegramTicketLink.ticket_message_id == message_id, TelegramTicketLink.card_message_id == message_id),
    )
    return (await tx.db.execute(query)).scalars().first()


async def release(tx: TicketSession, ticket_id: int) -> None:
    """Forget a reservation whose posting failed for good, so a later event may try again."""
    link = await get(tx, ticket_id)
    if link is not None:
        await tx.db.delete(link)


async def agent_by_telegram_user(tx: TicketSession, user_id: int | str) -> Agent | None:
    """The active agent whose Telegram account this is (linked with ``deskbot agents link-telegram``)."""
    query = select(Agent).where(Agent.telegram_user_id == str(user_id), Agent.active.is_(True))
    return (await tx.db.execute(query)).scalars().first()


async def any_agent_by_telegram_user(tx: TicketSession, user_id: int | str) -> Agent | None:
    """Active or not: a Telegram account may be linked to one agent only."""
    query = select(Agent).where(Agent.telegram_user_id == str(user_id))
    return (await tx.db.execute(query)).scalars().first()


async def unposted_handoffs(tx: TicketSession, limit: int = 200) -> Sequence[tuple[int, str]]:
    """(ticket id, number) of conversations waiting for or owned by an agent, not yet in the group.

    Swept at start-up: a ticket whose posting was interrupted (shutdown while its topic was
    queued, an event lost by the bus) is posted then instead of never.
    """
    query = (
        select(Ticket.id)
        .join(Customer, Customer.handoff_ticket_id == Ticket.id)
        .outerjoin(TelegramTicketLink, TelegramTicketLink.ticket_id == Ticket.id)
        .where(
            Customer.owner.in_([Owner.QUEUED, Owner.AGENT]),
            Ticket.status.not_in([TicketStatus.RESOLVED, TicketStatus.CLOSED]),
            or_(
                TelegramTicketLink.ticket_id.is_(None),
                # a topic was made but its card failed: finish it
                and_(TelegramTicketLink.card_message_id.is_(None), TelegramTicketLink.thread_id.is_not(None)),
            ),
        )
        .order_by(Ticket.id)
        .limit(limit)
    )
    return [(ticket_id, format_ticket_number(ticket_id)) for ticket_id in (await tx.db.execute(query)).scalars()]


async def set_topic(tx: TicketSession, ticket_id: int, thread_id: int, title: str) -> None:
    link = await get(tx, ticket_id)
    if link is not None:
        link.thread_id, link.title = thread_id, title


async def card_posted(
    tx: TicketSession, ticket_id: int, thread_id: int | None, message_id: int, title: str | None, digest: str
) -> bool:
    """The ticket's card is in the group (in topic ``thread_id``, or a plain message when None)
    and shows what ``digest`` sums up; False when the reservation is gone."""
    link = await get(tx, ticket_id)
    if link is None:
        return False
    link.thread_id = thread_id
    link.card_message_id = link.ticket_message_id = message_id
    link.title, link.card_digest = title, digest
    return True


async def card_shown(tx: TicketSession, ticket_id: int, title: str | None, digest: str) -> None:
    """What the topic title and the card show now (edited in place, or found unchanged)."""
    link = await get(tx, ticket_id)
    if link is not None:
        link.title, link.card_digest = title, digest


async def first_sighting(tx: TicketSession, source: str, key: str) -> bool:
    """Record the update ``key`` from ``source`` as being acted on: True the first time, False
    for a redelivery (recorded before, by this or another process)."""
    statement = _insert_unless_known(tx, ProcessedUpdate, ["source", "key"]).values(
        source=source, key=key, created_at=utcnow()
    ).returning(ProcessedUpdate.key)
    return (await tx.db.execute(statement)).first() is not None


async def forget_sighting(tx: TicketSession, source: str, key: str) -> None:
    """Undo ``first_sighting`` for an update whose action failed, so a redelivery may succeed."""
    await tx.db.execute(delete(ProcessedUpdate).where(ProcessedUpdate.source == source, ProcessedUpdate.key == key))


async def reply_relayed(tx: TicketSession, delivery_key: str) -> bool:
    """A reply carrying ``delivery_key`` is stored (on whichever channel the customer uses)."""
    found = await tx.db.execute(select(Message.id).where(Message.delivery_key == delivery_key).limit(1))
    return found.first() is not None
