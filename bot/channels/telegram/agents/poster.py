"""Events → the group: each escalated ticket's card, in its own topic, kept up to date.

Every escalated ticket (``created`` for handoff and complaint tickets, ``owner_changed`` to
``queued`` for any other, ``CATCH_UP`` at start-up) gets its own forum topic — or, in a
group without topics, a message — carrying a card with the summary, the form fields, the
order and Claim / Resolve buttons. Later events of the ticket become lines under it
(``lines.py``), and the topic title and the pinned card are edited in place when what they
show changed. The ticket ↔ topic mapping is stored (``TelegramTicketLink``): a restart
keeps working on the same topics, and a reservation makes sure a ticket is posted once even
with several posters.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.channels.telegram.agents import cards
from bot.channels.telegram.agents.catch_up import CATCH_UP
from bot.channels.telegram.agents.chat import GroupChat
from bot.channels.telegram.agents.lines import line_for
from bot.channels.telegram.agents.setup import AgentsGroupSettings, DeskAccess
from bot.channels.telegram.agents.topics import TopicCreator
from bot.channels.telegram.api import BadRequest, Forbidden, InlineKeyboard
from common.errors import DeskbotError
from storage import telegram_links
from storage.events import BusEvent
from storage.models import Owner, Ticket, TicketKind
from storage.tickets import TicketSession

log = logging.getLogger("deskbot.telegram.agents")

POSTED_KINDS = (TicketKind.HANDOFF.value, TicketKind.COMPLAINT.value)
# Event kinds whose effect the card shows (status, owner, assignee, priority).
CARD_KINDS = frozenset(
    {"created", "owner_changed", "claimed", "assigned", "priority_changed", "status_changed", "resolved", "reopened"}
)


class CardPoster:
    def __init__(
        self, chat: GroupChat, desk: DeskAccess, settings: AgentsGroupSettings, topics: TopicCreator
    ) -> None:
        self.chat = chat
        self.tickets = desk.tickets
        self.settings = settings
        self.topics = topics
        self._local = desk.local
        self._forum: bool | None = None

    async def on_event(self, event: BusEvent) -> None:
        assert event.ticket_id is not None
        if event.kind == "sla_alert":
            await self._post_sla(event)
            return
        async with self.tickets.session() as tx:
            link = await telegram_links.get(tx, event.ticket_id)
        if link is None or link.card_message_id is None:
            escalated = (
                (event.kind == "created" and event.data.get("kind") in POSTED_KINDS)
                or (event.kind == "owner_changed" and event.data.get("to") == Owner.QUEUED.value)
                or event.kind == CATCH_UP
            )
            if link is None and not escalated:
                return  # not (yet) a ticket for the agents' group
            if link is not None and link.thread_id is None:
                return  # reserved by a posting in progress
            # New, or a topic whose card failed earlier: (finish) posting it, then this event's line.
            await self.post_ticket(event.ticket_id, None if link is None else link.thread_id)
            if escalated:
                return  # the card shows it
            async with self.tickets.session() as tx:
                link = await telegram_links.get(tx, event.ticket_id)
            if link is None or link.card_message_id is None:
                return
        # A state change older than the posting (the escalation's own owner_changed, say) is on
        # the card already; messages and notes are not, so they are always shown.
        stale = event.kind in CARD_KINDS and event.at is not None and event.at < link.created_at
        if not stale:
            async with self.tickets.session() as tx:
                line = await line_for(tx, event)
            if line:
                await self.chat.say(link.thread_id, link.ticket_message_id, line)
        await self.refresh(event.ticket_id)

    async def _render(self, tx: TicketSession, ticket_id: int) -> tuple[Ticket, str, InlineKeyboard, str]:
        ticket = await tx.get_ticket(ticket_id)
        if ticket is None:
            raise DeskbotError(f"ticket id {ticket_id} vanished")
        order = await tx.get_order(ticket.order_id) if ticket.order_id else None
        text = cards.card_text(ticket, order, self._local, ticket.customer.last_channel)
        return ticket, text, cards.card_buttons(ticket), cards.topic_title(ticket)

    async def post_ticket(self, ticket_id: int, topic: int | None = None) -> None:
        """Post the card (in a new topic, or in ``topic`` made earlier whose card failed)."""
        chat_id = self.chat.chat_id
        async with self.tickets.session() as tx:
            if topic is None and not await telegram_links.reserve(tx, ticket_id, chat_id):
                return  # posted (or being posted) already
            ticket, text, buttons, title = await self._render(tx, ticket_id)
        thread_id = topic
        try:
            if thread_id is None and await self._use_topics():
                thread_id = await self._new_topic(title, ticket.number)
                if thread_id is not None:  # remembered at once: a failed card is retried in this topic
                    async with self.tickets.session() as tx:
                        await telegram_links.set_topic(tx, ticket_id, thread_id, title)
            sent = await self.chat.post(
                lambda: self.chat.api.send_message(chat_id, text, reply_markup=buttons, message_thread_id=thread_id),
            )
        except BaseException:
            if thread_id is None:
                async with self.tickets.session() as tx:
                    await telegram_links.release(tx, ticket_id)
            raise
        if thread_id is not None:
            try:
                await self.chat.retry(lambda: self.chat.api.pin_chat_message(chat_id, sent.message_id),
                                      "pinChatMessage")
            except (BadRequest, Forbidden) as exc:  # the bot may lack the pin right; the card still works
                log.warning("card not pinned", extra={"ticket": ticket.number, "error": str(exc)})
        async with self.tickets.session() as tx:
            posted = await telegram_links.card_posted(
                tx, ticket_id, thread_id, sent.message_id, title if thread_id is not None else None,
                cards.digest(text, buttons),
            )
        assert posted, f"ticket id {ticket_id}: its reservation vanished while its card was posted"
        log.info("ticket posted to the agents' group", extra={"ticket": ticket.number, "topic": thread_id})
        await self.refresh(ticket_id)  # the ticket may have changed while its topic was queued

    async def _new_topic(self, title: str, number: str) -> int | None:
        try:
            return await self.topics.create(title)
        except (BadRequest, Forbidden) as exc:
            # Topics switched off, or no "manage topics" right: a plain message still reaches agents.
            log.warning("no topic for the ticket; posting a message", extra={"ticket": number, "error": str(exc)})
            return None

    async def _use_topics(self) -> bool:
        if self.settings.use_topics != "auto":
            return self.settings.use_topics == "yes"
        if self._forum is None:
            chat = await self.chat.retry(lambda: self.chat.api.get_chat(self.chat.chat_id), "getChat")
            self._forum = chat.is_forum
        return self._forum

    async def refresh(self, ticket_id: int) -> None:
        """Rename the topic and edit the card when what they show changed."""
        chat_id = self.chat.chat_id
        async with self.tickets.session() as tx:
            link = await telegram_links.get(tx, ticket_id)
            if link is None or link.card_message_id is None:
                return
            ticket, text, buttons, title = await self._render(tx, ticket_id)
            thread_id, card_id, shown_title, shown_digest = (
                link.thread_id, link.card_message_id, link.title, link.card_digest
            )
        new_digest = cards.digest(text, buttons)
        if thread_id is not None and title != shown_title:
            try:
                await self.chat.retry(lambda: self.chat.api.edit_forum_topic(chat_id, thread_id, title),
                                      "editForumTopic")
            except BadRequest as exc:
                if "NOT_MODIFIED" not in str(exc).upper():
                    log.warning("topic not renamed", extra={"ticket": ticket.number, "error": str(exc)})
        if new_digest != shown_digest:
            try:
                await self.chat.retry(
                    lambda: self.chat.api.edit_message_text(chat_id, card_id, text, reply_markup=buttons),
                    "editMessageText",
                )
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    log.warning("card not edited", extra={"ticket": ticket.number, "error": str(exc)})
        async with self.tickets.session() as tx:
            await telegram_links.card_shown(tx, ticket_id, title if thread_id is not None else None, new_digest)

    async def _post_sla(self, event: BusEvent) -> None:
        due_raw = event.data.get("due")
        due = datetime.fromisoformat(due_raw) if isinstance(due_raw, str) else None
        text = cards.sla_line(event.ticket_number or "", str(event.data.get("target")),
                              str(event.data.get("level")), due, self._local)
        async with self.tickets.session() as tx:
            link = await telegram_links.get(tx, event.ticket_id or 0)
        if link is not None and link.card_message_id is not None:
            await self.chat.say(link.thread_id, link.ticket_message_id, text)
        else:
            await self.chat.say(None, None, text)
