"""The agents' group on Telegram: escalated tickets posted there, worked from there.

Two flows meet here, each told in its own modules (see ``__init__.py``):

- **Out** (event bus → group): every escalated ticket gets its own forum topic — or, in a
  group without topics, a message — carrying its card; later events become lines in that
  topic, and the topic title and the pinned card are edited in place (``poster.py``).
  Events are handled one ticket at a time, in order (``lanes.py``), and the tickets left
  unposted before a restart are posted at start-up (``catch_up.py``).
- **In** (group → desk): a linked agent's message in a ticket's topic, or a reply to the
  ticket's message, is an ``AgentDesk.reply`` delivered on the customer's own channel;
  commands and buttons are desk calls too; people who are not registered agents are
  refused (``inbox.py``, ``messages.py``, ``buttons.py``). A redelivered update is acted
  on once (``ledger.py``).

``AgentsGroup`` only composes the parts and runs their tasks: the bus consumer, the SLA
watch and the topic creator. It reaches the core through ``DeskAccess`` (``setup.py``).

The two flows start apart. **In** is ready once ``open`` returned, in every process: with a
webhook any process may receive the group's updates, and the ledger acts on each once.
**Out** (``start_posting`` / ``stop_posting``) runs in one process per deployment, the
elected leader (``bot/leader.py``): every subscriber of the bus would otherwise post the
same lines. ``start`` does both (one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from bot.channels.telegram.agents.buttons import CardButtons
from bot.channels.telegram.agents.catch_up import missed_tickets
from bot.channels.telegram.agents.chat import GroupChat, Pace
from bot.channels.telegram.agents.inbox import GroupInbox
from bot.channels.telegram.agents.lanes import TicketLanes
from bot.channels.telegram.agents.ledger import UpdateLedger
from bot.channels.telegram.agents.members import AgentCheck
from bot.channels.telegram.agents.messages import GroupMessages
from bot.channels.telegram.agents.poster import CardPoster
from bot.channels.telegram.agents.setup import AgentsGroupSettings, DeskAccess
from bot.channels.telegram.agents.threads import TicketThreads
from bot.channels.telegram.agents.topics import Sleep, TopicCreator
from bot.channels.telegram.api import TelegramApi
from desk.sla_alerts import SlaWatch

log = logging.getLogger("deskbot.telegram.agents")

__all__ = ["AgentsGroup", "AgentsGroupSettings", "DeskAccess"]


class AgentsGroup:
    def __init__(
        self,
        api: TelegramApi,
        desk: DeskAccess,
        settings: AgentsGroupSettings,
        *,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        pace: Pace | None = None,
    ) -> None:
        self.settings = settings
        self.chat_id = settings.chat_id
        self.chat = GroupChat(api, settings.chat_id, sleep=sleep, pace=pace)
        self.topics = TopicCreator(api, settings.chat_id, settings.topics_per_minute, clock=monotonic, sleep=sleep)
        self.sla = SlaWatch(desk.tickets, settings.sla_warn_minutes, clock=desk.clock)
        self.poster = CardPoster(self.chat, desk, settings, self.topics)
        self.lanes = TicketLanes(self.poster.on_event)
        agents = AgentCheck(self.chat, desk.tickets, settings.membership_ttl_seconds, monotonic=monotonic)
        ledger = UpdateLedger(desk.tickets)
        messages = GroupMessages(self.chat, desk.desk, TicketThreads(self.chat, desk.tickets), agents, ledger)
        self.inbox = GroupInbox(self.chat, messages, CardButtons(self.chat, desk.desk, agents), ledger)
        self._tickets = desk.tickets
        self._bus = desk.bus
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Both flows: ``open``, then ``start_posting``."""
        await self.open()
        await self.start_posting()

    async def open(self) -> None:
        """Ready to handle the group's updates (``handle_update``); posts nothing by itself."""
        await self.chat.introduce()

    async def start_posting(self) -> None:
        """Subscribe to the bus (events from now on are posted), start the SLA watch, then post
        the escalated tickets that never made it to the group."""
        if self._tasks:
            return
        subscribed = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._consume(subscribed), name="telegram-agents-events"))
        self._tasks.append(asyncio.create_task(self._watch_sla(), name="telegram-agents-sla"))
        self.topics.start()
        await subscribed.wait()
        for event in await missed_tickets(self._tickets):
            self.lanes.dispatch(event)

    async def stop_posting(self, grace: float = 0.0) -> None:
        """Stop posting: no new event is taken at once; the tickets being posted get ``grace``
        seconds to finish (a card cut off after Telegram took it would be posted again by the
        next poster), then are cancelled; a cancelled posting releases its ticket, which the
        next ``start_posting`` (here or in another process) catches up."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        lanes = self.lanes.cancel() if grace <= 0 else []
        if grace > 0 and self.lanes.busy:
            waiting = list(self.lanes.tasks)
            _done, pending = await asyncio.wait(waiting, timeout=grace)
            lanes = self.lanes.cancel() if pending else []
        for task in lanes:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.lanes = TicketLanes(self.poster.on_event)  # a cancelled lane may leave its queue behind
        await self.topics.close()

    async def close(self) -> None:
        await self.stop_posting()

    @property
    def busy(self) -> bool:
        """Events still being posted (tests and shutdown wait for this to clear)."""
        return self.lanes.busy or self.topics.waiting > 0

    async def handle_update(self, update: dict[str, Any]) -> bool:
        """An update for the agents' chat is handled here (True); False: someone else's."""
        return await self.inbox.handle(update)

    async def _consume(self, subscribed: asyncio.Event) -> None:
        async with self._bus.subscribe() as events:
            subscribed.set()
            async for event in events:
                self.lanes.dispatch(event)

    async def _watch_sla(self) -> None:
        while True:
            try:
                await self.sla.check()
            except Exception:  # noqa: BLE001 - the watch must survive a failing round
                log.exception("SLA check failed")
            # Real time, not the injectable sleep: tests drive ``sla.check()`` themselves.
            await asyncio.sleep(self.settings.sla_check_seconds)
