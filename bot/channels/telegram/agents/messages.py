"""Agents' messages in the group: replies relayed to the customer, commands run on the ticket.

A linked agent's message in a ticket's topic, or a reply to the ticket's message, is an
``AgentDesk.reply`` — stored in the outbox and delivered on the customer's own channel
(Telegram, web chat, REST). A command (``commands.py``) is a desk call too. People who are
not registered agents are refused and change nothing. A command is recorded processed
before it runs; a reply carries its update on its row (``agents:{update_id}``), so its
transaction is the dedupe (``ledger.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.channels.telegram.agents.answers import friendly, refusal
from bot.channels.telegram.agents.chat import GroupChat
from bot.channels.telegram.agents.commands import COMMANDS, AgentCommand, parse_command, run_command
from bot.channels.telegram.agents.ledger import UpdateLedger, reply_key
from bot.channels.telegram.agents.members import AgentCheck
from bot.channels.telegram.agents.threads import TicketThreads
from common.errors import DeskbotError, DuplicateDelivery
from desk.agent_desk import AgentDesk
from storage.models import Agent

log = logging.getLogger("deskbot.telegram.agents")


def _human(message: dict[str, Any]) -> dict[str, Any] | None:
    """The sender of a message a person wrote (None for bots and anonymous posts)."""
    sender = message.get("from") or {}
    if not isinstance(sender, dict) or sender.get("is_bot") or "id" not in sender:
        return None
    return sender


class GroupMessages:
    def __init__(
        self, chat: GroupChat, desk: AgentDesk, threads: TicketThreads, agents: AgentCheck, ledger: UpdateLedger
    ) -> None:
        self.chat = chat
        self.desk = desk
        self.threads = threads
        self.agents = agents
        self.ledger = ledger

    async def on_message(self, message: dict[str, Any], update_id: int | None) -> None:
        sender = _human(message)
        if sender is None:
            return
        text = str(message.get("text") or message.get("caption") or "")
        command = parse_command(text, self.chat.username)
        number = await self.threads.ticket_for(message)
        if number is None:
            if command is not None and command.name in COMMANDS:
                await self.chat.answer(message, "Use commands in a ticket's topic, or as a reply to the ticket's "
                                                "message.")
            return
        agent = await self.agents.authorized(int(sender["id"]))
        if agent is None:
            await self.chat.answer(message, refusal(sender["id"]))
            return
        if command is not None:
            await self._run(message, number, command, agent, update_id)
        elif not text.strip():
            await self.chat.answer(message, "Only text reaches the customer from here; please type it.")
        else:
            await self._relay(message, number, text, agent, update_id)

    async def _run(
        self, message: dict[str, Any], number: str, command: AgentCommand, agent: Agent, update_id: int | None
    ) -> None:
        if not await self.ledger.first_time(update_id):
            log.info("duplicate agents' group command ignored", extra={"update_id": update_id})
            return
        try:
            answer = await run_command(self.desk, number, command, agent.email)
        except DeskbotError as exc:
            answer = f"⚠️ {friendly(exc, command.name)}"
        except BaseException:
            await self.ledger.forget(update_id)
            raise
        if answer:
            await self.chat.answer(message, answer)

    async def _relay(
        self, message: dict[str, Any], number: str, text: str, agent: Agent, update_id: int | None
    ) -> None:
        key = reply_key(update_id)
        try:
            await self.desk.reply(number, text, agent.email, delivery_key=key)
        except DuplicateDelivery:
            if key is None or not await self.ledger.reply_relayed(key):
                raise
            log.info("duplicate agents' group reply ignored", extra={"update_id": update_id})
        except DeskbotError as exc:
            await self.chat.answer(message, f"⚠️ Not sent: {friendly(exc, 'reply')}")

    async def on_edit(self, message: dict[str, Any]) -> None:
        """What was relayed cannot be changed at the customer's end: say so instead of
        letting the agent believe the correction arrived."""
        sender = _human(message)
        if sender is None:
            return
        if parse_command(str(message.get("text") or ""), self.chat.username) is not None:
            return
        if await self.threads.ticket_for(message) is None or await self.agents.authorized(int(sender["id"])) is None:
            return
        await self.chat.answer(message, "✏️ Edits do not reach the customer. Send the correction as a new message.")
