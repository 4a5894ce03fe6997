"""The web chat: a page at ``/`` and its small JSON API under ``/chat/api``.

Identity is a server-issued visitor id (``secrets.token_urlsafe``) in an ``HttpOnly``,
``SameSite=Strict`` cookie, signed with HMAC so that only ids this server issued are
accepted — never one the browser made up. One visitor can therefore only ever read the
conversation of the id it was given.

CSRF: a state-changing request must carry ``X-Requested-With: deskbot`` and a JSON body;
a cross-site form cannot set that header, a cross-site ``fetch`` with it needs a CORS
preflight that this app never grants, and ``SameSite=Strict`` keeps the cookie off
cross-site requests anyway.

Signing key: the ``session_secret`` secret (``DESKBOT_SECRETS__SESSION_SECRET``). Without
it a random key is made per process, and visitors start a new conversation after a restart.

API:
- ``POST /chat/api/messages`` ``{"text": ...}`` or ``{"payload": ...}`` (a quick reply),
  optionally ``"message_id"`` (a retry with the same id gets the same answer)
  → ``{"messages": [{"id", "text", "buttons": [{"title", "payload"}], "author"}]}``, queued
  agent replies first.
- ``GET /chat/api/messages?after=<id>`` → the replies queued for the visitor (agent replies)
  that it has not acknowledged; ``after`` (the highest id the page has shown) acknowledges
  every reply handed out up to it. Poll every few seconds.
- ``GET /chat/api/history`` → the visitor's conversation so far (its queued replies too,
  acknowledged by the next poll's ``after``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from bot.app import App
from bot.pipeline import DeliveryInFlight
from bot.web.rest_channel import (
    MAX_ID,
    buttons_of,
    decode_json_object,
    hand_over_queued,
    optional_string,
    outgoing_buttons,
    poll_replies,
    scoped_delivery_key,
)
from common.messages import Incoming
from storage.models import Author, Direction, Message

log = logging.getLogger("deskbot.channels.webchat")

CHANNEL = "web"
COOKIE = "deskbot_visitor"
COOKIE_MAX_AGE = 90 * 24 * 3600
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "deskbot"
MAX_PAYLOAD_CHARS = 1000
HISTORY_LIMIT = 200

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
TEMPLATES = Jinja2Templates(directory=WEB_DIR / "templates")

# The page loads only its own script and style; nothing inline, nothing from elsewhere.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class VisitorIds:
    """Issues visitor ids and recognises only the ones it issued (``<id>.<hmac>``)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, visitor: str) -> str:
        digest = hmac.new(self._key, f"visitor:{visitor}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self) -> tuple[str, str]:
        """A fresh ``(visitor_id, cookie_value)``."""
        visitor = secrets.token_urlsafe(32)
        return visitor, f"{visitor}.{self._sign(visitor)}"

    def verify(self, cookie: str | None) -> str | None:
        """The visitor id in a cookie this server issued, else None."""
        if not cookie or len(cookie) > 200:
            return None
        visitor, dot, signature = cookie.partition(".")
        if not dot or not visitor or not hmac.compare_digest(signature.encode(), self._sign(visitor).encode()):
            return None
        return visitor


def _asset_version(path: Path) -> str:
    """A short content hash, so a browser never runs a new page with an old script."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def _api_message(row: Message, titles: dict[str, str] | None = None) -> dict[str, Any]:
    text = row.text
    if row.direction == Direction.INBOUND and not text:
        button = str((row.payload or {}).get("button") or "")
        text = (titles or {}).get(button, button)  # a button click shows as its title
    author = row.author.value if isinstance(row.author, Author) else str(row.author)
    return {
        "id": row.id,
        "text": text,
        "buttons": buttons_of(row.payload) if row.direction == Direction.OUTBOUND else [],
        "author": author,
        "at": row.created_at.isoformat() if row.created_at else None,
    }


def _after(raw: str | None) -> int | None:
    """The poll's acknowledgement cursor: the highest reply id the page has shown."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_ID:
        raise HTTPException(422, f"'after' must be a message id (0 to {MAX_ID})")
    return int(raw)


def _history(rows: Sequence[Message]) -> list[dict[str, Any]]:
    titles: dict[str, str] = {}
    out = []
    for row in rows:
        if row.direction == Direction.OUTBOUND:
            titles.update({b["payload"]: b["title"] for b in buttons_of(row.payload)})
        message = _api_message(row, titles)
        if message["text"]:
            out.append(message)
    return out


def build_router(app: App) -> APIRouter:
    """The web chat page and API over an open ``App``."""
    settings = app.settings
    secret = settings.secrets.get("session_secret")
    if secret is not None:
        key = hashlib.sha256(b"deskbot-webchat:" + secret.get_secret_value().encode()).digest()
    else:
        key = secrets.token_bytes(32)
        log.warning("no session_secret configured: web chat visitors start afresh after a restart")
    ids = VisitorIds(key)
    max_chars = settings.channels.rest.max_message_chars
    static = WEB_DIR / "static"
    versions = {name: _asset_version(static / name) for name in ("chat.js", "chat.css")}

    def set_cookie(request: Request, response: Response, cookie: str) -> None:
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def visitor_of(request: Request) -> str | None:
        return ids.verify(request.cookies.get(COOKIE))

    router = APIRouter(tags=["web chat"])

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request) -> Response:
        response = TEMPLATES.TemplateResponse(
            request,
            "chat.html",
            {
                "shop_name": settings.shop.name,
                "versions": versions,
                "language": settings.default_language,
                "max_chars": max_chars,
            },
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"},
        )
        # Set on every visit, so the cookie's lifetime slides; a valid one keeps its id.
        cookie = request.cookies.get(COOKIE)
        set_cookie(request, response, cookie if cookie and ids.verify(cookie) else ids.issue()[1])
        return response

    @router.post("/chat/api/messages", summary="Send a message from the visitor")
    async def send(request: Request) -> JSONResponse:
        if request.headers.get(CSRF_HEADER, "").lower() != CSRF_VALUE:
            raise HTTPException(403, f"the 'X-Requested-With: {CSRF_VALUE}' header is required")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HTTPException(415, "the body must be JSON (Content-Type: application/json)")
        raw = await request.body()
        data = decode_json_object(raw)
        text = optional_string(data, "text", max_chars=len(raw))
        payload = optional_string(data, "payload", MAX_PAYLOAD_CHARS)
        if (text is None) == (payload is None):
            raise HTTPException(422, "send either {'text': ...} or {'payload': ...}")
        if text is not None and len(text) > max_chars:
            raise HTTPException(413, f"'text' is longer than {max_chars} characters")
        message_id = optional_string(data, "message_id", 200, numbers=True)

        visitor = visitor_of(request)
        new_cookie = None
        if visitor is None:
            visitor, new_cookie = ids.issue()
        incoming = Incoming(
            channel=CHANNEL,
            chat_id=visitor,
            user_id=visitor,
            text=text or "",
            payload=payload.strip() if payload else None,
            delivery_key=scoped_delivery_key(visitor, message_id),
            language=optional_string(data, "language", 35),
            replies_in_answer=True,
        )
        try:
            replies = await (app.intake or app.pipeline).handle(incoming)  # queued: a worker's turn
        except DeliveryInFlight:
            raise HTTPException(503, "this message is still being processed; retry shortly",
                                headers={"Retry-After": "1"}) from None
        queued = await hand_over_queued(app.tickets, CHANNEL, visitor, incoming.delivery_key)
        messages = [_api_message(m) for m in queued]
        messages += [{"id": r.message_id, "text": r.text, "buttons": outgoing_buttons(r), "author": "bot"}
                     for r in replies]
        response = JSONResponse({"messages": messages}, headers={"Cache-Control": "no-store"})
        if new_cookie is not None:
            set_cookie(request, response, new_cookie)
        return response

    @router.get("/chat/api/messages", summary="Replies queued for the visitor and not acknowledged yet")
    async def poll(request: Request) -> JSONResponse:
        after = _after(request.query_params.get("after"))
        visitor = visitor_of(request)
        pending = await poll_replies(app.tickets, CHANNEL, visitor, after) if visitor else []
        return JSONResponse({"messages": [_api_message(m) for m in pending]}, headers={"Cache-Control": "no-store"})

    @router.get("/chat/api/history", summary="The visitor's conversation so far")
    async def history(request: Request) -> JSONResponse:
        visitor = visitor_of(request)
        rows: Sequence[Message] = []
        if visitor is not None:
            async with app.tickets.session() as tx:
                customer = await tx.find_customer(CHANNEL, visitor)
                if customer is not None:
                    # Queued replies are part of the history: handed out, so the page's next
                    # poll acknowledges them with its cursor.
                    await tx.hand_out_replies(customer.id, CHANNEL)
                    rows = await tx.conversation(customer.id, limit=HISTORY_LIMIT)
        return JSONResponse({"messages": _history(rows)}, headers={"Cache-Control": "no-store"})

    return router
