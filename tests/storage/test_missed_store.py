"""storage/missed.py on SQLite and PostgreSQL: recording misses, listing, resolving, additions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.errors import Conflict, NotFound
from storage import missed
from storage.models import (
    AdditionKind,
    Author,
    Customer,
    DeliveryStatus,
    Direction,
    MissedQuestion,
    MissedReason,
    MissedResolution,
    Owner,
    TicketKind,
    utcnow,
)
from storage.tickets import SqlTicketStore, TicketSession


async def say(tx: TicketSession, customer: Customer, text: str, reason: MissedReason | None = None) -> int:
    """A stored inbound message (and its bot reply), marked missed when ``reason`` is given."""
    ids = await tx.insert_messages([
        {"customer_id": customer.id, "channel": "rest", "chat_id": "c", "direction": Direction.INBOUND,
         "author": Author.CUSTOMER, "text": text, "status": DeliveryStatus.RECEIVED},
        {"customer_id": customer.id, "channel": "rest", "chat_id": "c", "direction": Direction.OUTBOUND,
         "author": Author.BOT, "text": "Sorry?", "status": DeliveryStatus.SENT},
    ])
    if reason is not None:
        await missed.record(tx, message_id=ids[0], customer_id=customer.id, reason=reason, language="en",
                            intent="out_of_scope", confidence=0.12)
    return ids[0]


async def test_open_misses_are_listed_newest_first_without_erased_or_resolved(ticket_store: SqlTicketStore) -> None:
    since = utcnow() - timedelta(minutes=1)
    async with ticket_store.session() as tx:
        ann, _ = await tx.resolve_customer("rest", "ann", "ann")
        bob, _ = await tx.resolve_customer("rest", "bob", "bob")
        await say(tx, ann, "Do you sell gift cards?", MissedReason.FAQ_UNKNOWN)
        await say(tx, ann, "Thanks!")  # answered: not a miss
        await say(tx, bob, "Is the lamp dimmable?", MissedReason.PRODUCT_UNKNOWN)
        erased = await say(tx, bob, "my phone is +31 6 1234 5678", MissedReason.FALLBACK)
    async with ticket_store.session() as tx:
        message = await tx.get_message(erased)
        assert message is not None
        message.text = "[erased]"  # what data rights and retention leave
    async with ticket_store.session() as tx:
        rows = await missed.open_missed(tx, since)
    assert [(r.text, r.reason) for r in rows] == [
        ("Is the lamp dimmable?", MissedReason.PRODUCT_UNKNOWN),
        ("Do you sell gift cards?", MissedReason.FAQ_UNKNOWN),
    ]
    assert rows[1].customer_id == ann.id and rows[1].intent == "out_of_scope" and rows[1].confidence == 0.12
    assert not any(r.handed_off for r in rows)

    async with ticket_store.session() as tx:
        assert await missed.resolve(tx, [rows[0].id, rows[0].id, 999_999], MissedResolution.DISMISSED, agent_id=None) == 1
        assert await missed.resolve(tx, [rows[0].id], MissedResolution.DISMISSED, agent_id=None) == 0  # once only
        assert await missed.resolve(tx, [], MissedResolution.DISMISSED, agent_id=None) == 0
    async with ticket_store.session() as tx:
        assert [r.text for r in await missed.open_missed(tx, since)] == ["Do you sell gift cards?"]
        assert [r.text for r in await missed.open_missed(tx, since, language="zh")] == []
        assert await missed.open_missed(tx, utcnow() + timedelta(minutes=1)) == []
        assert len(await missed.open_missed(tx, since, limit=1)) == 1


async def test_a_handoff_soon_after_a_miss_is_counted_with_it(ticket_store: SqlTicketStore) -> None:
    since = utcnow() - timedelta(minutes=1)
    async with ticket_store.session() as tx:
        cid, _ = await tx.resolve_customer("rest", "cid", "cid")
        dee, _ = await tx.resolve_customer("rest", "dee", "dee")
        await say(tx, cid, "Can I rent the projector?", MissedReason.FALLBACK)
        await say(tx, dee, "Can I rent the speaker?", MissedReason.FALLBACK)
        ticket = await tx.open_ticket(cid, kind=TicketKind.HANDOFF, subject="help", channel="rest", actor="bot")
        await tx.add_event(ticket, "bot", "owner_changed", {"from": Owner.BOT.value, "to": Owner.QUEUED.value})
        other = await tx.open_ticket(dee, kind=TicketKind.COMPLAINT, subject="x", channel="rest", actor="bot")
        await tx.add_event(other, "agent:x", "owner_changed", {"from": "queued", "to": "agent"})  # not a handoff
    async with ticket_store.session() as tx:
        rows = {r.text: r.handed_off for r in await missed.open_missed(tx, since)}
    assert rows == {"Can I rent the projector?": True, "Can I rent the speaker?": False}


async def test_a_message_is_missed_once_and_goes_with_its_customer(ticket_store: SqlTicketStore) -> None:
    from sqlalchemy import delete, func, select
    from sqlalchemy.exc import IntegrityError

    async with ticket_store.session() as tx:
        eve, _ = await tx.resolve_customer("rest", "eve", "eve")
        message_id = await say(tx, eve, "Hello?", MissedReason.FALLBACK)
    with pytest.raises(IntegrityError):
        async with ticket_store.session() as tx:
            await missed.record(tx, message_id=message_id, customer_id=eve.id, reason=MissedReason.FALLBACK,
                                language="en")
    async with ticket_store.session() as tx:
        await tx.db.execute(delete(Customer).where(Customer.id == eve.id))  # the database cascades
    async with ticket_store.session() as tx:
        assert (await tx.db.execute(select(func.count(MissedQuestion.id)))).scalar_one() == 0


async def test_additions_are_unique_per_folded_form_and_announced_after_commit(ticket_store: SqlTicketStore) -> None:
    assert ticket_store.bus is not None
    async with ticket_store.bus.subscribe() as events:
        async with ticket_store.session() as tx:
            agent = await tx.add_agent("ada@shop.example", "Ada", "admin")
            first = await missed.add_addition(tx, kind=AdditionKind.FAQ_PHRASING, target="warranty", language="en",
                                              text="Guarantee?", folded="guarantee?", agent_id=agent.id)
            await missed.add_addition(tx, kind=AdditionKind.PRODUCT_ALIAS, target="HP-200", language="en",
                                      text="cans", folded="cans", agent_id=None)
            missed.announce_change(tx, "agent:ada@shop.example", {"origin": "here"})
        event = await anext(aiter(events))
    assert (event.kind, event.ticket_id, event.data) == ("knowledge_changed", None, {"origin": "here"})

    with pytest.raises(Conflict, match="already a faq phrasing of warranty"):
        async with ticket_store.session() as tx:
            await missed.add_addition(tx, kind=AdditionKind.FAQ_PHRASING, target="warranty", language="en",
                                      text="GUARANTEE?", folded="guarantee?", agent_id=None)
    async with ticket_store.session() as tx:
        # Another language or another target is another form.
        await missed.add_addition(tx, kind=AdditionKind.FAQ_PHRASING, target="warranty", language="zh",
                                  text="Guarantee?", folded="guarantee?", agent_id=None)
        rows = await missed.additions(tx)
        assert [(r.kind, r.target, r.language, r.text) for r in rows] == [
            (AdditionKind.FAQ_PHRASING, "warranty", "en", "Guarantee?"),
            (AdditionKind.PRODUCT_ALIAS, "HP-200", "en", "cans"),
            (AdditionKind.FAQ_PHRASING, "warranty", "zh", "Guarantee?"),
        ]
        assert rows[0].created_by_id == first.created_by_id and rows[0].created_at is not None
        await missed.delete_addition(tx, first.id)
    async with ticket_store.session() as tx:
        assert len(await missed.additions(tx)) == 2
        with pytest.raises(NotFound):
            await missed.delete_addition(tx, first.id)
