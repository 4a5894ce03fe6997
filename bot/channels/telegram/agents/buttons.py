"""The card's buttons: Claim and Resolve, pressed by an agent in the group."""

from __future__ import annotations

from typing import Any

from bot.channels.telegram.agents import cards
from bot.channels.telegram.agents.answers import friendly
from bot.channels.telegram.agents.chat import GroupChat
from bot.channels.telegram.agents.members import AgentCheck
from common.errors import DeskbotError
from desk.agent_desk import AgentDesk


class CardButtons:
    def __init__(self, chat: GroupChat, desk: AgentDesk, agents: AgentCheck) -> None:
        self.chat = chat
        self.desk = desk
        self.agents = agents

    async def press(self, query: dict[str, Any]) -> None:
        """Do what the button says, for a registered agent; the answer shows on the button."""
        query_id = str(query.get("id", ""))
        sender = query.get("from") or {}
        parsed = cards.parse_callback(query.get("data"))
        if parsed is None or not isinstance(sender, dict) or "id" not in sender:
            await self.chat.answer_callback(query_id, "This button is not for me.")
            return
        action, number = parsed
        agent = await self.agents.authorized(int(sender["id"]))
        if agent is None:
            await self.chat.answer_callback(query_id, "⛔ Only registered agents can do that.")
            return
        try:
            if action == "claim":
                await self.desk.claim(number, agent.email)
                answer = f"{number} is yours."
            else:
                await self.desk.resolve(number, agent.email)
                answer = f"{number} resolved."
        except DeskbotError as exc:
            answer = friendly(exc, action)
        await self.chat.answer_callback(query_id, answer)
