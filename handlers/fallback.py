"""Misunderstood messages: rephrase help first, then after N in a row offer a human."""

from __future__ import annotations

import re

from handlers.context import Turn
from handlers.presale import SURE_INTENT, faq_search_hit, follow_up
from knowledge.additions import known_question

QUESTION = re.compile(
    r"[?？]|[吗呢么哪几]|什么|多少|怎么|是否|有没有|能不能|可不可以|"
    r"^\s*(?:do|does|did|is|are|can|could|will|would|how|what|when|where|which|who|why)\b",
    re.IGNORECASE,
)


def answer_from_faq(turn: Turn, *, confident: bool = False) -> bool:
    """Answer from the FAQ when its search finds an entry (``confident``: clearly).

    The intent model knows customers' intents, not this shop's FAQ: a question it cannot
    place, or reads as small talk ("周末有客服吗？" as a greeting, "I want to cancel my
    purchase" outside any form), may still be one the shop answered.
    """
    entry = faq_search_hit(turn, turn.msg.text, confident=confident)
    if entry is None:
        return False
    turn.state.misunderstood = 0
    turn.say_text(entry.answer_for(turn.lang))
    return True


async def fallback(turn: Turn) -> None:
    entry = known_question(turn.services.faq.faq, turn.msg.text)
    if entry is not None:
        # One of the FAQ's questions word for word (an admin may have just added it from the
        # missed list): answered, whatever the intent classifier made of it.
        turn.state.misunderstood = 0
        turn.say_text(entry.answer_for(turn.lang))
        return
    if turn.msg.text.strip() and (await follow_up(turn) or answer_from_faq(turn)):
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
    """Greetings and courtesies; affirm/deny/cancel outside any form.

    A question, or a cancel/yes/no outside any form, that the FAQ answers confidently gets
    that answer instead: "I want to cancel my purchase" is about the shop's cancellation rule.
    """
    intent = turn.prediction.intent
    courtesy = intent in ("greet", "goodbye", "thanks")
    unsure = turn.prediction.confidence < SURE_INTENT  # "下错单了" read as a goodbye at 0.4
    if (not courtesy or unsure or QUESTION.search(turn.msg.text)) and answer_from_faq(turn, confident=True):
        return
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
