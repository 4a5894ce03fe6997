"""What agents see in the group: titles, cards, buttons, command parsing — no Telegram needed."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.channels.telegram.agents.cards import (
    MAX_CARD_CHARS,
    card_buttons,
    card_text,
    mentioned_number,
    parse_callback,
    topic_title,
)
from bot.channels.telegram.agents.commands import AgentCommand, parse_command
from storage.models import Customer, Order, Owner, Priority, Ticket, TicketKind, TicketStatus


def _ticket(**overrides: object) -> Ticket:
    customer = Customer(id=7, display_name="Zoë <script>", language="en", owner=Owner.QUEUED, last_channel="web")
    values: dict[str, object] = {
        "id": 42, "kind": TicketKind.COMPLAINT, "status": TicketStatus.NEW, "priority": Priority.HIGH,
        "subject": "Parcel & box <crushed>", "fields": {"complaint": "It arrived crushed", "signals": ["x"]},
        "customer": customer, "customer_id": 7, "channel": "web", "assignee": None, "assignee_id": None,
        "escalation_reason": "complaint (strong wording)", "order_id": None,
        "first_response_due": datetime(2026, 11, 24, 9, 0, tzinfo=UTC), "resolution_due": None,
        "first_response_at": None, "resolved_at": None, "rating": None,
    }
    values.update(overrides)
    return Ticket(**values)


def _utc(moment: datetime) -> datetime:
    return moment


def test_title_carries_number_status_and_priority_within_telegrams_limit() -> None:
    title = topic_title(_ticket(subject="x" * 500))
    assert title.startswith("🟠 T-1042 · new · high · complaint: ")
    assert len(title) <= 128


def test_the_card_escapes_customer_text_and_fits_one_message() -> None:
    order = Order(order_id="A1", status="delivered", total=387.0, currency="EUR", delivered_at=None,
                  items=[{"name": f"Item {i} <b>", "size": "M", "quantity": 1} for i in range(20)])
    huge_fields = {f"field{i}": "<&>" * 300 for i in range(20)}
    text = card_text(_ticket(fields=huge_fields, order_id="A1", subject="<" * 300), order, _utc)
    assert len(text) <= MAX_CARD_CHARS
    assert "<script>" not in text and "Zoë &lt;script&gt;" in text
    assert "… (more on the ticket)" in text
    small = card_text(_ticket(order_id="A1"), order, _utc)
    assert "Order A1" in small and "1 × Item 0 &lt;b&gt; (M)" in small
    assert "It arrived crushed" in small and "Parcel &amp; box &lt;crushed&gt;" in small
    assert "First response due: 2026-11-24 09:00" in small
    for card in (text, small):  # the only markup is the card's own bold
        assert "<" not in card.replace("<b>", "").replace("</b>", "")


def test_buttons_follow_the_tickets_state() -> None:
    assert [b.text for b in card_buttons(_ticket())[0]] == ["🙋 Claim", "✅ Resolve"]
    owned = _ticket(assignee_id=3)
    owned.customer.owner = Owner.AGENT
    assert [b.text for b in card_buttons(owned)[0]] == ["✅ Resolve"]
    assert card_buttons(_ticket(status=TicketStatus.RESOLVED)) == []
    assert all(len(b.callback_data.encode()) <= 64 for b in card_buttons(_ticket(id=10**9))[0])


def test_forged_or_foreign_callback_data_is_not_parsed() -> None:
    assert parse_callback("dk:claim:T-1042") == ("claim", "T-1042")
    for bad in (None, "", "dk:delete:T-1042", "dk:claim:T-1042:x", "dk:claim:1042", "/rate{}", "dk:claim:T-1"):
        assert parse_callback(bad) is None


def test_commands_are_parsed_with_or_without_the_bots_name() -> None:
    assert parse_command("/priority@deskbot_test_bot high", "deskbot_test_bot") == AgentCommand("priority", "high")
    assert parse_command("/note\nline one\nline two", "bot") == AgentCommand("note", "line one\nline two")
    assert parse_command("/resolve@other_bot", "deskbot_test_bot") is None
    assert parse_command("hello /bot", "deskbot_test_bot") is None
    assert parse_command("/", "deskbot_test_bot") is None
    assert mentioned_number("👤 Ann · T-1042:\nhi") == "T-1042" and mentioned_number(None) is None


def test_the_group_is_configured_from_channels_telegram() -> None:
    from pathlib import Path

    from bot.channels.telegram.agents.group import AgentsGroupSettings
    from bot.config import load_settings

    config = Path(__file__).resolve().parents[3] / "config.yaml"
    off = load_settings(config, environ={})
    assert AgentsGroupSettings.from_config(off.channels.telegram) is None
    on = load_settings(config, environ={
        "DESKBOT_CHANNELS__TELEGRAM__AGENTS_CHAT_ID": "-1001234",
        "DESKBOT_CHANNELS__TELEGRAM__AGENTS_USE_TOPICS": "no",  # YAML's boolean, mapped back
        "DESKBOT_CHANNELS__TELEGRAM__SLA_WARN_MINUTES": "45",
    })
    group = AgentsGroupSettings.from_config(on.channels.telegram)
    assert group is not None
    assert (group.chat_id, group.use_topics, group.sla_warn_minutes, group.topics_per_minute) == (-1001234, "no", 45, 20)


def test_a_customer_line_lists_files_with_their_download_route() -> None:
    from bot.channels.telegram.agents.cards import customer_line

    line = customer_line("T-1042", "Ann <x>", "", [{"kind": "photo", "file_id": "AgAD<1>", "name": None},
                                                   {"kind": "document", "file_id": "", "name": "ignored"}, "junk"])
    assert line == "👤 <b>Ann &lt;x&gt;</b> · T-1042:\n📎 photo — <code>/telegram/files/AgAD&lt;1&gt;</code>"
    assert customer_line("T-1042", "Ann", "hi") == "👤 <b>Ann</b> · T-1042:\nhi"
