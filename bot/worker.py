"""``deskbot worker``: runs the turns the web front queued (``intake.queue: redis``).

A worker takes its share of the intake's partitions (``storage/intake_stream.py`` says why
partitions with one owner each rather than a per-conversation lock): about ``P / live
workers``, each through a Redis lease it renews every third of ``lease_ttl_seconds``. For
each partition it owns, one task:

1. **takes over**: waits until every entry left pending in the partition (by a worker that
   died or lost the lease) has been idle for the lease's TTL, ``XAUTOCLAIM``s them and runs
   them in id order — before anything new, so the conversation's order holds across the
   takeover;
2. then reads new entries (``XREADGROUP >``) and runs them one after another: the turn
   (``Pipeline.handle``, or the Telegram channel's ``process`` for a raw update) commits to
   the database; then the answer goes to the front waiting for it (REST, web chat); only
   then is the entry acknowledged (``XACK`` + ``XDEL``). A worker killed between the commit
   and the acknowledgement leaves the entry pending: its next owner runs it again and the
   pipeline's durable dedupe (the delivery key's unique index) answers with the stored
   replies, so nothing is stored or sent twice.

A turn that could not be stored (the database or Redis down, the same delivery in flight
elsewhere) is retried in place after a pause, never skipped: the partition waits, its order
intact. An entry that cannot be decoded, or whose turn failed on a bug, is logged and
acknowledged (as the Telegram channel confirms an update that failed on a bug: handing it
over again would only hold the conversation up).

Rebalancing: workers announce themselves in a sorted set with a heartbeat; one with more
than its share finishes the batch in hand and releases the extra partitions, a worker with
fewer takes free ones. A worker that loses a lease (could not renew in time) stops that
partition after the entry in hand. ``stop()`` (SIGTERM) finishes the entries in hand,
releases every lease (the successors need not wait for the TTL) and leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from bot.app import App, build_app
from bot.config import IntakeConfig, Settings
from bot.pipeline import DeliveryInFlight
from common.errors import StorageError
from storage.intake_stream import (
    KIND_INCOMING,
    KIND_TELEGRAM,
    IntakeEntry,
    IntakeKeys,
    RedisIntakeStream,
    decode_incoming,
    encode_replies,
)
from storage.leases import RedisLease, new_token

log = logging.getLogger("deskbot.worker")

RETRY_SECONDS = 0.5  # pause before running a turn again that could not be stored


@dataclass(eq=False)
class _Owned:
    """One partition this worker holds: its lease, its task, why it stops."""

    partition: int
    lease: RedisLease
    valid_until: float  # monotonic: past this the lease may be someone else's
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    lost: bool = False
    task: asyncio.Task[None] | None = None

    def holds(self) -> bool:
        return not self.lost and time.monotonic() < self.valid_until


class IntakeWorker:
    """The partitions' owner in this process; runs their entries against ``app``."""

    def __init__(self, app: App, stream: RedisIntakeStream, config: IntakeConfig, *, name: str | None = None) -> None:
        self.app = app
        self.stream = stream
        self.config = config
        self.name = name or new_token()
        self.ttl = config.lease_ttl_seconds
        self.owned: dict[int, _Owned] = {}
        self._manager: asyncio.Task[None] | None = None
        self._closing = False
        self.processed = 0

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self._tick()
        self._manager = asyncio.create_task(self._manage(), name="intake-leases")
        log.info("worker started", extra={"worker": self.name, "partitions": sorted(self.owned)})

    async def stop(self) -> None:
        """Finish the entries in hand, release every lease, leave the workers' set."""
        self._closing = True
        if self._manager is not None:
            self._manager.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._manager
        for owned in self.owned.values():
            owned.stopping.set()
        tasks = [o.task for o in self.owned.values() if o.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(StorageError):
            await self.stream.leave(self.name)
        log.info("worker stopped", extra={"worker": self.name, "processed": self.processed})

    # -- the leases ------------------------------------------------------------------------
    async def _manage(self) -> None:
        # Not ``while True``: a cancel that lands inside a Redis call can come back as a
        # connection error (caught below as StorageError), and ``stop`` would wait forever.
        while not self._closing:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self._tick()
            except StorageError as exc:
                log.warning("intake leases not renewed", extra={"worker": self.name, "error": str(exc)})

    async def _tick(self) -> None:
        """Heartbeat, renew, then give up or take partitions to hold this worker's share."""
        alive = max(1, await self.stream.heartbeat(self.name, self.ttl))
        for partition, owned in list(self.owned.items()):
            if owned.task is not None and owned.task.done():
                del self.owned[partition]
                continue
            if owned.stopping.is_set():
                continue
            renewed_at = time.monotonic()
            if await owned.lease.renew():
                owned.valid_until = renewed_at + self.ttl
            else:
                log.warning("intake partition lost", extra={"worker": self.name, "partition": partition})
                owned.lost = True
                owned.stopping.set()
        share = math.ceil(self.stream.partitions / alive)
        active = [o for o in self.owned.values() if not o.stopping.is_set()]
        for extra in sorted(active, key=lambda o: o.partition)[share:]:
            extra.stopping.set()  # its task finishes the batch in hand, then releases
        if len(active) < share and not self._closing:
            await self._take(share - len(active))
        await self._report_lag()

    async def _take(self, wanted: int) -> None:
        start = zlib.crc32(self.name.encode()) % self.stream.partitions
        for step in range(self.stream.partitions):
            if wanted <= 0:
                return
            partition = (start + step) % self.stream.partitions
            if partition in self.owned:
                continue
            lease = RedisLease(self.stream.redis, self.stream.keys.lease(partition), self.ttl, token=self.name)
            asked_at = time.monotonic()
            if not await lease.acquire():
                continue
            owned = _Owned(partition, lease, asked_at + self.ttl)
            owned.task = asyncio.create_task(self._own(owned), name=f"intake-{partition}")
            self.owned[partition] = owned
            wanted -= 1
            log.info("intake partition taken", extra={"worker": self.name, "partition": partition})

    async def _report_lag(self) -> None:
        for partition in list(self.owned):
            with contextlib.suppress(StorageError):
                lag = await self.stream.lag(partition)
                self.app.metrics.set_stream_lag(self.stream.keys.stream(partition), lag)

    # -- one partition ---------------------------------------------------------------------
    async def _own(self, owned: _Owned) -> None:
        try:
            await self._take_over(owned)
            block_ms = max(50, min(1000, int(self.ttl * 1000 / 3)))
            while not owned.stopping.is_set() and owned.holds():
                try:
                    entries = await self.stream.read_new(owned.partition, self.name, self.config.batch, block_ms)
                except StorageError as exc:
                    log.warning("intake read failed", extra={"partition": owned.partition, "error": str(exc)})
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                for entry in entries:
                    if owned.lost:  # another owner may have it: stop, it claims what is pending
                        return
                    await self._run(owned, entry)
        except Exception:
            log.exception("intake partition failed", extra={"partition": owned.partition})
            owned.lost = True
        finally:
            if not owned.lost:
                with contextlib.suppress(StorageError):
                    await owned.lease.release()
            log.info("intake partition left", extra={"worker": self.name, "partition": owned.partition})

    async def _take_over(self, owned: _Owned) -> None:
        """Run what a former owner left pending, oldest first, before anything new."""
        ttl_ms = int(self.ttl * 1000)
        while not owned.stopping.is_set() and owned.holds():
            idle = await self.stream.youngest_pending_idle(owned.partition)
            if idle is None:
                return
            if idle < ttl_ms:  # maybe still being run by a slow owner: give it the TTL
                await asyncio.sleep((ttl_ms - idle) / 1000 + 0.05)
                continue
            claimed = await self.stream.claim_pending(owned.partition, self.name, ttl_ms)
            if claimed:
                log.info(
                    "pending deliveries claimed",
                    extra={"worker": self.name, "partition": owned.partition, "count": len(claimed)},
                )
            for entry in claimed:
                if owned.lost:
                    return
                await self._run(owned, entry)

    async def _run(self, owned: _Owned, entry: IntakeEntry) -> None:
        """One entry: the turn (retried in place until stored), the answer, the acknowledgement."""
        while True:
            if not owned.holds():
                owned.lost = True
                return  # left pending: the partition's next owner runs it
            try:
                answer = await self._turn(entry)
                break
            except (StorageError, DeliveryInFlight) as exc:
                log.warning("turn not stored; retrying", extra={"partition": entry.partition, "error": str(exc)})
                await asyncio.sleep(RETRY_SECONDS)
            except (ValueError, TypeError, KeyError):
                log.exception("undecodable intake entry dropped", extra={"partition": entry.partition})
                answer = None
                break
            except Exception:
                log.exception("turn failed; entry acknowledged", extra={"partition": entry.partition})
                answer = None
                break
        while True:
            try:
                if answer is not None and entry.answer_to and entry.request:
                    await self.stream.publish_answer(entry.answer_to, entry.request, answer)
                await self.stream.ack(entry)
                break
            except StorageError as exc:
                if not owned.holds():
                    owned.lost = True
                    return
                log.warning("intake ack failed; retrying", extra={"partition": entry.partition, "error": str(exc)})
                await asyncio.sleep(RETRY_SECONDS)
        self.processed += 1

    async def _turn(self, entry: IntakeEntry) -> dict[str, Any] | None:
        """Run the entry's turn; returns the front's answer (pull channels)."""
        if entry.kind == KIND_INCOMING:
            msg = decode_incoming(entry.body)
            replies = await self.app.pipeline.handle(msg)
            telegram = self.app.telegram
            if not msg.replies_in_answer and telegram is not None and msg.channel == telegram.name:
                await telegram.outbox.deliver(replies)
            return {"status": "ok", "replies": encode_replies(replies)}
        if entry.kind == KIND_TELEGRAM:
            if self.app.telegram is None:
                raise StorageError("a Telegram update is queued but channels.telegram is not enabled on this worker")
            await self.app.telegram.process(json.loads(entry.body))
            return None
        raise ValueError(f"unknown intake entry kind {entry.kind!r}")


async def run_worker(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    http: Callable[[App], AbstractAsyncContextManager[object]] | None = None,
    **build_kwargs: Any,
) -> None:
    """Open the app, run the worker until SIGTERM/SIGINT (or ``stop``), stop gracefully.

    ``http`` (``deskbot worker --metrics-port``) serves something over the open app while the
    worker runs (its ``GET /metrics``); it stops after the worker."""
    if settings.intake.queue != "redis":
        from common.errors import ConfigError

        raise ConfigError("deskbot worker needs intake.queue: redis (DESKBOT_INTAKE__QUEUE=redis)")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    config = settings.intake
    async with build_app(settings, **build_kwargs) as app:
        stream = RedisIntakeStream.from_url(config.redis_url, IntakeKeys(settings.state.key_prefix), config.partitions)
        try:
            if app.telegram is not None:
                # The outbox and the parsing only: polling and the agents' group's posting
                # belong to the elected leader (bot/leader.py).
                await app.telegram.start(singletons=False)
            worker = IntakeWorker(app, stream, config)
            async with http(app) if http is not None else contextlib.nullcontext():
                await worker.start()
                try:
                    await stop.wait()
                    log.info("worker stopping", extra={"worker": worker.name})
                finally:
                    await worker.stop()
        finally:
            if app.telegram is not None:
                await app.telegram.stop()
            await stream.close()


# -- `deskbot serve --workers N` -------------------------------------------------------------
@contextlib.contextmanager
def worker_processes(
    count: int, argv_prefix: Sequence[str], grace: float = 30.0, metrics_port: int = 0
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` ``deskbot worker`` child processes for as long as the block runs; then
    SIGTERM to each (they finish the turns in hand) and, after ``grace`` seconds, SIGKILL.
    ``metrics_port``: the i-th serves ``GET /metrics`` on ``metrics_port + i`` (0: none)."""
    children: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(count):
            command = [sys.executable, "-m", "bot.cli.main", *argv_prefix, "worker"]
            if metrics_port:
                command += ["--metrics-port", str(metrics_port + i)]
            children.append(subprocess.Popen(command))  # noqa: S603 - this interpreter, our own module
        log.info("workers started", extra={"pids": [c.pid for c in children]})
        yield children
    finally:
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker did not stop in time; killed", extra={"pid": child.pid})
                child.kill()
                child.wait()
