"""The channel-neutral message types every adapter speaks.

Adapters translate platform updates into ``Incoming`` and send ``Outgoing``; nothing
past the adapter knows which platform a message came from beyond its channel name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Button:
    title: str
    payload: str


def buttons_payload(buttons: Iterable[Button]) -> dict[str, Any]:
    """How an outbound message's buttons are stored (``Message.payload``): the one writer."""
    listed = [[b.title, b.payload] for b in buttons]
    return {"buttons": listed} if listed else {}


def stored_buttons(payload: Mapping[str, Any] | None) -> tuple[Button, ...]:
    """The buttons of a stored outbound message: the one reader, tolerant of bad rows."""
    raw = (payload or {}).get("buttons") or []
    if not isinstance(raw, list):
        return ()
    return tuple(
        Button(str(item[0]), str(item[1])) for item in raw if isinstance(item, (list, tuple)) and len(item) == 2
    )


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the customer sent; ``file_id`` is the platform's handle, not the bytes."""

    kind: str  # photo, document, sticker, voice, location, contact, ...
    file_id: str | None = None
    name: str | None = None
    size: int | None = None
    mime_type: str | None = None
    # Why the channel refused the file ("too_large", "not_accepted"); the pipeline explains
    # that to the customer and notes it on the ticket instead of dropping it silently.
    refused: str | None = None
    phone: str | None = None  # a shared contact's number (kind "contact")
    own: bool = False  # a contact that is the sender's own


@dataclass(frozen=True, slots=True)
class Incoming:
    """One customer message from any channel.

    ``delivery_key`` is unique per delivery on that channel (Telegram's update_id, a
    REST client's message id) so redeliveries are processed once. ``payload`` carries
    button data; a Rasa-style ``/intent{"slot": "value"}`` payload skips classification.
    """

    channel: str
    chat_id: str
    user_id: str
    text: str = ""
    delivery_key: str | None = None
    payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    display_name: str | None = None
    language: str | None = None
    edited: bool = False
    # A pull channel (REST, web chat, console) answers the turn's replies in its response:
    # they are stored sent. A push channel's (Telegram) are queued for the outbox reader.
    replies_in_answer: bool = False


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One reply; ``buttons`` render as quick replies or an inline keyboard."""

    channel: str
    chat_id: str
    text: str
    buttons: tuple[Button, ...] = ()
    message_id: int | None = None  # the stored Message row (the outbox's unit of delivery)
    # Parts of a long message the platform accepted on earlier attempts (not sent again).
    parts_sent: int = 0
