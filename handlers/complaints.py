"""Complaints become a ticket of kind complaint, prioritised, and queued for a human.

Priority rises one level for each signal: strong wording, a repeat complaint within the
configured window, a high-value order. The customer is told the number and a due time
computed from the SLA in business hours.
"""

from __future__ import annotations

import re
from datetime import timedelta

from handlers.context import Turn
from handlers.handoff import escalate
from storage.models import Priority, TicketKind

LEVELS = (Priority.NORMAL, Priority.HIGH, Priority.URGENT)
STRONG_WORDS = re.compile(
    r"unacceptable|disgust|scam|fraud|lawyer|sue\b|court|worst|furious|ridiculous|terrible|"
    r"never again|rip ?off|outrage|police|consumer protection|chargeback|"
    r"垃圾|骗子|欺诈|律师|起诉|法院|投诉到|消协|315|太差|恶心|气死|坑人|差评|报警",
    re.I,
)


def strong_wording(text: str) -> bool:
    """Anger signals: strong words, shouting in capitals, or piled-up exclamation marks."""
    if STRONG_WORDS.search(text):
        return True
    letters = [c for c in text if c.isalpha() and c.isascii()]
    if len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.6:
        return True
    return text.count("!") + text.count("！") >= 3


async def complaint_priority(turn: Turn) -> tuple[Priority, list[str]]:
    signals: list[str] = []
    if strong_wording(turn.msg.text):
        signals.append("strong wording")
    policy = turn.services.policy
    since = turn.now() - timedelta(days=policy.complaint_repeat_days)
    if await turn.tx.count_tickets_since(turn.customer.id, TicketKind.COMPLAINT, since) > 0:
        signals.append("repeat complaint")
    order_id = _order_id(turn)
    if order_id:
        order = await turn.tx.get_order(order_id)
        if order is not None and order.total >= policy.high_value_order:
            signals.append("high-value order")
    return LEVELS[min(len(signals), len(LEVELS) - 1)], signals


def _order_id(turn: Turn) -> str | None:
    """The order the complaint names, as the shop spells it."""
    raw = turn.prediction.entity("order_id")
    return turn.services.shop.order_ids.canonical(raw) if raw else None


async def complaint(turn: Turn) -> None:
    priority, signals = await complaint_priority(turn)
    order_id = _order_id(turn)
    ticket = await escalate(
        turn,
        kind=TicketKind.COMPLAINT,
        subject=turn.msg.text[:120],
        reason="complaint" + (f" ({', '.join(signals)})" if signals else ""),
        priority=priority,
        order_id=order_id,
        fields={"complaint": turn.msg.text[:2000], "signals": signals},
    )
    due = turn.services.policy.calendar.due_params(ticket.first_response_due)  # with the shop's time zone
    turn.say("complaint_opened", number=ticket.number, priority=turn.t(f"priority_{ticket.priority.value}"), **due)


ROUTES = {"complaint": complaint}
