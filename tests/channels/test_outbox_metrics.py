"""The outbox reader's sends as metrics (bot/metrics.py through ``DeliveryObserver``), over
SQLite and PostgreSQL, through the real Telegram send path against the recording Bot API:
accepted sends are messages out, every failed attempt a send failure by outcome, and the
outbox gauges read from the store agree with the rows."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot.channels.outbox import OutboxReader
from bot.channels.telegram.api import CHANNEL, BadRequest, Forbidden, RetryAfter, ServerError
from bot.metrics import Metrics
from storage.models import DeliveryStatus
from storage.tickets import SqlTicketStore
from tests.channels.test_outbox import ChatFaultsApi, Clock, TelegramPort, queue, row


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


async def test_sends_and_failures_are_counted_by_outcome(ticket_store: SqlTicketStore) -> None:
    api, clock, metrics = ChatFaultsApi(), Clock(), Metrics(cache_seconds=0, process=False)
    api.chat_faults["100"] = [ServerError("Bad Gateway"), RetryAfter(3)]  # then accepted
    api.chat_faults["200"] = [Forbidden("Forbidden: bot was blocked by the user")]
    api.chat_faults["300"] = [BadRequest("Bad Request: chat not found")]
    [held] = await queue(ticket_store, "100", "Your refund is on its way.")
    [blocked] = await queue(ticket_store, "200", "hello?")
    [refused] = await queue(ticket_store, "300", "hello?")
    plain = await queue(ticket_store, "400", "one", "two")
    [cut] = await queue(ticket_store, "500", "Here is your label.")
    async with ticket_store.session() as tx:  # a process claimed it and died during the call
        assert await tx.claim_outbound(cut, clock.now, clock.now + timedelta(seconds=50)) is not None
    reader = OutboxReader(ticket_store, TelegramPort(api), clock=clock, observer=metrics)

    await reader.flush()
    await metrics.refresh(ticket_store)
    assert value(metrics, "deskbot_messages_out_total", channel=CHANNEL) == 2  # chat 400's two
    assert value(metrics, "deskbot_send_failures_total", channel=CHANNEL, outcome="transient") == 1
    assert value(metrics, "deskbot_send_failures_total", channel=CHANNEL, outcome="unreachable") == 1
    assert value(metrics, "deskbot_send_failures_total", channel=CHANNEL, outcome="permanent") == 1
    # Held (chat 100, after its 5xx) and the one still under a live lease (chat 500).
    assert value(metrics, "deskbot_outbox_pending", channel=CHANNEL) == 2
    assert value(metrics, "deskbot_outbox_failed", channel=CHANNEL) == 2

    clock.advance(0.5)
    await reader.flush()  # chat 100: 429
    clock.advance(51)
    await reader.flush()  # chat 100 accepted; chat 500's lease has expired: interrupted
    await metrics.refresh(ticket_store)
    assert value(metrics, "deskbot_send_failures_total", channel=CHANNEL, outcome="retry_after") == 1
    assert value(metrics, "deskbot_send_failures_total", channel=CHANNEL, outcome="interrupted") == 1
    assert value(metrics, "deskbot_messages_out_total", channel=CHANNEL) == 3
    assert value(metrics, "deskbot_outbox_pending", channel=CHANNEL) == 0  # emptied: 0, not gone
    assert value(metrics, "deskbot_outbox_failed", channel=CHANNEL) == 3
    statuses = [(await row(ticket_store, m)).status for m in (held, blocked, refused, *plain, cut)]
    assert statuses == [DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.FAILED,
                        DeliveryStatus.SENT, DeliveryStatus.SENT, DeliveryStatus.FAILED]
    assert len(api.posted) == 3
