"""What agents are told when the group refuses them or an action cannot be done."""

from __future__ import annotations

from common.errors import DeskbotError
from handlers.handoff import InvalidTransition
from storage.models import Owner


def refusal(user_id: int | str) -> str:
    return (
        "⛔ Only registered agents can work on tickets here. An admin can link your account with "
        f"`deskbot agents link-telegram EMAIL {user_id}`."
    )


def friendly(exc: DeskbotError, action: str) -> str:
    """The desk's refusal in an agent's words: who has the ticket, rather than the state machine's."""
    if isinstance(exc, InvalidTransition):
        if action == "claim":
            return "Someone else has claimed it already." if exc.current == Owner.AGENT else "It cannot be claimed now."
        if action == "resolve":
            return "It is resolved already."
        if action == "bot":
            return "The bot has the conversation already."
    return str(exc)
