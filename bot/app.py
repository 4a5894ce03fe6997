"""Builds deskbot from its configuration — the one place that picks concrete classes.

``async with build_app(settings) as app:`` opens the stores, loads the shop's knowledge
and the classifier, and closes whatever it opened if any step fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.pipeline import Pipeline, PipelineSettings
from handlers.context import Policy, Services
from handlers.desk import AgentDesk
from handlers.knowledge import Catalog, FaqIndex, load_catalog, load_faq
from handlers.responses import Responses
from handlers.sla import BusinessCalendar
from intents.base import IntentClassifier
from intents.classifier import load_or_train_async
from storage.events import EventBus, InProcessEventBus
from storage.models import Priority, utcnow
from storage.state import KeyBuilder, MemoryStateStore, StateStore
from storage.tickets import SqlTicketStore, TicketStore

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel

log = logging.getLogger("deskbot.app")


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
    telegram: TelegramChannel | None = None  # when channels.telegram.enabled; started by serve()


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


def load_knowledge(settings: Settings) -> tuple[Catalog, FaqIndex]:
    return load_catalog(settings.shop.catalog), FaqIndex(load_faq(settings.shop.faq))


def product_lookups(catalog: Catalog) -> dict[str, dict[str, str]]:
    """Product names and aliases become a lookup for the ``product`` entity."""
    return {"product": catalog.lookup_table()}


async def build_classifier(settings: Settings, catalog: Catalog) -> IntentClassifier:
    if settings.classifier.backend == "rasa":
        return await build_rasa_classifier(settings, catalog)
    classifier, retrained = await load_or_train_async(
        settings.classifier.data_dir, settings.classifier.model_path, settings.classifier, product_lookups(catalog)
    )
    log.info("classifier ready", extra={"retrained": retrained, "model": str(settings.classifier.model_path)})
    return classifier


async def build_rasa_classifier(settings: Settings, catalog: Catalog) -> IntentClassifier:
    """Rasa answers intents; deskbot's own extractors (from its NLU data and the catalog) add entities."""
    from intents.entities import EntityExtractor
    from intents.nlu_data import load_nlu_data
    from intents.rasa_http import RasaError, RasaHttpClassifier

    config = settings.classifier
    extractor = None
    if config.rasa.builtin_entities:
        data = await asyncio.to_thread(load_nlu_data, config.data_dir)
        extractor = EntityExtractor.from_nlu(data, extra_lookups=product_lookups(catalog), max_chars=config.max_chars)
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
        catalog, faq = load_knowledge(settings)
        if classifier is None:
            classifier = await build_classifier(settings, catalog)
            stack.push_async_callback(classifier.close)
        responses = Responses.load(fallback=settings.default_language)
        services = Services(
            catalog=catalog,
            faq=faq,
            responses=responses,
            policy=build_policy(settings),
            clock=clock,
            shop_name=settings.shop.name,
        )
        pipeline = Pipeline(
            tickets,
            state,
            classifier,
            services,
            PipelineSettings(
                state_ttl=settings.state.ttl_seconds,
                dedupe_ttl=settings.state.dedupe_ttl_seconds,
                default_language=settings.default_language,
                languages=tuple(settings.languages),
            ),
        )
        desk = AgentDesk(tickets, responses, services.policy)
        app = App(settings, tickets, state, bus, classifier, services, pipeline, desk)
        if settings.channels.telegram.enabled:
            from bot.channels.telegram.channel import open_channel

            app.telegram = open_channel(app)
            stack.push_async_callback(app.telegram.close)
        yield app
