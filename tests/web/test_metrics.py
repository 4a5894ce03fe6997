"""``GET /metrics`` (bot/web/metrics.py, bot/metrics.py) over both backend pairs: real messages
through the REST channel and the web chat, then a scrape read back with prometheus_client's
own text parser, every figure compared with what was sent and what the store holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import App, build_app
from bot.config import load_settings
from bot.web.metrics import metrics_app
from common.messages import Incoming
from intents.base import IntentClassifier
from storage.models import DeliveryStatus, Direction, TicketStatus, format_ticket_number
from tests.conftest import _delete_keys, empty_tables, storage_environ
from tests.web.conftest import asgi_client, deskbot_environ, messages_of
from tests.web.test_rest_channel import say

CHAT = "/chat/api/messages"
CHAT_HEADERS = {"X-Requested-With": "deskbot"}
TOKEN = "scrape-token-for-tests"

OpenMetricsApp = Callable[..., AbstractAsyncContextManager[App]]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
def open_metrics_app(
    request: pytest.FixtureRequest, tmp_path: Path, web_model_path: Path, web_classifier: IntentClassifier,
    redis_prefix: str,
) -> OpenMetricsApp:
    """``async with open_metrics_app(DESKBOT_X="...") as app:`` on this test's backend pair."""
    sqlite = request.param == "sqlite+memory"

    @asynccontextmanager
    async def opener(**overrides: str) -> AsyncIterator[App]:
        env = deskbot_environ(tmp_path / "deskbot.db", web_model_path, **overrides)
        if not sqlite:
            env |= storage_environ(request, tmp_path, redis_prefix, server=True)
        settings = load_settings(path=None, environ=env)
        async with build_app(settings, classifier=web_classifier, create_schema=sqlite) as app:
            if not sqlite:
                await empty_tables(app.tickets.engine)  # type: ignore[attr-defined]
            yield app
        if not sqlite:
            await _delete_keys(settings.state.redis_url, redis_prefix)

    return opener


async def scrape(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Samples:
    """Every sample of a scrape, by (name, labels), through the official parser."""
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def chat(client: httpx.AsyncClient, text: str) -> list[dict[str, Any]]:
    response = await client.post(CHAT, json={"text": text}, headers=CHAT_HEADERS)
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def test_counters_and_histograms_count_every_message_once(open_metrics_app: OpenMetricsApp) -> None:
    async with open_metrics_app(DESKBOT_WEB__METRICS__CACHE_SECONDS="0") as app, asgi_client(app) as client:
        rest_out = 0
        for sender, text in [("ann", "hello"), ("ann", "where is my order?"), ("bob", "hi there"),
                             ("bob", "I want to return my shoes")]:
            rest_out += len(await say(client, sender, text))
        # A retried message (same message_id) is answered again but stored once: counted once.
        rest_out += len(await say(client, "cat", "do you ship to Canada?", message_id="m-1"))
        again = await say(client, "cat", "do you ship to Canada?", message_id="m-1")
        assert again  # the replayed answer
        handoff = await say(client, "dan", "/human_handoff")  # a button: no classifier call
        rest_out += len(handoff)
        web_out = 0
        for text in ("hello", "what are your opening hours?", "thanks"):
            web_out += len(await chat(client, text))

        samples = await scrape(client)

        assert value(samples, "deskbot_messages_in_total", channel="rest") == 6
        assert value(samples, "deskbot_messages_in_total", channel="web") == 3
        assert value(samples, "deskbot_messages_out_total", channel="rest") == rest_out
        assert value(samples, "deskbot_messages_out_total", channel="web") == web_out
        assert rest_out >= 6 and web_out >= 3  # every message got at least one reply
        # Seven REST turns (the retry ran one too: it found its stored answer), three web chat turns.
        assert value(samples, "deskbot_pipeline_turn_seconds_count", channel="rest") == 7
        assert value(samples, "deskbot_pipeline_turn_seconds_count", channel="web") == 3
        assert value(samples, "deskbot_pipeline_turn_seconds_bucket", channel="rest", le="+Inf") == 7
        turn_sum = value(samples, "deskbot_pipeline_turn_seconds_sum", channel="rest")
        assert turn_sum is not None and turn_sum > 0
        # Every typed message, the retry's too (its turn ran until the stored delivery key rolled
        # it back); not the button.
        assert value(samples, "deskbot_classifier_seconds_count") == 9
        assert value(samples, "deskbot_leader") == 0  # nobody elected it: no singleton runs here

        # The ticket gauges and the outbox gauges say what the store holds.
        async with app.tickets.session() as tx:
            customer = await tx.find_customer("rest", "dan")
            assert customer is not None and customer.handoff_ticket_id is not None
            ticket = await tx.get_ticket(customer.handoff_ticket_id)
            assert ticket is not None
        for status in TicketStatus:
            expected = 1 if status == ticket.status else 0
            assert value(samples, "deskbot_tickets", status=status.value) == expected
        outbound = [m for m in await messages_of(app, "rest", "dan") if m.direction == Direction.OUTBOUND]
        assert all(m.status == DeliveryStatus.SENT for m in outbound)
        assert value(samples, "deskbot_outbox_pending", channel="rest") is None  # nothing ever waited


async def test_outbox_gauges_follow_queued_and_failed_replies(open_metrics_app: OpenMetricsApp) -> None:
    async with open_metrics_app(DESKBOT_WEB__METRICS__CACHE_SECONDS="0") as app, asgi_client(app) as client:
        await say(client, "eve", "/human_handoff")
        async with app.tickets.session() as tx:
            customer = await tx.find_customer("rest", "eve")
            assert customer is not None and customer.handoff_ticket_id is not None
            number = format_ticket_number(customer.handoff_ticket_id)
        await app.desk.reply(number, "Hello Eve, I am looking at it.")
        await app.desk.reply(number, "Could you send a photo?")

        samples = await scrape(client)
        queued = [m for m in await messages_of(app, "rest", "eve") if m.status == DeliveryStatus.QUEUED]
        assert len(queued) == 2  # waiting for the client's poll
        assert value(samples, "deskbot_outbox_pending", channel="rest") == 2
        assert value(samples, "deskbot_outbox_failed", channel="rest") == 0

        await app.pipeline.delivery_failed(queued[0].id, "the client never came back")
        samples = await scrape(client)
        assert value(samples, "deskbot_outbox_pending", channel="rest") == 1
        assert value(samples, "deskbot_outbox_failed", channel="rest") == 1
        assert value(samples, "deskbot_messages_in_total", channel="rest") == 1


async def test_store_figures_are_read_at_most_once_per_cache_period(open_metrics_app: OpenMetricsApp) -> None:
    async with open_metrics_app(DESKBOT_WEB__METRICS__CACHE_SECONDS="300") as app, asgi_client(app) as client:
        before = await scrape(client)
        assert sum(value(before, "deskbot_tickets", status=s.value) or 0 for s in TicketStatus) == 0
        await say(client, "fay", "/human_handoff")
        cached = await scrape(client)
        # The counters are live; the ticket count is the first scrape's read, still fresh.
        assert value(cached, "deskbot_messages_in_total", channel="rest") == 1
        assert sum(value(cached, "deskbot_tickets", status=s.value) or 0 for s in TicketStatus) == 0
        app.metrics.cache_seconds = 0  # as if the period had passed
        fresh = await scrape(client)
        assert sum(value(fresh, "deskbot_tickets", status=s.value) or 0 for s in TicketStatus) == 1


async def test_a_metrics_token_is_required_when_configured(open_metrics_app: OpenMetricsApp) -> None:
    async with open_metrics_app(DESKBOT_SECRETS__METRICS_TOKEN=TOKEN) as app, asgi_client(app) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "deskbot_" not in refused.text
        samples = await scrape(client, {"Authorization": f"Bearer {TOKEN}"})
        assert value(samples, "deskbot_leader") == 0


async def test_metrics_can_be_switched_off(open_metrics_app: OpenMetricsApp) -> None:
    async with open_metrics_app(DESKBOT_WEB__METRICS__ENABLED="false") as app, asgi_client(app) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_each_app_has_its_own_registry_and_the_setters_show(open_metrics_app: OpenMetricsApp) -> None:
    async with open_metrics_app() as first, open_metrics_app() as second:
        async with asgi_client(first) as one, asgi_client(second) as two:
            await say(one, "gus", "hello")
            first.metrics.set_leader(True)
            first.metrics.set_stream_lag("intake:0", 12)
            first.metrics.set_stream_lag("intake:1", 0)
            mine, theirs = await scrape(one), await scrape(two)
        assert value(mine, "deskbot_messages_in_total", channel="rest") == 1
        assert value(theirs, "deskbot_messages_in_total", channel="rest") is None
        assert value(mine, "deskbot_leader") == 1 and value(theirs, "deskbot_leader") == 0
        assert value(mine, "deskbot_stream_lag", stream="intake:0") == 12
        assert value(mine, "deskbot_stream_lag", stream="intake:1") == 0
        assert value(theirs, "deskbot_stream_lag", stream="intake:0") is None
        first.metrics.set_leader(False)
        assert b"deskbot_leader 0.0" in first.metrics.exposition()


async def test_a_process_without_the_web_front_serves_metrics_alone(open_metrics_app: OpenMetricsApp) -> None:
    async with open_metrics_app(DESKBOT_SECRETS__METRICS_TOKEN=TOKEN) as app:
        await app.pipeline.handle(Incoming(channel="rest", chat_id="hal", user_id="hal", text="hello",
                                           replies_in_answer=True))
        transport = httpx.ASGITransport(app=metrics_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            assert (await client.get("/metrics")).status_code == 401
            samples = await scrape(client, {"Authorization": f"Bearer {TOKEN}"})
            assert value(samples, "deskbot_messages_in_total", channel="rest") == 1
            assert value(samples, "deskbot_pipeline_turn_seconds_count", channel="rest") == 1
            for path in ("/", "/webhooks/rest/webhook", "/chat", "/healthz"):
                assert (await client.get(path)).status_code == 404
