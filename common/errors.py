"""One error root for deskbot; subclasses carry context, edges translate them."""

from __future__ import annotations


class DeskbotError(Exception):
    """Root of every error deskbot raises on purpose."""


class ConfigError(DeskbotError):
    """The configuration is invalid; the message names the key and value."""


class StorageError(DeskbotError):
    """The ticket or state store failed."""


class StoreUnavailable(StorageError):
    """The database or Redis cannot be reached right now (down, restarting, timed out).

    Raised by ``storage/`` in place of the drivers' connection errors, so the edges can
    answer "try again shortly" (HTTP 503 + ``Retry-After``) without knowing SQLAlchemy,
    asyncpg or redis-py. Nothing was changed by the failed operation's transaction.
    """

    def __init__(self, store: str, detail: str, retry_after: float = 5.0) -> None:
        super().__init__(f"{store} unavailable: {detail}")
        self.store = store
        self.retry_after = retry_after


class DuplicateDelivery(StorageError):
    """A message with this ``(channel, delivery_key)`` is stored already: a redelivery.

    Raised by ``storage/`` when an insert meets the messages' unique delivery key, so the
    pipeline tells a redelivery apart without knowing SQLAlchemy; the transaction rolls back.
    """


class TicketNotFound(DeskbotError):
    def __init__(self, number: str) -> None:
        super().__init__(f"ticket {number} not found")
        self.number = number


class ChannelError(DeskbotError):
    def __init__(self, channel: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.retry_after = retry_after


class NotFound(DeskbotError):
    """Something other than a ticket (agent, message, customer, canned response) is missing."""


class Conflict(DeskbotError):
    """The change contradicts the current state (already claimed, duplicate e-mail, …)."""
