"""The queued intake's Redis side: partitioned streams, partition leases, answers to the front.

Production mode (``intake.queue: redis``) puts a Redis stream between the web front and the
workers. The front appends every inbound delivery; a worker reads it through the consumer
group ``workers``, runs the turn, commits it to PostgreSQL and only then acknowledges
(``XACK``) and deletes the entry. This module is the streams and their keys, nothing of the
turn (``bot/worker.py`` runs it, ``bot/intake.py`` is the front's side).

**Why partitions with an owner, and not a per-conversation lock.** A conversation's messages
must be handled in the order they arrived; different conversations in parallel. Rasa's lock
store takes a Redis lock per conversation around each message, with a ticket number so
waiters go in order. With one shared stream that needs every worker to read entries it may
not run yet (the conversation is locked by another worker), park them, and ack out of order;
a worker that dies holding a lock stalls the conversation until the lock's TTL, and its
already-read but parked entries must be found again. Here the conversation (channel + chat)
is hashed onto one of ``P`` streams (``<prefix>:intake:<p>``), and each stream has one owner
at a time, a worker holding the partition's lease (``SET NX PX``, renewed, released by a
compare-and-delete Lua script: ``storage/leases.py``). The owner handles its partition's
entries strictly one after another; its partitions run concurrently. Order then holds by
construction, with one lease per partition instead of one lock per message, and a dead
owner's work is exactly the partition's pending entry list: whoever takes the lease next
first ``XAUTOCLAIM``s them (once idle for the lease's TTL, so a slow but living owner can
still finish its entry), handles them in id order, and only then reads new ones (``>``).
The price: a partition is as fast as one worker and a slow turn holds up the other
conversations hashed onto it, so ``P`` should be a few times the number of workers
(default 16). ``P`` is part of the data's layout: change it only with the streams empty.

Keys (one builder, :class:`IntakeKeys`): ``<prefix>:intake:<p>`` (stream),
``<prefix>:intake:lease:<p>`` (its owner), ``<prefix>:intake:workers`` (sorted set of live
workers, scored by the time their heartbeat runs out: each takes about ``P / workers``
partitions), ``<prefix>:intake:answers:<front>`` (pub/sub channel on which a front hears the
answers of its pull-channel requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import zlib
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from common.messages import Attachment, Button, Incoming, Outgoing
from storage.redis_state import REDIS_UNAVAILABLE, redis_errors

log = logging.getLogger("deskbot.intake")

GROUP = "workers"
KIND_INCOMING = "incoming"  # a channel-neutral ``Incoming`` (REST, web chat)
KIND_TELEGRAM = "telegram"  # a raw Telegram update: the worker's channel parses it (see bot/intake.py)


@dataclass(frozen=True, slots=True)
class IntakeKeys:
    """Every Redis key and channel name of the intake (never formatted elsewhere)."""

    prefix: str = "deskbot"

    def stream(self, partition: int) -> str:
        return f"{self.prefix}:intake:{partition}"

    def lease(self, partition: int) -> str:
        return f"{self.prefix}:intake:lease:{partition}"

    def workers(self) -> str:
        return f"{self.prefix}:intake:workers"

    def answers(self, front: str) -> str:
        return f"{self.prefix}:intake:answers:{front}"


def partition_of(channel: str, chat_id: str, partitions: int) -> int:
    """The conversation's partition: stable across processes and restarts (CRC-32, not ``hash``)."""
    return zlib.crc32(f"{channel}\x00{chat_id}".encode()) % partitions


# -- entries ----------------------------------------------------------------------------
def encode_incoming(msg: Incoming) -> str:
    return json.dumps(asdict(msg), ensure_ascii=False, separators=(",", ":"))


def decode_incoming(raw: str) -> Incoming:
    data: dict[str, Any] = json.loads(raw)
    data["attachments"] = tuple(Attachment(**a) for a in data.get("attachments") or ())
    return Incoming(**data)


def encode_replies(replies: list[Outgoing]) -> list[dict[str, Any]]:
    return [asdict(r) for r in replies]


def decode_replies(raw: list[dict[str, Any]]) -> list[Outgoing]:
    out = []
    for item in raw:
        buttons = tuple(Button(**b) for b in item.get("buttons") or ())
        out.append(Outgoing(**{**item, "buttons": buttons}))
    return out


@dataclass(frozen=True, slots=True)
class IntakeEntry:
    """One delivery read from a partition: ``body`` is an encoded ``Incoming`` (kind
    ``incoming``) or a raw Telegram update (kind ``telegram``); ``answer_to``/``request`` say
    where the front waits for the turn's replies (pull channels only)."""

    partition: int
    id: str
    kind: str
    body: str
    answer_to: str | None = None
    request: str | None = None


def _entry(partition: int, entry_id: Any, fields: Any) -> IntakeEntry:
    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    got = {text(k): text(v) for k, v in (fields or {}).items()}
    return IntakeEntry(
        partition, text(entry_id), got.get("k", ""), got.get("b", ""), got.get("a") or None, got.get("r") or None
    )


def _translated(operation: str) -> AbstractContextManager[None]:
    return redis_errors(f"intake stream: {operation}")


class RedisIntakeStream:
    """``RedisIntakeStream(redis, keys, partitions)``: the partitions and their consumer group."""

    def __init__(self, redis: Redis, keys: IntakeKeys, partitions: int = 16) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.redis = redis
        self.keys = keys
        self.partitions = partitions
        self._grouped: set[int] = set()

    @classmethod
    def from_url(cls, url: str, keys: IntakeKeys, partitions: int = 16, **kwargs: Any) -> RedisIntakeStream:
        return cls(Redis.from_url(url, **kwargs), keys, partitions)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ensure_group(self, partition: int) -> None:
        """The partition's stream and its consumer group (``MKSTREAM``), once per process."""
        if partition in self._grouped:
            return
        with _translated("create group"):
            try:
                await self.redis.xgroup_create(self.keys.stream(partition), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._grouped.add(partition)

    # -- the front ----------------------------------------------------------------------
    async def append(
        self, partition: int, kind: str, body: str, *, answer_to: str | None = None, request: str | None = None
    ) -> str:
        """Append one delivery to ``partition``; returns the entry id."""
        fields: dict[str, str] = {"k": kind, "b": body}
        if answer_to is not None and request is not None:
            fields |= {"a": answer_to, "r": request}
        await self.ensure_group(partition)  # a group made after the first entry would skip none, but say so
        with _translated("append"):
            entry_id = await self.redis.xadd(self.keys.stream(partition), fields)  # type: ignore[arg-type]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def publish_answer(self, answer_to: str, request: str, answer: dict[str, Any]) -> None:
        """Tell the front waiting on ``answer_to`` the outcome of its ``request``."""
        with _translated("answer"):
            await self.redis.publish(answer_to, json.dumps({"request": request, **answer}, ensure_ascii=False))

    # -- the worker ---------------------------------------------------------------------
    async def read_new(self, partition: int, consumer: str, count: int, block_ms: int) -> list[IntakeEntry]:
        """Entries never delivered to anyone (``>``), oldest first; waits up to ``block_ms``."""
        await self.ensure_group(partition)
        with _translated("read"):
            got: Any = await self.redis.xreadgroup(
                GROUP, consumer, {self.keys.stream(partition): ">"}, count=count, block=block_ms
            )
        return [_entry(partition, i, f) for _stream, rows in got or () for i, f in rows]

    async def youngest_pending_idle(self, partition: int, limit: int = 1000) -> int | None:
        """The smallest idle time (ms) among the partition's pending entries; None if none."""
        await self.ensure_group(partition)
        with _translated("pending"):
            rows = await self.redis.xpending_range(self.keys.stream(partition), GROUP, "-", "+", limit)
        if not rows:
            return None
        return min(int(r["time_since_delivered"]) for r in rows)

    async def claim_pending(self, partition: int, consumer: str, min_idle_ms: int) -> list[IntakeEntry]:
        """``XAUTOCLAIM`` every pending entry idle at least ``min_idle_ms``, in id order.

        Entries deleted from the stream while pending (trimmed) come back without fields; they
        are acknowledged here, since there is nothing left to run."""
        await self.ensure_group(partition)
        stream = self.keys.stream(partition)
        start, out = "0-0", []
        with _translated("autoclaim"):
            while True:
                reply = await self.redis.xautoclaim(stream, GROUP, consumer, min_idle_ms, start, count=100)
                cursor, rows = reply[0], reply[1]
                deleted = reply[2] if len(reply) > 2 else []
                out += [_entry(partition, i, f) for i, f in rows if f]
                if deleted:
                    await self.redis.xack(stream, GROUP, *deleted)
                cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
                if cursor == "0-0":
                    break
                start = cursor
        return sorted(out, key=lambda e: tuple(int(p) for p in e.id.split("-")))

    async def ack(self, entry: IntakeEntry) -> None:
        """Done (its turn is committed): acknowledged and deleted, in one transaction."""
        stream = self.keys.stream(entry.partition)
        with _translated("ack"):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(stream, GROUP, entry.id)
                pipe.xdel(stream, entry.id)
                await pipe.execute()

    async def lag(self, partition: int) -> int:
        """Entries of the partition not yet read by any worker (the group's ``lag``)."""
        await self.ensure_group(partition)
        with _translated("lag"):
            groups = await self.redis.xinfo_groups(self.keys.stream(partition))
        for group in groups:
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == GROUP:
                lag = group.get("lag")
                return int(lag) if lag is not None else int(await self.redis.xlen(self.keys.stream(partition)))
        return 0

    # -- live workers -------------------------------------------------------------------
    async def heartbeat(self, worker: str, ttl: float) -> int:
        """Mark ``worker`` alive for ``ttl`` seconds; returns how many workers are alive."""
        now_ms = int(time.time() * 1000)
        key = self.keys.workers()
        with _translated("heartbeat"):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {worker: now_ms + int(ttl * 1000)})
                pipe.zremrangebyscore(key, "-inf", now_ms)
                pipe.zcard(key)
                result = await pipe.execute()
        return int(result[-1])

    async def leave(self, worker: str) -> None:
        with _translated("leave"):
            await self.redis.zrem(self.keys.workers(), worker)


class RedisAnswers:
    """The front's end of the answers: one pub/sub channel per front process, futures by request.

    Lossy by design: a front that misses an answer (its subscription broke) lets the request
    time out with "retry shortly", and the client's retry with the same message id gets the
    stored replies (the pipeline's durable dedupe), never a second turn.
    """

    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        with _translated("subscribe"):
            await pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._listen(pubsub), name="intake-answers")

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                try:
                    message = await pubsub.get_message(timeout=1.0)
                except REDIS_UNAVAILABLE:
                    log.warning("intake answers: redis unreachable; resubscribing")
                    await asyncio.sleep(0.5)
                    with contextlib.suppress(Exception):
                        await pubsub.subscribe(self.channel)
                    continue
                if message is None or message.get("type") != "message":
                    continue
                try:
                    answer = json.loads(message["data"])
                    waiter = self._waiting.pop(str(answer.get("request")), None)
                except (ValueError, TypeError, AttributeError):
                    continue
                if waiter is not None and not waiter.done():
                    waiter.set_result(answer)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def expect(self, request: str) -> asyncio.Future[dict[str, Any]]:
        """A future the answer to ``request`` completes (register before appending the entry)."""
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request] = waiter
        return waiter

    def forget(self, request: str) -> None:
        self._waiting.pop(request, None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
