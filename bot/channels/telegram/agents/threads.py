"""Which ticket a message in the group is about: its topic, or the ticket message it replies to.

In a forum the topic says it. In a group without topics the ticket's message is the root
of a reply thread, and a reply to one of the bot's lines finds the ticket by the number the
line mentions.
"""

from __future__ import annotations

from typing import Any

from bot.channels.telegram.agents import cards
from bot.channels.telegram.agents.chat import GroupChat
from storage import telegram_links
from storage.tickets import TicketStore


class TicketThreads:
    def __init__(self, chat: GroupChat, tickets: TicketStore) -> None:
        self.chat = chat
        self.tickets = tickets

    async def ticket_for(self, message: dict[str, Any]) -> str | None:
        """The number of the ticket ``message`` is about; None when it is about none."""
        chat_id = self.chat.chat_id
        async with self.tickets.session() as tx:
            link = None
            thread_id = message.get("message_thread_id")
            if isinstance(thread_id, int):
                link = await telegram_links.by_thread(tx, chat_id, thread_id)
                if link is None:  # groups without topics: a reply thread's root is the ticket message
                    link = await telegram_links.by_message(tx, chat_id, thread_id)
            replied = message.get("reply_to_message")
            if link is None and isinstance(replied, dict) and isinstance(replied.get("message_id"), int):
                link = await telegram_links.by_message(tx, chat_id, replied["message_id"])
                if link is None and (replied.get("from") or {}).get("id") == self.chat.bot_id:
                    return cards.mentioned_number(replied.get("text"))
            if link is None:
                return None
            ticket = await tx.get_ticket(link.ticket_id)
            return ticket.number if ticket else None
