"""`deskbot rasa-actions` answering the calls a Rasa 3.6 server makes to ``/webhook``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.app import App
from storage.models import Customer, Owner, Priority, Ticket, TicketKind, TicketStatus
from tests.factories import add_orders, order
from tests.fakes.rasa_core import action_call
from tests.fakes.rasa_nlu import RunningServer

Server = tuple[RunningServer, App]

RETURN_SLOTS = {"order_id": "a20001", "item": "hoodie", "reason": "too small", "resolution": "refund"}


async def call(server: RunningServer, body: Any, *, raw: bytes | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as client:
        if raw is not None:
            return await client.post("/webhook", content=raw, headers={"Content-Type": "application/json"})
        return await client.post("/webhook", json=body)


def slots_set(answer: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in answer["events"] if e["event"] == "slot"}


def texts(answer: dict[str, Any]) -> str:
    return "\n".join(r["text"] for r in answer["responses"])


async def tickets_of(app: App, sender: str) -> tuple[Customer, list[Ticket]]:
    async with app.tickets.session() as tx:
        customer = await tx.find_customer("rasa", sender)
        assert customer is not None
        return customer, list(await tx.list_tickets(customer_id=customer.id))


async def test_open_return_from_the_assistants_form_slots(action_server: Server) -> None:
    server, app = action_server
    await add_orders(app, order("A20001"))
    slots = RETURN_SLOTS | {"email": "Alice@Example.com"}
    response = await call(
        server, action_call("action_deskbot_open_return", "rasa-user-1", slots=slots, text="yes", active_loop="return_form")
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    number = slots_set(answer)["ticket_number"]
    assert slots_set(answer) == {
        "ticket_number": number,
        "ticket_status": "new",
        "ticket_kind": "return",
        "ticket_priority": "normal",
        "deskbot_missing_slot": None,
        "deskbot_owner": "bot",
    }
    assert answer["responses"][0]["text"].startswith(f"Done! Your return request is ticket {number}")
    assert set(answer["responses"][0]) >= {"text", "buttons", "elements", "custom", "image", "attachment"}
    customer, tickets = await tickets_of(app, "rasa-user-1")
    [ticket] = tickets
    assert ticket.number == number and ticket.kind == TicketKind.RETURN and ticket.channel == "rasa"
    assert ticket.order_id == "A20001"
    assert ticket.fields["item"] == "HD-001" and ticket.fields["item_name"] == "Everyday Hoodie (M)"
    assert ticket.fields["reason"] == "too small" and ticket.fields["resolution"] == "refund"
    assert ticket.first_response_due is not None
    assert customer.email == "alice@example.com" and customer.owner == Owner.BOT
    async with app.tickets.session() as tx:
        stored = [(m.author.value, m.text) for m in await tx.ticket_messages(ticket.id)]
        events = [e.kind for e in await tx.ticket_events(ticket.id)]
    assert stored[0] == ("customer", "yes") and stored[1][0] == "bot"
    assert events == ["created"]


async def test_exchange_and_a_later_status_lookup(action_server: Server) -> None:
    server, app = action_server
    await add_orders(app, order("A20003"))
    slots = RETURN_SLOTS | {"order_id": "A20003", "resolution": "exchange", "wanted": "L", "email": "alice@example.com"}
    answer = (await call(server, action_call("action_deskbot_open_return", "u-2", slots=slots))).json()
    number = slots_set(answer)["ticket_number"]
    assert slots_set(answer)["ticket_kind"] == "exchange"

    status = (await call(server, action_call("action_deskbot_ticket_status", "u-2", slots={"ticket_number": number}))).json()
    assert f"{number} — exchange, new" in texts(status)
    assert slots_set(status)["ticket_status"] == "new"
    everything = (await call(server, action_call("action_deskbot_ticket_status", "u-2", text="my tickets?"))).json()
    assert number in texts(everything)


async def test_status_never_shows_someone_elses_ticket(action_server: Server) -> None:
    server, app = action_server
    await add_orders(app, order("A20001"))
    mine = action_call("action_deskbot_open_return", "owner", slots=RETURN_SLOTS | {"email": "alice@example.com"})
    number = slots_set((await call(server, mine)).json())["ticket_number"]
    snoop = (await call(server, action_call("action_deskbot_ticket_status", "snoop", slots={"ticket_number": number}))).json()
    assert texts(snoop) == f"I couldn't find ticket {number} among your tickets."
    assert "ticket_status" not in slots_set(snoop)
    nothing = (await call(server, action_call("action_deskbot_ticket_status", "snoop"))).json()
    assert texts(nothing) == "You have no tickets with us."


async def test_order_not_linked_to_the_sender_needs_a_matching_contact(action_server: Server) -> None:
    server, app = action_server
    await add_orders(app, order("A20001"))
    answer = (await call(server, action_call("action_deskbot_open_return", "stranger", slots=RETURN_SLOTS))).json()
    assert slots_set(answer) == {"deskbot_missing_slot": "contact", "deskbot_owner": "bot"}
    assert "what e-mail address or phone number" in texts(answer)
    wrong = RETURN_SLOTS | {"email": "mallory@example.com"}
    answer = (await call(server, action_call("action_deskbot_open_return", "stranger", slots=wrong))).json()
    # A contact that does not match is not refused by a machine: a human looks at it.
    assert "don't match" in texts(answer) and "alice" not in texts(answer)
    customer, [ticket] = await tickets_of(app, "stranger")
    assert ticket.kind == TicketKind.RETURN and customer.owner == Owner.QUEUED
    assert slots_set(answer)["ticket_number"] == ticket.number


async def test_outside_the_return_window_is_escalated(action_server: Server) -> None:
    server, app = action_server
    await add_orders(app, order("A20002", delivered_days_ago=60))
    slots = RETURN_SLOTS | {"order_id": "A20002", "email": "alice@example.com"}
    answer = (await call(server, action_call("action_deskbot_open_return", "late", slots=slots))).json()
    assert "outside our 30-day return window" in texts(answer)
    customer, [ticket] = await tickets_of(app, "late")
    assert "outside our 30-day return window" in (ticket.escalation_reason or "")
    assert customer.owner == Owner.QUEUED and customer.handoff_ticket_id == ticket.id


async def test_unknown_order_is_cleared_then_escalated_on_the_second_try(action_server: Server) -> None:
    server, app = action_server
    first = (await call(server, action_call("action_deskbot_open_return", "erin", slots=RETURN_SLOTS | {"order_id": "A99999"}))).json()
    assert "couldn't find order A99999" in texts(first)
    assert slots_set(first) == {"deskbot_missing_slot": "order_id", "order_id": None, "deskbot_owner": "bot"}
    second = (await call(server, action_call("action_deskbot_open_return", "erin", slots=RETURN_SLOTS | {"order_id": "A99998"}))).json()
    assert "passed it to a colleague" in texts(second)
    _, [ticket] = await tickets_of(app, "erin")
    assert "A99998" in (ticket.escalation_reason or "")  # as deskbot's own form does


async def test_item_not_in_the_order_is_asked_again_with_buttons(action_server: Server) -> None:
    server, app = action_server
    await add_orders(app, order("A20001"))
    slots = RETURN_SLOTS | {"item": "toaster", "email": "alice@example.com"}
    answer = (await call(server, action_call("action_deskbot_open_return", "u-3", slots=slots))).json()
    assert slots_set(answer) == {"deskbot_missing_slot": "item", "item": None, "deskbot_owner": "bot"}
    buttons = [b for r in answer["responses"] for b in r["buttons"]]
    assert buttons == [{"title": "Everyday Hoodie (M)", "payload": '/choose{"item": "HD-001"}'}]
    _, tickets = await tickets_of(app, "u-3")
    assert tickets == []


async def test_complaint_is_prioritised_and_queued_for_a_human(action_server: Server) -> None:
    server, app = action_server
    await add_orders(app, order("A20009", items=[{"sku": "CT-9", "name": "Coat", "quantity": 1, "unit_price": 450.0}]))
    text = "This is unacceptable, the coat from A20009 fell apart after one day"
    answer = (
        await call(server, action_call("action_deskbot_escalate_complaint", "angry", slots={"order_id": "A20009"}, text=text, intent="complaint"))
    ).json()
    slots = slots_set(answer)
    assert slots["ticket_kind"] == "complaint" and slots["ticket_priority"] == "urgent"
    assert "urgent priority" in texts(answer)
    customer, [ticket] = await tickets_of(app, "angry")
    assert ticket.priority == Priority.URGENT and ticket.status == TicketStatus.NEW
    assert ticket.fields["complaint"] == text and ticket.order_id == "A20009"
    assert set(ticket.fields["signals"]) == {"strong wording", "high-value order"}
    assert customer.owner == Owner.QUEUED and customer.handoff_ticket_id == ticket.id


async def test_handoff_loop_messages_reach_the_ticket_and_agent_replies_reach_rasa(action_server: Server) -> None:
    server, app = action_server
    escalated = (
        await call(server, action_call("action_deskbot_escalate_complaint", "hana", text="my parcel never arrived", intent="complaint"))
    ).json()
    number = slots_set(escalated)["ticket_number"]
    assert slots_set(escalated)["deskbot_owner"] == "queued"

    waiting = (await call(server, action_call("action_deskbot_forward_to_agent", "hana", text="any news?"))).json()
    assert f"in the queue for ticket {number}" in texts(waiting)
    assert slots_set(waiting)["deskbot_owner"] == "queued"

    await app.desk.reply(number, "Sorry Hana, a new parcel ships today.")
    replies = (await call(server, action_call("action_deskbot_agent_replies", "hana"))).json()
    assert texts(replies) == "Sorry Hana, a new parcel ships today."
    assert slots_set(replies)["deskbot_owner"] == "agent"
    again = (await call(server, action_call("action_deskbot_agent_replies", "hana"))).json()
    assert again["responses"] == []  # delivered once

    quiet = (await call(server, action_call("action_deskbot_forward_to_agent", "hana", text="thank you!"))).json()
    assert quiet["responses"] == []  # the agent answers, not the bot
    await app.desk.resolve(number)
    rating = (await call(server, action_call("action_deskbot_ticket_status", "hana", slots={"ticket_number": number}))).json()
    assert "/rate" in str(rating["responses"][0]["buttons"])  # the rating request, with its buttons, comes first
    assert slots_set(rating)["deskbot_owner"] == "bot" and slots_set(rating)["ticket_status"] == "resolved"
    # The customer presses "5 ★★★★★": Rasa parses the payload into intent rate + two entities.
    payload = f'/rate{{"ticket": "{number}", "score": 5}}'
    pressed = [
        {"entity": "ticket", "start": 5, "end": len(payload), "value": number},
        {"entity": "score", "start": 5, "end": len(payload), "value": 5},
    ]
    thanks = (await call(server, action_call("action_deskbot_rate", "hana", text=payload, intent="rate", entities=pressed))).json()
    assert "5" in texts(thanks) and "thank" in texts(thanks).lower()
    async with app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number)
        events = [(e.kind, e.data.get("text")) for e in await tx.ticket_events(ticket.id)]
        customer_lines = [m.text for m in await tx.ticket_messages(ticket.id) if m.author.value == "customer"]
    assert ("customer_message", "any news?") in events and ("customer_message", "thank you!") in events
    assert customer_lines == ["my parcel never arrived", "any news?", "thank you!", payload]
    assert ticket.rating == 5 and ("rated", None) in events


async def test_a_rating_for_someone_elses_ticket_is_refused(action_server: Server) -> None:
    server, app = action_server
    escalated = (await call(server, action_call("action_deskbot_escalate_complaint", "owner2", text="broken zip"))).json()
    number = slots_set(escalated)["ticket_number"]
    await app.desk.resolve(number)
    pressed = [{"entity": "ticket", "value": number}, {"entity": "score", "value": 1}]
    answer = (await call(server, action_call("action_deskbot_rate", "troll", intent="rate", entities=pressed))).json()
    assert texts(answer) == "Sorry, I couldn't record that rating." and "ticket_number" not in slots_set(answer)
    async with app.tickets.session() as tx:
        assert (await tx.ticket_by_number(number)).rating is None


async def test_forwarding_without_a_handoff_changes_nothing(action_server: Server) -> None:
    server, app = action_server
    answer = (await call(server, action_call("action_deskbot_forward_to_agent", "idle", text="hello"))).json()
    assert answer["responses"] == [] and slots_set(answer) == {"deskbot_owner": "bot"}
    _, tickets = await tickets_of(app, "idle")
    assert tickets == []


async def test_chinese_customer_gets_chinese_answers(action_server: Server) -> None:
    server, _ = action_server
    answer = (await call(server, action_call("action_deskbot_ticket_status", "zh-user", text="我的工单怎么样了"))).json()
    assert texts(answer) and all("\u4e00" <= c <= "\u9fff" for c in texts(answer) if c.isalpha())


async def test_slots_the_domain_lacks_are_not_set(action_server: Server) -> None:
    server, app = action_server
    await add_orders(app, order("A20001"))
    body = action_call("action_deskbot_open_return", "u-4", slots=RETURN_SLOTS | {"email": "alice@example.com"})
    body["domain"]["slots"] = {"ticket_number": {"type": "text", "mappings": []}}
    answer = (await call(server, body)).json()
    assert list(slots_set(answer)) == ["ticket_number"]


# -- the protocol's edges ------------------------------------------------------------------
async def test_actions_and_health_are_listed(action_server: Server) -> None:
    server, _ = action_server
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        names = {a["name"] for a in (await client.get("/actions")).json()}
    assert names == {
        "action_deskbot_open_return",
        "action_deskbot_escalate_complaint",
        "action_deskbot_ticket_status",
        "action_deskbot_rate",
        "action_deskbot_forward_to_agent",
        "action_deskbot_agent_replies",
    }


@pytest.mark.parametrize(
    ("body", "raw", "status", "error"),
    [
        (None, b"{not json", 400, "not valid JSON"),
        (["next_action"], None, 400, "JSON object"),
        ({"next_action": "action_deskbot_ticket_status", "tracker": "x"}, None, 400, "sender_id"),
        ({"next_action": "action_deskbot_ticket_status", "tracker": {"sender_id": "a", "slots": []}}, None, 400, "tracker.slots"),
        ({"next_action": "", "tracker": {"sender_id": "a"}}, None, 400, "next_action"),
    ],
)
async def test_broken_calls_get_a_400_and_store_nothing(
    action_server: Server, body: Any, raw: bytes | None, status: int, error: str
) -> None:
    server, app = action_server
    response = await call(server, body, raw=raw)
    assert response.status_code == status
    assert error in response.json()["error"]
    async with app.tickets.session() as tx:
        assert await tx.find_customer("rasa", "a") is None


async def test_unknown_action_missing_domain_and_bad_sender_use_the_sdks_answers(action_server: Server) -> None:
    server, app = action_server
    unknown = await call(server, action_call("action_nope", "u-5"))
    assert unknown.status_code == 404 and unknown.json()["action_name"] == "action_nope"
    no_domain = await call(server, action_call("action_deskbot_ticket_status", "u-5", include_domain=False))
    assert no_domain.status_code == 449  # Rasa resends the call with its domain
    too_long = await call(server, action_call("action_deskbot_ticket_status", "x" * 201))
    assert too_long.status_code == 400 and "sender_id" in too_long.json()["error"]
    async with app.tickets.session() as tx:
        assert await tx.find_customer("rasa", "u-5") is None


async def test_a_failing_operation_apologises_and_stores_nothing(
    action_server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server, app = action_server
    import bot.rasa_actions.operations as operations

    async def broken(turn: Any) -> None:
        turn.say("no_tickets")
        raise RuntimeError("database went away")

    monkeypatch.setattr(operations, "ticket_status", broken)
    answer = await call(server, action_call("action_deskbot_ticket_status", "unlucky", text="where is my ticket"))
    assert answer.status_code == 200
    assert [r["text"] for r in answer.json()["responses"]] == [app.services.responses.text("en", "error_apology")]
    assert answer.json()["events"] == []
    assert "rasa action failed" in caplog.text and "where is my ticket" not in caplog.text
    async with app.tickets.session() as tx:
        assert await tx.find_customer("rasa", "unlucky") is None  # the turn rolled back


async def test_absurd_slot_values_are_handled_not_crashed_on(action_server: Server) -> None:
    server, app = action_server
    huge = "A" * 300
    complaint = action_call("action_deskbot_escalate_complaint", "fuzz", slots={"order_id": huge}, text="bad \x00 service " * 500)
    answer = await call(server, complaint)
    assert answer.status_code == 200 and "complaint" in texts(answer.json())
    _, [ticket] = await tickets_of(app, "fuzz")
    assert ticket.order_id is None and "\x00" not in ticket.fields["complaint"]
    returned = (await call(server, action_call("action_deskbot_open_return", "fuzz", slots=RETURN_SLOTS | {"order_id": huge}))).json()
    assert slots_set(returned)["deskbot_missing_slot"] == "order_id"
    status = (await call(server, action_call("action_deskbot_ticket_status", "fuzz", slots={"ticket_number": "T-" + "9" * 40}))).json()
    assert texts(status) == f"I couldn't find ticket T-{'9' * 40} among your tickets."
