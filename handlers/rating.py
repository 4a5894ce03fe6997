"""Customer satisfaction: a 1–5 rating after resolution, then an optional comment."""

from __future__ import annotations

from common.messages import Button
from handlers.context import Turn
from storage.models import Ticket, TicketStatus, parse_ticket_number


def rating_buttons(ticket: Ticket) -> tuple[Button, ...]:
    stars = ("1 ★", "2 ★★", "3 ★★★", "4 ★★★★", "5 ★★★★★")
    return tuple(
        Button(label, f'/rate{{"ticket": "{ticket.number}", "score": {i + 1}}}') for i, label in enumerate(stars)
    )


async def rate(turn: Turn) -> None:
    number = turn.prediction.entity("ticket") or ""
    score_raw = turn.prediction.entity("score") or ""
    ticket_id = parse_ticket_number(number)
    ticket = await turn.tx.get_ticket(ticket_id) if ticket_id else None
    if (
        ticket is None
        or ticket.customer_id != turn.customer.id
        or not (score_raw.isascii() and score_raw.isdigit())  # "²" is a digit int() refuses
        or not 1 <= int(score_raw) <= 5
    ):
        turn.say("rating_invalid")
        return
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        turn.say("rating_not_resolved", number=ticket.number)
        return
    first = ticket.rating is None
    ticket.rating = int(score_raw)
    await turn.tx.add_event(ticket, "customer", "rated", {"score": ticket.rating})
    turn.ticket_id = ticket.id
    turn.state.awaiting_comment_for = ticket.id
    turn.say("rating_thanks" if first else "rating_updated", score=ticket.rating)


async def rating_comment(turn: Turn) -> bool:
    """If a rating just happened, the next free text is its comment. True when consumed."""
    ticket_id = turn.state.awaiting_comment_for
    turn.state.awaiting_comment_for = None
    if ticket_id is None or turn.msg.payload or turn.prediction.intent not in ("out_of_scope", "thanks", "complaint"):
        return False
    ticket = await turn.tx.get_ticket(ticket_id)
    if ticket is None or not turn.msg.text.strip():
        return False
    ticket.rating_comment = turn.msg.text.strip()[:2000]
    await turn.tx.add_event(ticket, "customer", "rating_comment", {})
    turn.ticket_id = ticket.id
    turn.say("rating_comment_thanks")
    return True


ROUTES = {"rate": rate}
