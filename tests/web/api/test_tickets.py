"""The tickets API and agents' actions, through HTTP, on both backend pairs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from common.messages import Incoming
from storage.models import DeliveryStatus, Direction, Owner, TicketKind, TicketStatus, parse_ticket_number
from tests.rest_client import poll_customer, widget_for
from tests.web.api.conftest import Desk


async def _poll(desk: Desk, sender: str) -> list[dict[str, object]]:
    """The customer's widget polls (with its sender token, acknowledging what it already has)."""
    return await poll_customer(widget_for(desk, desk.client_for), desk.app, sender)


async def test_the_queue_shows_a_handoff_and_filters_it(desk: Desk) -> None:
    number = await desk.handoff("cust-1", display_name="Ada")
    client, headers = await desk.session("ann@example.com")
    page = (await client.get("/api/v1/tickets")).json()
    assert [t["number"] for t in page["items"]] == [number] and page["next_cursor"] is None
    item = page["items"][0]
    assert item["status"] == "new" and item["kind"] == "handoff" and item["assignee"] is None
    assert item["customer"]["display_name"] == "Ada" and item["channel"] == "rest"
    assert item["sla"]["target"] == "first_response" and item["sla"]["state"] in ("ok", "warning", "breached")
    assert item["sla"]["due_at"] == item["first_response_due"]
    assert (await client.get("/api/v1/tickets", params={"assignee": "mine"})).json()["items"] == []
    await client.post(f"/api/v1/tickets/{number}/claim", headers=headers)
    mine = (await client.get("/api/v1/tickets", params={"assignee": "mine", "status": "open"})).json()
    assert [t["number"] for t in mine["items"]] == [number]
    assert (await client.get("/api/v1/tickets", params={"assignee": "unassigned"})).json()["items"] == []


async def test_bad_queue_parameters_are_clear_4xx(desk: Desk) -> None:
    client, _ = await desk.session("ann@example.com")
    for params, status in (
        ({"status": "sleeping"}, 422),
        ({"limit": "0"}, 422),
        ({"limit": "100000"}, 422),
        ({"sort": "random"}, 422),
        ({"cursor": "not-a-cursor"}, 400),
        ({"assignee": "somebody"}, 400),
    ):
        answer = await client.get("/api/v1/tickets", params=params)
        assert answer.status_code == status, params
        assert isinstance(answer.json()["error"], str) and answer.json()["error"]
    missing = await client.get("/api/v1/tickets/T-999999")
    assert missing.status_code == 404 and "T-999999" in missing.json()["error"]


async def test_paging_with_the_cursor_visits_every_ticket_once(desk: Desk) -> None:
    numbers = {await desk.handoff(f"cust-{i}") for i in range(5)}
    client, _ = await desk.session("ann@example.com")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/tickets", params=params)).json()
        seen += [t["number"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(numbers)


async def test_claim_makes_the_agent_own_the_conversation_and_a_colleague_gets_409(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    ann, ann_headers = await desk.session("ann@example.com")
    bob, bob_headers = await desk.session("bob@example.com")
    claimed = await ann.post(f"/api/v1/tickets/{number}/claim", headers=ann_headers)
    assert claimed.status_code == 200
    detail = claimed.json()
    assert detail["assignee"]["email"] == "ann@example.com" and detail["status"] == "open"
    assert detail["customer"]["owner"] == "agent"
    assert {"agent": "ann@example.com"} in [e["data"] for e in detail["events"] if e["kind"] == "claimed"]
    lost = await bob.post(f"/api/v1/tickets/{number}/claim", headers=bob_headers)
    assert lost.status_code == 409 and "already taken by Ann" in lost.json()["error"]
    assert (await bob.get(f"/api/v1/tickets/{number}")).json()["assignee"]["email"] == "ann@example.com"
    again = await ann.post(f"/api/v1/tickets/{number}/claim", headers=ann_headers)  # idempotent for the owner
    assert again.status_code == 200


async def test_two_agents_claiming_at_once_have_exactly_one_winner(desk: Desk) -> None:
    for round_ in range(3):
        number = await desk.handoff(f"race-{round_}")
        sessions = [await desk.session(f"agent{round_}-{i}@example.com") for i in range(4)]
        answers = await asyncio.gather(
            *(client.post(f"/api/v1/tickets/{number}/claim", headers=headers) for client, headers in sessions)
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 409, 409, 409], [a.text for a in answers]
        winner = next(a for a in answers if a.status_code == 200).json()["assignee"]["email"]
        detail = (await sessions[0][0].get(f"/api/v1/tickets/{number}")).json()
        assert detail["assignee"]["email"] == winner
        assert [e["kind"] for e in detail["events"]].count("claimed") == 1


async def test_reply_reaches_the_customer_on_their_channel(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    answer = await client.post(f"/api/v1/tickets/{number}/reply", json={"text": "Hello, I'm Ann."}, headers=headers)
    assert answer.status_code == 200
    detail = answer.json()
    assert detail["customer"]["owner"] == "agent" and detail["first_response_at"] is not None
    sent = detail["messages"][-1]
    assert sent["text"] == "Hello, I'm Ann." and sent["author"] == "agent" and sent["status"] == "queued"
    assert sent["agent"]["email"] == "ann@example.com"
    assert [m["text"] for m in await _poll(desk, "cust-1")] == ["Hello, I'm Ann."]
    assert await _poll(desk, "cust-1") == []  # delivered once
    # The customer's answer lands on the ticket while the bot stays silent.
    assert await desk.customer_says("cust-1", "thanks Ann, my parcel is late") == []
    detail = (await client.get(f"/api/v1/tickets/{number}")).json()
    assert detail["messages"][-1]["text"] == "thanks Ann, my parcel is late"
    assert detail["messages"][-2]["status"] == "sent"


async def test_a_note_is_kept_on_the_ticket_and_never_sent(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    before = len((await client.get(f"/api/v1/tickets/{number}")).json()["messages"])
    answer = await client.post(f"/api/v1/tickets/{number}/notes", json={"text": "VIP, be nice"}, headers=headers)
    assert answer.status_code == 200
    detail = answer.json()
    assert [(n["text"], n["agent"]["email"]) for n in detail["notes"]] == [("VIP, be nice", "ann@example.com")]
    assert len(detail["messages"]) == before
    assert all("VIP" not in m["text"] for m in detail["messages"])
    assert await _poll(desk, "cust-1") == []
    assert (await client.post(f"/api/v1/tickets/{number}/notes", json={"text": "   "}, headers=headers)).status_code == 422


async def test_resolve_asks_for_a_rating_in_the_customers_language_and_shows_it(desk: Desk) -> None:
    await desk.customer_says("cust-zh", "你好，我的订单有问题")
    number = await desk.handoff("cust-zh")
    client, headers = await desk.session("ann@example.com")
    await client.post(f"/api/v1/tickets/{number}/reply", json={"text": "您好"}, headers=headers)
    resolved = await client.post(f"/api/v1/tickets/{number}/resolve", headers=headers)
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved" and resolved.json()["customer"]["owner"] == "bot"
    polled = await _poll(desk, "cust-zh")
    request = polled[-1]
    assert "已解决" in str(request["text"]) and number in str(request["text"])
    buttons = request["buttons"]
    assert isinstance(buttons, list) and len(buttons) == 5
    await desk.app.pipeline.handle(
        Incoming(channel="rest", chat_id="cust-zh", user_id="cust-zh", text="", payload=str(buttons[4]["payload"]))
    )
    assert (await client.get(f"/api/v1/tickets/{number}")).json()["rating"] == 5
    assert (await client.post(f"/api/v1/tickets/{number}/resolve", headers=headers)).status_code == 409


async def test_hand_back_returns_to_the_bot_without_a_rating(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    await client.post(f"/api/v1/tickets/{number}/claim", headers=headers)
    answer = await client.post(f"/api/v1/tickets/{number}/hand-back", headers=headers)
    assert answer.status_code == 200
    detail = answer.json()
    assert detail["status"] == "pending" and detail["customer"]["owner"] == "bot" and detail["rating"] is None
    polled = await _poll(desk, "cust-1")
    assert len(polled) == 1 and "assistant" in str(polled[0]["text"]) and "buttons" not in polled[0]
    assert (await client.post(f"/api/v1/tickets/{number}/hand-back", headers=headers)).status_code == 409


async def test_priority_status_and_reopen_are_audited(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    before = (await client.get(f"/api/v1/tickets/{number}")).json()
    urgent = (await client.post(f"/api/v1/tickets/{number}/priority", json={"priority": "urgent"},
                                headers=headers)).json()
    assert urgent["priority"] == "urgent"
    assert urgent["first_response_due"] < before["first_response_due"]  # urgent targets are shorter
    assert {"from": "normal", "to": "urgent"} in [e["data"] for e in urgent["events"] if e["kind"] == "priority_changed"]
    pending = (await client.post(f"/api/v1/tickets/{number}/status", json={"status": "pending"}, headers=headers)).json()
    assert pending["status"] == "pending"
    closed = (await client.post(f"/api/v1/tickets/{number}/status", json={"status": "closed"}, headers=headers)).json()
    assert closed["status"] == "closed" and closed["customer"]["owner"] == "bot"
    assert await _poll(desk, "cust-1") == []  # closing asks for nothing
    reopened = (await client.post(f"/api/v1/tickets/{number}/reopen", headers=headers)).json()
    assert reopened["status"] == "open" and reopened["resolved_at"] is None
    assert reopened["customer"]["owner"] == "queued"
    kinds = [e["kind"] for e in reopened["events"]]
    assert kinds.count("status_changed") == 2 and "reopened" in kinds
    assert (await client.post(f"/api/v1/tickets/{number}/reopen", headers=headers)).status_code == 409
    bad = await client.post(f"/api/v1/tickets/{number}/priority", json={"priority": "whenever"}, headers=headers)
    assert bad.status_code == 422 and "priority" in bad.json()["error"]


async def test_assign_to_a_colleague(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    bob = await desk.add_agent("bob@example.com")
    answer = await client.post(f"/api/v1/tickets/{number}/assign", json={"agent_id": bob}, headers=headers)
    assert answer.status_code == 200 and answer.json()["assignee"]["email"] == "bob@example.com"
    assert {"agent": "bob@example.com", "agent_id": bob} in [e["data"] for e in answer.json()["events"]]
    # Assigned to Bob: Ann cannot claim it out from under him.
    assert (await client.post(f"/api/v1/tickets/{number}/claim", headers=headers)).status_code == 409
    assert (await client.post(f"/api/v1/tickets/{number}/assign", json={"agent_id": 999},
                              headers=headers)).status_code == 404
    cleared = await client.post(f"/api/v1/tickets/{number}/assign", json={"agent_id": None}, headers=headers)
    assert cleared.json()["assignee"] is None


async def test_merge_moves_the_conversation_and_closes_the_duplicate(desk: Desk) -> None:
    keep = await desk.handoff("cust-1")
    await desk.customer_says("cust-1", "the first message about my broken parcel")
    async with desk.app.tickets.session() as tx:
        customer = await tx.find_customer("rest", "cust-1")
        assert customer is not None
        duplicate = await tx.open_ticket(customer, kind=TicketKind.COMPLAINT, subject="broken parcel",
                                         channel="rest", actor="bot")
        dup_number = duplicate.number
        await tx.add_message(customer, channel="rest", chat_id="cust-1", direction=Direction.INBOUND,
                             author="customer", text="it is really broken", status=DeliveryStatus.RECEIVED,  # type: ignore[arg-type]
                             ticket_id=duplicate.id)
    other = await desk.handoff("someone-else")
    client, headers = await desk.session("ann@example.com")
    await client.post(f"/api/v1/tickets/{dup_number}/notes", json={"text": "dup note"}, headers=headers)
    answer = await client.post(f"/api/v1/tickets/{dup_number}/merge", json={"into": keep}, headers=headers)
    assert answer.status_code == 200
    kept = answer.json()
    assert kept["number"] == keep
    assert "it is really broken" in [m["text"] for m in kept["messages"]]
    assert "dup note" in [n["text"] for n in kept["notes"]]
    assert {"ticket": dup_number} in [e["data"] for e in kept["events"] if e["kind"] == "merged_from"]
    source = (await client.get(f"/api/v1/tickets/{dup_number}")).json()
    assert source["status"] == "closed" and source["merged_into"] == keep and source["messages"] == []
    assert {"into": keep} in [e["data"] for e in source["events"] if e["kind"] == "merged"]
    assert (await client.post(f"/api/v1/tickets/{keep}/merge", json={"into": other},
                              headers=headers)).status_code == 409  # another customer
    assert (await client.post(f"/api/v1/tickets/{keep}/merge", json={"into": keep},
                              headers=headers)).status_code == 409


async def test_a_failed_delivery_is_shown_and_can_be_retried(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    reply = (await client.post(f"/api/v1/tickets/{number}/reply", json={"text": "hi"}, headers=headers)).json()
    message_id = reply["messages"][-1]["id"]
    assert (await client.post(f"/api/v1/messages/{message_id}/retry", headers=headers)).status_code == 409
    await desk.app.pipeline.delivery_failed(message_id, "chat not found")
    failed = (await client.get(f"/api/v1/tickets/{number}")).json()["messages"][-1]
    assert failed["status"] == "failed" and failed["error"] == "chat not found"
    retried = await client.post(f"/api/v1/messages/{message_id}/retry", headers=headers)
    assert retried.status_code == 200
    message = retried.json()["messages"][-1]
    assert message["status"] == "queued" and message["error"] is None
    assert any(e["kind"] == "delivery_retried" for e in retried.json()["events"])
    assert [m["text"] for m in await _poll(desk, "cust-1")] == ["hi"]
    assert (await client.post("/api/v1/messages/999999/retry", headers=headers)).status_code == 404


async def test_a_customer_writing_again_reopens_the_resolved_ticket(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    await client.post(f"/api/v1/tickets/{number}/reply", json={"text": "sent a new one"}, headers=headers)
    await client.post(f"/api/v1/tickets/{number}/resolve", headers=headers)
    await _poll(desk, "cust-1")
    # A closing remark does not reopen it ...
    await desk.customer_says("cust-1", "thank you!")
    assert (await client.get(f"/api/v1/tickets/{number}")).json()["status"] == "resolved"
    # ... the problem coming back does.
    replies = await desk.customer_says("cust-1", "the replacement is broken too, I want to talk to a person")
    assert any(number in r and "reopened" in r for r in replies)
    detail = (await client.get(f"/api/v1/tickets/{number}")).json()
    assert detail["status"] == "open" and detail["customer"]["owner"] == "queued"
    assert detail["assignee"]["email"] == "ann@example.com"
    assert {"reason": "customer wrote again"} in [e["data"] for e in detail["events"] if e["kind"] == "reopened"]
    assert detail["messages"][-2]["text"].startswith("the replacement is broken")
    mine = (await client.get("/api/v1/tickets", params={"assignee": "mine"})).json()["items"]
    assert [t["number"] for t in mine] == [number]
    async with desk.app.tickets.session() as tx:
        assert len(await tx.list_tickets()) == 1  # no new ticket


async def test_an_old_resolution_is_not_reopened(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    await client.post(f"/api/v1/tickets/{number}/claim", headers=headers)
    await client.post(f"/api/v1/tickets/{number}/resolve", headers=headers)
    async with desk.app.tickets.session() as tx:
        ticket = await tx.get_ticket(parse_ticket_number(number) or 0)
        assert ticket is not None and ticket.resolved_at is not None
        ticket.resolved_at -= timedelta(hours=desk.app.settings.dialogue.reopen_hours + 1)
    await desk.customer_says("cust-1", "I want to talk to a person")
    assert (await client.get(f"/api/v1/tickets/{number}")).json()["status"] == "resolved"
    async with desk.app.tickets.session() as tx:
        tickets = await tx.list_tickets()
        assert len(tickets) == 2 and tickets[0].status == TicketStatus.NEW
        customer = await tx.find_customer("rest", "cust-1")
        assert customer is not None and customer.owner == Owner.QUEUED
