"""The web front's side of the queued intake (``intake.queue: redis``).

Instead of running the turn, the front appends the delivery to its conversation's partition
stream (``storage/intake_stream.py``) and a worker (``bot/worker.py``) runs it. What the
front answers stays what clients know:

- **REST channel and web chat** (pull channels: the replies are the HTTP answer).
  :meth:`QueuedIntake.handle` has the pipeline's signature: it registers a waiter on this
  front's answers channel, appends, and returns the replies the worker publishes once the
  turn is committed. No answer within ``answer_timeout_seconds`` raises ``DeliveryInFlight``:
  the route's 503 "retry shortly", after which the client's retry with the same message id
  gets the stored replies (the pipeline's durable dedupe by delivery key). A message without
  a message id gets a key here (``q:<uuid>``), so a worker killed between the commit and the
  acknowledgement cannot store it twice when its entry is claimed again.
- **Telegram webhook**: the raw update is appended (kind ``telegram``) and the webhook is
  answered 200 at once; the worker's Telegram channel runs ``process`` on it (agents' group
  hook, button answer, parsing, the turn, the outbox). Queuing the raw update rather than
  its ``Incoming`` keeps the whole Telegram intake in one place, in the process that also
  sends the replies and remembers the buttons it rendered. The partition is the update's chat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from bot.config import Settings
from bot.pipeline import DeliveryInFlight
from common.errors import StoreUnavailable
from common.messages import Incoming, Outgoing
from storage.intake_stream import (
    KIND_INCOMING,
    KIND_TELEGRAM,
    IntakeKeys,
    RedisAnswers,
    RedisIntakeStream,
    decode_replies,
    encode_incoming,
    partition_of,
)
from storage.leases import new_token

log = logging.getLogger("deskbot.intake")

TELEGRAM = "telegram"
# Where a Telegram update names its chat, in the order they are looked for.
_UPDATE_KINDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "message_reaction",
)


def telegram_chat(raw: Mapping[str, Any]) -> str:
    """The chat an update belongs to (its conversation's partition key)."""
    for kind in _UPDATE_KINDS:
        chat = (raw.get(kind) or {}).get("chat") or {}
        if "id" in chat:
            return str(chat["id"])
    query = raw.get("callback_query") or {}
    chat = (query.get("message") or {}).get("chat") or {}
    if "id" in chat:
        return str(chat["id"])
    sender = query.get("from") or {}
    return str(sender.get("id", raw.get("update_id", "")))


class QueuedIntake:
    """Appends deliveries to the intake streams; waits for the answers of pull channels."""

    def __init__(self, stream: RedisIntakeStream, answers: RedisAnswers, answer_timeout: float) -> None:
        self.stream = stream
        self.answers = answers
        self.answer_timeout = answer_timeout

    async def handle(self, msg: Incoming) -> list[Outgoing]:
        """The pipeline's ``handle`` across the queue: the replies the adapter must deliver."""
        if msg.delivery_key is None:
            msg = replace(msg, delivery_key=f"q:{uuid.uuid4().hex}")
        partition = partition_of(msg.channel, msg.chat_id, self.stream.partitions)
        if not msg.replies_in_answer:
            await self.stream.append(partition, KIND_INCOMING, encode_incoming(msg))
            return []  # a push channel's replies are the outbox's (queued by the worker's turn)
        request = uuid.uuid4().hex
        waiter = self.answers.expect(request)
        try:
            await self.stream.append(
                partition, KIND_INCOMING, encode_incoming(msg), answer_to=self.answers.channel, request=request
            )
            answer = await asyncio.wait_for(waiter, self.answer_timeout)
        except TimeoutError:
            log.warning("no answer from a worker in time", extra={"channel": msg.channel, "partition": partition})
            raise DeliveryInFlight(f"delivery {msg.channel}:{msg.delivery_key} is queued; retry shortly") from None
        finally:
            self.answers.forget(request)
        status = answer.get("status")
        if status == "ok":
            return decode_replies(answer.get("replies") or [])
        if status == "in_flight":
            raise DeliveryInFlight(f"delivery {msg.channel}:{msg.delivery_key} is still being processed")
        raise StoreUnavailable("worker", f"the worker could not run the turn ({status})")

    async def submit_telegram(self, raw: dict[str, Any]) -> None:
        """A Telegram update, stored in the stream: the webhook may confirm it now."""
        partition = partition_of(TELEGRAM, telegram_chat(raw), self.stream.partitions)
        await self.stream.append(partition, KIND_TELEGRAM, json.dumps(raw, ensure_ascii=False))


@asynccontextmanager
async def open_queued_intake(settings: Settings) -> AsyncIterator[QueuedIntake]:
    """The front's queue and its answers channel (subscribed before the first append)."""
    config = settings.intake
    keys = IntakeKeys(settings.state.key_prefix)
    stream = RedisIntakeStream.from_url(config.redis_url, keys, config.partitions)
    answers = RedisAnswers(stream.redis, keys.answers(new_token()))
    try:
        await answers.start()
        yield QueuedIntake(stream, answers, config.answer_timeout_seconds)
    finally:
        await answers.close()
        await stream.close()
