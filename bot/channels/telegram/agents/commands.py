"""Commands agents type in a ticket's topic (or in a reply to the ticket's message).

Each command is one ``AgentDesk`` call, so Telegram, the CLI and the dashboard change
tickets the same way and write the same events. A command that worked answers nothing
here: the event it wrote comes back through the bus and is shown as a line in the topic,
whichever tool made the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from desk.agent_desk import AgentDesk
from storage.models import Priority

COMMANDS: dict[str, str] = {
    "claim": "take the ticket",
    "bot": "hand the conversation back to the bot",
    "resolve": "resolve the ticket (the customer is asked for a rating)",
    "priority": "/priority " + "|".join(p.value for p in Priority),
    "note": "/note text — an internal note, never sent to the customer",
    "help": "this list",
}


@dataclass(frozen=True, slots=True)
class AgentCommand:
    name: str
    argument: str


def parse_command(text: str | None, bot_username: str | None) -> AgentCommand | None:
    """``/priority@deskbot high`` → AgentCommand("priority", "high"); None for plain text
    or a command addressed to another bot in the group."""
    text = (text or "").strip()
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, rest = text.partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = f"{more} {rest}".strip()
    name, _, addressee = head[1:].partition("@")
    if addressee and (bot_username is None or addressee.lower() != bot_username.lower()):
        return None
    return AgentCommand(name.lower(), rest.strip())


def help_text() -> str:
    return "Commands in a ticket's topic:\n" + "\n".join(f"/{name} — {what}" for name, what in COMMANDS.items())


async def run_command(desk: AgentDesk, number: str, command: AgentCommand, agent_email: str) -> str | None:
    """Apply the command to ticket ``number``; returns a reply for the agent, or None when the
    resulting event says it. DeskbotError (invalid transition, bad priority) propagates."""
    actions: dict[str, Callable[[], Awaitable[object]]] = {
        "claim": lambda: desk.claim(number, agent_email),
        "bot": lambda: desk.hand_back(number, agent_email),
        "resolve": lambda: desk.resolve(number, agent_email),
    }
    if command.name in actions:
        await actions[command.name]()
        return None
    if command.name == "priority":
        if not command.argument:
            return f"Usage: {COMMANDS['priority']}"
        wanted = command.argument.split()[0].lower()
        async with desk.tickets.session() as tx:
            current = (await tx.ticket_by_number(number)).priority.value
        if wanted == current:
            return f"{number} is already {current} priority."
        await desk.set_priority(number, wanted, agent_email)
        return None
    if command.name == "note":
        if not command.argument:
            return "Usage: /note text"
        await desk.add_note(number, command.argument, agent_email)
        return None
    return help_text()
