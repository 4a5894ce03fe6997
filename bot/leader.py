"""One leader for the singletons: what must run in exactly one process of a deployment.

Several deskbot processes may share PostgreSQL and Redis. Each serves HTTP (web chat, REST,
the Telegram webhook) and delivers its outbox, but these run in one process only, the
leader: the Telegram long poll (Telegram allows one ``getUpdates`` caller per bot, and its
``deleteWebhook``), the agents' group's posting (every subscriber of the bus would post the
same lines) with its SLA watch, and retention — the *singletons*.

**Election.** A lease (``storage/leases.py``): on Redis state a Redis key, taken with
``SET NX PX ttl``, renewed every ``ttl / 3`` by compare-and-extend on this process's random
token; with memory state (the embedded default, one process, no Redis) a local lease that is
always granted. Followers try to take the lease every ``ttl / 3``, so a dead leader's
successor starts within ``ttl + ttl / 3``; a leader that stops gracefully deletes the key
(compare-and-delete) and its successor starts at its next try.

**Losing the lease stops the singletons at once, before the TTL ends.** A renewal that
Redis refuses (another token holds the key) stops them immediately. A renewal that fails or
does not answer within ``ttl / 3`` leaves the lease ours at most until ``sent + ttl`` of the
last renewal Redis accepted — at least ``ttl / 3`` ahead — and the singletons are stopped
within what is left of it minus a margin (``STOP_MARGIN`` of the TTL): the agents' group
stops taking events at once and lets a card being posted finish within that time; the long
poll is cancelled. So two processes never post to the agents' group at the same time.

**Nothing posted twice across a takeover**, because no singleton's output relies on being
the only process for its correctness, only for not doing the work twice:

- replies to customers are outbox rows, sent by every process's outbox reader, each row
  claimed by one conditional UPDATE (QUEUED → SENDING with a lease): a row is sent by one
  process; a row left SENDING by a killed process is failed as "interrupted", never resent
  (``bot/channels/outbox.py``). Leadership does not change this, so a takeover cannot
  double a reply;
- the long poll confirms an update (the next offset) only after it is stored, and the
  database's unique ``(channel, delivery_key)`` drops a copy: the new leader fetches what the
  old one had not confirmed and stores only what is new, so each update is answered once;
- the agents' group: a ticket's card is posted after a reservation row
  (``telegram_links.reserve``, one winner ever), which the new leader's catch-up respects; lines
  come from bus events, consumed only by the leader, and the old leader stops consuming
  before its lease can expire; updates from the group are acted on once through the ledger
  (``agents/ledger.py``);
- the SLA watch records each alert as a ticket event before announcing it: a second watcher
  would find the event and raise nothing;
- retention skips rows already anonymised.

What a kill -9 can still do, as it can to a single process that restarts: cut a card between
Telegram accepting it and its row recording that (milliseconds; the Bot API has no
idempotency key). In a forum the topic is recorded first, so the successor's catch-up posts
the card again in that topic (the one double); without topics the reservation stays without
a card (lost). A step-down is not a kill: a card being posted gets the lease's remaining time
to finish. Lines of events published on the bus while nobody leads (up to the TTL after a
kill) are not posted; the catch-up posts tickets that have no card yet, and a card shows the
ticket's state again at its next event.

A singleton that fails to start (Telegram unreachable) is logged and tried again at each
renewal while this process leads. The app's ``deskbot_leader`` gauge (``Metrics.set_leader``)
follows every gain and loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from bot.jobs.retention import retention_loop
from common.errors import DeskbotError
from storage.leases import Lease, LocalLease
from storage.state import KeyBuilder

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings

log = logging.getLogger("deskbot.leader")

LEASE_NAME = "leader"
# Stop the singletons this share of the TTL before the lease could expire (clock drift, the
# stop itself).
STOP_MARGIN = 0.2

Clock = Callable[[], float]
LeaderHook = Callable[[bool], None]


@dataclass
class Singleton:
    """Something the leader runs: ``start()``; ``stop(grace)`` finishes within ``grace`` seconds
    what must not be cut, cancels the rest."""

    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[float], Awaitable[None]]
    running: bool = field(default=False, init=False)


class TaskSingleton:
    """A background coroutine as a singleton: started as a task, cancelled to stop."""

    def __init__(self, name: str, run: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[object] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._coro(), name=f"deskbot-{self.name}")

    async def _coro(self) -> object:
        return await self._run()

    async def stop(self, grace: float = 0.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def singleton(self) -> Singleton:
        return Singleton(self.name, self.start, self.stop)


class Leadership:
    """``async with Leadership(lease, singletons):`` — elect, run the singletons while leading,
    release the lease on exit (see the module docstring)."""

    def __init__(
        self,
        lease: Lease,
        singletons: Sequence[Singleton],
        *,
        on_change: LeaderHook | None = None,
        clock: Clock = time.monotonic,
        stop_grace: float = 10.0,
    ) -> None:
        self.lease = lease
        self.ttl = lease.ttl
        self.singletons = list(singletons)
        self.on_change = on_change
        self.clock = clock
        self.stop_grace = stop_grace  # a graceful exit: how long the singletons may take to stop
        self.leader = False
        self.terms = 0  # times this process became the leader
        self._valid_until = 0.0  # our clock: the lease is surely ours until then
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._starting: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        return self.ttl / 3

    async def __aenter__(self) -> Leadership:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Try once now (the embedded lease is granted at once), then keep trying in the background."""
        self._closing = False
        await self.tick()
        self._task = asyncio.create_task(self._loop(), name="deskbot-leadership")

    async def close(self) -> None:
        """Stop the singletons (gracefully), then release the lease for a successor."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leader:
            await self._step_down("shutting down", self.stop_grace)
            try:
                await self.lease.release()
                log.info("leadership released")
            except DeskbotError as exc:  # the key expires by itself within the TTL
                log.warning("leadership not released; it expires by itself", extra={"error": str(exc)})

    # -- the loop ------------------------------------------------------------------------------
    async def _loop(self) -> None:
        # Not ``while True``: a cancel that lands inside a Redis call can come back as a
        # connection error (caught below), and ``close`` would wait forever.
        while not self._closing:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - a bug here must not end the election
                log.exception("leadership round failed")

    async def tick(self) -> None:
        """One round: take the lease (follower) or renew it (leader), and act on the answer."""
        sent = self.clock()
        if not self.leader:
            if await self._ask(self.lease.acquire, "acquire"):
                self._valid_until = sent + self.ttl
                await self._gain()
            return
        held = await self._ask(self.lease.renew, "renew")
        if held:
            self._valid_until = sent + self.ttl
            self._ensure_started()
            return
        if held is False:  # Redis says the key is not ours: someone else may lead already
            await self._step_down("lease taken by another process", 0.0)
            return
        left = self._valid_until - self.clock() - self.ttl * STOP_MARGIN
        await self._step_down("lease not renewed", max(0.0, left))

    async def _ask(self, call: Callable[[], Awaitable[bool]], what: str) -> bool | None:
        """The lease's answer within one interval; None when there is none (an error, no answer)."""
        try:
            async with asyncio.timeout(self.interval):
                return await call()
        except (DeskbotError, TimeoutError) as exc:
            log.warning("leadership lease call failed", extra={"call": what, "error": str(exc) or "timeout"})
            return None

    # -- gain and loss -------------------------------------------------------------------------
    async def _gain(self) -> None:
        self.leader = True
        self.terms += 1
        log.info("leadership gained", extra={"term": self.terms, "ttl": self.ttl})
        self._report(True)
        self._ensure_started()

    def _ensure_started(self) -> None:
        """Start (in the background: renewals go on meanwhile) what is not running yet."""
        if self._starting is not None and not self._starting.done():
            return
        if all(s.running for s in self.singletons):
            return
        self._starting = asyncio.create_task(self._start_all(), name="deskbot-leadership-start")

    async def _start_all(self) -> None:
        for singleton in self.singletons:
            if singleton.running:
                continue
            try:
                await singleton.start()
            except asyncio.CancelledError:
                singleton.running = True  # half-started: stop it too
                raise
            except Exception:  # noqa: BLE001 - retried at the next renewal
                log.exception("singleton did not start; retrying", extra={"singleton": singleton.name})
                continue
            singleton.running = True
            log.info("singleton started", extra={"singleton": singleton.name})

    async def _step_down(self, reason: str, grace: float) -> None:
        self.leader = False
        log.warning("leadership lost; stopping the singletons", extra={"reason": reason, "grace": round(grace, 2)})
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
            self._starting = None
        for singleton in reversed(self.singletons):
            if not singleton.running:
                continue
            try:
                await singleton.stop(grace)
            except Exception:  # noqa: BLE001 - the others must stop all the same
                log.exception("singleton did not stop cleanly", extra={"singleton": singleton.name})
            singleton.running = False
        self._report(False)

    def _report(self, leader: bool) -> None:
        if self.on_change is not None:
            try:
                self.on_change(leader)
            except Exception:  # noqa: BLE001 - a metrics hiccup must not touch the election
                log.exception("leader hook failed")


# -- wiring -------------------------------------------------------------------------------------
def open_lease(settings: Settings) -> Lease:
    """A Redis lease on Redis state, else the embedded one (this process is the only one)."""
    ttl = settings.leader.ttl_seconds
    if settings.state.backend == "redis":
        from storage.leases import RedisLease

        key = KeyBuilder(settings.state.key_prefix).lease(LEASE_NAME)
        return RedisLease.from_url(settings.state.redis_url, key, ttl)
    return LocalLease(ttl)


def app_singletons(app: App) -> list[Singleton]:
    """What the leader runs for ``app``: the Telegram singletons, then retention (if configured)."""
    singletons: list[Singleton] = []
    telegram = app.telegram
    if telegram is not None:
        singletons.append(Singleton("telegram", telegram.start_singletons, telegram.stop_singletons))
    retention = app.settings.retention
    if retention.days and retention.interval_minutes > 0:
        tickets, clock = app.tickets, app.services.clock
        task = TaskSingleton("retention", lambda: retention_loop(tickets, retention, clock))
        singletons.append(task.singleton())
    return singletons


@contextlib.asynccontextmanager
async def leading(app: App) -> AsyncIterator[Leadership]:
    """For the block: elect, run ``app``'s singletons while leading; on exit stop them and
    release the lease (a successor starts at its next try, not after the TTL)."""
    lease = open_lease(app.settings)
    try:
        async with Leadership(lease, app_singletons(app), on_change=app.metrics.set_leader) as elected:
            yield elected
    finally:
        await lease.close()
