"""``Outgoing`` → what Telegram accepts: HTML-escaped chunks of ≤ 4096 characters and a keyboard.

Every message is sent with ``parse_mode=HTML``. Bot text is escaped (``<``, ``>``, ``&``) so a
customer's ``<b>`` quoted back is shown, not interpreted. Long texts are split between
words (at a paragraph or line break when there is one), never inside an entity such as
``&amp;`` and never inside a tag: a tag left open at a split is closed at the end of the
chunk and opened again at the start of the next, so every chunk is valid HTML on its own.
Button payloads longer than Telegram's 64-byte ``callback_data`` are replaced by a short
token that :class:`ButtonCodec` maps back.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import OrderedDict
from dataclasses import dataclass

from bot.channels.telegram.api import InlineButton, InlineKeyboard
from common.messages import Button, Outgoing

MAX_MESSAGE_CHARS = 4096
MAX_CALLBACK_BYTES = 64
TOKEN_PREFIX = "#"  # noqa: S105 - not a password: marks a remembered button payload
_TOKENS = re.compile(r"<[^>]*>|&[#\w]+;|\s+|[^<&\s]+|[<&]")
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][\w-]*)")
_PAYLOAD = re.compile(r"^(/[a-z_]+)(\{.*\})$", re.S)


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str  # HTML, ready for parse_mode=HTML
    keyboard: InlineKeyboard | None = None


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def split_html(markup: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Split HTML into chunks of at most ``limit`` characters, between words, tags kept whole."""
    if len(markup) <= limit:
        return [markup] if markup.strip() else []
    chunks: list[str] = []
    opened: list[tuple[str, str]] = []  # tags open where the current chunk starts
    body: list[str] = []  # the current chunk's tokens
    # What the chunk would render to, kept as tokens are added, so that asking whether one
    # more token fits costs that token, not the chunk: re-rendering the chunk for every token
    # made a long agent reply quadratic (seconds of CPU on the event loop for a long text).
    size = 0  # len("".join(body))
    trailing = 0  # the whitespace at its end, which rendering strips
    stack: list[tuple[str, str]] = []  # tags open after it
    prefix = 0  # len of the tags reopened at its start

    def rendered(tokens: list[str]) -> str:
        after = list(opened)
        for token in tokens:
            _track(token, after)
        suffix = "".join(f"</{name}>" for name, _ in reversed(after))
        return "".join(tag for _, tag in opened) + "".join(tokens).strip() + suffix

    def fits(piece: str) -> bool:
        after = list(stack)
        _track(piece, after)
        content = size - trailing if piece.isspace() else size + len(piece)
        return prefix + content + sum(len(name) + 3 for name, _ in after) <= limit

    def add(piece: str) -> None:
        nonlocal size, trailing
        body.append(piece)
        size += len(piece)
        trailing = trailing + len(piece) if piece.isspace() else 0
        _track(piece, stack)

    def cut() -> None:
        nonlocal body, opened, size, trailing, stack, prefix
        breaks = [i for i, t in enumerate(body) if t.isspace()]
        at = breaks[-1] if breaks and breaks[-1] > 0 else len(body)
        head, tail = body[:at], body[at:]
        text = rendered(head)
        if re.sub(r"<[^>]*>", "", text).strip():
            chunks.append(text)
        for token in head:
            _track(token, opened)
        while tail and tail[0].isspace():
            tail.pop(0)
        body, size, trailing, stack = [], 0, 0, list(opened)
        prefix = sum(len(tag) for _, tag in opened)
        for token in tail:
            add(token)

    for token in _TOKENS.findall(markup):
        pieces = _cut_word(token, limit // 2) if len(token) > limit // 2 and not token.startswith("<") else [token]
        for piece in pieces:
            if body and not fits(piece):
                cut()
                if body and not fits(piece):
                    cut()  # the words after the last break did not fit either
            if body or not piece.isspace():
                add(piece)
    last = rendered(body)
    if re.sub(r"<[^>]*>", "", last).strip():
        chunks.append(last)
    return chunks


def _cut_word(word: str, size: int) -> list[str]:
    parts = re.findall(r"&[#\w]+;|.", word, re.S)
    out, piece = [], ""
    for part in parts:
        if len(piece) + len(part) > size:
            out.append(piece)
            piece = ""
        piece += part
    return out + ([piece] if piece else [])


def _track(token: str, stack: list[tuple[str, str]]) -> None:
    if not token.startswith("<") or token.endswith("/>"):
        return
    match = _TAG_NAME.match(token)
    if match is None:
        return
    name = match.group(1).lower()
    if token.startswith("</"):
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] == name:
                del stack[index]
                break
    else:
        stack.append((name, token))


class ButtonCodec:
    """Payload ↔ ``callback_data`` (≤ 64 bytes).

    Deskbot's payloads (``/rate{"ticket": "T-1042", "score": 5}``) are compacted first; the
    rare one still too long becomes a token remembered here (most recent 10,000), so an
    old keyboard after a restart answers "expired" rather than doing the wrong thing.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._tokens: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def encode(self, payload: str) -> str:
        compact = _compact(payload)
        if len(compact.encode()) <= MAX_CALLBACK_BYTES and not compact.startswith(TOKEN_PREFIX):
            return compact
        token = TOKEN_PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:32]
        self._tokens[token] = payload
        self._tokens.move_to_end(token)
        while len(self._tokens) > self._capacity:
            self._tokens.popitem(last=False)
        return token

    def decode(self, data: str) -> str | None:
        if data.startswith(TOKEN_PREFIX):
            return self._tokens.get(data)
        return data


def _compact(payload: str) -> str:
    match = _PAYLOAD.match(payload.strip())
    if match is None:
        return payload.strip()
    try:
        data = json.loads(match.group(2))
    except json.JSONDecodeError:
        return payload.strip()
    return match.group(1) + json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def keyboard(buttons: tuple[Button, ...], codec: ButtonCodec) -> InlineKeyboard | None:
    """Short labels share a row (up to 5, e.g. yes/no, sizes); longer ones get a row each."""
    if not buttons:
        return None
    keys = [InlineButton(b.title[:64], codec.encode(b.payload)) for b in buttons]
    if all(len(b.title) <= 8 for b in buttons) and len(buttons) <= 5:
        return [keys]
    return [[k] for k in keys]


def render(reply: Outgoing, codec: ButtonCodec) -> list[Chunk]:
    """The chunks to send for ``reply``; the keyboard rides on the last one."""
    parts = split_html(escape(reply.text)) or [escape("…")]
    markup = keyboard(reply.buttons, codec)
    return [Chunk(part, markup if i == len(parts) - 1 else None) for i, part in enumerate(parts)]
