"""Whole dialogues through the pipeline, on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

from datetime import timedelta

from bot.app import App
from common.messages import Incoming
from storage.models import Owner, Priority, TicketKind, TicketStatus, utcnow
from tests.factories import Chat, add_orders, order


async def _ticket(app: App, number: str):  # type: ignore[no-untyped-def]
    async with app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number)
        events = [e.kind for e in await tx.ticket_events(ticket.id)]
        messages = [(m.author.value, m.text) for m in await tx.ticket_messages(ticket.id)]
        return ticket, events, messages


async def _customer(app: App, chat: Chat):  # type: ignore[no-untyped-def]
    async with app.tickets.session() as tx:
        customer = await tx.find_customer(chat.channel, chat.user)
        assert customer is not None
        return customer


def _number(text: str) -> str:
    import re

    found = re.search(r"T-\d{4,}", text)
    assert found, f"no ticket number in {text!r}"
    return found.group(0)


# -- pre-sale ---------------------------------------------------------------------------
async def test_presale_question_answered_from_the_faq(app: App) -> None:
    chat = Chat(app, "shopper")
    await chat.say("hi there")
    await chat.say("how long does delivery take to germany?")
    assert "working days" in chat.text
    await chat.say("can i pay with paypal")
    assert "PayPal" in chat.text


async def test_price_and_stock_come_from_the_catalog(app: App) -> None:
    chat = Chat(app, "shopper")
    await chat.say("how much is the hoodie?")
    assert "49.90 EUR" in chat.text
    await chat.say("do you have the hoodie in size L?")
    assert "in stock in size L" in chat.text


async def test_unknown_product_offers_a_human(app: App) -> None:
    chat = Chat(app, "shopper")
    await chat.say("do you sell the zorblax 3000 quantum toaster? how much is it")
    assert any(b.payload == "/human_handoff" for r in chat.last for b in r.buttons)


# -- returns ----------------------------------------------------------------------------
async def test_return_step_by_step_ends_in_a_ticket_with_all_slots(app: App) -> None:
    await add_orders(app, order("A20001"))
    chat = Chat(app, "alice")
    await chat.say("I want to return something")
    assert "order number" in chat.text
    await chat.say("A20001")
    assert "e-mail" in chat.text
    await chat.say("alice@example.com")
    assert "reason" in chat.text
    await chat.say("it is too small")
    await chat.press_title("Refund")
    assert "Order: A20001" in chat.text and "Everyday Hoodie" in chat.text
    await chat.press_title("Yes")
    ticket, events, messages = await _ticket(app, _number(chat.text))
    assert ticket.kind == TicketKind.RETURN
    assert ticket.order_id == "A20001"
    assert ticket.fields["item"] == "HD-001"
    assert ticket.fields["reason"] == "it is too small"
    assert ticket.fields["resolution"] == "refund"
    assert ticket.status == TicketStatus.NEW and ticket.first_response_due is not None
    assert events == ["created"]
    customer = await _customer(app, chat)
    assert customer.owner == Owner.BOT and customer.email == "alice@example.com"


async def test_several_slots_in_one_message_and_an_exchange(app: App) -> None:
    items = [
        {"sku": "HD-001", "name": "Everyday Hoodie", "size": "M", "quantity": 1, "unit_price": 49.9},
        {"sku": "TS-001", "name": "Classic Tee", "size": "S", "quantity": 2, "unit_price": 19.9},
    ]
    await add_orders(app, order("A20003", items=items))
    chat = Chat(app, "bob")
    await chat.say("I'd like to exchange the hoodie from order A20003 for size L because it's too small")
    await chat.say("+44 7700 900123")
    assert "Wanted instead: L" in chat.text
    await chat.press("/affirm")
    ticket, _, _ = await _ticket(app, _number(chat.text))
    assert ticket.kind == TicketKind.EXCHANGE
    assert ticket.fields["item"] == "HD-001" and ticket.fields["wanted"] == "L"
    assert ticket.fields["reason"] == "it's too small"


async def test_a_return_just_past_the_window_counts_the_day_begun(app: App) -> None:
    late = order("A20012")
    late.delivered_at = utcnow() - timedelta(days=30, hours=20)  # past a 30-day window by hours
    await add_orders(app, late)
    chat = Chat(app, "dora")
    await chat.say("return order A20012 please")
    await chat.say("alice@example.com")
    assert "was delivered 31 days ago, outside our 30-day return window" in chat.text


async def test_return_outside_the_window_is_escalated_with_the_reason(app: App) -> None:
    await add_orders(app, order("A20002", delivered_days_ago=60))
    chat = Chat(app, "carol")
    await chat.say("return order A20002 please")
    await chat.say("alice@example.com")
    assert "outside our 30-day return window" in chat.text
    ticket, events, _ = await _ticket(app, _number(chat.text))
    assert "outside our 30-day return window" in (ticket.escalation_reason or "")
    assert events == ["created", "owner_changed"]
    assert (await _customer(app, chat)).owner == Owner.QUEUED
    await chat.say("hello? anyone?")
    assert "queue" in chat.text  # the bot only acknowledges


async def test_someone_elses_order_is_escalated_not_disclosed(app: App) -> None:
    await add_orders(app, order("A20004", email="dave@example.com", phone="+44 7700 900999"))
    chat = Chat(app, "mallory")
    await chat.say("I want a refund for order A20004")
    await chat.say("mallory@example.com")
    assert "don't match" in chat.text
    assert "dave" not in chat.text


async def test_unknown_order_is_asked_again_then_escalated(app: App) -> None:
    chat = Chat(app, "erin")
    await chat.say("i want to return order A99999")
    assert "couldn't find order A99999" in chat.text
    await chat.say("A99998")
    assert "passed it to a colleague" in chat.text


async def test_cancel_mid_form_leaves_the_form(app: App) -> None:
    await add_orders(app, order("A20001"))
    chat = Chat(app, "frank")
    await chat.say("I want to return my order")
    await chat.say("A20001")
    await chat.say("cancel")
    assert "cancelled" in chat.text
    await chat.say("how much is the hoodie?")
    assert "49.90" in chat.text
    async with app.tickets.session() as tx:
        assert list(await tx.list_tickets()) == []


async def test_form_that_gets_nowhere_offers_a_way_out(app: App) -> None:
    chat = Chat(app, "gina")
    await chat.say("return please")
    await chat.say("hmm")
    await chat.say("what")
    payloads = {b.payload for r in chat.last for b in r.buttons}
    assert {"/cancel", "/human_handoff"} <= payloads


# -- complaints, handoff, agents, rating -------------------------------------------------
async def test_complaint_gets_priority_number_and_due_time(app: App) -> None:
    chat = Chat(app, "henry")
    await chat.say("THIS IS UNACCEPTABLE, my parcel arrived damaged and nobody answers!!!")
    ticket, _, _ = await _ticket(app, _number(chat.text))
    assert ticket.kind == TicketKind.COMPLAINT and ticket.priority == Priority.HIGH
    assert ticket.first_response_due is not None
    assert ticket.first_response_due.strftime("%H:%M") in chat.text or "by" in chat.text


async def test_repeat_and_high_value_complaints_rise_to_urgent(app: App) -> None:
    big = [{"sku": "JK-001", "name": "Rain Jacket", "size": "M", "quantity": 3, "unit_price": 129.0}]
    await add_orders(app, order("A20005", items=big))
    chat = Chat(app, "irene")
    await chat.say("I want to complain, the delivery was late")
    first, _, _ = await _ticket(app, _number(chat.text))
    assert first.priority == Priority.NORMAL
    # an agent resolves it; a new complaint about a big order comes in
    await app.desk.resolve(first.number)
    await chat.say("I have a complaint about order A20005, the jacket seams are broken")
    second, _, _ = await _ticket(app, _number(chat.text))
    assert second.number != first.number
    assert second.priority == Priority.URGENT  # repeat + high value


async def test_handoff_agent_reply_handback_resolve_and_rating(app: App) -> None:
    chat = Chat(app, "judy")
    await chat.say("I want to talk to a human please")
    number = _number(chat.text)
    assert (await _customer(app, chat)).owner == Owner.QUEUED
    await chat.say("my order never arrived")
    assert "queue" in chat.text

    result = await app.desk.reply(number, "Hi Judy, I'm Sam. Let me check that for you.")
    assert result.owner == "agent"
    assert await chat.inbox() == ["Hi Judy, I'm Sam. Let me check that for you."]
    assert await chat.inbox() == []  # delivered once

    assert await chat.say("thanks, it was order A12345") == []  # the bot never talks over an agent
    ticket, events, messages = await _ticket(app, number)
    assert ("customer", "thanks, it was order A12345") in messages
    assert ("agent", "Hi Judy, I'm Sam. Let me check that for you.") in messages
    assert ticket.first_response_at is not None and ticket.status == TicketStatus.OPEN

    await app.desk.hand_back(number)
    assert (await _customer(app, chat)).owner == Owner.BOT
    assert any("assistant" in t for t in await chat.inbox())  # told, but no rating asked
    await chat.say("how much is the hoodie?")
    assert "49.90" in chat.text

    await chat.say("I need a human again")
    assert _number(chat.text) == number  # the open ticket is reused
    await app.desk.reply(number, "Back again, found your parcel.")
    await app.desk.resolve(number)
    inbox = await chat.inbox()
    assert "Back again, found your parcel." in inbox
    assert any("rate" in t for t in inbox)
    assert (await _customer(app, chat)).owner == Owner.BOT

    await chat.press(f'/rate{{"ticket": "{number}", "score": 5}}')
    assert "5/5" in chat.text
    await chat.say("Sam was super helpful")
    ticket, events, _ = await _ticket(app, number)
    assert ticket.rating == 5 and ticket.rating_comment == "Sam was super helpful"
    owner_moves = [e for e in events if e == "owner_changed"]
    assert len(owner_moves) == 6  # bot→queued→agent→bot, bot→queued→agent→bot(resolved)
    assert "resolved" in events and "rated" in events


async def test_customer_can_leave_the_queue(app: App) -> None:
    chat = Chat(app, "kim")
    await chat.say("operator please")
    await chat.say("cancel")
    assert (await _customer(app, chat)).owner == Owner.BOT


async def test_rating_someone_elses_ticket_is_refused(app: App) -> None:
    owner, other = Chat(app, "liam"), Chat(app, "mia")
    await owner.say("I want to talk to a human")
    number = _number(owner.text)
    await app.desk.resolve(number)
    await other.press(f'/rate{{"ticket": "{number}", "score": 1}}')
    ticket, _, _ = await _ticket(app, number)
    assert ticket.rating is None


async def test_status_lists_only_own_tickets(app: App) -> None:
    a, b = Chat(app, "nina"), Chat(app, "oscar")
    await a.say("I want to speak to a person")
    number = _number(a.text)
    await b.say(f"what is the status of ticket {number}")
    assert "couldn't find" in b.text
    await a.say("cancel")
    await a.say(f"status of my ticket {number}?")
    assert number in a.text


async def test_fallback_offers_a_human_after_two_misunderstandings(app: App) -> None:
    chat = Chat(app, "pat")
    await chat.say("blorp fnord")
    assert not any(b.payload == "/human_handoff" and len(r.buttons) == 2 for r in chat.last for b in r.buttons)
    await chat.say("qwerty zxcv")
    assert "person" in chat.text
    await chat.press("/human_handoff")
    assert (await _customer(app, chat)).owner == Owner.QUEUED


# -- Chinese ----------------------------------------------------------------------------
async def test_chinese_presale_return_and_complaint(app: App) -> None:
    await add_orders(app, order("A20001"))
    chat = Chat(app, "wang")
    await chat.say("卫衣多少钱")
    assert "49.90" in chat.text and "价格" in chat.text
    await chat.say("发货要多久")
    assert "工作日" in chat.text
    await chat.say("我要退货，订单号A20001")
    await chat.say("alice@example.com")
    assert "原因" in chat.text  # still Chinese after an e-mail address
    await chat.say("尺码太小了")
    await chat.press('/choose{"resolution": "refund"}')
    assert "确认" in chat.text
    await chat.press("/affirm")
    ticket, _, _ = await _ticket(app, _number(chat.text))
    assert ticket.kind == TicketKind.RETURN and ticket.fields["reason"] == "尺码太小了"

    angry = Chat(app, "li")
    await angry.say("你们太坑人了！！！衣服破了个洞，我要投诉")
    complaint, _, _ = await _ticket(app, _number(angry.text))
    assert complaint.kind == TicketKind.COMPLAINT and complaint.priority == Priority.HIGH
    assert "投诉工单" in angry.text


async def test_chinese_handoff_and_cancel(app: App) -> None:
    chat = Chat(app, "zhao")
    await chat.say("我要退货")
    await chat.say("算了")
    assert "取消" in chat.text
    await chat.say("转人工")
    assert "人工" in chat.text
    await app.desk.resolve(_number(chat.text))
    assert any("评分" in t or "打分" in t for t in await chat.inbox())


# -- robustness -------------------------------------------------------------------------
async def test_same_delivery_twice_is_processed_once(app: App) -> None:
    chat = Chat(app, "quinn")
    first = await chat.say("hello", key="dup-1")
    assert first
    assert await chat.say("hello", key="dup-1") == first  # the same answer again, stored once
    customer = await _customer(app, chat)
    async with app.tickets.session() as tx:
        assert len(await tx.conversation(customer.id)) == 2  # one inbound, one reply


async def test_bad_input_gets_a_polite_reply_and_nothing_is_lost(app: App) -> None:
    chat = Chat(app, "rob")
    await chat.say("how much is the hoodie?")
    assert await chat.say("") and "empty" in chat.text
    huge = "I want to return this " + "very " * 20_000
    assert await chat.say(huge)
    assert await chat.say("\x00\x07\x1bhello\x7f")
    assert await chat.say("😀😀😀🎉")
    sticker = Incoming("rest", "rob", "rob", "", delivery_key="stk", attachments=())
    assert await app.pipeline.handle(sticker)
    customer = await _customer(app, chat)
    async with app.tickets.session() as tx:
        texts = [m.text for m in await tx.conversation(customer.id, limit=100) if m.direction.value == "in"]
    assert texts[0] == "how much is the hoodie?"
    assert any(t.startswith("I want to return this very") and len(t) > 60_000 for t in texts)
    assert "hello" in texts


async def test_a_crashing_handler_apologises_and_keeps_the_message(app: App) -> None:
    from sqlalchemy.exc import IntegrityError

    from handlers.context import Turn

    async def broken(turn: Turn) -> None:
        raise RuntimeError("bug in a handler")

    async def constraint(turn: Turn) -> None:
        raise IntegrityError("INSERT …", {}, Exception("some other constraint"))

    chat = Chat(app, "sam")
    for failing in (broken, constraint):
        app.pipeline.routes["greet"] = failing
        await chat.say("hello there")
        assert "went wrong" in chat.text  # not silently dropped as a duplicate
    customer = await _customer(app, chat)
    async with app.tickets.session() as tx:
        inbound = [m.text for m in await tx.conversation(customer.id) if m.direction.value == "in"]
    assert inbound == ["hello there", "hello there"]


async def test_a_follow_up_question_refers_to_the_last_product(app: App) -> None:
    chat = Chat(app, "tom")
    await chat.say("how much is the hoodie?")
    await chat.say("do you have it in L?")
    assert "Everyday Hoodie" in chat.text and "size L" in chat.text


async def test_the_products_button_lists_the_catalog(app: App) -> None:
    chat = Chat(app, "una")
    await chat.press("/ask_product")
    assert "Everyday Hoodie" in chat.text and "EUR" in chat.text


async def test_a_reply_the_channel_could_not_deliver_is_recorded(app: App) -> None:
    chat = Chat(app, "vic")
    await chat.say("hello")
    failed = chat.last[0].message_id
    assert failed is not None
    await app.pipeline.delivery_failed(failed, "403 Forbidden: bot was blocked by the user")
    customer = await _customer(app, chat)
    async with app.tickets.session() as tx:
        stored = {m.id: m for m in await tx.conversation(customer.id)}
    assert stored[failed].status.value == "failed" and "blocked" in (stored[failed].error or "")
