"""Export, erase and retention (storage/data_rights.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from common.errors import NotFound
from storage.data_rights import (
    ERASED,
    ERASED_TABLES,
    apply_retention,
    erase_customer,
    export_customer,
    run_retention,
    vacuum_erased,
)
from storage.models import (
    Author,
    Customer,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    Order,
    Owner,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
)
from storage.state import MemoryStateStore, StateKey
from storage.tickets import SqlTicketStore, TicketSession

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


async def say(
    tx: TicketSession, who: Customer, text: str, when: datetime, channel: str = "webchat",
    ticket: Ticket | None = None, author: Author = Author.CUSTOMER,
) -> Message:
    row = Message(
        customer_id=who.id, channel=channel, chat_id="chat-" + str(who.id),
        direction=Direction.INBOUND if author == Author.CUSTOMER else Direction.OUTBOUND, author=author,
        text=text, payload={"buttons": [text]}, intent="complaint", confidence=0.9,
        status=DeliveryStatus.RECEIVED, created_at=when, ticket_id=ticket.id if ticket else None,
    )
    tx.db.add(row)
    await tx.db.flush()
    return row


async def open_ticket(
    tx: TicketSession, who: Customer, when: datetime, status: TicketStatus, channel: str = "webchat"
) -> Ticket:
    row = Ticket(
        kind=TicketKind.RETURN, status=status, subject="Return of the blue hoodie for Ann Lee",
        fields={"order_id": "A100", "reason": "my address is 1 Main St"}, order_id="A100", customer_id=who.id,
        channel=channel, escalation_reason="Ann was angry", first_response_due=when + timedelta(hours=1),
        first_response_at=when + timedelta(minutes=20), resolution_due=when + timedelta(days=1),
        resolved_at=when + timedelta(hours=5) if status == TicketStatus.RESOLVED else None,
        rating=4 if status == TicketStatus.RESOLVED else None, rating_comment="thanks Ann!",
        created_at=when, updated_at=when + timedelta(hours=5),
    )
    tx.db.add(row)
    await tx.db.flush()
    tx.db.add_all([
        TicketEvent(ticket_id=row.id, actor="customer", kind="customer_message", data={"text": "I am Ann"},
                    created_at=when),
        TicketEvent(ticket_id=row.id, actor="eve@shop.test", kind="owner_changed",
                    data={"from": "bot", "to": "queued"}, created_at=when),
        TicketEvent(ticket_id=row.id, actor="eve@shop.test", kind="note", data={"text": "Ann lives in Paris"},
                    created_at=when),
    ])
    return row


async def ann(tx: TicketSession, channel: str = "webchat", external_id: str = "ann-1") -> Customer:
    who, _ = await tx.resolve_customer(channel, external_id, chat_id="chat-ann", display_name="Ann Lee")
    who.email, who.phone, who.tags, who.notes = "ann@example.com", "+33 6 12 34 56 78", ["vip"], "likes blue"
    identity = (await tx.identities(who.id))[0]
    identity.created_at = days_ago(400)
    return who


@pytest.fixture
async def seeded(ticket_store: SqlTicketStore) -> dict[str, int]:
    async with ticket_store.session() as tx:
        who = await ann(tx)
        other, _ = await tx.resolve_customer("webchat", "bob-1", chat_id="chat-bob", display_name="Bob")
        resolved = await open_ticket(tx, who, days_ago(10), TicketStatus.RESOLVED)
        still_open = await open_ticket(tx, who, days_ago(2), TicketStatus.OPEN)
        await say(tx, who, "my hoodie A100 is too small, I am Ann", days_ago(10), ticket=resolved)
        await say(tx, who, "any news? call me on +33 6 12 34 56 78", days_ago(2), ticket=still_open)
        await say(tx, other, "hello from Bob", days_ago(1))
        tx.db.add(Order(order_id="A100", email="ann@example.com", phone="+33 6 12 34 56 78", customer_name="Ann Lee",
                        customer_id=who.id, items=[{"sku": "H1"}], total=49.0, currency="EUR", status="delivered",
                        ordered_at=days_ago(20)))
        return {"ann": who.id, "bob": other.id, "resolved": resolved.id, "open": still_open.id}


async def test_export_holds_everything_about_the_customer(
    ticket_store: SqlTicketStore, seeded: dict[str, int]
) -> None:
    async with ticket_store.session() as tx:
        data = await export_customer(tx, seeded["ann"])
    json.dumps(data)  # JSON-ready
    assert data["customer"]["email"] == "ann@example.com" and data["customer"]["owner"] == "bot"
    assert data["identities"] == [
        {"id": data["identities"][0]["id"], "channel": "webchat", "external_id": "ann-1", "chat_id": "chat-ann",
         "created_at": days_ago(400).isoformat()}
    ]
    assert [m["text"] for m in data["messages"]] == [
        "my hoodie A100 is too small, I am Ann", "any news? call me on +33 6 12 34 56 78"
    ]
    assert [t["status"] for t in data["tickets"]] == ["resolved", "open"]
    assert data["tickets"][0]["number"] == "T-1001"
    assert {e["kind"] for e in data["tickets"][0]["events"]} == {"customer_message", "owner_changed", "note"}
    assert data["ratings"] == [{"ticket": "T-1001", "score": 4, "comment": "thanks Ann!"}]
    assert [o["order_id"] for o in data["orders"]] == ["A100"]
    assert "hello from Bob" not in json.dumps(data)


async def test_export_of_an_unknown_customer(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        with pytest.raises(NotFound):
            await export_customer(tx, 999)
        with pytest.raises(NotFound):
            await erase_customer(tx, 999, actor="admin@shop.test")


async def test_erase_removes_personal_data_and_keeps_statistics(
    ticket_store: SqlTicketStore, seeded: dict[str, int]
) -> None:
    state = MemoryStateStore()
    await state.set(StateKey(seeded["ann"]), {"slots": {"email": "ann@example.com"}}, ttl=600)
    async with ticket_store.session() as tx:
        result = await erase_customer(tx, seeded["ann"], actor="admin@shop.test", state=state)
    assert (result.messages, result.tickets, result.identities, result.orders) == (2, 2, 1, 1)
    assert await state.get(StateKey(seeded["ann"])) is None
    async with ticket_store.session() as tx:
        data = await export_customer(tx, seeded["ann"])
        bob = await export_customer(tx, seeded["bob"])
        order = (await tx.db.execute(select(Order))).scalar_one()
    dump = json.dumps(data)
    for personal in ("Ann", "ann@", "+33", "A100", "Paris", "hoodie", "vip", "likes blue", "chat-ann", "ann-1"):
        assert personal not in dump, personal
    assert data["identities"] == [] and data["orders"] == []
    customer = data["customer"]
    assert customer["display_name"] is None and customer["unreachable"] is True and customer["tags"] == []
    # statistics stay: who wrote when, intents, ticket kinds, times, ratings
    assert [(m["author"], m["intent"], m["text"]) for m in data["messages"]] == [("customer", "complaint", ERASED)] * 2
    resolved, closed = data["tickets"]
    assert (resolved["kind"], resolved["status"], resolved["rating"], resolved["subject"]) == (
        "return", "resolved", 4, ERASED
    )
    assert resolved["first_response_at"] and resolved["resolved_at"] and resolved["fields"] == {}
    assert closed["status"] == "closed", "open tickets of an erased customer are closed"
    kinds = [(e["kind"], e["data"]) for e in resolved["events"]]
    assert ("owner_changed", {"from": "bot", "to": "queued"}) in kinds and ("erased", {}) in kinds
    assert (order.email, order.customer_name, order.customer_id, order.total) == (None, None, None, 49.0)
    # Bob is untouched.
    assert [m["text"] for m in bob["messages"]] == ["hello from Bob"]
    assert bob["customer"]["display_name"] == "Bob"


async def test_after_erasure_the_same_account_is_a_new_customer(
    ticket_store: SqlTicketStore, seeded: dict[str, int]
) -> None:
    async with ticket_store.session() as tx:
        await erase_customer(tx, seeded["ann"], actor="admin@shop.test")
    async with ticket_store.session() as tx:
        again, created = await tx.resolve_customer("webchat", "ann-1", chat_id="chat-ann")
    assert created and again.id != seeded["ann"]


async def test_erasing_twice_changes_nothing_more(ticket_store: SqlTicketStore, seeded: dict[str, int]) -> None:
    async with ticket_store.session() as tx:
        await erase_customer(tx, seeded["ann"], actor="admin@shop.test")
    async with ticket_store.session() as tx:
        result = await erase_customer(tx, seeded["ann"], actor="admin@shop.test")
    assert (result.messages, result.tickets, result.identities, result.orders) == (0, 0, 0, 0)


async def test_retention_anonymises_old_conversations_per_channel(
    ticket_store: SqlTicketStore, seeded: dict[str, int]
) -> None:
    async with ticket_store.session() as tx:
        # A Telegram customer who last wrote 40 days ago, and an old bot-only chat on webchat.
        tg = await ann(tx, channel="telegram", external_id="tg-7")
        await say(tx, tg, "old telegram message", days_ago(40), channel="telegram")
        await say(tx, tg, "bot answer", days_ago(40), channel="telegram", author=Author.BOT)
        await say(tx, tg, "recent telegram message", days_ago(3), channel="telegram")
        await say(tx, await tx.get_customer(seeded["bob"]), "old webchat", days_ago(8))  # type: ignore[arg-type]
        gone, _ = await tx.resolve_customer("telegram", "tg-old", chat_id="1", display_name="Old Timer")
        (await tx.identities(gone.id))[0].created_at = days_ago(90)
        await say(tx, gone, "hi from long ago", days_ago(90), channel="telegram")
        tg_id, gone_id = tg.id, gone.id
    async with ticket_store.session() as tx:
        result = await apply_retention(tx, {"webchat": 7, "telegram": 30}, now=NOW)
    # webchat: Ann's resolved ticket (10 days old); her messages stay while she has a
    # ticket open (hers is a conversation going on); Bob's 8-day-old message goes, his
    # 1-day-old one stays.
    assert result.tickets == {"telegram": 0, "webchat": 1}
    assert result.messages == {"telegram": 3, "webchat": 1}
    # Ann's webchat identity stays (she wrote 2 days ago); "tg-old" had no recent message;
    # the other telegram identity wrote 3 days ago.
    assert result.identities == {"telegram": 1, "webchat": 0}
    assert result.customers == 1
    async with ticket_store.session() as tx:
        texts = dict((await tx.db.execute(select(Message.text, Message.channel).order_by(Message.id))).all())
        old_timer = await tx.get_customer(gone_id)
        kept = await tx.get_customer(tg_id)
        resolved = await tx.get_ticket(seeded["resolved"])
        still_open = await tx.get_ticket(seeded["open"])
        identities = (await tx.db.execute(select(Identity.external_id).order_by(Identity.id))).scalars().all()
    assert "any news? call me on +33 6 12 34 56 78" in texts and "hello from Bob" in texts
    assert "recent telegram message" in texts
    assert "my hoodie A100 is too small, I am Ann" in texts
    for old in ("old telegram message", "old webchat", "hi from long ago"):
        assert old not in texts
    assert old_timer is not None and (old_timer.display_name, old_timer.unreachable) == (None, True)
    assert kept is not None and kept.display_name == "Ann Lee"
    assert resolved is not None and (resolved.subject, resolved.rating, resolved.rating_comment) == (ERASED, 4, None)
    assert still_open is not None and still_open.subject.startswith("Return of")
    assert list(identities) == ["ann-1", "bob-1", "tg-7"]
    # A second run finds nothing left to do.
    again = await run_retention(ticket_store, {"webchat": 7, "telegram": 30}, now=NOW)
    assert again.total == 0 and again.customers == 0


async def test_retention_in_small_batches_does_the_same(
    ticket_store: SqlTicketStore, seeded: dict[str, int]
) -> None:
    async with ticket_store.session() as tx:
        bob = await tx.get_customer(seeded["bob"])
        assert bob is not None
        for n in range(5):
            await say(tx, bob, f"old message {n}", days_ago(30 + n))
        gone, _ = await tx.resolve_customer("webchat", "gone-1", chat_id="1", display_name="Gone")
        (await tx.identities(gone.id))[0].created_at = days_ago(90)
    result = await run_retention(ticket_store, {"webchat": 7}, now=NOW, batch=2)
    # Bob's five; Ann's old message stays with her open ticket.
    assert (result.messages, result.tickets, result.identities, result.customers) == (
        {"webchat": 5}, {"webchat": 1}, {"webchat": 1}, 1
    )
    async with ticket_store.session() as tx:
        left = (await tx.db.execute(select(Message.text).where(Message.text.like("old message%")))).all()
    assert left == []


async def test_channels_without_a_period_are_kept(ticket_store: SqlTicketStore, seeded: dict[str, int]) -> None:
    result = await run_retention(ticket_store, {"telegram": 1}, now=NOW + timedelta(days=3650))
    assert result.total == 0
    async with ticket_store.session() as tx:
        owner = await tx.get_customer(seeded["ann"])
    assert owner is not None and owner.display_name == "Ann Lee" and owner.owner == Owner.BOT


async def test_retention_leaves_conversations_going_on_alone(ticket_store: SqlTicketStore) -> None:
    """Defect 7: ``retention.days: {rest: 1}`` deleted the REST identity of a customer whose
    ticket was queued; their next message started a new customer and the agent's reply
    stayed queued for nobody. An open ticket or an undelivered reply keeps the conversation."""
    async with ticket_store.session() as tx:
        waiting, _ = await tx.resolve_customer("rest", "carl-1", chat_id="carl-1", display_name="Carl")
        rated, _ = await tx.resolve_customer("rest", "dora-1", chat_id="dora-1", display_name="Dora")
        done, _ = await tx.resolve_customer("rest", "ed-1", chat_id="ed-1", display_name="Ed")
        for who in (waiting, rated, done):
            (await tx.identities(who.id))[0].created_at = days_ago(5)
        # Carl: handed to an agent 2 days ago, the ticket is still new; the agent's reply
        # waits in the outbox for his next poll.
        queued = await open_ticket(tx, waiting, days_ago(2), TicketStatus.NEW, channel="rest")
        await say(tx, waiting, "where is my refund? I am Carl", days_ago(2), channel="rest", ticket=queued)
        reply = await say(tx, waiting, "Hi Carl, refunded today", days_ago(2), channel="rest", ticket=queued,
                          author=Author.AGENT)
        reply.status = DeliveryStatus.QUEUED
        # Dora: her ticket is resolved, but the rating request is still being sent.
        resolved = await open_ticket(tx, rated, days_ago(3), TicketStatus.RESOLVED, channel="rest")
        await say(tx, rated, "thanks, I am Dora", days_ago(3), channel="rest", ticket=resolved)
        ask = await say(tx, rated, "How did we do, Dora?", days_ago(2), channel="rest", author=Author.BOT)
        ask.status = DeliveryStatus.SENDING
        # Ed: everything answered and delivered; his conversation is over.
        await say(tx, done, "hello, I am Ed", days_ago(2), channel="rest")
        sent = await say(tx, done, "Hello Ed!", days_ago(2), channel="rest", author=Author.BOT)
        sent.status = DeliveryStatus.SENT
        ids = {"carl": waiting.id, "dora": rated.id, "ed": done.id, "queued": queued.id}

    result = await run_retention(ticket_store, {"rest": 1}, now=NOW)

    assert result.identities == {"rest": 1} and result.customers == 1  # Ed only
    async with ticket_store.session() as tx:
        carl, carl_new = await tx.resolve_customer("rest", "carl-1", chat_id="carl-1")
        dora, dora_new = await tx.resolve_customer("rest", "dora-1", chat_id="dora-1")
        texts = set((await tx.db.execute(select(Message.text))).scalars())
        pending = (
            await tx.db.execute(select(Message.customer_id, Message.text).where(Message.status == DeliveryStatus.QUEUED))
        ).all()
        ticket = await tx.get_ticket(ids["queued"])
        ed = await tx.get_customer(ids["ed"])
    # Carl's next message reaches the same customer, with his queued reply and open ticket.
    assert (carl.id, carl_new, carl.display_name) == (ids["carl"], False, "Carl")
    assert (dora.id, dora_new, dora.display_name) == (ids["dora"], False, "Dora")
    assert list(pending) == [(ids["carl"], "Hi Carl, refunded today")]
    assert ticket is not None and ticket.subject.startswith("Return of")
    for kept in ("where is my refund? I am Carl", "thanks, I am Dora", "How did we do, Dora?"):
        assert kept in texts
    assert "hello, I am Ed" not in texts and "Hello Ed!" not in texts
    assert ed is not None and (ed.display_name, ed.unreachable) == (None, True)


async def _last_vacuums(store: SqlTicketStore) -> dict[str, datetime | None]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT relname, last_vacuum FROM pg_stat_user_tables WHERE relname = ANY(:names)"),
            {"names": list(ERASED_TABLES)},
        )
        return {str(name): when for name, when in rows.all()}


async def test_erasure_is_vacuumed_on_postgresql(ticket_store: SqlTicketStore, seeded: dict[str, int]) -> None:
    """Item 10: after an erasure PostgreSQL kept the old row versions, text and all, until
    VACUUM; ``vacuum_erased`` runs it on every table the erasure rewrote (not on SQLite,
    where VACUUM rewrites the whole file under the only writer lock)."""
    postgres = ticket_store.engine.dialect.name == "postgresql"
    before = await _last_vacuums(ticket_store) if postgres else {}
    async with ticket_store.session() as tx:
        await erase_customer(tx, seeded["ann"], actor="admin@shop.test")

    assert await vacuum_erased(ticket_store) is postgres
    if not postgres:
        return
    after = await _last_vacuums(ticket_store)
    assert set(after) == set(ERASED_TABLES)
    for table, when in after.items():
        assert when is not None and (before.get(table) is None or when > before[table]), table  # type: ignore[operator]
    async with ticket_store.engine.connect() as conn:
        dead = (
            await conn.execute(text("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'messages'"))
        ).scalar_one()
    assert dead == 0


@pytest.mark.parametrize("ticket_store", ["postgres"], indirect=True)
async def test_a_burst_of_erasures_shares_its_vacuums(
    ticket_store: SqlTicketStore, seeded: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """A VACUUM that starts after an erasure covers it: five at once run one and one more."""
    caplog.set_level(logging.INFO, logger="storage.data_rights")
    assert await asyncio.gather(*(vacuum_erased(ticket_store) for _ in range(5))) == [True] * 5
    runs = [r for r in caplog.records if r.getMessage() == "vacuumed after an erasure"]
    assert len(runs) == 2
    assert await vacuum_erased(ticket_store)  # nothing left waiting: the next one runs
    assert len([r for r in caplog.records if r.getMessage() == "vacuumed after an erasure"]) == 3
