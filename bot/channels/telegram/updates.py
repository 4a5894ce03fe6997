"""Telegram's raw update JSON → the pipeline's ``Incoming``, the same for both libraries.

Both adapters hand over the update as Telegram's own JSON, so this is the one place that
knows which fields carry text, buttons, files and the user's language. Commands become
button payloads (``/status`` → ``/ticket_status``) so they skip the classifier; files keep
their ``file_id`` (never the bytes); media the shop refuses is marked, not dropped.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.channels.telegram.api import CHANNEL
from common.messages import Attachment, Incoming

# Telegram command → the pipeline payload it stands for.
COMMANDS = {
    "start": "/greet",
    "help": "/greet",
    "cancel": "/cancel",
    "status": "/ticket_status",
    "human": "/human_handoff",
}
# What a customer may send that carries no words the bot can read.
NO_TEXT_KINDS = ("sticker", "voice", "video_note", "location", "venue", "poll", "dice", "game")
FILE_KINDS = ("document", "video", "audio", "animation")
MAX_TEXT_CHARS = 4096


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """Which files the shop accepts: ``accepted`` holds kinds (``photo``) and MIME patterns."""

    accepted: Sequence[str] = ("photo", "image/*", "application/pdf", "video/*")
    max_bytes: int = 20 * 1024 * 1024

    def refusal(self, kind: str, mime_type: str | None, size: int | None) -> str | None:
        if size is not None and size > self.max_bytes:
            return f"too_large:{self.max_bytes // (1024 * 1024)}"
        for entry in self.accepted:
            if entry == kind or (mime_type and fnmatch.fnmatchcase(mime_type.lower(), entry.lower())):
                return None
        return "not_accepted"


@dataclass(frozen=True, slots=True)
class ParsedUpdate:
    """What one update asks of the channel.

    ``incoming`` is None when there is nothing for the pipeline (``ignored`` says why);
    ``callback_query_id`` must be answered whatever happens, or the user's button spins.
    """

    update_id: int
    incoming: Incoming | None
    callback_query_id: str | None = None
    chat_id: int | None = None
    chat_type: str | None = None
    ignored: str | None = None


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _dict(value: object) -> dict[str, Any]:
    """A JSON object, or an empty one: a body's fields are never trusted to have their type."""
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Update kinds whose object carries the ``chat`` it happened in.
CHAT_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post", "my_chat_member",
              "chat_member", "chat_join_request")
GROUP_TYPES = ("group", "supergroup")


def chat_key(raw: dict[str, Any]) -> tuple[str, int | None]:
    """Which conversation an update belongs to, so the intake keeps each one's updates in order."""
    for kind in CHAT_KINDS:
        chat_id = _int(_dict(_dict(raw.get(kind)).get("chat")).get("id"))
        if chat_id is not None:
            return "chat", chat_id
    query = _dict(raw.get("callback_query"))
    chat_id = _int(_dict(_dict(query.get("message")).get("chat")).get("id"))
    if chat_id is not None:
        return "chat", chat_id
    user_id = _int(_dict(query.get("from")).get("id"))
    if user_id is not None:
        return "user", user_id
    return "update", _int(raw.get("update_id"))


def group_sighting(raw: dict[str, Any]) -> tuple[int, str] | None:
    """``(chat id, title)`` of the group an update shows the bot in, if any.

    The bot was added to a group (``my_chat_member``, now a member or an administrator), or
    a message or a button tap came from one. Only the group's own id and title: nothing
    about the person who wrote.
    """
    member = _dict(raw.get("my_chat_member"))
    if member:
        if str(_dict(member.get("new_chat_member")).get("status")) not in ("member", "administrator", "creator"):
            return None
        chat = _dict(member.get("chat"))
    else:
        message = _dict(raw.get("message") or raw.get("edited_message"))
        if not message:
            message = _dict(_dict(raw.get("callback_query")).get("message"))
        chat = _dict(message.get("chat"))
    chat_id = _int(chat.get("id"))
    if chat_id is None or chat.get("type") not in GROUP_TYPES:
        return None
    title = " ".join(str(chat.get("title") or "(untitled)").split())[:128]  # one log line, whatever it holds
    return chat_id, title


def chat_command(raw: dict[str, Any]) -> tuple[str, str] | None:
    """A message's command as ``(name, addressed_to)``: ``/chatid@deskbot_bot`` → ``("chatid", "deskbot_bot")``."""
    text = _dict(raw.get("message")).get("text")
    if not isinstance(text, str) or not text.startswith("/") or len(text) < 2:
        return None
    name, _, addressed_to = text.split(maxsplit=1)[0][1:].partition("@")
    return name.lower(), addressed_to


def _user(raw: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(user id, display name, language); the id is "" unless Telegram's integer (a forged
    ``"x\\u0000y"`` reached PostgreSQL), names lose control characters."""
    user = _dict(raw.get("from"))
    names = [CONTROL.sub("", user[k]) for k in ("first_name", "last_name") if isinstance(user.get(k), str)]
    username, language = user.get("username"), user.get("language_code")
    user_id = _int(user.get("id"))
    return ("" if user_id is None else str(user_id),
            " ".join(n for n in names if n) or (CONTROL.sub("", username) if isinstance(username, str) else None),
            language if isinstance(language, str) else None)


def _command(text: str, bot_username: str | None) -> str | None:
    """``/status`` or ``/status@deskbot_bot`` → its payload; other text → None."""
    if not text.startswith("/"):
        return None
    word = text.split(maxsplit=1)[0][1:]
    name, _, addressed_to = word.partition("@")
    if addressed_to and bot_username and addressed_to.lower() != bot_username.lower():
        return None
    return COMMANDS.get(name.lower())


def _attachments(message: dict[str, Any], media: MediaPolicy) -> list[Attachment]:
    found: list[Attachment] = []
    photos = [p for p in message.get("photo") or [] if isinstance(p, dict)] if isinstance(
        message.get("photo"), list) else []
    if photos:
        # Telegram lists the sizes smallest first; the largest is the one worth keeping.
        largest = max(photos, key=lambda p: ((_int(p.get("width")) or 0) * (_int(p.get("height")) or 0),
                                             _int(p.get("file_size")) or 0))
        size = _int(largest.get("file_size"))
        found.append(Attachment("photo", str(largest.get("file_id")), size=size, mime_type="image/jpeg",
                                refused=media.refusal("photo", "image/jpeg", size)))
    for kind in FILE_KINDS:
        item = message.get(kind)
        if isinstance(item, dict) and item.get("file_id"):
            mime = item.get("mime_type") if isinstance(item.get("mime_type"), str) else None
            size = _int(item.get("file_size"))
            name = item.get("file_name") if isinstance(item.get("file_name"), str) else None
            found.append(Attachment(kind, str(item["file_id"]), name=name, size=size,
                                    mime_type=mime, refused=media.refusal(kind, mime, size)))
    for kind in NO_TEXT_KINDS:
        if kind in message:
            item = message[kind]
            file_id = item.get("file_id") if isinstance(item, dict) else None
            found.append(Attachment(kind, str(file_id) if file_id else None))
    contact = message.get("contact")
    if isinstance(contact, dict) and contact.get("phone_number"):
        phone = CONTROL.sub("", str(contact["phone_number"]))[:39]  # the phone column holds 40
        phone = phone if phone.startswith("+") else f"+{phone}"
        sender = _dict(message.get("from")).get("id")
        found.append(Attachment("contact", phone=phone, own=contact.get("user_id") == sender))
    return found


def parse_update(
    raw: dict[str, Any],
    *,
    media: MediaPolicy,
    allow_groups: bool = False,
    bot_username: str | None = None,
    decode_button: Callable[[str], str | None] = lambda data: data,
) -> ParsedUpdate:
    """One raw update → ``ParsedUpdate``; anything unexpected is ignored with a reason."""
    update_id = _int(raw.get("update_id")) or 0
    key = str(update_id)
    query = raw.get("callback_query")
    if isinstance(query, dict):
        return _parse_callback(update_id, query, allow_groups, decode_button)
    edited = "message" not in raw and "edited_message" in raw
    message = raw.get("message") or raw.get("edited_message")
    if not isinstance(message, dict):
        kinds = sorted(k for k in raw if k != "update_id")
        return ParsedUpdate(update_id, None, ignored=f"unsupported update {kinds}")
    chat = _dict(message.get("chat"))
    chat_id, chat_type = _int(chat.get("id")), str(chat.get("type", ""))
    if chat_id is None or not _dict(message.get("from")):
        return ParsedUpdate(update_id, None, ignored="no chat or sender")
    if chat_type == "channel" or (chat_type != "private" and not allow_groups):
        return ParsedUpdate(update_id, None, chat_id=chat_id, chat_type=chat_type, ignored="group chat")
    user_id, name, language = _user(message)
    if not user_id:
        return ParsedUpdate(update_id, None, chat_id=chat_id, chat_type=chat_type, ignored="no chat or sender")
    text = str(message.get("text") or message.get("caption") or "")[:MAX_TEXT_CHARS]
    payload = _command(text, bot_username)
    if payload is not None:
        text = ""
    found = _attachments(message, media)
    contact = next((a for a in found if a.kind == "contact"), None)
    if contact is not None and not text:
        text = contact.phone or ""
    # In a group, the conversation is the group's, the customer is still the person.
    incoming = Incoming(
        channel=CHANNEL,
        chat_id=str(chat_id),
        user_id=user_id,
        text=text,
        delivery_key=key,
        payload=payload,
        attachments=tuple(found),
        display_name=name,
        language=language,
        edited=edited,
    )
    return ParsedUpdate(update_id, incoming, chat_id=int(chat_id), chat_type=chat_type)


def _parse_callback(
    update_id: int, query: dict[str, Any], allow_groups: bool, decode_button: Callable[[str], str | None]
) -> ParsedUpdate:
    query_id = str(query.get("id", ""))
    message = _dict(query.get("message"))
    chat = _dict(message.get("chat"))
    chat_id, chat_type = _int(chat.get("id")), str(chat.get("type", ""))
    user_id, name, language = _user(query)
    if chat_id is None:
        return ParsedUpdate(update_id, None, query_id, ignored="button of an inline message")
    if not user_id:
        return ParsedUpdate(update_id, None, query_id, ignored="no sender")
    if chat_type != "private" and not allow_groups:
        return ParsedUpdate(update_id, None, query_id, int(chat_id), chat_type, ignored="group chat")
    data = query.get("data")
    payload = decode_button(str(data)) if data else None
    if not payload:
        return ParsedUpdate(update_id, None, query_id, int(chat_id), chat_type, ignored="expired button")
    incoming = Incoming(
        channel=CHANNEL,
        chat_id=str(chat_id),
        user_id=user_id,
        delivery_key=str(update_id),
        payload=payload,
        display_name=name,
        language=language,
    )
    return ParsedUpdate(update_id, incoming, query_id, int(chat_id), chat_type)
