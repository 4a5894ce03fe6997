"""What the agents' group shows for a ticket: topic title, pinned card, buttons, one-line updates.

Pure functions of the ticket (HTML, the port's parse mode), so what agents see is tested
without Telegram and stays the same whichever library sends it. Every customer-supplied
string is escaped and cut: a card must never fail to send because a complaint was long
or contained ``<``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any

from bot.channels.telegram.api import InlineButton, InlineKeyboard
from storage.events import BusEvent
from storage.models import Order, Owner, Ticket

CALLBACK_PREFIX = "dk"
ACTIONS = ("claim", "resolve")
MAX_TITLE_CHARS = 128  # Telegram's limit for a topic name
MAX_FIELD_CHARS = 300
MAX_FIELDS = 20
MAX_LINE_TEXT = 3000
MAX_CARD_CHARS = 4000  # under Telegram's 4096 per message, with room for the escaping margin
OMITTED = "… (more on the ticket)"
PRIORITY_MARKS = {"urgent": "🔴", "high": "🟠", "normal": "🟢", "low": "⚪"}
TICKET_NUMBER = re.compile(r"\bT-\d{4,}\b")

Localize = Callable[[datetime], datetime]


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def topic_title(ticket: Ticket) -> str:
    """``🟠 T-1001 · open · high · complaint: parcel damaged`` (number, status, priority first)."""
    mark = PRIORITY_MARKS.get(ticket.priority.value, "")
    head = f"{mark} {ticket.number} · {ticket.status.value} · {ticket.priority.value} · {ticket.kind.value}"
    return _cut(f"{head}: {ticket.subject}", MAX_TITLE_CHARS)


def _when(moment: datetime | None, local: Localize) -> str:
    return local(moment).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return "-" if value is None or value == "" else str(value)


def _order_lines(order: Order) -> list[str]:
    lines = [
        f"<b>Order {escape(order.order_id)}</b> · {escape(order.status)} · {order.total:.2f} {escape(order.currency)}"
    ]
    if order.delivered_at is not None:
        lines.append(f"delivered {order.delivered_at:%Y-%m-%d}")
    for item in order.items[:MAX_FIELDS]:
        size = f" ({item['size']})" if item.get("size") else ""
        name = _cut(str(item.get("name") or item.get("sku") or "?"), 80)
        lines.append(f"• {int(item.get('quantity', 1))} × {escape(name)}{escape(size)}")
    return lines


def card_text(ticket: Ticket, order: Order | None, local: Localize, customer_channel: str | None = None) -> str:
    """The pinned card: who, what, when due, the form fields and the order — edited on change."""
    customer = ticket.customer
    assignee = ticket.assignee.name if ticket.assignee is not None else "nobody"
    name = customer.display_name or f"customer #{customer.id}"
    lines = [
        f"{PRIORITY_MARKS.get(ticket.priority.value, '')} <b>{ticket.number}</b> · {ticket.kind.value} · "
        f"priority <b>{ticket.priority.value}</b>",
        f"Status: <b>{ticket.status.value}</b> · conversation: {customer.owner.value} · assignee: {escape(assignee)}",
        f"Customer: {escape(_cut(name, 80))} via {escape(customer_channel or ticket.channel)} · "
        f"language {escape(customer.language)}",
        f"First response due: {_when(ticket.first_response_due, local)}"
        + (" (answered)" if ticket.first_response_at else ""),
        f"Resolution due: {_when(ticket.resolution_due, local)}",
    ]
    if ticket.escalation_reason:
        lines.append(f"Reason: {escape(_cut(ticket.escalation_reason, MAX_FIELD_CHARS))}")
    lines += ["", f"<b>{escape(_cut(ticket.subject, MAX_FIELD_CHARS))}</b>"]
    if not ticket.is_open:
        rated = f" · rated {ticket.rating}/5" if ticket.rating else ""
        lines += ["", f"Closed {_when(ticket.resolved_at, local)}{rated}"]
    fields = [
        f"• {escape(_cut(str(key), 40))}: {escape(_cut(_value(value), MAX_FIELD_CHARS))}"
        for key, value in list((ticket.fields or {}).items())[:MAX_FIELDS]
    ]
    if order is not None:
        order_lines = _order_lines(order)
    elif ticket.order_id:
        order_lines = [f"Order {escape(ticket.order_id)}: not found in the shop's orders"]
    else:
        order_lines = []
    # The head always fits; form fields, then the order, take what room is left.
    budget = MAX_CARD_CHARS - len("\n".join(lines))
    for title, block in (("<b>Form</b>", fields), (None, order_lines)):
        if not block:
            continue
        shown = [""] + ([title] if title else [])
        for line in block:
            if len("\n".join(shown + [line])) + len(OMITTED) + 1 > budget:
                shown.append(OMITTED)
                break
            shown.append(line)
        budget -= len("\n".join(shown)) + 1
        lines += shown
    return "\n".join(lines)


def callback_data(action: str, number: str) -> str:
    return f"{CALLBACK_PREFIX}:{action}:{number}"


def parse_callback(data: str | None) -> tuple[str, str] | None:
    """``dk:claim:T-1001`` → ("claim", "T-1001"); anything else → None."""
    parts = (data or "").split(":")
    if len(parts) != 3 or parts[0] != CALLBACK_PREFIX or parts[1] not in ACTIONS:
        return None
    if not TICKET_NUMBER.fullmatch(parts[2]):
        return None
    return parts[1], parts[2]


def card_buttons(ticket: Ticket) -> InlineKeyboard:
    if not ticket.is_open:
        return []
    row: list[InlineButton] = []
    if ticket.customer.owner != Owner.AGENT or ticket.assignee_id is None:
        row.append(InlineButton("🙋 Claim", callback_data("claim", ticket.number)))
    row.append(InlineButton("✅ Resolve", callback_data("resolve", ticket.number)))
    return [row]


def digest(text: str, buttons: InlineKeyboard) -> str:
    """What is on screen, in 64 hex characters: an unchanged card is not edited again."""
    flat = "|".join(f"{b.text}={b.callback_data}" for row in buttons for b in row)
    return hashlib.sha256(f"{text}\x00{flat}".encode()).hexdigest()


def customer_line(number: str, name: str, text: str, attachments: list[Any] | None = None) -> str:
    """The customer's message in the topic; files are listed with where agents can open them."""
    lines = [f"👤 <b>{escape(_cut(name, 60))}</b> · {number}:"]
    if text.strip():
        lines.append(escape(text[:MAX_LINE_TEXT]))
    for item in (attachments or [])[:MAX_FIELDS]:
        if not isinstance(item, dict) or not item.get("file_id"):
            continue
        label = _cut(str(item.get("name") or item.get("kind") or "file"), 80)
        file_id = _cut(str(item["file_id"]), 200)
        lines.append(f"📎 {escape(label)} — <code>/telegram/files/{escape(file_id)}</code>")
    return "\n".join(lines)


def agent_reply_line(number: str, agent_name: str, text: str) -> str:
    return f"💬 <b>{escape(_cut(agent_name, 60))}</b> → customer · {number}:\n{escape(text[:MAX_LINE_TEXT])}"


def event_line(event: BusEvent, actor_name: str) -> str | None:
    """One line for the topic about a change made anywhere (Telegram, web, CLI); None: not shown."""
    number, data, who = event.ticket_number or "", event.data, escape(_cut(actor_name, 60))
    if event.kind == "claimed":
        return f"🙋 {number} claimed by {who}"
    if event.kind == "resolved":
        return f"✅ {number} resolved by {who}"
    if event.kind == "owner_changed" and data.get("to") == "bot" and data.get("reason") == "handed back":
        return f"🤖 {number} handed back to the bot by {who}"
    if event.kind == "owner_changed" and data.get("reason") == "customer cancelled":
        return f"🚪 The customer left the queue ({number})"
    if event.kind == "priority_changed":
        return f"↕️ {number} priority {escape(str(data.get('from')))} → <b>{escape(str(data.get('to')))}</b> by {who}"
    if event.kind == "note":
        return f"📝 Note by {who} (not sent to the customer):\n{escape(str(data.get('text', ''))[:MAX_LINE_TEXT])}"
    if event.kind == "rated":
        return f"⭐ The customer rated {number}: {escape(str(data.get('score')))}/5"
    if event.kind == "delivery_failed":
        return f"⚠️ A reply on {number} could not be delivered: {escape(_cut(str(data.get('error', '')), 200))}"
    if event.kind == "reopened":
        return f"🔁 {number} reopened"
    if event.kind == "assigned":
        return f"👉 {number} assigned to {escape(_cut(str(data.get('agent', '')), 60))} by {who}"
    return None


def sla_line(number: str, target: str, level: str, due: datetime | None, local: Localize) -> str:
    what = "first response" if target == "first_response" else "resolution"
    if level == "breached":
        return f"🚨 SLA breached: {number} {what} was due {_when(due, local)}"
    return f"⏰ SLA near breach: {number} {what} due {_when(due, local)}"


def mentioned_number(text: str | None) -> str | None:
    """The first ticket number in a message the bot posted (replies in groups without topics)."""
    found = TICKET_NUMBER.search(text or "")
    return found.group(0) if found else None
