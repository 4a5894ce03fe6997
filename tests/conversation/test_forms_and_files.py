"""A status request inside a form, and a photo with a caption as a first message, through
the real pipeline on SQLite + memory and PostgreSQL + Redis."""

from __future__ import annotations

from itertools import count
from typing import Any

from bot.app import App
from bot.channels.telegram.updates import MediaPolicy, parse_update
from common.messages import Incoming, Outgoing
from storage.models import TicketKind
from tests.factories import Chat, add_orders, order

_updates = count(1)


def _telegram(user: int, **message: Any) -> Incoming:
    """A private Telegram message as the adapter parses it (``/status`` → payload, caption → text)."""
    raw = {
        "update_id": next(_updates),
        "message": {
            "message_id": 1, "date": 0, "chat": {"id": user, "type": "private"},
            "from": {"id": user, "is_bot": False, "first_name": "Pat"}, **message,
        },
    }
    parsed = parse_update(raw, media=MediaPolicy(), bot_username="deskbot_bot")
    assert parsed.incoming is not None, parsed.ignored
    return parsed.incoming


def _texts(out: list[Outgoing]) -> str:
    return "\n".join(o.text for o in out)


async def _into_the_email_step(app: App, chat: Chat) -> None:
    await chat.say("I want to return something")
    await chat.say("A20001")
    assert "e-mail" in chat.text


async def test_status_typed_inside_a_return_form_shows_the_status_and_keeps_the_form(app: App) -> None:
    """Item 10: ``/status`` typed on the web chat or REST during the return form was read as
    a failed answer and the e-mail was asked for again."""
    await add_orders(app, order("A20001"))
    chat = Chat(app, "alice")
    await _into_the_email_step(app, chat)
    await chat.say("/status")
    assert "You have no tickets with us." in chat.text
    assert "e-mail" in chat.last[-1].text  # then the form's question again
    # The form is where it was: the e-mail is the answer to it.
    await chat.say("alice@example.com")
    assert "reason" in chat.text


async def test_status_command_inside_a_return_form_keeps_the_form(app: App) -> None:
    """Telegram's ``/status`` (a payload) left the return form for good."""
    await add_orders(app, order("A20001"))
    chat = Chat(app, "bea")
    await _into_the_email_step(app, chat)
    await chat.press("/ticket_status")
    assert "You have no tickets with us." in chat.text and "e-mail" in chat.last[-1].text
    await chat.say("alice@example.com")
    assert "reason" in chat.text


async def test_telegram_status_command_inside_a_return_form(app: App) -> None:
    await add_orders(app, order("A20001"))
    user = 7001
    await app.pipeline.handle(_telegram(user, text="I want to return something"))
    out = await app.pipeline.handle(_telegram(user, text="A20001"))
    assert "e-mail" in _texts(out)
    out = await app.pipeline.handle(_telegram(user, text="/status"))
    assert "You have no tickets with us." in _texts(out) and "e-mail" in out[-1].text


PHOTO = [
    {"file_id": "small-1", "file_unique_id": "s1", "width": 90, "height": 90, "file_size": 1000},
    {"file_id": "large-1", "file_unique_id": "l1", "width": 1280, "height": 1280, "file_size": 90000},
]


async def _events(app: App, number: str) -> list[tuple[str, dict[str, Any]]]:
    async with app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number)
        assert ticket is not None
        return [(e.kind, dict(e.data)) for e in await tx.ticket_events(ticket.id)]


async def test_photo_with_a_caption_as_a_first_message_goes_to_the_ticket_it_opens(app: App) -> None:
    """Item 10: the caption was answered, but the photo got "send the file again" although
    the caption's complaint opened a ticket in the same turn."""
    out = await app.pipeline.handle(
        _telegram(7002, photo=PHOTO, caption="The mug arrived broken, this is unacceptable!")
    )
    text = _texts(out)
    assert "Which request is it about" not in text
    assert "complaint" in text
    async with app.tickets.session() as tx:
        customer = await tx.find_customer("telegram", "7002")
        assert customer is not None
        (ticket,) = await tx.open_tickets(customer.id)
        events = [(e.kind, dict(e.data)) for e in await tx.ticket_events(ticket.id)]
    assert ticket.kind == TicketKind.COMPLAINT
    assert ("attachment", {"files": [{"kind": "photo", "file_id": "large-1", "size": 90000,
                                      "mime_type": "image/jpeg"}]}) in events
    assert f"photo to ticket {ticket.number}" in text


async def test_photo_with_a_caption_that_starts_a_return_goes_with_the_return(app: App) -> None:
    await add_orders(app, order("A20001", email="pat@example.com"))
    user = 7003
    out = await app.pipeline.handle(_telegram(user, photo=PHOTO, caption="I want to return this"))
    assert "Which request is it about" not in _texts(out) and "order number" in _texts(out)
    for answer in ("A20001", "pat@example.com", "it is too small"):
        out = await app.pipeline.handle(_telegram(user, text=answer))
    assert "Refund" in [b.title for o in out for b in o.buttons]
    await app.pipeline.handle(_telegram(user, text="refund"))
    out = await app.pipeline.handle(_telegram(user, text="yes"))
    async with app.tickets.session() as tx:
        customer = await tx.find_customer("telegram", str(user))
        assert customer is not None
        (ticket,) = await tx.open_tickets(customer.id)
    assert ticket.kind == TicketKind.RETURN
    assert [f["file_id"] for f in ticket.fields["attachments"]] == ["large-1"]


async def test_photo_with_a_greeting_is_kept_for_the_request_that_follows(app: App) -> None:
    user = 7004
    out = await app.pipeline.handle(_telegram(user, photo=PHOTO, caption="hello"))
    assert "kept your photo" in _texts(out) and "Which request is it about" not in _texts(out)
    out = await app.pipeline.handle(_telegram(user, text="I want to talk to a human"))
    async with app.tickets.session() as tx:
        customer = await tx.find_customer("telegram", str(user))
        assert customer is not None
        (ticket,) = await tx.open_tickets(customer.id)
        kinds = [e.kind for e in await tx.ticket_events(ticket.id)]
    assert "attachment" in kinds
