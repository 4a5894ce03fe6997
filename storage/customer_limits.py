"""Per-customer rate limit: how fast one customer may write before the bot stops answering.

A customer who sends more than ``messages`` messages in any ``seconds`` (a script, a stuck
client, someone pasting line by line) gets one polite reply; the messages that follow in
that window are still stored (the agents see every word) but the bot does not answer them,
so a flood costs neither the classifier's time nor the customer's chat a wall of replies.

The limiter is a sliding-window log: per customer, the arrival times of their recent messages.
A message is within the rate when fewer than ``messages`` arrived in the ``seconds`` before
it; every message counts, answered or not, so a customer who keeps flooding stays quiet
until they pause for a whole window. Only the newest ``messages`` entries are kept: whether
the window holds that many is all a decision needs, so a flood costs a bounded amount of memory.

Each message is logged under an id (its channel and delivery key): a redelivery of a message
still in the log is not counted again and is answered as before — the ticket store's unique
delivery key then rolls the copy's turn back and replays what the first copy got. A customer
over the rate is told once (:attr:`Pace.NOTICE`); a notice lasts ``seconds``, so one who keeps
flooding hears it at most once a window.

Two implementations of one port:

- ``MemoryCustomerLimiter`` (here) — the embedded default, one process.
- ``RedisCustomerLimiter`` (``storage/redis_customer_limits.py``) — every worker shares the
  customer's log, in one Lua script under the app's key prefix.

Time is injectable (``clock``) so tests move a fake clock instead of sleeping.
"""

from __future__ import annotations

import enum
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class Pace(enum.Enum):
    """The limiter's verdict on one customer message."""

    ANSWER = "answer"  # within the rate (or a redelivery): the bot answers as usual
    NOTICE = "notice"  # the first message over the rate in this window: the polite reply
    QUIET = "quiet"  # over the rate, already told: stored, not answered


@dataclass(frozen=True, slots=True)
class CustomerRate:
    """At most ``messages`` answered in any ``seconds``."""

    messages: int
    seconds: float

    def __post_init__(self) -> None:
        if self.messages < 1 or not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ValueError(f"a customer rate needs messages >= 1 and seconds > 0, got {self.messages}/{self.seconds}")


class CustomerLimiter(ABC):
    """Port: count a customer's messages against :attr:`rate` (see the module docstring)."""

    rate: CustomerRate

    @abstractmethod
    async def check(self, customer_id: int, message: str) -> Pace:
        """Count the message ``message`` (an id: the same for every copy of one delivery) of
        ``customer_id`` and say how the bot should treat it."""

    async def close(self) -> None:
        """Free what the limiter holds (not a Redis client it was given)."""


class MemoryCustomerLimiter(CustomerLimiter):
    """The embedded default: a log per customer in a dict; one process only.

    ``max_customers`` bounds the dict: past it, customers with nothing left in their window
    are forgotten (they would be answered anyway).
    """

    def __init__(self, rate: CustomerRate, *, clock: Clock = time.monotonic, max_customers: int = 10_000) -> None:
        self.rate = rate
        self.clock = clock
        self._max_customers = max_customers
        self._logs: dict[int, deque[tuple[float, str]]] = {}
        self._notice_until: dict[int, float] = {}

    async def check(self, customer_id: int, message: str) -> Pace:
        now = self.clock()
        log = self._logs.get(customer_id)
        if log is None:
            if len(self._logs) >= self._max_customers:
                self._forget(now)
            log = self._logs[customer_id] = deque()
        if any(seen == message for _, seen in log):
            return Pace.ANSWER  # a redelivery: the ticket store decides (see the module docstring)
        while log and log[0][0] <= now - self.rate.seconds:
            log.popleft()
        earlier = len(log)
        log.append((now, message))
        while len(log) > self.rate.messages:
            log.popleft()
        if earlier < self.rate.messages:
            return Pace.ANSWER
        if self._notice_until.get(customer_id, -math.inf) > now:
            return Pace.QUIET
        self._notice_until[customer_id] = now + self.rate.seconds
        return Pace.NOTICE

    def _forget(self, now: float) -> None:
        """Drop the customers with nothing left in their window (their notice, given at their
        last message at the latest, is over too)."""
        horizon = now - self.rate.seconds
        for customer_id in [c for c, log in self._logs.items() if not log or log[-1][0] <= horizon]:
            del self._logs[customer_id]
            self._notice_until.pop(customer_id, None)
