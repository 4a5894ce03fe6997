"""Who may act from the group: a registered, active agent who is (still) a member of it.

Registration is ``deskbot agents link-telegram``; membership is asked of Telegram
(``getChatMember``) and remembered for ``membership_ttl_seconds``, so someone removed from
the group stops being able to act within that time without a call per message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.channels.telegram.agents.chat import GroupChat
from storage import telegram_links
from storage.models import Agent
from storage.tickets import TicketStore

GROUP_MEMBER = ("creator", "administrator", "member", "restricted")


class AgentCheck:
    def __init__(
        self, chat: GroupChat, tickets: TicketStore, ttl_seconds: float, *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chat = chat
        self.tickets = tickets
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._members: dict[int, tuple[str, float]] = {}

    async def authorized(self, user_id: int) -> Agent | None:
        """The agent this Telegram user is, if they may act here; None otherwise."""
        async with self.tickets.session() as tx:
            agent = await telegram_links.agent_by_telegram_user(tx, user_id)
        if agent is None:
            return None
        cached = self._members.get(user_id)
        now = self._monotonic()
        if cached is None or cached[1] <= now:
            status = await self.chat.retry(
                lambda: self.chat.api.get_chat_member_status(self.chat.chat_id, user_id), "getChatMember"
            )
            cached = (status, now + self.ttl_seconds)
            self._members[user_id] = cached
        return agent if cached[0] in GROUP_MEMBER else None
