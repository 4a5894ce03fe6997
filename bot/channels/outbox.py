"""The outbox reader: the one way a push channel's outbound rows reach the customer.

Every outbound message (a bot reply, an agent's reply, a rating request) is a ``Message``
row written QUEUED in the transaction that caused it. This reader sends them through the
channel's port (``bot/channels/port.py``), one row at a time per chat:

1. **claim** — QUEUED → SENDING, ``attempts + 1``, ``lease_until`` (one conditional UPDATE:
   two processes never send the same row), just before the platform call;
2. **send** — one attempt; the channel classifies the result, it never sleeps or retries;
3. **settle** — SENT with ``sent_at`` once the platform accepted it; back to QUEUED with
   ``not_before`` on a 429 (``retry_after``), a 5xx or a timeout (capped exponential
   back-off), FAILED after too many attempts or on a permanent error (a 403 also marks the
   customer unreachable); a failure is a ``delivery_failed`` event on the ticket.

A chat's rows go in id order and a held chat (waiting out its ``retry_after``) holds only
itself: other chats keep sending, at most ``concurrency`` at once. Before claiming a row the
reader books the chat's turn under the channel's sending limits (``Channel.turn``: Telegram's
per-bot and per-chat rates, ``storage/send_limits.py``) and sleeps until it, unclaimed and
outside the ``concurrency`` slots: a chat waiting its turn holds no other chat up, and a
process that dies while waiting leaves the row QUEUED, not "interrupted". ``deliver`` stops
waiting for a chat as soon as it has to wait for its turn, so the intake (a polling batch, a
worker's partition, a webhook call) is never held up by the limits. A row left SENDING past
its lease means the process died during the call: nobody knows whether it arrived, so it is
FAILED "interrupted while sending" with an event, never sent a second time. So every reply
is delivered exactly once or marked failed (a timeout the platform in fact accepted is the
one case sent twice: it is retried like any other transient failure).

The reader wakes when a turn hands it replies (``deliver``), on bus events announcing queued
replies, when a held row falls due, and every ``interval`` seconds as a safety net for rows
written where it hears no event (another process, a script). It resumes every QUEUED row on
start; ``close`` lets in-flight sends finish within a grace period and leaves the rest QUEUED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.channels.port import Channel, DeliveryResult, Outcome
from common.messages import Outgoing, stored_buttons
from storage.delivery_failures import record_failure
from storage.events import BusEvent, EventBus
from storage.models import DeliveryStatus, Message, utcnow
from storage.tickets import TicketStore

log = logging.getLogger("deskbot.outbox")

# Bus events after which replies may be waiting in the outbox.
RELAY_EVENTS = frozenset({"agent_reply", "resolved", "owner_changed", "reopened", "delivery_retried"})
INTERRUPTED = "interrupted while sending; it may not have arrived"
PARTS_KEY = "parts_sent"  # Message.payload: parts of a long message the platform accepted already


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    interval: float = 5.0  # the safety-net sweep
    concurrency: int = 16  # chats sending at the same moment
    part_timeout: float = 20.0  # one platform call at most (the client's request timeout)
    part_chars: int = 3500  # about one part of a long message (sizes the lease)
    lease_margin: float = 10.0  # beyond the send's own time limit: the database round trips
    max_attempts: int = 8  # 5xx and timeouts before a row is failed
    max_rate_limited: int = 50  # attempts, when the last failure was a 429
    base_delay: float = 0.5
    max_delay: float = 60.0
    max_retry_after: float = 3600.0  # a longer flood wait fails the row instead
    grace: float = 10.0  # close(): how long in-flight sends may take to finish

    def send_limit(self, text: str) -> float:
        """How long one attempt at ``text`` may take (its parts' calls); cut off after that."""
        return self.part_timeout * (len(text) // self.part_chars + 1)

    def lease(self, text: str) -> timedelta:
        """Longer than the attempt can run, so a lease expires only when its process died."""
        return timedelta(seconds=self.send_limit(text) + self.lease_margin)

    def backoff(self, attempts: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1)))


class DeliveryObserver:
    """What the outbox reader tells about its sends, for monitoring; this base tells nobody
    (``bot/metrics.py`` implements it). Quick, and never raises."""

    def delivered(self, channel: str) -> None:
        """The platform accepted one outbound message."""

    def send_failed(self, channel: str, outcome: str) -> None:
        """One send attempt failed: ``outcome`` is the channel's classification (``retry_after``,
        ``transient``, ``permanent``, ``unreachable``) or ``interrupted`` (the process died mid-send)."""


class OutboxReader:
    """Sends one push channel's outbox (see module docstring); ``clock`` is injectable for tests."""

    def __init__(
        self,
        store: TicketStore,
        channel: Channel,
        settings: OutboxSettings | None = None,
        *,
        bus: EventBus | None = None,
        clock: Callable[[], datetime] = utcnow,
        observer: DeliveryObserver | None = None,
    ) -> None:
        self.store = store
        self.channel = channel
        self.name = channel.name
        self.settings = settings or OutboxSettings()
        self.bus = bus
        self.clock = clock
        self.observer = observer or DeliveryObserver()
        self.attempted = 0  # send attempts so far (tests, logs)
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}  # deliver() calls, per chat
        self._pacing: set[str] = set()  # chats whose drain sleeps until its turn
        self._again: set[str] = set()
        self._wanted = asyncio.Event()
        self._next_due: datetime | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Fail interrupted sends, then send every QUEUED row and keep watching."""
        self._closing = False
        subscribed = asyncio.Event()
        if self.bus is not None:
            self._tasks.append(asyncio.create_task(self._watch(subscribed), name=f"outbox-{self.name}-events"))
            await subscribed.wait()
        self._tasks.append(asyncio.create_task(self._run(), name=f"outbox-{self.name}"))
        self.wake()

    async def close(self, grace: float | None = None) -> None:
        """Stop claiming rows; in-flight sends get ``grace`` seconds to finish, the rest stays
        QUEUED for the next start (a send cut off is failed as interrupted once its lease ends)."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        drains = list(self._drains.values())
        if drains:
            _done, pending = await asyncio.wait(drains, timeout=self.settings.grace if grace is None else grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if pending:
                log.warning("outbox closed with sends in flight", extra={"channel": self.name, "cut": len(pending)})

    def wake(self) -> None:
        """Sweep soon (rows may have been queued where no event tells us)."""
        self._wanted.set()

    # -- entry points ----------------------------------------------------------------------
    async def deliver(self, replies: Sequence[Outgoing]) -> None:
        """A turn's replies, right after its commit: their chats are sent to now (one attempt
        per row; a held row is retried later by the reader, the caller never waits it out, nor
        a chat's turn under the sending limits: those rows go out from the background)."""
        if self._closing:
            return
        chats: list[str] = []
        for reply in replies:
            if reply.message_id is None:
                await self._send_unstored(reply)
            elif reply.chat_id not in chats:
                chats.append(reply.chat_id)
        waits: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        for chat in chats:
            released: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(chat, []).append(released)
            self._kick(chat)
            if chat in self._pacing:
                released.set_result(None)  # its drain sleeps until the chat's turn: not waited for
            waits.append(released)
        if waits:
            # Never cancels a drain: an intake that gives up waiting must not cut a send in half.
            try:
                await asyncio.wait(waits)
            finally:
                for chat, released in zip(chats, waits, strict=True):
                    self._release(chat, released)

    async def idle(self) -> None:
        """Wait until no chat is being sent to (tests, scripts): paced rows included."""
        while self._drains:
            await asyncio.gather(*list(self._drains.values()), return_exceptions=True)

    async def flush(self) -> int:
        """Sweep now and wait until every chat due now was attempted; returns the attempts made."""
        before = self.attempted
        await self.sweep()
        await self.idle()
        return self.attempted - before

    async def sweep(self) -> None:
        """Fail expired leases, start a drain for every chat with a row due, note the next due time."""
        now = self.clock()
        await self.recover(now)
        async with self.store.session() as tx:
            chats = await tx.due_push_chats(self.name, now)
            self._next_due = await tx.next_push_due(self.name, now)
        if not self._closing:
            for chat in chats:
                self._kick(chat)

    async def recover(self, now: datetime | None = None) -> int:
        """Rows SENDING past their lease → FAILED "interrupted while sending" + event."""
        now = now or self.clock()
        async with self.store.session() as tx:
            expired = await tx.expired_leases(self.name, now)
        failed = 0
        for message_id in expired:
            async with self.store.session() as tx:
                if not await tx.fail_interrupted(message_id, now, INTERRUPTED):
                    continue
                message = await tx.get_message(message_id)
                if message is not None:
                    await record_failure(tx, message, INTERRUPTED)
            failed += 1
            self.observer.send_failed(self.name, "interrupted")
            log.warning("send interrupted; marked failed", extra={"channel": self.name, "message_id": message_id})
        return failed

    # -- per chat -------------------------------------------------------------------------
    def _kick(self, chat: str) -> asyncio.Task[None]:
        """The chat's drain: started, or told to look again when it is running already."""
        task = self._drains.get(chat)
        if task is not None:
            self._again.add(chat)
            return task
        task = self._drains[chat] = asyncio.create_task(self._drain(chat), name=f"outbox-{self.name}-chat")
        return task

    async def _drain(self, chat: str) -> None:
        try:
            while True:
                self._again.discard(chat)
                try:
                    await self._drain_once(chat)
                except Exception:  # noqa: BLE001 - a database hiccup: the next sweep tries again
                    log.exception("outbox drain failed", extra={"channel": self.name})
                    return
                # No await between this check and the deletion below: a kick cannot slip in.
                if chat not in self._again or self._closing:
                    return
        finally:
            del self._drains[chat]
            self._release(chat)

    def _release(self, chat: str, only: asyncio.Future[None] | None = None) -> None:
        """Let ``deliver`` calls waiting for ``chat`` (or just ``only``) return."""
        waiters = self._waiters.get(chat, [])
        for waiter in [only] if only is not None else list(waiters):
            if not waiter.done():
                waiter.set_result(None)
            if waiter in waiters:
                waiters.remove(waiter)
        if not waiters:
            self._waiters.pop(chat, None)

    async def _pace(self, chat: str) -> None:
        """Book the chat's next send under the channel's limits and sleep until it; a wait
        first releases the ``deliver`` calls waiting for this chat."""
        while True:
            turn = await self.channel.turn(chat)
            if turn.wait > 0:
                self._release(chat)
                self._pacing.add(chat)
                try:
                    await asyncio.sleep(turn.wait)
                finally:
                    self._pacing.discard(chat)
            if turn.granted:
                return

    async def _drain_once(self, chat: str) -> None:
        limit = 20
        while not self._closing:
            async with self.store.session() as tx:
                rows = list(await tx.chat_outbox(self.name, chat, limit))
            for row in rows:
                if row.status == DeliveryStatus.SENDING:
                    return  # another send holds the chat (its lease decides)
                if row.not_before is not None and row.not_before > self.clock():
                    self._due_at(row.not_before)
                    return  # held: the chat waits, in order
                if self._closing:
                    return
                await self._pace(chat)  # the platform's sending limits, before the claim
                result = await self._send_row(row)
                if result is None or not result.final:
                    return
            if len(rows) < limit:
                return

    async def _send_row(self, row: Message) -> DeliveryResult | None:
        async with self._slots:
            if self._closing:
                return None
            now = self.clock()
            async with self.store.session() as tx:
                claimed = await tx.claim_outbound(row.id, now, now + self.settings.lease(row.text))
            if claimed is None:
                return None  # sent, failed or taken by another process meanwhile
            payload = dict(claimed.payload or {})
            parts = payload.get(PARTS_KEY)
            message = Outgoing(
                self.name, claimed.chat_id, claimed.text, stored_buttons(payload),
                message_id=claimed.id, parts_sent=parts if isinstance(parts, int) and parts > 0 else 0,
            )
            self.attempted += 1
            try:
                async with asyncio.timeout(self.settings.send_limit(claimed.text)):
                    result = await self.channel.send(message)
            except TimeoutError:  # within the lease, so the row is still ours to settle
                log.warning("send cut off at its time limit", extra={"channel": self.name, "message_id": claimed.id})
                result = DeliveryResult(Outcome.TRANSIENT, "send timed out", parts_sent=message.parts_sent)
            except Exception as exc:  # noqa: BLE001 - an adapter bug: retried, then failed, never lost
                log.exception("channel send raised", extra={"channel": self.name, "message_id": claimed.id})
                error = f"{exc.__class__.__name__}: {exc}"
                result = DeliveryResult(Outcome.TRANSIENT, error, parts_sent=message.parts_sent)
            await self._settle(claimed, payload, result)
            return result

    async def _settle(self, row: Message, payload: dict[str, Any], result: DeliveryResult) -> None:
        now = self.clock()
        settings = self.settings
        extra = {"channel": self.name, "message_id": row.id, "attempts": row.attempts, "outcome": result.outcome.value}
        if result.ok:
            self.observer.delivered(self.name)
            async with self.store.session() as tx:
                if not await tx.mark_sent(row.id, now):
                    log.warning("sent after its lease was declared lost", extra=extra)
            return
        self.observer.send_failed(self.name, result.outcome.value)
        error = result.error or result.outcome.value
        delay: float | None = None
        if result.outcome is Outcome.RETRY_AFTER:
            wait = result.retry_after if result.retry_after and result.retry_after > 0 else 1.0
            if wait <= settings.max_retry_after and row.attempts < settings.max_rate_limited:
                delay = wait
        elif result.outcome is Outcome.TRANSIENT and row.attempts < settings.max_attempts:
            delay = settings.backoff(row.attempts)
        if delay is None:
            log.warning("reply not delivered", extra=extra | {"error": error})
            async with self.store.session() as tx:
                await tx.mark_failed(row.id, error[:1000])
                await record_failure(tx, row, error, unreachable=result.outcome is Outcome.UNREACHABLE)
            return
        not_before = now + timedelta(seconds=delay)
        if result.parts_sent > 0:
            payload[PARTS_KEY] = result.parts_sent
        async with self.store.session() as tx:
            await tx.retry_later(row.id, not_before, error, payload if result.parts_sent > 0 else None)
        log.info("reply held for a retry", extra=extra | {"delay": delay})
        self._due_at(not_before)

    async def _send_unstored(self, reply: Outgoing) -> None:
        """A reply with no row (the apology when the database itself failed): one attempt."""
        try:
            await self._pace(reply.chat_id)
            result = await self.channel.send(reply)
        except Exception:  # noqa: BLE001
            log.exception("unstored reply not sent", extra={"channel": self.name})
            self.observer.send_failed(self.name, "transient")
            return
        if not result.ok:
            self.observer.send_failed(self.name, result.outcome.value)
            log.warning("unstored reply not sent", extra={"channel": self.name, "error": result.error})
        else:
            self.observer.delivered(self.name)

    # -- the sweep loop ---------------------------------------------------------------------
    def _due_at(self, when: datetime) -> None:
        if self._next_due is None or when < self._next_due:
            self._next_due = when
            self._wanted.set()  # the loop recomputes its wait

    def _wait(self) -> float:
        wait = self.settings.interval
        if self._next_due is not None:
            wait = min(wait, max(0.0, (self._next_due - self.clock()).total_seconds()))
        return wait

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self._wait())
            self._wanted.clear()
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - the database may be down: the next round retries
                log.exception("outbox sweep failed; retrying later", extra={"channel": self.name})
                await asyncio.sleep(min(self.settings.interval, 1.0))

    async def _watch(self, subscribed: asyncio.Event) -> None:
        assert self.bus is not None
        try:
            async with self.bus.subscribe() as events:
                subscribed.set()
                async for event in events:
                    if isinstance(event, BusEvent) and event.kind in RELAY_EVENTS:
                        self.wake()
        except Exception:  # noqa: BLE001 - without events the interval sweep still sends everything
            log.exception("outbox stopped listening to the event bus", extra={"channel": self.name})
        finally:
            subscribed.set()
