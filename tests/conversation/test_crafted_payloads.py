"""Button payloads typed by hand get a polite answer, never a crash (issue 11, defect 8).

Any customer can send ``/choose{"resolution": "bogus"}`` instead of pressing a button. Each
case here crashed a turn before (an apology and an ERROR with a traceback in the log) or
failed on PostgreSQL only (an intent over VARCHAR(64)). Through the real pipeline on
SQLite + memory and PostgreSQL + Redis.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot.app import App
from storage.models import Direction, Message
from tests.factories import Chat, add_orders, order

APOLOGY = "something went wrong"


def no_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def stored_intents(app: App, chat: Chat) -> list[str | None]:
    async with app.tickets.session() as tx:
        customer = await tx.find_customer(chat.channel, chat.user)
        assert customer is not None
        rows = await tx.db.execute(
            select(Message.intent).where(Message.customer_id == customer.id, Message.direction == Direction.INBOUND)
            .order_by(Message.id)
        )
        return list(rows.scalars())


async def test_an_unknown_resolution_asks_the_question_again(app: App, caplog: pytest.LogCaptureFixture) -> None:
    await add_orders(app, order("A20001"))
    chat = Chat(app, "alice")
    await chat.say("I want to return something")
    await chat.say("A20001")
    await chat.say("alice@example.com")
    await chat.say("it is too small")
    question = chat.text
    assert [b.payload for r in chat.last for b in r.buttons] == [
        '/choose{"resolution": "refund"}', '/choose{"resolution": "exchange"}'
    ]
    for crafted in ('/choose{"resolution": "bogus"}', '/choose{"resolution": ["refund"]}',
                    '/choose{"resolution": "\\ud800"}', '/choose{"resolution": ' + "9" * 5000 + "}"):
        await chat.press(crafted)
        assert chat.last[-1].text == question, crafted  # the same question (after "we seem stuck" once)
        assert APOLOGY not in chat.text.lower()
    await chat.press_title("Refund")
    assert "Order: A20001" in chat.text
    assert no_errors(caplog) == []


@pytest.mark.parametrize(
    "payload",
    [
        '/ticket_status{"ticket": "T-²"}',
        '/choose{"\\u0000": "\\u0000", "size": "\\ud800"}',
        "/greet{" + '"a": ' * 1 + '"' + "x" * 5000 + '"}',
    ],
)
async def test_crafted_slot_values_get_a_normal_answer(app: App, caplog: pytest.LogCaptureFixture, payload: str) -> None:
    chat = Chat(app, "bob")
    await chat.press(payload)
    assert chat.last and APOLOGY not in chat.text.lower()
    assert no_errors(caplog) == []


async def test_a_rating_score_that_only_looks_like_a_digit(app: App, caplog: pytest.LogCaptureFixture) -> None:
    chat = Chat(app, "dora")
    await chat.press("/human_handoff")
    await app.desk.resolve("T-1001")
    await chat.press('/rate{"ticket": "T-1001", "score": "²"}')  # str.isdigit says yes, int() says no
    assert chat.last and APOLOGY not in chat.text.lower()
    await chat.press('/rate{"ticket": "T-1001", "score": 4}')
    assert "4" in chat.text
    assert no_errors(caplog) == []


async def test_unknown_and_overlong_intents_are_out_of_scope(app: App, caplog: pytest.LogCaptureFixture) -> None:
    """Not a new label in the analytics, and nothing PostgreSQL's VARCHAR(64) refuses."""
    chat = Chat(app, "carol")
    await chat.press("/" + "x" * 65)
    await chat.press("/no_such_intent")
    await chat.press("/greet")
    assert await stored_intents(app, chat) == ["out_of_scope", "out_of_scope", "greet"]
    assert no_errors(caplog) == []
