"""The ``Channel`` port: what the outbox reader needs from a push channel (Telegram today).

A channel makes ONE attempt per ``send`` and says what happened, classified so the reader
(``bot/channels/outbox.py``) decides alone what comes next — retry when, give up when,
tell agents how. No channel sleeps, retries or writes delivery statuses itself: that is
how one chat's 429 stops delaying every other chat, and how a reply is marked sent only
after the platform accepted it.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

from common.messages import Outgoing
from storage.send_limits import Turn


class Outcome(str, enum.Enum):
    OK = "ok"  # the platform accepted every part
    RETRY_AFTER = "retry_after"  # rate limited (429): nothing more arrived; try again after ``retry_after``
    TRANSIENT = "transient"  # 5xx, a timeout or a connection failure: back off, try again
    PERMANENT = "permanent"  # the request itself is refused (400…): retrying never helps
    UNREACHABLE = "unreachable"  # the customer blocked the bot (403): mark them, give up


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one ``send`` did.

    ``parts_sent`` counts the parts of a long message the platform has accepted so far,
    including those accepted on earlier attempts (``Outgoing.parts_sent``): the reader keeps
    it on the row so a retry sends only the rest, never a part twice.
    """

    outcome: Outcome
    error: str | None = None
    retry_after: float | None = None
    parts_sent: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def forbidden(self) -> bool:
        return self.outcome is Outcome.UNREACHABLE

    @property
    def final(self) -> bool:
        """No retry can change the outcome."""
        return self.outcome in (Outcome.OK, Outcome.PERMANENT, Outcome.UNREACHABLE)


class Channel(ABC):
    """A push channel as the outbox reader sees it."""

    #: the ``Message.channel`` value of the rows this channel sends
    name: str

    @abstractmethod
    async def start(self) -> None:
        """Open connections the sends need (the reader starts after this)."""

    @abstractmethod
    async def send(self, message: Outgoing) -> DeliveryResult:
        """One attempt to deliver ``message`` (its parts from ``message.parts_sent`` on);
        never raises for a platform error, never sleeps through a rate limit."""

    async def turn(self, chat_id: str) -> Turn:
        """Book the next message to ``chat_id`` under the platform's sending limits: granted,
        it may go ``wait`` seconds from now; not granted, ask again after ``wait`` (nothing was
        booked). The reader asks before each send; no limits here."""
        return Turn(True, 0.0)

    @abstractmethod
    async def close(self) -> None:
        """Release what ``start`` opened (the reader has stopped sending by then)."""
