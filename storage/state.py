"""The state-store port: short-lived conversation state, delivery dedupe, rate limits.

Conversation state expires (a half-filled form from last week should not resume);
anything that must survive — tickets, the conversation owner — lives in the ticket store.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StateKey:
    """Identifies one conversation; the key builder owns its string form."""

    customer_id: int


class KeyBuilder:
    """The one place where state keys become strings (Redis keys, dict keys)."""

    def __init__(self, prefix: str = "deskbot") -> None:
        self.prefix = prefix

    def state(self, key: StateKey) -> str:
        return f"{self.prefix}:state:{key.customer_id}"

    def delivery(self, channel: str, delivery_key: str) -> str:
        return f"{self.prefix}:delivery:{channel}:{delivery_key}"

    def rate(self, name: str) -> str:
        return f"{self.prefix}:rate:{name}"

    def events(self) -> str:
        """The pub/sub channel of the event bus."""
        return f"{self.prefix}:events"

    def lease(self, name: str) -> str:
        """A lease held by one process at a time (``storage/leases.py``), e.g. ``leader``."""
        return f"{self.prefix}:lease:{name}"

    def send_limit(self, sender: str, chat: str | None) -> str:
        """A sending-limit bucket (``storage/send_limits.py``): the sender's own, or one chat's."""
        return f"{self.prefix}:sendlimit:{sender}" if chat is None else f"{self.prefix}:sendlimit:{sender}:chat:{chat}"


def check_ttl(ttl: float) -> None:
    """Reject a TTL the backends would treat differently (Redis refuses ``PX 0``)."""
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")


class StateStore(ABC):
    """Port for conversation state with TTL and at-most-once delivery claims."""

    @abstractmethod
    async def get(self, key: StateKey) -> dict[str, Any] | None:
        """The stored state, or None when absent or expired."""

    @abstractmethod
    async def set(self, key: StateKey, data: dict[str, Any], ttl: float) -> None:
        """Store state (JSON-able dict) for ``ttl`` seconds (> 0).

        The value is stored as JSON on every backend: ``get`` returns a fresh copy, tuples
        come back as lists, and a value JSON cannot encode raises ``TypeError``.
        """

    @abstractmethod
    async def delete(self, key: StateKey) -> None:
        """Forget the state."""

    @abstractmethod
    async def claim_delivery(self, channel: str, delivery_key: str, ttl: float) -> bool:
        """Atomically mark a delivery as being processed now. False if already claimed.

        Only an in-flight hint: channels redeliver (Telegram retries webhooks, clients resend
        on timeouts), and claiming first keeps two concurrent copies from both running. It is
        released after the turn and ``ttl`` is seconds, so a copy whose process died holds its
        retry up briefly; whether a delivery was processed is the ticket store's to say
        (its unique ``(channel, delivery_key)``), never this claim's.
        """

    @abstractmethod
    async def release_delivery(self, channel: str, delivery_key: str) -> None:
        """End a claim (after the turn, done or failed); harmless when none is held."""

    @abstractmethod
    async def hit(self, name: str, window: float) -> int:
        """Count one event in a fixed window; returns the count including this one."""

    async def close(self) -> None:
        """Release connections."""


class MemoryStateStore(StateStore):
    """Embedded default: a dict with expiry times; one process only."""

    def __init__(self, key_builder: KeyBuilder | None = None, clock: Any = time.monotonic) -> None:
        self.keys = key_builder or KeyBuilder()
        self._clock = clock
        self._data: dict[str, tuple[float, Any]] = {}
        self._ops = 0

    def _get(self, k: str) -> Any:
        item = self._data.get(k)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            del self._data[k]
            return None
        return value

    def _put(self, k: str, value: Any, ttl: float) -> None:
        self._data[k] = (self._clock() + ttl, value)
        self._ops += 1
        if self._ops % 10_000 == 0:
            self._sweep()

    def _sweep(self) -> None:
        """Drop expired entries so memory stays bounded by live conversations."""
        now = self._clock()
        for k in [k for k, (exp, _) in self._data.items() if exp <= now]:
            del self._data[k]

    async def get(self, key: StateKey) -> dict[str, Any] | None:
        value = self._get(self.keys.state(key))
        if value is None:
            return None
        data: dict[str, Any] = json.loads(value)
        return data

    async def set(self, key: StateKey, data: dict[str, Any], ttl: float) -> None:
        # Stored as JSON like in Redis, so a state that works here works there too, and
        # neither the caller's later changes nor the reader's leak into the stored copy.
        check_ttl(ttl)
        self._put(self.keys.state(key), json.dumps(data), ttl)

    async def delete(self, key: StateKey) -> None:
        self._data.pop(self.keys.state(key), None)

    async def claim_delivery(self, channel: str, delivery_key: str, ttl: float) -> bool:
        check_ttl(ttl)
        k = self.keys.delivery(channel, delivery_key)
        if self._get(k) is not None:
            return False
        self._put(k, 1, ttl)
        return True

    async def release_delivery(self, channel: str, delivery_key: str) -> None:
        self._data.pop(self.keys.delivery(channel, delivery_key), None)

    async def hit(self, name: str, window: float) -> int:
        check_ttl(window)
        k = self.keys.rate(name)
        current = self._get(k)
        if current is None:
            self._put(k, 1, window)
            return 1
        expires, count = self._data[k]
        self._data[k] = (expires, count + 1)
        return int(count) + 1
