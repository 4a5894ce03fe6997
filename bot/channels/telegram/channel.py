"""The Telegram customer channel: updates in, the pipeline, replies out — with either library.

``process(raw)`` is the one entry for every update, from the long poll or the webhook:
let the agents' group handler take what is its own, answer a button tap at once (or the
user's button spins), parse, hand to the pipeline (which drops a repeated ``update_id``
through its delivery key) and hand the turn's stored replies to the outbox reader. Nothing
here raises to the library: a failure is logged and the next update is handled.

Replies leave only through the outbox reader (``bot/channels/outbox.py``), for which this
class is the ``Channel`` port: ``send`` is one attempt at one stored message — its HTML
parts from the first one Telegram has not accepted yet — classified, never slept through.
So a reply is marked sent only once Telegram accepted it, a 429 holds only its own chat,
and replies agents write anywhere (web workspace, CLI, the agents' group, another process)
go out the same way: the reader wakes on the bus's events and sweeps every
``relay_interval_seconds``.

The channel reaches the core only through ``ChannelCore`` (the pipeline, the ticket store,
the event bus, the languages, and the agents' group's ``DeskAccess``), handed over by the
composition root (``bot/app.py``) through ``open_channel``: an adapter points into the core,
never back at the app that wires it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.channels.outbox import DeliveryObserver, OutboxReader, OutboxSettings
from bot.channels.port import Channel, DeliveryResult
from bot.channels.telegram.api import CHANNEL, TelegramError
from bot.channels.telegram.client import TelegramClient
from bot.channels.telegram.delivery import RetryPolicy, Sender, Sleep, send_parts
from bot.channels.telegram.limits import ChatLimits
from bot.channels.telegram.render import ButtonCodec, Chunk, render
from bot.channels.telegram.updates import MediaPolicy, parse_update
from bot.pipeline import DeliveryInFlight, Pipeline
from common.errors import StorageError
from common.messages import Button, Outgoing
from storage.events import EventBus
from storage.send_limits import MemorySendLimiter, Rate, SendLimiter, Turn
from storage.tickets import TicketStore

if TYPE_CHECKING:
    from bot.channels.telegram.agents.group import AgentsGroup
    from bot.channels.telegram.agents.setup import DeskAccess
    from bot.config import TelegramChannelConfig

log = logging.getLogger("deskbot.telegram")

# An update the agents' group handles itself (True) instead of the customer path.
AgentsHook = Callable[[dict[str, Any]], Awaitable[bool]]
# Shown on a tap of a button whose long payload this process no longer remembers.
EXPIRED_BUTTON = {"en": "This button has expired — please type your answer instead.",
                  "zh": "此按钮已过期，请直接输入您的回答。"}
COMMANDS = {
    "en": (("start", "Start over"), ("help", "What I can do"), ("status", "My tickets"),
           ("human", "Talk to a person"), ("cancel", "Cancel the current request")),
    "zh": (("start", "重新开始"), ("help", "我能做什么"), ("status", "我的工单"),
           ("human", "转人工客服"), ("cancel", "取消当前申请")),
}


@dataclass(frozen=True, slots=True)
class ChannelCore:
    """The parts of the core the Telegram channel uses."""

    pipeline: Pipeline  # a customer's update → the turn's stored replies
    tickets: TicketStore  # the outbox reader's queue
    bus: EventBus  # wakes the outbox reader when replies are queued elsewhere
    languages: Sequence[str]  # the commands menu is registered in each
    agents: DeskAccess  # the agents' group's way in (used when ``agents_chat_id`` is set)
    observer: DeliveryObserver | None = None  # hears the outbox's sends (metrics)
    limiter: SendLimiter | None = None  # the bot's shared sending budget (Redis); None: this process's own


class TelegramChannel(Channel):
    name = CHANNEL

    def __init__(
        self,
        core: ChannelCore,
        client: TelegramClient,
        config: TelegramChannelConfig,
        *,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.core = core
        self.client = client
        self.api = client.api
        self.config = config
        self.sender = Sender(client.api, retry, sleep)
        self.codec = ButtonCodec()
        self.media = MediaPolicy(tuple(config.accepted_media), config.max_file_mb * 1024 * 1024)
        self.bot_username: str | None = None
        self.agents_hook: AgentsHook | None = None
        self.agents_group: AgentsGroup | None = None
        self.limits = open_limits(config, core.limiter)
        self.outbox = OutboxReader(
            core.tickets,
            self,
            OutboxSettings(interval=config.relay_interval_seconds, part_timeout=config.request_timeout_seconds),
            bus=core.bus,
            observer=core.observer,
        )

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, *, polling: bool | None = None, singletons: bool = True) -> None:
        """Check the token (getMe), register the commands, start the outbox reader (which
        resumes every queued reply) and the intake.

        ``singletons=False``: everything but what one process per deployment runs (the long
        poll and the agents' group's posting), which the elected leader starts with
        ``start_singletons`` (``bot/leader.py``); webhook calls and the outbox work here anyway."""
        me = await self.sender.call(self.api.get_me, "getMe")
        self.bot_username = me.username
        await self._register_commands()
        await self._open_agents_group()
        await self.outbox.start()
        if singletons:
            await self.start_singletons(polling=polling)
        log.info("telegram channel started",
                 extra={"library": self.client.library, "mode": self.config.mode, "bot": self.bot_username,
                        "singletons": singletons})

    async def start_singletons(self, *, polling: bool | None = None) -> None:
        """The agents' group's posting, then the long poll (when the mode is polling)."""
        if self.agents_group is not None:
            await self.agents_group.start_posting()
        if polling if polling is not None else self.config.mode == "polling":
            await self.client.updates.start_polling(self.process)

    async def stop_singletons(self, grace: float = 0.0) -> None:
        """Stop posting to the agents' group first (its postings in progress get ``grace``
        seconds), then the long poll (the batch in hand is stored and confirmed)."""
        if self.agents_group is not None:
            await self.agents_group.stop_posting(grace)
        await self.client.updates.stop()

    async def _open_agents_group(self) -> None:
        from bot.channels.telegram.agents.group import AgentsGroup, AgentsGroupSettings

        group_settings = AgentsGroupSettings.from_config(self.config)
        if group_settings is None:
            return
        self.agents_group = AgentsGroup(self.api, self.core.agents, group_settings, pace=self.pace)
        await self.agents_group.open()
        self.agents_hook = self.agents_group.handle_update

    async def stop(self) -> None:
        """Stop the intake, the agents' group, then the outbox reader (in-flight sends finish
        within its grace period, the rest stays queued); the client is closed by ``close``."""
        await self.client.updates.stop()
        if self.agents_group is not None:
            await self.agents_group.close()
            self.agents_group, self.agents_hook = None, None
        await self.outbox.close()

    async def close(self) -> None:
        await self.stop()
        await self.api.close()

    async def _register_commands(self) -> None:
        for language in self.core.languages:
            try:
                await self.sender.call(
                    lambda language=language: self.api.set_my_commands(  # type: ignore[misc]
                        COMMANDS[language], language_code=None if language == "en" else language
                    ),
                    "setMyCommands",
                )
            except TelegramError as exc:  # a cosmetic failure: the commands still work
                log.warning("could not register commands", extra={"language": language, "error": str(exc)})

    # -- intake -----------------------------------------------------------------------------
    async def feed_webhook(self, raw: dict[str, Any]) -> None:
        """A webhook body: through the configured library's parsing, then ``process``."""
        await self.client.updates.feed_webhook(raw, self.process)

    async def process(self, raw: dict[str, Any]) -> None:
        """Handle one update: the intake's sink. Returns once the update is stored (its replies
        may still be sending); raises when it could not be stored — the database is down, or
        another copy is still in flight — so the intake does not confirm it and Telegram hands
        it over again. Any other failure (a bug on one odd update) is logged and the update is
        confirmed: handing it over again would only hold up the chat's later messages."""
        try:
            await self._process(raw)
        except (StorageError, DeliveryInFlight):
            log.warning("telegram update not stored; it will be fetched again",
                        extra={"update": raw.get("update_id")}, exc_info=True)
            raise
        except Exception:
            log.exception("telegram update failed", extra={"update": raw.get("update_id")})

    async def _process(self, raw: dict[str, Any]) -> None:
        if self.agents_hook is not None and await self.agents_hook(raw):
            return  # the agents' group's own (it answers its own button taps)
        parsed = parse_update(
            raw,
            media=self.media,
            allow_groups=self.config.allow_groups,
            bot_username=self.bot_username,
            decode_button=self.codec.decode,
        )
        if parsed.callback_query_id:
            note = None
            if parsed.ignored == "expired button":
                language = str((raw.get("callback_query") or {}).get("from", {}).get("language_code") or "")
                note = EXPIRED_BUTTON["zh" if language.startswith("zh") else "en"]
            await self._answer_callback(parsed.callback_query_id, note)
        if parsed.incoming is None:
            log.info("update ignored", extra={"update": parsed.update_id, "reason": parsed.ignored})
            return
        replies = await self.core.pipeline.handle(parsed.incoming)
        if any(reply.message_id is None for reply in replies):
            # The pipeline's apology could not be stored either: nothing of this update is.
            # Not confirmed, and no unstored apology for every redelivery while the database is down.
            raise StorageError(f"telegram update {parsed.update_id} was not stored")
        # Stored (QUEUED) by now; one attempt each, a held reply is the reader's to retry.
        await self.outbox.deliver(replies)

    async def _answer_callback(self, query_id: str, text: str | None = None) -> None:
        try:
            await self.sender.call(lambda: self.api.answer_callback_query(query_id, text), "answerCallbackQuery")
        except TelegramError as exc:  # too late (over ~15 s) or a bad id: the turn still runs
            log.warning("callback not answered", extra={"error": str(exc)})

    # -- output ------------------------------------------------------------------------------
    def chunks(self, text: str, buttons: Sequence[Button] = ()) -> list[Chunk]:
        return render(Outgoing(CHANNEL, "", text, tuple(buttons)), self.codec)

    async def turn(self, chat_id: str) -> Turn:
        """The port: book the chat's next send under the bot's and the chat's limits (``limits.py``)."""
        if self.limits is None:
            return Turn(True, 0.0)
        return await self.limits.reserve(chat_id)

    async def pace(self, chat_id: str) -> None:
        """Wait for the chat's next turn and take it (a long message's later parts, the agents' group)."""
        if self.limits is not None:
            await self.limits.pace(chat_id)

    async def send(self, message: Outgoing) -> DeliveryResult:
        """The port: one attempt at a stored message, from its first part not yet accepted;
        a long message's later parts each wait for the limits too."""
        chunks = self.chunks(message.text, message.buttons)
        chat_id = message.chat_id
        return await send_parts(self.api, chat_id, chunks, start=message.parts_sent,
                                pace=None if self.limits is None else lambda: self.pace(chat_id))

    async def relay_queued(self) -> int:
        """Send every reply due now (tests, scripts); returns how many sends were attempted."""
        return await self.outbox.flush()


def open_limits(config: TelegramChannelConfig, shared: SendLimiter | None) -> ChatLimits | None:
    """The configured sending limits over ``shared`` (Redis) or this process's own limiter."""
    limits = config.limits
    if not limits.enabled:
        return None
    limiter = shared or MemorySendLimiter(Rate(limits.bot.messages, limits.bot.seconds))
    private, group = limits.private_chat, limits.group_chat
    return ChatLimits(
        limiter, private=Rate(private.messages, private.seconds), group=Rate(group.messages, group.seconds)
    )


def open_channel(config: TelegramChannelConfig, token: str, core: ChannelCore) -> TelegramChannel:
    """The channel the settings ask for: library, API server, timeouts; no network yet."""
    from bot.channels.telegram.api import ClientOptions
    from bot.channels.telegram.client import open_client

    options = ClientOptions(
        token, config.api_base, config.request_timeout_seconds, config.polling_timeout_seconds,
        agents_chat_id=config.agents_chat_id,
    )
    return TelegramChannel(core, open_client(config.library, options), config)
