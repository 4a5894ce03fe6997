"""The agents' group on Telegram: escalated tickets posted there, worked from there.

Two flows meet here:

- **Out** (event bus → group): every escalated ticket (``created`` for handoff and
  complaint tickets, ``owner_changed`` to ``queued`` for any other) gets its own forum topic
  — or, in a group without topics, a message — carrying a card with the summary, the form
  fields, the order and Claim / Resolve buttons. Later events of the ticket (customer
  messages, claims, notes, priority, SLA alerts) become lines in that topic, and the topic
  title and the pinned card are edited in place. Events are handled one ticket at a time,
  in order ("lanes"), so a customer message never overtakes the card it belongs under,
  while a ticket waiting for its rate-limited topic does not hold up the others.
- **In** (group → desk): a linked agent's message in a ticket's topic, or a reply to the
  ticket's message, is an ``AgentDesk.reply`` — stored in the outbox and delivered on the
  customer's own channel (Telegram, web chat, REST). Commands and buttons are desk calls too.
  People who are not registered agents (``deskbot agents link-telegram``) are refused and
  change nothing.

The ticket ↔ topic mapping is stored (``TelegramTicketLink``), so a restart keeps working
on the same topics. An update Telegram delivers again (a webhook retry, a restart before the
offset was confirmed) is acted on once, through the database whatever the state backend:
a relayed reply's row carries ``delivery_key = agents:{update_id}`` (unique per channel), so
the redelivery's transaction fails as a duplicate; any other action (commands, claims,
buttons) first records ``ProcessedUpdate("agents", update_id)``, released if it fails.

Run one agents' group consumer per deployment (the polling process, or
one chosen worker): every subscriber of the bus would otherwise post the same lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.channels.telegram import cards
from bot.channels.telegram.agent_commands import COMMANDS, parse_command, run_command
from bot.channels.telegram.api import BadRequest, BotUser, Forbidden, InlineKeyboard, TelegramApi, TelegramError
from bot.channels.telegram.topics import Sleep, TopicCreator, call_with_retry
from common.errors import DeskbotError
from desk.sla_alerts import SlaWatch
from handlers.handoff import InvalidTransition
from storage import telegram_links
from storage.events import BusEvent
from storage.models import Agent, Message, Owner, ProcessedUpdate, Ticket, TicketKind, utcnow
from storage.tickets import TicketSession

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("deskbot.telegram.agents")

T = TypeVar("T")
POSTED_KINDS = (TicketKind.HANDOFF.value, TicketKind.COMPLAINT.value)
GROUP_MEMBER = ("creator", "administrator", "member", "restricted")
MAX_CALLBACK_ANSWER = 200
DEDUPE_SOURCE = "agents"  # ProcessedUpdate.source of the agents' group's updates
REPLY_KEY_PREFIX = "agents:"  # Message.delivery_key of a reply typed in the group
CATCH_UP = "telegram_catch_up"
# Event kinds whose effect the card shows (status, owner, assignee, priority).
CARD_KINDS = frozenset(
    {"created", "owner_changed", "claimed", "assigned", "priority_changed", "status_changed", "resolved", "reopened"}
)  # internal: post a ticket found unposted at start-up


@dataclass(frozen=True, slots=True)
class AgentsGroupSettings:
    chat_id: int
    use_topics: Literal["auto", "yes", "no"] = "auto"
    topics_per_minute: int = 20
    sla_check_seconds: float = 60.0
    sla_warn_minutes: int = 30
    membership_ttl_seconds: float = 300.0

    @classmethod
    def from_config(cls, telegram: Any) -> AgentsGroupSettings | None:
        """From ``settings.channels.telegram``; None when no agents' group is configured."""
        chat_id = getattr(telegram, "agents_chat_id", None)
        if chat_id is None:
            return None
        return cls(
            chat_id=int(chat_id),
            use_topics=getattr(telegram, "agents_use_topics", "auto"),
            topics_per_minute=int(getattr(telegram, "topics_per_minute", 20)),
            sla_check_seconds=float(getattr(telegram, "sla_check_seconds", 60.0)),
            sla_warn_minutes=int(getattr(telegram, "sla_warn_minutes", 30)),
        )


def refusal(user_id: int | str) -> str:
    return (
        "⛔ Only registered agents can work on tickets here. An admin can link your account with "
        f"`deskbot agents link-telegram EMAIL {user_id}`."
    )


class AgentsGroup:
    def __init__(
        self,
        api: TelegramApi,
        app: App,
        settings: AgentsGroupSettings,
        *,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.app = app
        self.settings = settings
        self.chat_id = settings.chat_id
        self._sleep = sleep
        self._monotonic = monotonic
        self._local = app.services.policy.calendar.local
        self.topics = TopicCreator(api, settings.chat_id, settings.topics_per_minute, clock=monotonic, sleep=sleep)
        self.sla = SlaWatch(app.tickets, settings.sla_warn_minutes, clock=app.services.clock)
        self._me: BotUser | None = None
        self._forum: bool | None = None
        self._members: dict[int, tuple[str, float]] = {}
        self._lanes: dict[int, deque[BusEvent]] = {}
        self._lane_tasks: dict[int, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to the bus (events from now on are posted) and start the SLA watch."""
        self._me = await self._retry(self.api.get_me, "getMe")
        subscribed = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._consume(subscribed), name="telegram-agents-events"))
        self._tasks.append(asyncio.create_task(self._watch_sla(), name="telegram-agents-sla"))
        self.topics.start()
        await subscribed.wait()
        await self._catch_up()

    async def _catch_up(self) -> None:
        """Post the escalated tickets that never made it to the group (see ``unposted_handoffs``)."""
        async with self.app.tickets.session() as tx:
            missing = await telegram_links.unposted_handoffs(tx)
        for ticket_id, number in missing:
            self._dispatch(BusEvent(kind=CATCH_UP, ticket_id=ticket_id, ticket_number=number, actor="deskbot"))

    async def close(self) -> None:
        for task in [*self._tasks, *self._lane_tasks.values()]:
            task.cancel()
        for task in [*self._tasks, *self._lane_tasks.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.topics.close()

    @property
    def busy(self) -> bool:
        """Events still being posted (tests and shutdown wait for this to clear)."""
        return bool(self._lane_tasks) or self.topics.waiting > 0

    async def _consume(self, subscribed: asyncio.Event) -> None:
        async with self.app.bus.subscribe() as events:
            subscribed.set()
            async for event in events:
                self._dispatch(event)

    async def _watch_sla(self) -> None:
        while True:
            try:
                await self.sla.check()
            except Exception:  # noqa: BLE001 - the watch must survive a failing round
                log.exception("SLA check failed")
            # Real time, not the injectable sleep: tests drive ``sla.check()`` themselves.
            await asyncio.sleep(self.settings.sla_check_seconds)

    # -- events → group --------------------------------------------------------------
    def _dispatch(self, event: BusEvent) -> None:
        if event.ticket_id is None:
            return
        lane = self._lanes.setdefault(event.ticket_id, deque())
        lane.append(event)
        if event.ticket_id not in self._lane_tasks:
            self._lane_tasks[event.ticket_id] = asyncio.create_task(self._run_lane(event.ticket_id))

    async def _run_lane(self, ticket_id: int) -> None:
        lane = self._lanes[ticket_id]
        try:
            while lane:
                event = lane.popleft()
                try:
                    await self._on_event(event)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one failed post must not stop the ticket's lane
                    log.exception("agents' group: event not posted",
                                  extra={"ticket": event.ticket_number, "kind": event.kind})
        finally:
            # No await between the emptiness check and these deletions: nothing can slip in.
            del self._lanes[ticket_id]
            del self._lane_tasks[ticket_id]

    async def _on_event(self, event: BusEvent) -> None:
        assert event.ticket_id is not None
        if event.kind == "sla_alert":
            await self._post_sla(event)
            return
        async with self.app.tickets.session() as tx:
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
            await self._post_ticket(event.ticket_id, None if link is None else link.thread_id)
            if escalated:
                return  # the card shows it
            async with self.app.tickets.session() as tx:
                link = await telegram_links.get(tx, event.ticket_id)
            if link is None or link.card_message_id is None:
                return
        # A state change older than the posting (the escalation's own owner_changed, say) is on
        # the card already; messages and notes are not, so they are always shown.
        stale = event.kind in CARD_KINDS and event.at is not None and event.at < link.created_at
        line = None if stale else await self._line_for(event)
        if line:
            await self._say(link.thread_id, link.ticket_message_id, line)
        await self._refresh(event.ticket_id)

    async def _render(self, tx: TicketSession, ticket_id: int) -> tuple[Ticket, str, InlineKeyboard, str]:
        ticket = await tx.get_ticket(ticket_id)
        if ticket is None:
            raise DeskbotError(f"ticket id {ticket_id} vanished")
        order = await tx.get_order(ticket.order_id) if ticket.order_id else None
        text = cards.card_text(ticket, order, self._local, ticket.customer.last_channel)
        return ticket, text, cards.card_buttons(ticket), cards.topic_title(ticket)

    async def _post_ticket(self, ticket_id: int, topic: int | None = None) -> None:
        """Post the card (in a new topic, or in ``topic`` made earlier whose card failed)."""
        async with self.app.tickets.session() as tx:
            if topic is None and not await telegram_links.reserve(tx, ticket_id, self.chat_id):
                return  # posted (or being posted) already
            ticket, text, buttons, title = await self._render(tx, ticket_id)
        thread_id = topic
        try:
            if thread_id is None and await self._use_topics():
                thread_id = await self._new_topic(title, ticket.number)
                if thread_id is not None:  # remembered at once: a failed card is retried in this topic
                    async with self.app.tickets.session() as tx:
                        await telegram_links.set_topic(tx, ticket_id, thread_id, title)
            sent = await self._retry(
                lambda: self.api.send_message(self.chat_id, text, reply_markup=buttons, message_thread_id=thread_id),
                "sendMessage",
            )
        except BaseException:
            if thread_id is None:
                async with self.app.tickets.session() as tx:
                    await telegram_links.release(tx, ticket_id)
            raise
        if thread_id is not None:
            try:
                await self._retry(lambda: self.api.pin_chat_message(self.chat_id, sent.message_id), "pinChatMessage")
            except (BadRequest, Forbidden) as exc:  # the bot may lack the pin right; the card still works
                log.warning("card not pinned", extra={"ticket": ticket.number, "error": str(exc)})
        async with self.app.tickets.session() as tx:
            link = await telegram_links.get(tx, ticket_id)
            assert link is not None
            link.thread_id = thread_id
            link.card_message_id = link.ticket_message_id = sent.message_id
            link.title = title if thread_id is not None else None
            link.card_digest = cards.digest(text, buttons)
        log.info("ticket posted to the agents' group", extra={"ticket": ticket.number, "topic": thread_id})
        await self._refresh(ticket_id)  # the ticket may have changed while its topic was queued

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
            chat = await self._retry(lambda: self.api.get_chat(self.chat_id), "getChat")
            self._forum = chat.is_forum
        return self._forum

    async def _refresh(self, ticket_id: int) -> None:
        """Rename the topic and edit the card when what they show changed."""
        async with self.app.tickets.session() as tx:
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
                await self._retry(lambda: self.api.edit_forum_topic(self.chat_id, thread_id, title), "editForumTopic")
            except BadRequest as exc:
                if "NOT_MODIFIED" not in str(exc).upper():
                    log.warning("topic not renamed", extra={"ticket": ticket.number, "error": str(exc)})
        if new_digest != shown_digest:
            try:
                await self._retry(
                    lambda: self.api.edit_message_text(self.chat_id, card_id, text, reply_markup=buttons),
                    "editMessageText",
                )
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    log.warning("card not edited", extra={"ticket": ticket.number, "error": str(exc)})
        async with self.app.tickets.session() as tx:
            link = await telegram_links.get(tx, ticket_id)
            if link is not None:
                link.title = title if thread_id is not None else None
                link.card_digest = new_digest

    async def _line_for(self, event: BusEvent) -> str | None:
        number = event.ticket_number or ""
        async with self.app.tickets.session() as tx:
            if event.kind == "customer_message":
                ticket = await tx.get_ticket(event.ticket_id or 0)
                name = (ticket.customer.display_name if ticket else None) or "Customer"
                files = event.data.get("attachments")
                return cards.customer_line(number, name, str(event.data.get("text") or ""),
                                           files if isinstance(files, list) else None)
            if event.kind == "agent_reply":
                message_id = event.data.get("message_id")
                replied = [m for m in await tx.ticket_messages(event.ticket_id or 0) if m.id == message_id]
                if not replied or (replied[0].delivery_key or "").startswith(REPLY_KEY_PREFIX):
                    return None  # gone, or typed in this group: already visible here
                return cards.agent_reply_line(number, await self._actor_name(tx, event.actor), replied[0].text)
            if event.kind == "owner_changed" and event.data.get("to") == Owner.QUEUED.value:
                return f"🔔 {number} is waiting for an agent again"
            return cards.event_line(event, await self._actor_name(tx, event.actor))

    @staticmethod
    async def _actor_name(tx: TicketSession, actor: str) -> str:
        if "@" in actor:
            agent = await tx.agent_by_email(actor)
            if agent is not None:
                return agent.name
        return actor

    async def _post_sla(self, event: BusEvent) -> None:
        due_raw = event.data.get("due")
        due = datetime.fromisoformat(due_raw) if isinstance(due_raw, str) else None
        text = cards.sla_line(event.ticket_number or "", str(event.data.get("target")),
                              str(event.data.get("level")), due, self._local)
        async with self.app.tickets.session() as tx:
            link = await telegram_links.get(tx, event.ticket_id or 0)
        if link is not None and link.card_message_id is not None:
            await self._say(link.thread_id, link.ticket_message_id, text)
        else:
            await self._say(None, None, text)

    async def _say(self, thread_id: int | None, ticket_message_id: int | None, text: str) -> None:
        reply_to = ticket_message_id if thread_id is None else None
        await self._retry(
            lambda: self.api.send_message(
                self.chat_id, text, message_thread_id=thread_id, reply_to_message_id=reply_to
            ),
            "sendMessage",
        )

    async def _retry(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await call_with_retry(call, sleep=self._sleep, attempts=5, what=what)

    # -- group → desk ----------------------------------------------------------------
    async def handle_update(self, update: dict[str, Any]) -> bool:
        """Handle an update from the agents' chat; False when it belongs to someone else.

        An update delivered twice (webhook retry, restart before the offset was confirmed)
        is acted on once: an agent's reply must not reach the customer twice.
        """
        work: Coroutine[Any, Any, None] | None = None
        reply_to: dict[str, Any] | None = None
        query = update.get("callback_query")
        if isinstance(query, dict):
            message = query.get("message")
            if not isinstance(message, dict) or _chat_id(message) != self.chat_id:
                return False
            work = self._on_callback(query)
        else:
            for key in ("message", "edited_message", "channel_post"):
                message = update.get(key)
                if isinstance(message, dict):
                    if _chat_id(message) != self.chat_id:
                        return False
                    if key == "message":
                        work, reply_to = self._on_message(message, None), message
                    elif key == "edited_message":
                        work = self._on_edit(message)
                    break
            else:
                return False
        if work is None:
            return True
        raw_id = update.get("update_id")
        update_id = raw_id if isinstance(raw_id, int) else None
        if reply_to is not None:
            work.close()  # a message decides itself how it is deduplicated (see _on_message)
            await self._guarded(self._on_message(reply_to, update_id), reply_to)
            return True
        if not await self._first_time(update_id):
            work.close()  # never started: no "coroutine was never awaited" warning
            log.info("duplicate agents' group update ignored", extra={"update_id": update_id})
            return True
        if not await self._guarded(work, reply_to):
            await self._forget(update_id)  # a retry may succeed
        return True

    async def _first_time(self, update_id: int | None) -> bool:
        """Record the update as processed; False when it was already (a redelivery)."""
        if update_id is None:
            return True
        try:
            async with self.app.tickets.session() as tx:
                tx.db.add(ProcessedUpdate(source=DEDUPE_SOURCE, key=str(update_id), created_at=utcnow()))
        except IntegrityError:
            return False
        return True

    async def _forget(self, update_id: int | None) -> None:
        if update_id is None:
            return
        try:
            async with self.app.tickets.session() as tx:
                await tx.db.execute(
                    delete(ProcessedUpdate).where(
                        ProcessedUpdate.source == DEDUPE_SOURCE, ProcessedUpdate.key == str(update_id)
                    )
                )
        except Exception:  # noqa: BLE001 - the redelivery is then ignored; the agent saw the error
            log.exception("processed update not released", extra={"update_id": update_id})

    async def _guarded(self, work: Awaitable[None], message: dict[str, Any] | None) -> bool:
        try:
            await work
        except Exception:  # noqa: BLE001 - an agent's action failing must not stop the channel
            log.exception("agents' group update failed")
            if message is not None:
                with contextlib.suppress(TelegramError):
                    await self._answer(message, "⚠️ That did not work (internal error). Nothing was sent.")
            return False
        return True

    async def _on_message(self, message: dict[str, Any], update_id: int | None) -> None:
        """A command is recorded processed before it runs; a reply to the customer carries the
        update on its row (``agents:{update_id}``), so its transaction is the dedupe."""
        sender = message.get("from") or {}
        if not isinstance(sender, dict) or sender.get("is_bot") or "id" not in sender:
            return
        text = str(message.get("text") or message.get("caption") or "")
        command = parse_command(text, self._me.username if self._me else None)
        number = await self._ticket_for(message)
        if number is None:
            if command is not None and command.name in COMMANDS:
                await self._answer(message, "Use commands in a ticket's topic, or as a reply to the ticket's message.")
            return
        agent = await self._authorized(int(sender["id"]))
        if agent is None:
            await self._answer(message, refusal(sender["id"]))
            return
        if command is not None:
            if not await self._first_time(update_id):
                log.info("duplicate agents' group command ignored", extra={"update_id": update_id})
                return
            try:
                answer = await run_command(self.app.desk, number, command, agent.email)
            except DeskbotError as exc:
                answer = f"⚠️ {_friendly(exc, command.name)}"
            except BaseException:
                await self._forget(update_id)
                raise
            if answer:
                await self._answer(message, answer)
            return
        if not text.strip():
            await self._answer(message, "Only text reaches the customer from here; please type it.")
            return
        key = None if update_id is None else f"{REPLY_KEY_PREFIX}{update_id}"
        try:
            await self.app.desk.reply(number, text, agent.email, delivery_key=key)
        except DeskbotError as exc:
            await self._answer(message, f"⚠️ Not sent: {_friendly(exc, 'reply')}")
        except IntegrityError:
            if key is None or not await self._reply_stored(key):
                raise
            log.info("duplicate agents' group reply ignored", extra={"update_id": update_id})

    async def _reply_stored(self, key: str) -> bool:
        async with self.app.tickets.session() as tx:
            found = await tx.db.execute(select(Message.id).where(Message.delivery_key == key).limit(1))
            return found.first() is not None

    async def _on_edit(self, message: dict[str, Any]) -> None:
        """What was relayed cannot be changed at the customer's end: say so instead of
        letting the agent believe the correction arrived."""
        sender = message.get("from") or {}
        if not isinstance(sender, dict) or sender.get("is_bot") or "id" not in sender:
            return
        text = str(message.get("text") or "")
        if parse_command(text, self._me.username if self._me else None) is not None:
            return
        if await self._ticket_for(message) is None or await self._authorized(int(sender["id"])) is None:
            return
        await self._answer(message, "✏️ Edits do not reach the customer. Send the correction as a new message.")

    async def _ticket_for(self, message: dict[str, Any]) -> str | None:
        """The ticket a group message is about: its topic, or the ticket message it replies to."""
        chat_id = self.chat_id
        async with self.app.tickets.session() as tx:
            link = None
            thread_id = message.get("message_thread_id")
            if isinstance(thread_id, int):
                link = await telegram_links.by_thread(tx, chat_id, thread_id)
                if link is None:  # groups without topics: a reply thread's root is the ticket message
                    link = await telegram_links.by_message(tx, chat_id, thread_id)
            replied = message.get("reply_to_message")
            if link is None and isinstance(replied, dict) and isinstance(replied.get("message_id"), int):
                link = await telegram_links.by_message(tx, chat_id, replied["message_id"])
                if link is None and (replied.get("from") or {}).get("id") == (self._me.id if self._me else None):
                    return cards.mentioned_number(replied.get("text"))
            if link is None:
                return None
            ticket = await tx.get_ticket(link.ticket_id)
            return ticket.number if ticket else None

    async def _authorized(self, user_id: int) -> Agent | None:
        """A registered, active agent who is (still) a member of the agents' group."""
        async with self.app.tickets.session() as tx:
            agent = await telegram_links.agent_by_telegram_user(tx, user_id)
        if agent is None:
            return None
        cached = self._members.get(user_id)
        now = self._monotonic()
        if cached is None or cached[1] <= now:
            status = await self._retry(lambda: self.api.get_chat_member_status(self.chat_id, user_id), "getChatMember")
            cached = (status, now + self.settings.membership_ttl_seconds)
            self._members[user_id] = cached
        return agent if cached[0] in GROUP_MEMBER else None

    async def _on_callback(self, query: dict[str, Any]) -> None:
        query_id = str(query.get("id", ""))
        sender = query.get("from") or {}
        parsed = cards.parse_callback(query.get("data"))
        if parsed is None or not isinstance(sender, dict) or "id" not in sender:
            await self._answer_callback(query_id, "This button is not for me.")
            return
        action, number = parsed
        agent = await self._authorized(int(sender["id"]))
        if agent is None:
            await self._answer_callback(query_id, "⛔ Only registered agents can do that.")
            return
        try:
            if action == "claim":
                await self.app.desk.claim(number, agent.email)
                answer = f"{number} is yours."
            else:
                await self.app.desk.resolve(number, agent.email)
                answer = f"{number} resolved."
        except DeskbotError as exc:
            answer = _friendly(exc, action)
        await self._answer_callback(query_id, answer)

    async def _answer_callback(self, query_id: str, text: str) -> None:
        await self._retry(lambda: self.api.answer_callback_query(query_id, text[:MAX_CALLBACK_ANSWER]),
                          "answerCallbackQuery")

    async def _answer(self, message: dict[str, Any], text: str) -> None:
        """Reply in the same topic, quoting the agent's message."""
        thread_id = message.get("message_thread_id") if message.get("is_topic_message") else None
        await self._retry(
            lambda: self.api.send_message(
                self.chat_id, escape(text, quote=False), message_thread_id=thread_id,
                reply_to_message_id=message.get("message_id"),
            ),
            "sendMessage",
        )


def _chat_id(message: dict[str, Any]) -> int | None:
    chat = message.get("chat")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return chat_id if isinstance(chat_id, int) else None


def _friendly(exc: DeskbotError, action: str) -> str:
    if isinstance(exc, InvalidTransition):
        if action == "claim":
            return "Someone else has claimed it already." if exc.current == Owner.AGENT else "It cannot be claimed now."
        if action == "resolve":
            return "It is resolved already."
        if action == "bot":
            return "The bot has the conversation already."
    return str(exc)
