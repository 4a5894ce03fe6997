"""The outbox reader (bot/channels/outbox.py) over SQLite and PostgreSQL, through the real
Telegram send path (render + ``send_parts``) against the recording Bot API, on a test clock.

What it guarantees: a reply is SENT only once the platform accepted it; a 429 or a 5xx
leaves it QUEUED with ``not_before`` and a new reader (a restart) sends it exactly once; a
send cut off by a dead process (an expired lease) is FAILED with a ``delivery_failed``
event, never sent again; one chat's 429 holds only that chat; a long message resumes after
the parts already accepted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.channels.outbox import INTERRUPTED, OutboxReader
from bot.channels.port import Channel, DeliveryResult
from bot.channels.telegram.api import (
    CHANNEL,
    BadRequest,
    Forbidden,
    InlineKeyboard,
    RetryAfter,
    SentMessage,
    ServerError,
    TelegramError,
)
from bot.channels.telegram.delivery import send_parts
from bot.channels.telegram.render import ButtonCodec, render
from common.messages import Button, Outgoing, buttons_payload
from storage.models import Author, DeliveryStatus, Direction, Message, Priority, TicketKind, utcnow
from storage.tickets import SqlTicketStore
from tests.fakes.recording_api import RecordingTelegramApi


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class ChatFaultsApi(RecordingTelegramApi):
    """The recording Bot API, with failures scripted per chat: ``None`` lets that call through."""

    chat_faults: dict[str, list[TelegramError | None]] = field(default_factory=dict)

    async def send_message(
        self, chat_id: int | str, text: str, *, reply_markup: InlineKeyboard | None = None,
        message_thread_id: int | None = None, reply_to_message_id: int | None = None,
    ) -> SentMessage:
        pending = self.chat_faults.get(str(chat_id))
        if pending:
            fault = pending.pop(0)
            if fault is not None:
                self.calls.append(("sendMessage", {"chat_id": chat_id, "failed": type(fault).__name__}))
                raise fault
        return await super().send_message(chat_id, text, reply_markup=reply_markup,
                                          message_thread_id=message_thread_id, reply_to_message_id=reply_to_message_id)

    def texts(self, chat: str) -> list[str]:
        return [p.text for p in self.posted if str(p.chat_id) == chat]


class TelegramPort(Channel):
    """TelegramChannel.send without the rest of the app: render, then one ``send_parts``."""

    name = CHANNEL

    def __init__(self, api: RecordingTelegramApi) -> None:
        self.api = api
        self.codec = ButtonCodec()

    async def start(self) -> None:
        return None

    async def send(self, message: Outgoing) -> DeliveryResult:
        return await send_parts(self.api, message.chat_id, render(message, self.codec), start=message.parts_sent)

    async def close(self) -> None:
        return None


async def queue(store: SqlTicketStore, chat: str, *texts: str, buttons: tuple[Button, ...] = ()) -> list[int]:
    """Replies queued for the customer of ``chat``, on an open ticket (for its events)."""
    async with store.session() as tx:
        customer, _ = await tx.resolve_customer(CHANNEL, chat, chat)
        tickets = await tx.open_tickets(customer.id)
        ticket = tickets[0] if tickets else await tx.open_ticket(
            customer, kind=TicketKind.HANDOFF, subject="help", channel=CHANNEL, actor="test", priority=Priority.NORMAL
        )
        rows = [
            {"customer_id": customer.id, "ticket_id": ticket.id, "channel": CHANNEL, "chat_id": chat,
             "direction": Direction.OUTBOUND, "author": Author.AGENT, "text": text,
             "status": DeliveryStatus.QUEUED, "payload": buttons_payload(buttons)}
            for text in texts
        ]
        return await tx.insert_messages(rows)


async def row(store: SqlTicketStore, message_id: int) -> Message:
    async with store.session() as tx:
        found = await tx.get_message(message_id)
        assert found is not None
        return found


async def events(store: SqlTicketStore, message_id: int) -> list[str]:
    message = await row(store, message_id)
    assert message.ticket_id is not None
    async with store.session() as tx:
        return [e.kind for e in await tx.ticket_events(message.ticket_id) if e.data.get("message_id") == message_id]


async def test_sent_only_once_accepted_and_a_restart_sends_a_held_reply_once(ticket_store: SqlTicketStore) -> None:
    api, clock = ChatFaultsApi(), Clock()
    api.chat_faults["100"] = [ServerError("Bad Gateway"), RetryAfter(3)]
    [reply] = await queue(ticket_store, "100", "Your refund is on its way.", buttons=(Button("Thanks", "/thanks"),))
    first = OutboxReader(ticket_store, TelegramPort(api), clock=clock)
    assert await first.flush() == 1
    held = await row(ticket_store, reply)
    assert held.status == DeliveryStatus.QUEUED and held.attempts == 1 and held.sent_at is None
    assert held.not_before == clock.now + timedelta(seconds=0.5)  # the 5xx back-off
    assert await first.flush() == 0  # not due yet: not tried
    clock.advance(0.5)
    assert await first.flush() == 1
    held = await row(ticket_store, reply)
    assert held.status == DeliveryStatus.QUEUED and held.not_before == clock.now + timedelta(seconds=3)  # retry_after
    assert api.texts("100") == []
    # The process stops here; a new one (fresh reader, fresh memory) over the same database.
    clock.advance(3)
    restarted = OutboxReader(ticket_store, TelegramPort(api), clock=clock)
    assert await restarted.flush() == 1
    assert await restarted.flush() == 0
    assert api.texts("100") == ["Your refund is on its way."]
    assert api.posted[0].buttons == [[("Thanks", "/thanks")]]
    sent = await row(ticket_store, reply)
    assert sent.status == DeliveryStatus.SENT and sent.sent_at == clock.now and sent.attempts == 3


async def test_a_send_interrupted_by_a_dead_process_is_failed_not_repeated(ticket_store: SqlTicketStore) -> None:
    api, clock = ChatFaultsApi(), Clock()
    [reply] = await queue(ticket_store, "200", "Here is your label.")
    async with ticket_store.session() as tx:  # a process claimed it and died during the call
        claimed = await tx.claim_outbound(reply, clock.now, clock.now + timedelta(seconds=50))
        assert claimed is not None and claimed.status == DeliveryStatus.SENDING
    reader = OutboxReader(ticket_store, TelegramPort(api), clock=clock)
    assert await reader.flush() == 0
    assert (await row(ticket_store, reply)).status == DeliveryStatus.SENDING  # its lease still runs
    clock.advance(51)
    await reader.flush()
    failed = await row(ticket_store, reply)
    assert failed.status == DeliveryStatus.FAILED and failed.error == INTERRUPTED
    assert await events(ticket_store, reply) == ["delivery_failed"]
    assert api.texts("200") == []  # never sent a second time


async def test_one_chats_429_does_not_hold_another_chat(ticket_store: SqlTicketStore) -> None:
    api, clock = ChatFaultsApi(), Clock()
    api.chat_faults["301"] = [RetryAfter(30)]
    a1, a2 = await queue(ticket_store, "301", "A one", "A two")
    [b1] = await queue(ticket_store, "302", "B one")
    reader = OutboxReader(ticket_store, TelegramPort(api), clock=clock)
    await reader.flush()
    # B's reply, queued after both of A's, is accepted while A waits out its retry_after; A's
    # second reply waits behind its first (a chat's replies keep their order).
    assert [p.text for p in api.posted] == ["B one"]
    assert (await row(ticket_store, a1)).status == DeliveryStatus.QUEUED
    assert (await row(ticket_store, a2)).attempts == 0
    assert (await row(ticket_store, b1)).status == DeliveryStatus.SENT
    clock.advance(30)
    await reader.flush()
    assert [p.text for p in api.posted] == ["B one", "A one", "A two"]


async def test_a_long_message_resumes_after_the_parts_already_accepted(ticket_store: SqlTicketStore) -> None:
    api, clock = ChatFaultsApi(), Clock()
    words = [f"word{i}" for i in range(1100)]  # three parts
    api.chat_faults["400"] = [None, ServerError("Bad Gateway")]  # part 1 accepted, part 2 refused
    [reply] = await queue(ticket_store, "400", " ".join(words))
    reader = OutboxReader(ticket_store, TelegramPort(api), clock=clock)
    await reader.flush()
    held = await row(ticket_store, reply)
    assert held.status == DeliveryStatus.QUEUED and held.payload["parts_sent"] == 1
    assert len(api.texts("400")) == 1
    clock.advance(1)
    await OutboxReader(ticket_store, TelegramPort(api), clock=clock).flush()  # after a restart too
    parts = api.texts("400")
    assert len(parts) == 3 and " ".join(parts).split() == words  # no part twice, none lost
    assert (await row(ticket_store, reply)).status == DeliveryStatus.SENT


async def test_blocked_and_refused_are_failed_with_an_event(ticket_store: SqlTicketStore) -> None:
    api, clock = ChatFaultsApi(), Clock()
    api.chat_faults["500"] = [Forbidden("Forbidden: bot was blocked by the user")]
    api.chat_faults["501"] = [BadRequest("Bad Request: chat not found")]
    [blocked] = await queue(ticket_store, "500", "hello?")
    [refused] = await queue(ticket_store, "501", "hello?")
    await OutboxReader(ticket_store, TelegramPort(api), clock=clock).flush()
    for message_id in (blocked, refused):
        assert (await row(ticket_store, message_id)).status == DeliveryStatus.FAILED
        assert await events(ticket_store, message_id) == ["delivery_failed"]
    blocked_customer = (await row(ticket_store, blocked)).customer_id
    refused_customer = (await row(ticket_store, refused)).customer_id
    async with ticket_store.session() as tx:
        unreachable = await tx.get_customer(blocked_customer)
        reachable = await tx.get_customer(refused_customer)
        assert unreachable is not None and unreachable.unreachable is True
        assert reachable is not None and reachable.unreachable is False


async def test_the_outbox_transitions_are_conditional(ticket_store: SqlTicketStore) -> None:
    clock = Clock()
    [reply] = await queue(ticket_store, "600", "once")
    lease = clock.now + timedelta(seconds=30)
    async with ticket_store.session() as tx:
        assert await tx.due_push_chats(CHANNEL, clock.now) == ["600"]
        assert await tx.claim_outbound(reply, clock.now, lease) is not None
        assert await tx.claim_outbound(reply, clock.now, lease) is None  # another reader cannot take it
        assert await tx.due_push_chats(CHANNEL, clock.now) == []
        assert await tx.retry_later(reply, clock.now + timedelta(seconds=5), "429", {"parts_sent": 1})
        assert not await tx.mark_sent(reply, clock.now)  # not ours any more: it is queued again
        assert await tx.claim_outbound(reply, clock.now, lease) is None  # not before its time
        assert await tx.next_push_due(CHANNEL, clock.now) == clock.now + timedelta(seconds=5)
        later = clock.now + timedelta(seconds=5)
        assert await tx.claim_outbound(reply, later, lease) is not None
        assert await tx.expired_leases(CHANNEL, later) == []
        assert await tx.expired_leases(CHANNEL, lease + timedelta(seconds=1)) == [reply]
        assert await tx.mark_sent(reply, later)
        assert not await tx.fail_interrupted(reply, lease + timedelta(seconds=1), INTERRUPTED)  # finished
    stored = await row(ticket_store, reply)
    assert stored.status == DeliveryStatus.SENT and stored.attempts == 2 and stored.payload == {"parts_sent": 1}


class GatedPort(TelegramPort):
    """Sends wait for the test to open the gate (a send in flight when the process stops)."""

    def __init__(self, api: RecordingTelegramApi) -> None:
        super().__init__(api)
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def send(self, message: Outgoing) -> DeliveryResult:
        self.started.set()
        await self.gate.wait()
        return await super().send(message)


async def test_close_lets_the_send_in_flight_finish_and_leaves_the_rest_queued(ticket_store: SqlTicketStore) -> None:
    api, clock = ChatFaultsApi(), Clock()
    first, second = await queue(ticket_store, "700", "in flight", "not started")
    port = GatedPort(api)
    reader = OutboxReader(ticket_store, port, clock=clock)
    sending = asyncio.create_task(reader.flush())
    await port.started.wait()
    closing = asyncio.create_task(reader.close(grace=30))  # SIGTERM
    await asyncio.sleep(0)
    port.gate.set()
    await closing
    await sending
    assert (await row(ticket_store, first)).status == DeliveryStatus.SENT
    left = await row(ticket_store, second)
    assert left.status == DeliveryStatus.QUEUED and left.attempts == 0  # the next start sends it
    assert api.texts("700") == ["in flight"]
    await OutboxReader(ticket_store, TelegramPort(api), clock=clock).flush()
    assert api.texts("700") == ["in flight", "not started"]
