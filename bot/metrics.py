"""Every metric deskbot exports, in one place, for Prometheus (``GET /metrics``).

The core never imports ``prometheus_client``: the pipeline and the outbox reader report to
observers (:class:`~bot.pipeline.TurnObserver`, :class:`~bot.channels.outbox.DeliveryObserver`)
and :class:`Metrics` implements both. The other process-wide facts are set here by whoever
knows them: the leader election (:meth:`Metrics.set_leader`) and the queued intake
(:meth:`Metrics.set_stream_lag`). What lives in the database (the outbox's backlog, tickets by
status) is read from the store when a scrape asks (:meth:`Metrics.refresh`), at most once per
``cache_seconds``, so a burst of scrapes costs the database one read.

Each :class:`Metrics` has a registry of its own rather than the library's global one: two apps
built in one process (the tests do it all the time) then never share or collide on a series,
and a scrape shows exactly one app's figures. Names start with ``deskbot_``; durations are in
seconds, as Prometheus asks.

=================================  =========  =======================================================
metric                             type       what
=================================  =========  =======================================================
deskbot_messages_in_total          counter    customers' messages stored by a turn, per ``channel``
deskbot_messages_out_total         counter    messages handed to customers, per ``channel``: a pull
                                              channel's replies in its answer, a push channel's
                                              sends the platform accepted
deskbot_pipeline_turn_seconds      histogram  one turn, per ``channel`` (lock wait included)
deskbot_classifier_seconds         histogram  one intent prediction
deskbot_send_failures_total        counter    failed send attempts, per ``channel`` and ``outcome``
deskbot_outbox_pending             gauge      outbound messages queued or being sent, per ``channel``
deskbot_outbox_failed              gauge      outbound messages given up on, per ``channel``
deskbot_tickets                    gauge      tickets per ``status``
deskbot_leader                     gauge      1 while this process runs the singletons, else 0
deskbot_stream_lag                 gauge      deliveries not yet read from an intake ``stream``
deskbot_metrics_store_errors_total counter    scrapes whose store read failed (gauges kept as they were)
=================================  =========  =======================================================
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bot.channels.outbox import DeliveryObserver
from bot.pipeline import TurnObserver
from common.errors import DeskbotError
from storage.models import DeliveryStatus, TicketStatus
from storage.tickets import TicketStore

log = logging.getLogger("deskbot.metrics")

# The classic text format (0.0.4), which every Prometheus reads; generate_latest writes it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A turn takes a few milliseconds on the embedded default and tens with PostgreSQL and Redis;
# the upper buckets catch outages and slow classifiers (a Rasa server).
TURN_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The built-in classifier answers in tenths of a millisecond; the accurate model in a few.
CLASSIFIER_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)

M = TypeVar("M", Counter, Histogram)


def _child(cache: dict[str, M], metric: M, label: str) -> M:
    """``metric.labels(label)``, kept: the library's lookup takes a lock and costs about twice
    the update itself, on every turn."""
    child = cache.get(label)
    if child is None:
        child = cache[label] = metric.labels(label)
    return child


class Metrics(TurnObserver, DeliveryObserver):
    """One app's metrics and the registry that exports them (see the module docstring)."""

    def __init__(
        self, *, cache_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic, process: bool = True
    ) -> None:
        """``cache_seconds``: how long a store read serves scrapes; ``process``: export the
        process's CPU, memory, file descriptors and garbage collection too (``process_*``, ``python_*``)."""
        self.registry = CollectorRegistry()
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._read_at: float | None = None
        self._reading = asyncio.Lock()
        self._outbox_channels: set[str] = set()
        self._in: dict[str, Counter] = {}
        self._out: dict[str, Counter] = {}
        self._turns: dict[str, Histogram] = {}
        registry = self.registry
        if process:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.messages_in = Counter(
            "deskbot_messages_in", "Customers' messages stored by a turn.", ["channel"], registry=registry
        )
        self.messages_out = Counter(
            "deskbot_messages_out",
            "Messages handed to customers: a pull channel's replies in its answer, a push channel's accepted sends.",
            ["channel"],
            registry=registry,
        )
        self.turn_seconds = Histogram(
            "deskbot_pipeline_turn_seconds",
            "One pipeline turn, from its arrival to its answer (the chat's lock wait included).",
            ["channel"],
            buckets=TURN_BUCKETS,
            registry=registry,
        )
        self.classifier_seconds = Histogram(
            "deskbot_classifier_seconds", "One intent prediction.", buckets=CLASSIFIER_BUCKETS, registry=registry
        )
        self.send_failures = Counter(
            "deskbot_send_failures",
            "Failed send attempts (retry_after, transient, permanent, unreachable, interrupted).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "deskbot_outbox_pending", "Outbound messages queued or being sent.", ["channel"], registry=registry
        )
        self.outbox_failed = Gauge(
            "deskbot_outbox_failed",
            "Outbound messages given up on (until an agent retries them).",
            ["channel"],
            registry=registry,
        )
        self.tickets = Gauge("deskbot_tickets", "Tickets per status.", ["status"], registry=registry)
        self.leader = Gauge("deskbot_leader", "1 while this process runs the singletons, else 0.", registry=registry)
        self.stream_lag = Gauge(
            "deskbot_stream_lag",
            "Deliveries appended to an intake stream and not yet read.",
            ["stream"],
            registry=registry,
        )
        self.store_errors = Counter(
            "deskbot_metrics_store_errors", "Scrapes whose read of the store failed.", registry=registry
        )

    # -- the pipeline (TurnObserver) ---------------------------------------------------------
    def message_in(self, channel: str) -> None:
        _child(self._in, self.messages_in, channel).inc()

    def answered(self, channel: str, replies: int) -> None:
        _child(self._out, self.messages_out, channel).inc(replies)

    def turn_done(self, channel: str, seconds: float) -> None:
        _child(self._turns, self.turn_seconds, channel).observe(seconds)

    def classified(self, seconds: float) -> None:
        self.classifier_seconds.observe(seconds)

    # -- the outbox reader (DeliveryObserver) ------------------------------------------------
    def delivered(self, channel: str) -> None:
        _child(self._out, self.messages_out, channel).inc()

    def send_failed(self, channel: str, outcome: str) -> None:
        self.send_failures.labels(channel, outcome).inc()

    # -- set by the leader election and the queued intake -----------------------------------
    def set_leader(self, is_leader: bool) -> None:
        """This process won (True) or lost/left (False) the lease for the singletons."""
        self.leader.set(1 if is_leader else 0)

    def set_stream_lag(self, stream: str, lag: float) -> None:
        """Deliveries in intake ``stream`` (a partition) that no worker has read yet."""
        self.stream_lag.labels(stream).set(lag)

    # -- read from the store at scrape time --------------------------------------------------
    async def refresh(self, tickets: TicketStore) -> None:
        """Read the outbox's backlog and the tickets by status, unless a read less than
        ``cache_seconds`` old serves. Concurrent scrapes share one read. A store that cannot
        be read leaves the gauges as they were and counts ``deskbot_metrics_store_errors_total``:
        the counters still reach Prometheus during an outage, when they matter most."""
        async with self._reading:
            if self._read_at is not None and self._clock() - self._read_at < self.cache_seconds:
                return
            try:
                async with tickets.session() as tx:
                    backlog = await tx.outbox_backlog()
                    statuses = await tx.tickets_by_status()
            except DeskbotError as exc:
                self.store_errors.inc()
                log.warning("metrics: store not read", extra={"error": exc.__class__.__name__})
                return
            self._read_at = self._clock()
        self._set_store_gauges(backlog, statuses)

    def _set_store_gauges(
        self, backlog: dict[tuple[str, DeliveryStatus], int], statuses: dict[TicketStatus, int]
    ) -> None:
        # A channel whose backlog emptied goes to 0 rather than vanishing from the scrape.
        self._outbox_channels |= {channel for channel, _status in backlog}
        for channel in self._outbox_channels:
            pending = sum(backlog.get((channel, status), 0) for status in PENDING)
            self.outbox_pending.labels(channel).set(pending)
            self.outbox_failed.labels(channel).set(backlog.get((channel, DeliveryStatus.FAILED), 0))
        for status, count in statuses.items():
            self.tickets.labels(status.value).set(count)

    def exposition(self) -> bytes:
        """Every metric of this app in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
