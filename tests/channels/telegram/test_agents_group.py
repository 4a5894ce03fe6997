"""The agents' group against an in-memory recording ``TelegramApi``, on both backend pairs.

Tickets are escalated through the real pipeline (``Chat``); what the group shows and what
agents do there is checked through the recorded Bot API calls and the ticket store.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.app import App, agents_desk
from bot.channels.telegram.agents.group import AgentsGroup, AgentsGroupSettings
from bot.channels.telegram.api import BadRequest
from bot.cli.agents_telegram import link_telegram
from common.errors import DuplicateDelivery
from storage.models import Author, Owner, Priority, TicketStatus
from storage.state import KeyBuilder, MemoryStateStore
from tests.channels.telegram.agents_support import (
    AGENTS_CHAT,
    VirtualTime,
    button_press,
    desk_app,
    eventually,
    group_message,
)
from tests.factories import Chat, add_orders, order
from tests.fakes.recording_api import RecordingTelegramApi

__all__ = ["desk_app"]

SAM, KIM, EVE = 501, 502, 503  # Sam and Kim are linked agents; Eve is a member who is not


def _number(text: str) -> str:
    found = re.search(r"T-\d{4,}", text)
    assert found, f"no ticket number in {text!r}"
    return found.group(0)


@pytest.fixture
def api() -> RecordingTelegramApi:
    members = {(AGENTS_CHAT, who): "member" for who in (SAM, KIM, EVE)}
    return RecordingTelegramApi(forums={AGENTS_CHAT}, members=members)


@pytest.fixture
async def group(desk_app: App, api: RecordingTelegramApi) -> AsyncIterator[AgentsGroup]:
    await link_telegram(desk_app.tickets, "sam@shop.example", str(SAM), name="Sam Agent")
    await link_telegram(desk_app.tickets, "kim@shop.example", str(KIM), name="Kim Agent")
    clock = VirtualTime()
    agents = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT, sla_check_seconds=3600),
                         sleep=clock.sleep, monotonic=clock.monotonic)
    await agents.start()
    yield agents
    await agents.close()


async def _ticket(app: App, number: str):  # type: ignore[no-untyped-def]
    async with app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number)
        events = await tx.ticket_events(ticket.id)
        messages = await tx.ticket_messages(ticket.id)
        return ticket, events, messages


async def _complaint(
    app: App, api: RecordingTelegramApi, group: AgentsGroup, user: str = "alice"
) -> tuple[Chat, str, int]:
    """A complaint about order A20005 posted in its own topic; returns the chat, number, thread."""
    chat = Chat(app, user)
    await chat.say("I have a complaint about order A20005, the jacket seams are broken. UNACCEPTABLE!!!")
    number = _number(chat.text)
    await eventually(lambda: any(number in name for name in api.topics.values()), f"topic for {number}")
    thread = next(t for t, name in api.topics.items() if number in name)
    await eventually(lambda: api.in_thread(thread) and not group.busy, "card in the topic, mapping stored")
    return chat, number, thread


async def test_a_complaint_gets_a_topic_with_a_pinned_card_and_buttons(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    big = [{"sku": "JK-001", "name": "Rain Jacket", "size": "M", "quantity": 3, "unit_price": 129.0}]
    await add_orders(desk_app, order("A20005", items=big))
    _, number, thread = await _complaint(desk_app, api, group)
    title = api.topics[thread]
    assert title.startswith("🔴 " + number) and "new" in title and "urgent" in title and "complaint" in title
    card = next(p for p in api.posted if p.thread_id == thread)
    assert (AGENTS_CHAT, card.message_id) in api.pinned
    assert "Order A20005" in card.text and "3 × Rain Jacket (M)" in card.text
    assert "jacket seams are broken" in card.text and "strong wording" in card.text  # form fields
    assert [t for t, _ in card.buttons[0]] == ["🙋 Claim", "✅ Resolve"]
    assert card.buttons[0][0][1] == f"dk:claim:{number}"
    assert api.count("createForumTopic") == 1
    assert api.in_thread(thread) == [card.text]  # the escalation's own events are on the card, not lines


async def test_claim_by_button_reply_in_topic_reaches_the_customer(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    chat, number, thread = await _complaint(desk_app, api, group)
    card = next(p for p in api.posted if p.thread_id == thread)

    await group.handle_update(button_press(SAM, f"dk:claim:{number}", card.message_id))
    assert api.answers[-1][1] == f"{number} is yours."
    await eventually(lambda: "claimed by Sam Agent" in " ".join(api.in_thread(thread)), "claim line")
    await eventually(lambda: "Claim" not in str(card.buttons), "card without Claim")
    await eventually(lambda: "· open ·" in api.topics[thread], "topic renamed to open")
    assert "assignee: Sam Agent" in card.text

    assert await group.handle_update(group_message(SAM, "Hello Alice, I am sorry. A new jacket is on its way.",
                                                   thread_id=thread))
    assert await chat.inbox() == ["Hello Alice, I am sorry. A new jacket is on its way."]
    ticket, _, _ = await _ticket(desk_app, number)
    assert ticket.customer.owner == Owner.AGENT and ticket.first_response_at is not None

    await chat.say("Thank you! When will it arrive?")
    await eventually(lambda: any("When will it arrive?" in t for t in api.in_thread(thread)), "customer line")
    assert not any("A new jacket is on its way" in t for t in api.in_thread(thread))  # not echoed back


async def test_notes_priority_hand_back_and_resolve_from_the_topic(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    chat, number, thread = await _complaint(desk_app, api, group, "bella")
    await group.handle_update(group_message(SAM, "Hi, Sam here, looking into it.", thread_id=thread))
    assert len(await chat.inbox()) == 1

    await group.handle_update(group_message(SAM, "/note she complained last month too", thread_id=thread))
    await eventually(lambda: any("she complained last month" in t for t in api.in_thread(thread)), "note line")
    assert await chat.inbox() == []  # a note is never sent
    _, events, messages = await _ticket(desk_app, number)
    assert [e.data["text"] for e in events if e.kind == "note"] == ["she complained last month too"]
    assert not any("complained last month" in m.text for m in messages)

    await group.handle_update(group_message(SAM, "/priority@deskbot_test_bot low", thread_id=thread))
    await eventually(lambda: "· low ·" in api.topics[thread], "topic renamed to low priority")
    ticket, _, _ = await _ticket(desk_app, number)
    assert ticket.priority == Priority.LOW

    await group.handle_update(group_message(SAM, "/priority LOW", thread_id=thread))
    assert any(p.text == f"{number} is already low priority." for p in api.posted)
    await group.handle_update(group_message(SAM, "/whatever", thread_id=thread))
    assert any(p.text.startswith("Commands in a ticket's topic:") and "/note" in p.text for p in api.posted)
    await group.handle_update(group_message(SAM, "/priority asap", thread_id=thread))
    assert any("choose one of low, normal, high, urgent" in p.text for p in api.posted)

    await group.handle_update(group_message(SAM, "/bot", thread_id=thread))
    ticket, _, _ = await _ticket(desk_app, number)
    assert ticket.customer.owner == Owner.BOT and ticket.status == TicketStatus.PENDING
    await eventually(lambda: any("handed back to the bot by Sam Agent" in t for t in api.in_thread(thread)),
                     "hand-back line")

    await chat.say("I want to talk to a human please")  # the same ticket is queued again
    await eventually(lambda: any(f"{number} is waiting for an agent again" in t for t in api.in_thread(thread)),
                     "re-escalation line")

    await group.handle_update(group_message(SAM, "/resolve", thread_id=thread))
    ticket, _, _ = await _ticket(desk_app, number)
    assert ticket.status == TicketStatus.RESOLVED
    card = next(p for p in api.posted if p.thread_id == thread)
    await eventually(lambda: card.buttons == [], "card without buttons once resolved")
    await group.handle_update(group_message(SAM, "/resolve", thread_id=thread))
    assert any(p.text == "⚠️ It is resolved already." for p in api.posted)


async def test_people_who_are_not_linked_agents_are_refused(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    chat, number, thread = await _complaint(desk_app, api, group, "carla")
    card = next(p for p in api.posted if p.thread_id == thread)
    before = len(api.posted)

    await group.handle_update(button_press(EVE, f"dk:claim:{number}", card.message_id))
    assert api.answers[-1][1] == "⛔ Only registered agents can do that."
    await group.handle_update(group_message(EVE, "I can help you!", thread_id=thread))
    await group.handle_update(group_message(EVE, "/resolve", thread_id=thread))
    refusals = [p.text for p in api.posted[before:]]
    assert len(refusals) == 2 and all("link-telegram EMAIL 503" in t for t in refusals)

    # a linked agent who has left the group cannot act either
    api.members[(AGENTS_CHAT, KIM)] = "left"
    await group.handle_update(button_press(KIM, f"dk:resolve:{number}", card.message_id))
    assert api.answers[-1][1] == "⛔ Only registered agents can do that."

    ticket, events, _ = await _ticket(desk_app, number)
    assert await chat.inbox() == []
    assert ticket.status == TicketStatus.NEW and ticket.assignee_id is None
    assert not {"claimed", "agent_reply", "resolved"} & {e.kind for e in events}


async def test_a_claim_on_someone_elses_ticket_is_answered_not_applied(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    _, number, thread = await _complaint(desk_app, api, group, "dora")
    card = next(p for p in api.posted if p.thread_id == thread)
    await group.handle_update(button_press(SAM, f"dk:claim:{number}", card.message_id))
    await group.handle_update(button_press(KIM, f"dk:claim:{number}", card.message_id))
    assert api.answers[-1][1] == "Someone else has claimed it already."
    ticket, _, _ = await _ticket(desk_app, number)
    assert ticket.assignee is not None and ticket.assignee.email == "sam@shop.example"


async def test_updates_from_other_chats_are_left_to_the_customer_channel(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    assert not await group.handle_update(group_message(SAM, "hello", chat_id=4242))
    assert not await group.handle_update(button_press(SAM, "dk:claim:T-1001", 1, chat_id=4242))
    assert not await group.handle_update({"update_id": 1, "poll": {}})
    # chatter in the group's general topic is not a reply to anything: ignored silently
    assert await group.handle_update(group_message(SAM, "coffee anyone?"))
    assert api.count("sendMessage") == 0


async def test_without_topics_tickets_are_messages_and_replies_are_relayed(
    desk_app: App, api: RecordingTelegramApi
) -> None:
    api.forums.clear()
    await link_telegram(desk_app.tickets, "sam@shop.example", str(SAM), name="Sam Agent")
    api.members[(AGENTS_CHAT, SAM)] = "administrator"
    clock = VirtualTime()
    agents = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT), sleep=clock.sleep,
                         monotonic=clock.monotonic)
    await agents.start()
    try:
        chat = Chat(desk_app, "erin")
        await chat.say("I want to talk to a human please")
        number = _number(chat.text)
        await eventually(lambda: any(number in p.text for p in api.posted), "ticket message")
        ticket_message = next(p for p in api.posted if number in p.text)
        assert ticket_message.thread_id is None and api.count("createForumTopic") == 0
        assert [t for t, _ in ticket_message.buttons[0]] == ["🙋 Claim", "✅ Resolve"]

        await chat.say("my parcel is lost")
        await eventually(lambda: any("my parcel is lost" in p.text for p in api.posted), "customer line")
        line = next(p for p in api.posted if "my parcel is lost" in p.text)
        assert line.reply_to == ticket_message.message_id

        reply_to_card = {"message_id": ticket_message.message_id, "date": 1, "chat": {"id": AGENTS_CHAT,
                         "type": "supergroup"}, "from": {"id": 999, "is_bot": True, "first_name": "deskbot"}}
        await agents.handle_update(group_message(SAM, "Hi Erin, checking now.", reply_to=reply_to_card))
        # a reply to the customer's line (not the card) finds the ticket by the number in it
        reply_to_line = {**reply_to_card, "message_id": line.message_id, "text": line.text}
        await agents.handle_update(group_message(SAM, "Found it: it's in Utrecht.", reply_to=reply_to_line))
        assert await chat.inbox() == ["Hi Erin, checking now.", "Found it: it's in Utrecht."]
    finally:
        await agents.close()


async def test_no_right_to_create_topics_falls_back_to_a_message(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    api.fail("createForumTopic", BadRequest("Bad Request: not enough rights to create a topic"))
    chat = Chat(desk_app, "fred")
    await chat.say("I want to talk to a human please")
    number = _number(chat.text)
    await eventually(lambda: any(number in p.text for p in api.posted), "ticket message")
    assert next(p for p in api.posted if number in p.text).thread_id is None


async def test_the_mapping_survives_a_restart(desk_app: App, api: RecordingTelegramApi, group: AgentsGroup) -> None:
    chat, number, thread = await _complaint(desk_app, api, group, "gina")
    await group.close()
    clock = VirtualTime()
    again = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT), sleep=clock.sleep, monotonic=clock.monotonic)
    await again.start()
    try:
        await again.handle_update(group_message(SAM, "Hello after the restart", thread_id=thread))
        assert await chat.inbox() == ["Hello after the restart"]
        await again.handle_update(group_message(SAM, "/priority high", thread_id=thread))
        await eventually(lambda: "· high ·" in api.topics[thread], "same topic renamed")
        assert api.count("createForumTopic") == 1
    finally:
        await again.close()


async def test_tickets_escalated_while_the_group_was_down_are_posted_at_start(
    desk_app: App, api: RecordingTelegramApi
) -> None:
    chat = Chat(desk_app, "hugo")
    await chat.say("I want to talk to a human please")
    number = _number(chat.text)
    await Chat(desk_app, "ines").say("What is your return policy?")  # not escalated: not posted
    clock = VirtualTime()
    agents = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT), sleep=clock.sleep,
                         monotonic=clock.monotonic)
    await agents.start()
    try:
        await eventually(lambda: len(api.topics) == 1 and not agents.busy, "the missed ticket posted")
        assert number in next(iter(api.topics.values()))
    finally:
        await agents.close()
    again = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT), sleep=clock.sleep,
                        monotonic=clock.monotonic)
    await again.start()  # already posted: not posted twice
    await again.close()
    assert api.count("createForumTopic") == 1


async def test_replies_made_elsewhere_show_in_the_topic_and_group_replies_do_not_echo(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    chat, number, thread = await _complaint(desk_app, api, group, "ivy")
    await desk_app.desk.reply(number, "Answered from the terminal.", "sam@shop.example")
    await eventually(lambda: any("Answered from the terminal." in t for t in api.in_thread(thread)), "CLI reply")
    assert "Sam Agent" in next(t for t in api.in_thread(thread) if "Answered from the terminal." in t)
    await group.handle_update(group_message(SAM, "Answered from Telegram.", thread_id=thread))
    await desk_app.desk.add_note(number, "marker after the Telegram reply", "sam@shop.example")
    await eventually(lambda: any("marker after" in t for t in api.in_thread(thread)), "note after the reply")
    assert not any("Answered from Telegram." in t for t in api.in_thread(thread))
    assert await chat.inbox() == ["Answered from the terminal.", "Answered from Telegram."]


async def test_the_same_update_twice_relays_once(desk_app: App, api: RecordingTelegramApi, group: AgentsGroup) -> None:
    chat, _, thread = await _complaint(desk_app, api, group, "jane")
    update = group_message(SAM, "Only once, please.", thread_id=thread)
    assert await group.handle_update(update)
    assert await group.handle_update(update)  # a webhook retry / re-fetched batch
    assert await chat.inbox() == ["Only once, please."]
    assert not [p.text for p in api.posted if p.text.startswith("⚠️")]  # nor is the agent told it failed


async def test_a_reply_the_store_finds_stored_already_is_not_relayed_again(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store names the duplicate (``DuplicateDelivery``): ignored when the update's reply is
    stored; otherwise a failure the agent is told about, not a silent loss."""
    chat, _, thread = await _complaint(desk_app, api, group, "jill")
    update = group_message(SAM, "Just the once.", thread_id=thread)
    assert await group.handle_update(update)

    async def stored_already(*args: object, **kwargs: object) -> None:
        raise DuplicateDelivery("delivery stored already")

    monkeypatch.setattr(desk_app.desk, "reply", stored_already)
    assert await group.handle_update(update)
    assert await chat.inbox() == ["Just the once."]
    assert not [p.text for p in api.posted if p.text.startswith("⚠️")]

    assert await group.handle_update(group_message(SAM, "Never stored.", thread_id=thread))
    assert [p.text for p in api.posted if p.text.startswith("⚠️")] == [
        "⚠️ That did not work (internal error). Nothing was sent."
    ]


async def test_an_edited_reply_is_not_resent_and_the_agent_is_told(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    chat, _, thread = await _complaint(desk_app, api, group, "kate")
    sent = group_message(SAM, "Your refund is 10 EUR.", thread_id=thread)
    await group.handle_update(sent)
    edited = {"update_id": sent["update_id"] + 10_000,
              "edited_message": {**sent["message"], "text": "Your refund is 100 EUR.", "edit_date": 1}}
    assert await group.handle_update(edited)
    assert await chat.inbox() == ["Your refund is 10 EUR."]
    notice = [p for p in api.posted if p.text.startswith("✏️ Edits do not reach the customer")]
    assert len(notice) == 1 and notice[0].reply_to == sent["message"]["message_id"]


async def test_a_card_that_failed_is_posted_later_in_the_same_topic(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    # refused for the ticket's two escalation events (created, owner_changed → queued)
    api.fail("sendMessage", lambda: BadRequest("Bad Request: can't parse entities"), times=2)
    chat = Chat(desk_app, "liam")
    await chat.say("I want to talk to a human please")
    number = _number(chat.text)
    await eventually(lambda: len(api.topics) == 1 and api.count("sendMessage") == 2 and not group.busy,
                     "topic made, card refused")
    thread = next(iter(api.topics))
    assert api.in_thread(thread) == []
    await chat.say("hello? anyone there?")
    await eventually(lambda: len(api.in_thread(thread)) == 2, "card, then the customer's line")
    card, line = api.in_thread(thread)
    assert f"<b>{number}</b>" in card and "hello? anyone there?" in line
    assert api.count("createForumTopic") == 1


async def test_an_update_redelivered_after_a_restart_acts_once(
    desk_app: App, api: RecordingTelegramApi, group: AgentsGroup
) -> None:
    """Defect 4: the dedupe is the database's, not a memory that a restart forgets."""
    chat, number, thread = await _complaint(desk_app, api, group, "lena")
    reply = group_message(SAM, "Sorted, a new one is on its way.", thread_id=thread)
    note = group_message(SAM, "/note checked the warehouse", thread_id=thread)
    assert await group.handle_update(reply) and await group.handle_update(note)
    await group.close()
    desk_app.state = MemoryStateStore(KeyBuilder("restarted"))  # the process's memory is gone
    clock = VirtualTime()
    again = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT), sleep=clock.sleep, monotonic=clock.monotonic)
    await again.start()
    try:
        assert await again.handle_update(reply)  # Telegram redelivers the unconfirmed batch
        assert await again.handle_update(note)
    finally:
        await again.close()
    assert await chat.inbox() == ["Sorted, a new one is on its way."]
    _, events, messages = await _ticket(desk_app, number)
    assert len([m for m in messages if m.author == Author.AGENT]) == 1
    assert len([e for e in events if e.kind == "note"]) == 1
