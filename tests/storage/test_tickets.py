"""The TicketSession contract, run on SQLite and PostgreSQL (see ``ticket_store`` in conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from common.errors import Conflict, TicketNotFound
from storage.events import BusEvent, InProcessEventBus
from storage.models import (
    Agent,
    Author,
    Customer,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    Order,
    Owner,
    Priority,
    Ticket,
    TicketKind,
    TicketStatus,
)
from storage.tickets import SqlTicketStore, TicketSession

UTC = UTC
BEIJING = timezone(timedelta(hours=8))
NASTY = [
    "Robert'); DROP TABLE customers;--",
    "' OR '1'='1",
    '"; DELETE FROM tickets WHERE "1"="1',
    "%_\\ LIKE wildcards \\x00 and \\n newlines\n\ttoo",
]


# -- helpers ---------------------------------------------------------------------------
async def new_customer(tx: TicketSession, external_id: str = "42", channel: str = "telegram") -> Customer:
    customer, _ = await tx.resolve_customer(channel, external_id, chat_id=external_id, display_name="Ann")
    return customer


async def inbound(
    tx: TicketSession, customer: Customer, text: str = "hi", delivery_key: str | None = None, channel: str = "telegram"
) -> Message:
    return await tx.add_message(
        customer,
        channel=channel,
        chat_id="42",
        direction=Direction.INBOUND,
        author=Author.CUSTOMER,
        text=text,
        status=DeliveryStatus.RECEIVED,
        delivery_key=delivery_key,
    )


async def reply(tx: TicketSession, customer: Customer, text: str, channel: str = "web") -> Message:
    return await tx.add_message(
        customer,
        channel=channel,
        chat_id="visitor-1",
        direction=Direction.OUTBOUND,
        author=Author.BOT,
        text=text,
        status=DeliveryStatus.QUEUED,
    )


async def open_question(tx: TicketSession, customer: Customer, subject: str = "Where is my parcel?") -> Ticket:
    return await tx.open_ticket(customer, kind=TicketKind.QUESTION, subject=subject, channel="telegram", actor="bot")


def order(order_id: str, **changes: Any) -> Order:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "email": "ann@example.com",
        "phone": "+4915112345678",
        "customer_name": "Ann",
        "items": [{"sku": "SHOE-42", "name": "Runner", "size": "42", "quantity": 1, "unit_price": 89.9}],
        "total": 89.9,
        "currency": "EUR",
        "status": "delivered",
        "ordered_at": datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
        "delivered_at": datetime(2024, 3, 4, 15, 30, tzinfo=UTC),
    }
    fields.update(changes)
    return Order(**fields)


class Recorder:
    """Collects what a bus delivers, in the background (so tests can check 'nothing yet')."""

    def __init__(self, events: AsyncIterator[BusEvent]) -> None:
        self.events: list[BusEvent] = []
        self._task = asyncio.create_task(self._run(events))

    async def _run(self, events: AsyncIterator[BusEvent]) -> None:
        async for item in events:
            self.events.append(item)

    async def settle(self) -> list[BusEvent]:
        await asyncio.sleep(0.05)
        return self.events

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class Boom(Exception):
    pass


class TestCustomers:
    async def test_resolve_customer_is_idempotent(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            first, created = await tx.resolve_customer("telegram", "42", "42", display_name="Ann", language="zh")
            again, created_again = await tx.resolve_customer("telegram", "42", "42")
        assert (created, created_again) == (True, False)
        assert again.id == first.id
        async with ticket_store.session() as tx:
            later, created_later = await tx.resolve_customer("telegram", "42", "42", display_name="Other")
            identities = await tx.identities(first.id)
        assert (later.id, created_later) == (first.id, False)
        assert later.display_name == "Ann"  # a known name is not overwritten
        assert later.language == "zh"
        assert [(i.channel, i.external_id) for i in identities] == [("telegram", "42")]

    async def test_identity_is_channel_and_user(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            telegram = await new_customer(tx, "42", channel="telegram")
            web = await new_customer(tx, "42", channel="web")
            other = await new_customer(tx, "43", channel="telegram")
        assert len({telegram.id, web.id, other.id}) == 3

    async def test_resolve_remembers_last_channel_for_replies(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            customer, _ = await tx.resolve_customer("telegram", "42", "chat-1")
        async with ticket_store.session() as tx:
            await tx.resolve_customer("telegram", "42", "chat-2", display_name="Ann")
        async with ticket_store.session() as tx:
            stored = await tx.get_customer(customer.id)
        assert stored is not None
        assert (stored.last_channel, stored.last_chat_id, stored.display_name) == ("telegram", "chat-2", "Ann")

    async def test_schema_refuses_a_second_identical_identity(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            customer = await new_customer(tx, "42")
        with pytest.raises(IntegrityError):
            async with ticket_store.session() as tx:
                tx.db.add(Identity(customer_id=customer.id, channel="telegram", external_id="42", chat_id="42"))

    async def test_concurrent_first_contact_yields_one_customer(self, ticket_store: SqlTicketStore) -> None:
        # Two workers handle a new customer's first two messages at the same time.
        async def second_worker() -> tuple[int, bool]:
            async with ticket_store.session() as tx:
                customer, created = await tx.resolve_customer("telegram", "42", "42")
                await inbound(tx, customer, "second message")
                return customer.id, created

        async with ticket_store.session() as tx:
            first, created = await tx.resolve_customer("telegram", "42", "42")
            await inbound(tx, first, "first message")
            other = asyncio.create_task(second_worker())
            await asyncio.sleep(0.3)  # the second worker is now waiting for this transaction
        second_id, second_created = await asyncio.wait_for(other, 10)

        assert (created, second_id, second_created) == (True, first.id, False)
        async with ticket_store.session() as tx:
            customers = (await tx.db.execute(select(Customer))).scalars().all()
            texts = [m.text for m in await tx.conversation(first.id)]
        assert [c.id for c in customers] == [first.id]
        assert texts == ["first message", "second message"]  # neither message was lost


class TestTickets:
    async def test_numbers_start_at_T_1001(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            customer = await new_customer(tx)
            first = await open_question(tx, customer)
            second = await open_question(tx, customer)
        assert (first.number, second.number) == ("T-1001", "T-1002")
        async with ticket_store.session() as tx:
            for spelled in ("T-1002", "t-1002", " 1002 ", "T1002"):
                assert (await tx.ticket_by_number(spelled)).id == second.id
            for unknown in ("T-1003", "T-999", "T-abc", "", "T-1001; DROP TABLE tickets"):
                with pytest.raises(TicketNotFound):
                    await tx.ticket_by_number(unknown)

    async def test_ticket_fields_and_defaults(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            customer = await new_customer(tx)
            ticket = await tx.open_ticket(
                customer,
                kind=TicketKind.RETURN,
                subject="x" * 400,
                channel="telegram",
                actor="bot",
                priority=Priority.HIGH,
                order_id="A-1001",
                fields={"reason": "too small", "photos": ["1.jpg"]},
                reason="outside return window",
            )
        async with ticket_store.session() as tx:
            stored = await tx.ticket_by_number(ticket.number)
        assert stored.kind is TicketKind.RETURN and stored.status is TicketStatus.NEW
        assert stored.priority is Priority.HIGH and stored.is_open
        assert len(stored.subject) == 300
        assert stored.fields == {"reason": "too small", "photos": ["1.jpg"]}
        assert stored.customer.id == customer.id and stored.assignee is None

    async def test_list_open_and_count(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            ann = await new_customer(tx, "1")
            bob = await new_customer(tx, "2")
            a1 = await open_question(tx, ann)
            a2 = await tx.open_ticket(ann, kind=TicketKind.RETURN, subject="r", channel="telegram", actor="bot")
            b1 = await open_question(tx, bob)
            a1.status = TicketStatus.RESOLVED
        async with ticket_store.session() as tx:
            assert [t.id for t in await tx.list_tickets()] == [b1.id, a2.id, a1.id]
            assert [t.id for t in await tx.list_tickets(customer_id=ann.id)] == [a2.id, a1.id]
            assert [t.id for t in await tx.list_tickets(status=TicketStatus.RESOLVED)] == [a1.id]
            assert [t.id for t in await tx.list_tickets(kind=TicketKind.RETURN)] == [a2.id]
            assert [t.id for t in await tx.open_tickets(ann.id)] == [a2.id]
            hour_ago = datetime.now(UTC) - timedelta(hours=1)
            assert await tx.count_tickets_since(ann.id, TicketKind.QUESTION, hour_ago) == 1
            assert await tx.count_tickets_since(ann.id, TicketKind.QUESTION, hour_ago + timedelta(hours=2)) == 0

    async def test_queue_position(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            tickets = []
            for n in range(3):
                customer = await new_customer(tx, str(n))
                ticket = await tx.open_ticket(customer, kind=TicketKind.HANDOFF, subject="agent", channel="t", actor="bot")
                customer.owner, customer.handoff_ticket_id = Owner.QUEUED, ticket.id
                tickets.append(ticket)
        async with ticket_store.session() as tx:
            assert [await tx.queue_position(t) for t in tickets] == [1, 2, 3]
            first = await tx.get_customer(tickets[0].customer_id)
            assert first is not None
            first.owner = Owner.AGENT  # an agent took the first conversation
        async with ticket_store.session() as tx:
            assert [await tx.queue_position(t) for t in tickets[1:]] == [1, 2]


class TestEvents:
    async def test_events_are_recorded(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            ticket = await open_question(tx, await new_customer(tx))
            await tx.add_event(ticket, "agent:ann@example.com", "assigned", {"to": "ann"})
        async with ticket_store.session() as tx:
            events = await tx.ticket_events(ticket.id)
        assert [(e.kind, e.actor) for e in events] == [("created", "bot"), ("assigned", "agent:ann@example.com")]
        assert events[0].data == {"kind": "question", "priority": "normal", "order_id": None, "reason": None}
        assert events[1].data == {"to": "ann"}
        assert all(e.created_at.tzinfo is not None for e in events)

    async def test_published_only_after_commit(self, ticket_store: SqlTicketStore) -> None:
        bus = ticket_store.bus
        assert bus is not None
        async with bus.subscribe() as events:
            recorder = Recorder(events)
            try:
                async with ticket_store.session() as tx:
                    ticket = await open_question(tx, await new_customer(tx))
                    await tx.add_event(ticket, "bot", "note", {"text": "checked"})
                    assert await recorder.settle() == []  # not before the commit
                got = await recorder.settle()
            finally:
                await recorder.stop()
        assert [(e.kind, e.ticket_id, e.ticket_number) for e in got] == [
            ("created", ticket.id, "T-1001"),
            ("note", ticket.id, "T-1001"),
        ]
        assert got[1].data == {"text": "checked"} and got[1].at is not None

    async def test_rollback_publishes_and_stores_nothing(self, ticket_store: SqlTicketStore) -> None:
        bus = ticket_store.bus
        assert bus is not None
        async with bus.subscribe() as events:
            recorder = Recorder(events)
            try:
                with pytest.raises(Boom):
                    async with ticket_store.session() as tx:
                        await open_question(tx, await new_customer(tx))
                        raise Boom
                # A commit that fails (duplicate delivery) publishes nothing either.
                async with ticket_store.session() as tx:
                    await inbound(tx, await new_customer(tx), delivery_key="u1")
                with pytest.raises(IntegrityError):
                    async with ticket_store.session() as tx:
                        customer = await new_customer(tx)
                        await open_question(tx, customer)
                        await inbound(tx, customer, delivery_key="u1")
                assert await recorder.settle() == []
            finally:
                await recorder.stop()
        async with ticket_store.session() as tx:
            assert await tx.list_tickets() == []

    async def test_failing_bus_does_not_undo_or_fail_the_commit(self, ticket_store: SqlTicketStore) -> None:
        class BrokenBus(InProcessEventBus):
            async def publish(self, event: BusEvent) -> None:
                raise ConnectionError("bus is down")

        ticket_store.bus = BrokenBus()
        async with ticket_store.session() as tx:
            ticket = await open_question(tx, await new_customer(tx))
        async with ticket_store.session() as tx:
            assert (await tx.ticket_by_number(ticket.number)).id == ticket.id

    async def test_store_without_bus(self, ticket_store: SqlTicketStore) -> None:
        ticket_store.bus = None
        async with ticket_store.session() as tx:
            await open_question(tx, await new_customer(tx))


class TestMessages:
    async def test_duplicate_delivery_fails_commit_and_keeps_first(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            customer = await new_customer(tx)
            await inbound(tx, customer, "first", delivery_key="update-1")
        with pytest.raises(IntegrityError):
            async with ticket_store.session() as tx:
                again = await new_customer(tx)
                await inbound(tx, again, "second", delivery_key="update-1")
        async with ticket_store.session() as tx:
            assert await tx.inbound_id("telegram", "update-1") is not None
            assert await tx.inbound_id("telegram", "update-2") is None
            assert await tx.inbound_id("web", "update-1") is None
            assert [m.text for m in await tx.conversation(customer.id)] == ["first"]

    async def test_delivery_key_is_per_channel_and_optional(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            customer = await new_customer(tx)
            await inbound(tx, customer, "a", delivery_key="1", channel="telegram")
            await inbound(tx, customer, "b", delivery_key="1", channel="web")
            await inbound(tx, customer, "c")  # no key: any number of those
            await inbound(tx, customer, "d")
        async with ticket_store.session() as tx:
            assert [m.text for m in await tx.conversation(customer.id)] == ["a", "b", "c", "d"]

    async def test_conversation_is_the_latest_in_order(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            customer = await new_customer(tx)
            ticket = await open_question(tx, customer)
            for n in range(5):
                await inbound(tx, customer, f"m{n}")
            await tx.add_message(
                customer, channel="telegram", chat_id="42", direction=Direction.OUTBOUND, author=Author.AGENT,
                text="on it", status=DeliveryStatus.SENT, ticket_id=ticket.id,
            )
        async with ticket_store.session() as tx:
            assert [m.text for m in await tx.conversation(customer.id, limit=3)] == ["m3", "m4", "on it"]
            assert [m.text for m in await tx.ticket_messages(ticket.id)] == ["on it"]

    async def test_hand_over_replies_marks_sent(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            customer = await new_customer(tx, "visitor-1", channel="web")
            for text in ("one", "two"):
                await reply(tx, customer, text)
            await reply(tx, customer, "elsewhere", channel="telegram")
        async with ticket_store.session() as tx:
            taken = await tx.hand_over_replies(customer.id, "web", None)
        assert [m.text for m in taken] == ["one", "two"]
        async with ticket_store.session() as tx:
            assert await tx.hand_over_replies(customer.id, "web", None) == []
            statuses = {m.text: m.status for m in await tx.conversation(customer.id)}
        assert statuses == {"one": DeliveryStatus.SENT, "two": DeliveryStatus.SENT, "elsewhere": DeliveryStatus.QUEUED}

    async def test_mark_failed(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            message = await reply(tx, await new_customer(tx), "hello")
        async with ticket_store.session() as tx:
            await tx.mark_failed(message.id, "403: bot was blocked by the user")
        async with ticket_store.session() as tx:
            [stored] = await tx.conversation(message.customer_id)
        assert (stored.status, stored.error) == (DeliveryStatus.FAILED, "403: bot was blocked by the user")


class TestOrders:
    async def test_order_ids_match_in_any_case(self, ticket_store: SqlTicketStore) -> None:
        """The index serves the usual spellings; an odd mix of cases still finds the order."""
        async with ticket_store.session() as tx:
            await tx.upsert_orders([order("Ab-77"), order("CD-88")])
        async with ticket_store.session() as tx:
            found = [await tx.get_order(spelling) for spelling in ("Ab-77", "AB-77", "ab-77", "aB-77", "cd-88")]
        assert [o.order_id if o else None for o in found] == ["Ab-77", "Ab-77", "Ab-77", "Ab-77", "CD-88"]

    async def test_upsert_adds_then_updates(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            assert await tx.upsert_orders([order("A-1001"), order("A-1002", total=10.5)]) == (2, 0)
        async with ticket_store.session() as tx:
            changed = order("A-1001", status="returned", items=[], total=0.0, delivered_at=None)
            assert await tx.upsert_orders([changed, order("A-1003")]) == (1, 1)
        async with ticket_store.session() as tx:
            stored = await tx.get_order(" a-1001 ")
            other = await tx.get_order("A-1002")
            assert await tx.get_order("A-9999") is None
        assert stored is not None and other is not None
        assert (stored.status, stored.items, stored.total, stored.delivered_at) == ("returned", [], 0.0, None)
        assert other.total == 10.5 and isinstance(other.total, float)
        assert other.items[0] == {"sku": "SHOE-42", "name": "Runner", "size": "42", "quantity": 1, "unit_price": 89.9}

    async def test_orders_for_by_email_phone_or_link(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            by_email = await new_customer(tx, "1")
            by_email.email = "ANN@Example.com"
            by_phone = await new_customer(tx, "2")
            by_phone.phone = "+4915199999999"
            linked = await new_customer(tx, "3")
            stranger = await new_customer(tx, "4")
            stranger.email = "nobody@example.com"
            await tx.upsert_orders(
                [
                    order("A-1", ordered_at=datetime(2024, 1, 1, tzinfo=UTC)),
                    order("A-2", ordered_at=datetime(2024, 2, 1, tzinfo=UTC)),
                    order("B-1", email=None, phone="+4915199999999"),
                    order("C-1", email=None, phone=None, customer_id=linked.id),
                ]
            )
        async with ticket_store.session() as tx:
            assert [o.order_id for o in await tx.orders_for(by_email)] == ["A-2", "A-1"]  # newest first
            assert [o.order_id for o in await tx.orders_for(by_phone)] == ["B-1"]
            assert [o.order_id for o in await tx.orders_for(linked)] == ["C-1"]
            assert list(await tx.orders_for(stranger)) == []


class TestAgents:
    async def test_agents_by_email(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            agent = await tx.add_agent(" Ann@Example.com ", "Ann", role="admin")
        async with ticket_store.session() as tx:
            found = await tx.agent_by_email("ann@EXAMPLE.com")
            assert found is not None and (found.id, found.email, found.role) == (agent.id, "ann@example.com", "admin")
            assert await tx.agent_by_email("bob@example.com") is None
        with pytest.raises(Conflict, match="ann@example.com"):
            async with ticket_store.session() as tx:
                await tx.add_agent("ann@example.com", "Ann again")


class TestStoredValues:
    async def test_utc_aware_datetimes_round_trip(self, ticket_store: SqlTicketStore) -> None:
        due = datetime(2024, 5, 1, 20, 30, 15, 123456, tzinfo=BEIJING)
        naive = datetime(2024, 5, 2, 9, 0)
        async with ticket_store.session() as tx:
            ticket = await tx.open_ticket(
                await new_customer(tx), kind=TicketKind.QUESTION, subject="s", channel="t", actor="bot",
                first_response_due=due, resolution_due=naive,
            )
        async with ticket_store.session() as tx:
            stored = await tx.ticket_by_number(ticket.number)
            # Comparisons bind through the same type: a +08:00 bound compares as UTC.
            since = datetime(2024, 1, 1, 8, 0, tzinfo=BEIJING)
            assert await tx.count_tickets_since(stored.customer_id, TicketKind.QUESTION, since) == 1
        assert stored.first_response_due == due
        assert stored.first_response_due is not None and stored.first_response_due.tzinfo == UTC
        assert stored.first_response_due.hour == 12 and stored.first_response_due.microsecond == 123456
        assert stored.resolution_due == naive.replace(tzinfo=UTC)  # naive means UTC
        for value in (stored.created_at, stored.updated_at, stored.customer.created_at):
            assert value.tzinfo == UTC and abs(datetime.now(UTC) - value) < timedelta(minutes=1)

    async def test_unicode_and_large_text_are_intact(self, ticket_store: SqlTicketStore) -> None:
        chinese = "你好，我的订单 A-1001 还没到，尺码 42 太小了。"
        emoji = "👟👍🏽👨‍👩‍👧‍👦🇩🇪 \u200d zero-width joiner, RTL \u202e text"
        big = ("长文本 long text ✓ " * 7000)[:100_000]
        async with ticket_store.session() as tx:
            customer, _ = await tx.resolve_customer("telegram", "用户-😀", "chat-😀", display_name="王小明 😀")
            ticket = await open_question(tx, customer, subject=chinese + emoji)
            message = await inbound(tx, customer, big)
            message.payload = {"caption": emoji, "nested": [chinese, {"k": "√"}]}
            await tx.add_event(ticket, "bot", "note", {"text": chinese})
        async with ticket_store.session() as tx:
            found, created = await tx.resolve_customer("telegram", "用户-😀", "chat-😀")
            [stored_message] = await tx.conversation(customer.id)
            stored_ticket = await tx.ticket_by_number(ticket.number)
            events = await tx.ticket_events(ticket.id)
        assert (found.id, created, found.display_name) == (customer.id, False, "王小明 😀")
        assert len(big) == 100_000 and stored_message.text == big
        assert stored_message.payload == {"caption": emoji, "nested": [chinese, {"k": "√"}]}
        assert stored_ticket.subject == chinese + emoji
        assert events[-1].data == {"text": chinese}

    async def test_sql_injection_strings_are_just_text(self, ticket_store: SqlTicketStore) -> None:
        async with ticket_store.session() as tx:
            for n, nasty in enumerate(NASTY):
                customer, _ = await tx.resolve_customer("telegram", nasty, chat_id=nasty, display_name=nasty)
                await open_question(tx, customer, subject=nasty)
                await inbound(tx, customer, nasty, delivery_key=nasty)
                await tx.upsert_orders([order(f"X-{n}", email=nasty, customer_name=nasty)])
        async with ticket_store.session() as tx:
            for nasty in NASTY:
                customer, created = await tx.resolve_customer("telegram", nasty, chat_id=nasty)
                assert not created and customer.display_name == nasty
                assert await tx.inbound_id("telegram", nasty) is not None
                assert [m.text for m in await tx.conversation(customer.id)] == [nasty]
                customer.email = nasty
                assert [o.customer_name for o in await tx.orders_for(customer)] == [nasty]
            assert await tx.agent_by_email(NASTY[1]) is None
            assert len(await tx.list_tickets()) == len(NASTY)
        async with ticket_store.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert {"customers", "tickets", "messages"} <= set(tables)


async def test_store_fixture_is_empty_and_numbering_restarts(ticket_store: SqlTicketStore) -> None:
    # Runs after other tests on the shared PostgreSQL database: truncation must reset ids.
    async with ticket_store.session() as tx:
        assert await tx.list_tickets() == []
        assert (await tx.db.execute(select(Agent))).first() is None
        ticket = await open_question(tx, await new_customer(tx))
    assert ticket.number == "T-1001"
