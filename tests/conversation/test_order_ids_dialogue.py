"""Returns and order questions through the REST channel on a shop whose ids look like ``KX-20417``.

The ``app`` fixture's catalog is the demo's; only the orders differ, which is all an order
id format needs: what the bot recognises and quotes comes from the imported orders.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from bot.app import App
from bot.web.app import create_web_app
from storage.models import Priority, Ticket, TicketKind
from storage.tickets import SqlTicketStore
from tests.factories import add_orders, order
from tests.rest_client import RestClient

SHOES = {"sku": "RT-220", "name": "Ridge Trail Running Shoes", "size": "42", "quantity": 1, "unit_price": 89.0}
HOODIE = {"sku": "HD-001", "name": "Everyday Hoodie", "size": "M", "quantity": 1, "unit_price": 49.9}

Say = Callable[[str], Awaitable[list[dict[str, object]]]]


@pytest.fixture
async def kx_shop(app: App) -> App:
    await add_orders(
        app,
        order("KX-20417", items=[SHOES, HOODIE]),
        order("KX-20418", items=[SHOES, HOODIE]),
        order("KX-20502", email="dave@example.com", phone="+44 7700 900999"),
    )
    return app


@pytest.fixture
async def http(kx_shop: App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_web_app(kx_shop))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def customer(http: httpx.AsyncClient, sender: str) -> Say:
    """One customer's widget: it proves the sender on every message after the first."""
    rest = RestClient(http)

    async def say(message: str) -> list[dict[str, object]]:
        return await rest.say(sender, message)

    return say


def text(replies: list[dict[str, object]]) -> str:
    return "\n".join(str(r["text"]) for r in replies)


async def ticket_in(app: App, replies: list[dict[str, object]]) -> Ticket:
    number = re.search(r"T-\d{4,}", text(replies))
    assert number, text(replies)
    async with app.tickets.session() as tx:
        return await tx.ticket_by_number(number.group(0))


async def test_one_shot_return_names_the_order_and_the_item(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-1")
    first = text(await say("I'd like to send back the shoes from order KX-20417"))
    assert "e-mail" in first and "20417" not in first  # proves the order, never "couldn't find order 20417"
    assert "reason" in text(await say("alice@example.com"))  # the item was in the first message
    await say("they are too small")
    summary = text(await say('/choose{"resolution": "refund"}'))
    assert "Order: KX-20417" in summary and "Ridge Trail Running Shoes (42)" in summary
    done = await say("/affirm")
    assert re.search(r"next steps by \d{4}-\d{2}-\d{2} \d{2}:\d{2}", text(done))  # the SLA, no shop's promise
    ticket = await ticket_in(kx_shop, done)
    assert (ticket.kind, ticket.order_id, ticket.priority) == (TicketKind.RETURN, "KX-20417", Priority.NORMAL)
    assert ticket.fields["item"] == "RT-220" and ticket.fields["reason"] == "they are too small"


async def test_step_by_step_the_question_shows_one_of_the_shops_own_ids(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-2")
    question = text(await say("I want to return something"))
    assert "for example KX-20417" in question and "A10234" not in question
    assert "e-mail" in text(await say("kx 20418"))
    item_question = await say("+44 7700 900123")
    payloads = [str(b["payload"]) for b in item_question[-1]["buttons"]]  # type: ignore[attr-defined]
    assert payloads == ['/choose{"item": "RT-220"}', '/choose{"item": "HD-001"}']
    assert "reason" in text(await say("the hoodie"))
    await say('/choose{"reason": "too_big"}')
    summary = text(await say("exchange please"))
    assert "What size or colour" in summary
    summary = text(await say("L"))
    assert "Order: KX-20418" in summary and "Everyday Hoodie (M)" in summary
    ticket = await ticket_in(kx_shop, await say("/affirm"))
    assert (ticket.kind, ticket.order_id, ticket.fields["item"]) == (TicketKind.EXCHANGE, "KX-20418", "HD-001")


async def test_an_unknown_id_of_the_shops_shape_is_quoted_whole(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-3")
    assert "I couldn't find order KX-99999" in text(await say("I want to return order KX-99999"))
    escalated = await say("kx-99998")
    assert "I couldn't find order KX-99998" in text(escalated) and "colleague" in text(escalated)
    ticket = await ticket_in(kx_shop, escalated)
    assert "I couldn't find order KX-99998" in (ticket.escalation_reason or "")


async def test_chinese_return_with_the_id_in_lower_case_and_spaced(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-4")
    first = text(await say("我想退货，订单号kx 20417"))
    assert "邮箱或手机号" in first, first  # the return started; the order is proven next
    item_question = text(await say("alice@example.com"))
    assert "哪件商品" in item_question
    assert "原因" in text(await say("卫衣"))  # the catalog's Chinese name of the order's hoodie


async def test_angry_return_stays_a_return_with_high_priority(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-5")
    await say("I want to return the shoes from order KX-20417, the sole came off. UNACCEPTABLE!!!")
    assert "refund" in text(await say("alice@example.com"))  # the reason was given: refund or exchange?
    await say('/choose{"resolution": "refund"}')
    ticket = await ticket_in(kx_shop, await say("/affirm"))
    assert (ticket.kind, ticket.priority) == (TicketKind.RETURN, Priority.HIGH)
    assert ticket.fields["signals"] == ["strong wording"] and ticket.fields["reason"] == "the sole came off"


async def test_order_status_in_the_shops_spelling(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-6")
    asked = text(await say("where is my order kx20502?"))
    assert "Order KX-20502 isn't linked to you" in asked and "e-mail" in asked and "return" not in asked
    assert "I couldn't find order KX-77777" in text(await say("what's the status of order KX-77777"))
    assert "like KX-20417" in text(await say("where is my order"))  # none linked to this customer


async def test_orders_imported_by_another_process_are_recognised_without_a_restart(
    kx_shop: App, http: httpx.AsyncClient
) -> None:
    say = customer(http, "kx-7")
    kx_shop.orders.every = 0.0  # look before every turn instead of every few seconds
    other_process = SqlTicketStore.from_url(kx_shop.settings.storage.url)
    try:
        async with other_process.session() as tx:
            await tx.upsert_orders([order("QZ/7781", items=[SHOES])])
    finally:
        await other_process.close()
    assert "e-mail" in text(await say("I want to return qz 7781"))
    assert kx_shop.services.shop.order_ids.spelling("qz7781") == "QZ/7781"


# -- the status of an order not linked to the customer: only with the contact on it ----------------
async def test_status_with_the_orders_e_mail_in_the_same_message(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-status-1")
    answer = text(await say("what's the status of KX 20502? it's under dave@example.com"))
    assert "KX-20502" in answer and "delivered" in answer and "Everyday Hoodie" in answer, answer
    listed = text(await say("where is my order"))  # now linked to this customer
    assert "KX-20502" in listed and "Everyday Hoodie" in listed, listed


async def test_status_asks_for_the_contact_and_the_next_message_gives_it(
    kx_shop: App, http: httpx.AsyncClient
) -> None:
    say = customer(http, "kx-status-2")
    asked = text(await say("what's the status of order KX-20502"))
    assert "isn't linked to you" in asked and "Everyday Hoodie" not in asked and "delivered" not in asked
    answer = text(await say("+44 7700 900999"))
    assert "KX-20502" in answer and "delivered" in answer and "Everyday Hoodie" in answer, answer


async def test_status_with_someone_elses_contact_shows_nothing(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-status-3")
    await say("what's the status of order KX-20502")
    refused = text(await say("alice@example.com"))  # the e-mail of other orders, not this one
    assert "isn't the e-mail address or phone number on order KX-20502" in refused
    assert "Everyday Hoodie" not in refused and "delivered" not in refused
    again = text(await say("where is my order kx20502? it's under eve@example.com"))
    assert "KX-20502" in again and "Everyday Hoodie" not in again and "delivered" not in again


async def test_a_new_request_after_the_contact_question_leaves_it(kx_shop: App, http: httpx.AsyncClient) -> None:
    say = customer(http, "kx-status-4")
    await say("what's the status of order KX-20502")
    assert "for example KX-20417" in text(await say("I want to return something"))
    answer = text(await say("dave@example.com"))  # the return form asked for an order number
    assert "order number" in answer and "delivered" not in answer and "Everyday Hoodie" not in answer


async def test_a_sure_status_question_inside_the_return_form_is_answered(kx_shop: App, http: httpx.AsyncClient) -> None:
    """The status is shown (not read as the reason), then the form asks its question again."""
    say = customer(http, "kx-status-5")
    await say("I want to return the hoodie from order KX-20417")
    assert "reason" in text(await say("alice@example.com"))
    status = text(await say("what's the status of my order?"))
    assert "KX-20417" in status and "delivered" in status, status
    shown, _, reminder = status.partition("Back to your request:")
    assert "reason" not in shown and "reason" in reminder, status
    assert "refund" in text(await say("it never arrived"))  # a reason, not a status question
