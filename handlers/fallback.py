"""Misunderstood messages: rephrase help first, then after N in a row offer a human."""

from __future__ import annotations

from handlers.context import Turn
from knowledge.additions import known_question


async def fallback(turn: Turn) -> None:
    entry = known_question(turn.services.faq.faq, turn.msg.text)
    if entry is not None:
        # One of the FAQ's questions word for word (an admin may have just added it from the
        # missed list): answered, whatever the intent classifier made of it.
        turn.state.misunderstood = 0
        turn.say_text(entry.answer_for(turn.lang))
        return
    turn.missed = "fallback"
    turn.state.misunderstood += 1
    if turn.state.misunderstood >= turn.services.policy.fallback_after:
        turn.say(
            "fallback_offer_human",
            buttons=(turn.button("button_human", "/human_handoff"), turn.button("button_no_thanks", "/deny")),
        )
        return
    turn.say(
        "fallback",
        buttons=(
            turn.button("button_products", "/ask_product"),
            turn.button("button_return", "/request_return"),
            turn.button("button_status", "/ticket_status"),
            turn.button("button_human", "/human_handoff"),
        ),
    )


async def smalltalk(turn: Turn) -> None:
    """Greetings and courtesies; affirm/deny/cancel outside any form."""
    intent = turn.prediction.intent
    key = {
        "greet": "greet",
        "goodbye": "goodbye",
        "thanks": "thanks",
        "affirm": "affirm_nothing",
        "deny": "deny_nothing",
        "cancel": "cancel_nothing",
    }[intent]
    turn.say(key)


ROUTES = {name: smalltalk for name in ("greet", "goodbye", "thanks", "affirm", "deny", "cancel")}
