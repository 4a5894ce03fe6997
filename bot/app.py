"""Builds deskbot from its configuration — the one place that picks concrete classes.

``async with build_app(settings) as app:`` opens the stores, loads the shop's knowledge
and the classifier, and closes whatever it opened if any step fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.jobs.knowledge_sync import KnowledgeSync
from bot.jobs.order_refresh import OrderIdsRefresher
from bot.metrics import Metrics
from bot.pipeline import Pipeline, PipelineSettings
from desk.agent_desk import AgentDesk
from desk.sla import BusinessCalendar
from handlers.context import Policy, Services
from handlers.responses import Responses
from intents.base import IntentClassifier
from intents.classifier import load_or_train_async
from knowledge.additions import from_rows
from knowledge.bundle import ShopKnowledge
from knowledge.indexes import indexed_knowledge
from knowledge.order_ids import OrderIds
from storage import missed
from storage.customer_limits import CustomerLimiter, CustomerRate, MemoryCustomerLimiter
from storage.events import EventBus, InProcessEventBus
from storage.models import Priority, utcnow
from storage.state import KeyBuilder, MemoryStateStore, StateStore
from storage.tickets import SqlTicketStore, TicketStore

if TYPE_CHECKING:
    from bot.channels.telegram.agents.setup import DeskAccess
    from bot.channels.telegram.channel import TelegramChannel
    from bot.intake import QueuedIntake
    from storage.send_limits import SendLimiter

log = logging.getLogger("deskbot.app")

# Answered messages classified below the out-of-scope threshold plus this are still listed as
# missed: the built-in model gives the right intent 0.95 and more, unsure guesses 0.3–0.55.
UNSURE_MARGIN = 0.3


@dataclass(slots=True)
class App:
    settings: Settings
    tickets: TicketStore
    state: StateStore
    bus: EventBus
    classifier: IntentClassifier
    services: Services
    pipeline: Pipeline
    desk: AgentDesk
    knowledge: KnowledgeSync  # reloads ``services.shop`` when admins add phrasings or aliases
    orders: OrderIdsRefresher  # swaps in the shop's order ids when the store's orders change
    telegram: TelegramChannel | None = None  # when channels.telegram.enabled; started by serve()
    metrics: Metrics = field(default_factory=Metrics)  # this app's Prometheus registry (GET /metrics)
    # intake.queue redis, on the web front: deliveries go to the workers (bot/intake.py); None: inline
    intake: QueuedIntake | None = None


def build_policy(settings: Settings) -> Policy:
    hours = settings.business_hours
    days = {str(day): span for day, span in hours.days.items()}
    calendar = BusinessCalendar(ZoneInfo(hours.timezone), days, frozenset(hours.holidays))
    sla = settings.sla
    return Policy(
        return_window_days=settings.shop.return_window_days,
        high_value_order=settings.shop.high_value_order,
        fallback_after=settings.dialogue.fallback_after,
        complaint_repeat_days=settings.dialogue.complaint_repeat_days,
        sla_minutes={
            Priority(name): (target.first_response_minutes, target.resolution_minutes)
            for name, target in (("low", sla.low), ("normal", sla.normal), ("high", sla.high), ("urgent", sla.urgent))
        },
        calendar=calendar,
        reopen_hours=settings.dialogue.reopen_hours,
    )


async def load_shop(settings: Settings, tickets: TicketStore) -> ShopKnowledge:
    """The shop's files, the phrasings and aliases admins added, and the order ids, indexed off
    the event loop (``knowledge.indexes``: once per distinct input in a process). An addition
    the files now contradict is skipped with a warning."""
    async with tickets.session() as tx:
        order_ids = await tx.order_ids()
        taught = from_rows(await missed.additions(tx))
    # The accurate model's encoders (loaded once, shared with the classifier) also search the FAQ.
    encoders = settings.classifier.chinese_encoder if settings.classifier.model == "accurate" else None
    indexed = await asyncio.to_thread(indexed_knowledge, settings.shop.catalog, settings.shop.faq, taught, encoders)
    for addition, why in indexed.skipped:
        log.warning("knowledge addition skipped", extra={"addition": addition.id, "reason": why})
    ids = await asyncio.to_thread(OrderIds, order_ids, settings.shop.order_id_pattern)
    return indexed.knowledge.with_order_ids(ids)


async def build_classifier(settings: Settings) -> IntentClassifier:
    if settings.classifier.backend == "rasa":
        return await build_rasa_classifier(settings)
    classifier, retrained = await load_or_train_async(
        settings.classifier.data_dir, settings.classifier.model_path, settings.classifier
    )
    log.info("classifier ready", extra={"retrained": retrained, "model": str(settings.classifier.model_path)})
    return classifier


async def build_rasa_classifier(settings: Settings) -> IntentClassifier:
    """Rasa answers intents; deskbot's own extractors (its NLU data, and the shop's entities
    the pipeline passes in) add entities."""
    from intents.entities import EntityExtractor
    from intents.nlu_data import load_nlu_data
    from intents.rasa_http import RasaError, RasaHttpClassifier

    config = settings.classifier
    extractor = None
    if config.rasa.builtin_entities:
        data = await asyncio.to_thread(load_nlu_data, config.data_dir)
        extractor = EntityExtractor.from_nlu(data, max_chars=config.max_chars)
    token = settings.secrets.get("rasa_token")
    classifier = RasaHttpClassifier.from_config(
        config.rasa,
        threshold=config.threshold,
        token=token.get_secret_value() if token else None,
        extractor=extractor,
    )
    try:
        version = await classifier.version()
        log.info("rasa classifier ready", extra={"url": config.rasa.url, "rasa_version": version})
    except RasaError as exc:
        # Rasa may start after deskbot; until it answers, messages degrade as configured (on_error).
        log.warning("rasa not reachable at start-up", extra={"url": config.rasa.url, "error": str(exc)})
    return classifier


async def _open_bus(settings: Settings) -> EventBus:
    if settings.events.backend == "redis":
        from storage.redis_events import RedisEventBus

        return RedisEventBus.from_url(settings.events.redis_url, key_builder=KeyBuilder(settings.state.key_prefix))
    return InProcessEventBus()


async def _open_state(settings: Settings) -> StateStore:
    keys = KeyBuilder(settings.state.key_prefix)
    if settings.state.backend == "redis":
        from storage.redis_state import RedisStateStore

        return RedisStateStore.from_url(settings.state.redis_url, key_builder=keys)
    return MemoryStateStore(keys)


def _customer_limiter(settings: Settings, state: StateStore) -> CustomerLimiter | None:
    """``limits.customer`` on the state store's backend: with Redis state every worker shares
    each customer's count (the store's client and key prefix); else it lives in this process."""
    limit = settings.limits.customer
    if not limit.enabled:
        return None
    rate = CustomerRate(limit.messages, limit.seconds)
    if settings.state.backend == "redis":
        from storage.redis_customer_limits import RedisCustomerLimiter
        from storage.redis_state import RedisStateStore

        if isinstance(state, RedisStateStore):
            return RedisCustomerLimiter(state.redis, state.keys, rate)
    return MemoryCustomerLimiter(rate)


def agents_desk(app: App) -> DeskAccess:
    """What the agents' Telegram group reaches in the core (it never sees the ``App``)."""
    from bot.channels.telegram.agents.setup import DeskAccess

    return DeskAccess(app.tickets, app.bus, app.desk, app.services.policy.calendar.local, app.services.clock)


def _shared_send_limiter(app: App) -> SendLimiter | None:
    """With Redis state, every process sending as the bot shares one budget (over the state
    store's client and key prefix); otherwise the channel limits its own process."""
    if app.settings.state.backend != "redis":
        return None
    from storage.redis_state import RedisStateStore
    from storage.send_limits import Rate, RedisSendLimiter

    if not isinstance(app.state, RedisStateStore):
        return None

    bot = app.settings.channels.telegram.limits.bot
    return RedisSendLimiter(app.state.redis, app.state.keys, Rate(bot.messages, bot.seconds))


def open_telegram(app: App) -> TelegramChannel:
    """The Telegram channel over this app's core, as the settings ask (no network yet)."""
    from bot.channels.telegram.channel import ChannelCore, open_channel

    settings = app.settings
    core = ChannelCore(
        app.pipeline, app.tickets, app.bus, tuple(settings.languages), agents_desk(app), observer=app.metrics,
        limiter=_shared_send_limiter(app),
    )
    token = settings.secrets["telegram_token"].get_secret_value()
    return open_channel(settings.channels.telegram, token, core)


@dataclass(slots=True)
class DeskApp:
    """The store and the agent desk: what ``deskbot tickets …`` works with."""

    settings: Settings
    tickets: TicketStore
    desk: AgentDesk


@asynccontextmanager
async def open_desk(settings: Settings) -> AsyncIterator[DeskApp]:
    """The ticket store (on the configured event bus) and the agent desk, and nothing else.

    An agent's command from a terminal reads tickets or stores a reply in the outbox; the
    serving process delivers it (at once on the Redis bus, at its next sweep otherwise), as it
    did when the command built a whole app. Loading the classifier, indexing the shop and
    opening Telegram (importing its library alone is seconds of CPU) only made every command
    slow.
    """
    async with AsyncExitStack() as stack:
        bus = await _open_bus(settings)
        stack.push_async_callback(bus.close)
        tickets = SqlTicketStore.from_url(settings.storage.url, bus=bus, echo=settings.storage.echo)
        stack.push_async_callback(tickets.close)
        responses = await asyncio.to_thread(Responses.load, fallback=settings.default_language)
        yield DeskApp(settings, tickets, AgentDesk(tickets, responses, build_policy(settings)))


@asynccontextmanager
async def build_app(
    settings: Settings,
    *,
    classifier: IntentClassifier | None = None,
    clock: Callable[[], datetime] = utcnow,
    create_schema: bool = False,
) -> AsyncIterator[App]:
    async with AsyncExitStack() as stack:
        bus = await _open_bus(settings)
        stack.push_async_callback(bus.close)
        tickets = SqlTicketStore.from_url(settings.storage.url, bus=bus, echo=settings.storage.echo)
        stack.push_async_callback(tickets.close)
        if create_schema:
            await tickets.create_schema()
        state = await _open_state(settings)
        stack.push_async_callback(state.close)
        orders_version = await OrderIdsRefresher.read_version(tickets)  # before the ids load_shop reads
        shop = await load_shop(settings, tickets)
        if classifier is None:
            classifier = await build_classifier(settings)
            stack.push_async_callback(classifier.close)
        responses = Responses.load(fallback=settings.default_language)
        services = Services(
            shop=shop,
            responses=responses,
            policy=build_policy(settings),
            clock=clock,
            shop_name=settings.shop.name,
        )
        orders = OrderIdsRefresher(tickets, services, settings.shop.order_id_pattern, version=orders_version)
        metrics = Metrics(cache_seconds=settings.web.metrics.cache_seconds)
        pipeline = Pipeline(
            tickets,
            state,
            classifier,
            services,
            PipelineSettings(
                state_ttl=settings.state.ttl_seconds,
                inflight_ttl=settings.state.inflight_seconds,
                default_language=settings.default_language,
                languages=tuple(settings.languages),
                unsure_below=settings.classifier.threshold + UNSURE_MARGIN,
            ),
            before_turn=orders.check,
            observer=metrics,
            limiter=_customer_limiter(settings, state),
        )
        desk = AgentDesk(tickets, responses, services.policy)
        knowledge = KnowledgeSync(lambda: load_shop(settings, tickets), services, bus)
        await stack.enter_async_context(knowledge.watching())
        app = App(
            settings, tickets, state, bus, classifier, services, pipeline, desk, knowledge, orders, metrics=metrics
        )
        if settings.channels.telegram.enabled:
            app.telegram = open_telegram(app)
            stack.push_async_callback(app.telegram.close)
        yield app
