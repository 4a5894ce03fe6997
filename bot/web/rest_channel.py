"""The Rasa-compatible REST channel: existing Rasa chat widgets connect unchanged.

``POST /webhooks/rest/webhook`` takes ``{"sender": "...", "message": "...", "metadata": {...}}``
and answers what Rasa's ``RestInput`` answers: a JSON list of
``{"recipient_id": sender, "text": ..., "buttons": [{"title", "payload"}]}`` (``buttons``
left out when there are none). A message that is a Rasa button payload (``/affirm``,
``/choose{"resolution": "refund"}``) is passed on as the button's payload, not as text.

Every reply carries its stored ``id``. Replies queued later for the sender (an agent's
reply, a rating request) come first in the answer to the sender's next message, or from
``GET /webhooks/rest/messages?sender=...&after=<id>`` (polling): the poll hands a reply
over until the client acknowledges it, by sending the last id it has as ``after`` (a
cursor: every reply up to it is then marked sent). A retry of a message with the same
``message_id`` gets the same answer again (the replies are stored with the message).

Every request proves that the caller is the sender it names (``bot/channels/rest_identity.py``):
a sender token deskbot issues on the first message (``X-Deskbot-Sender-Token``), or the
shop backend's HMAC of the sender id; a caller with the ``rest_token`` Bearer
(``DESKBOT_SECRETS__REST_TOKEN``) is a trusted server that needs neither.

The JSON helpers here (:func:`read_json_object`, :func:`buttons_of`, :func:`check_sender`)
are shared with the web chat channel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bot.app import App
from bot.channels.rest_identity import TOKEN_HEADER, SenderProofs
from bot.pipeline import DeliveryInFlight, parse_payload
from common.messages import Incoming, Outgoing, stored_buttons
from storage.models import Message
from storage.tickets import TicketStore

log = logging.getLogger("deskbot.channels.rest")

CHANNEL = "rest"
MAX_SENDER_CHARS = 200
MAX_MESSAGE_ID_CHARS = 200
MAX_LANGUAGE_CHARS = 35  # the longest sensible BCP 47 tag
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
MAX_ID = 2**31 - 1  # message ids are 32-bit integers on PostgreSQL


# -- request parsing (shared with the web chat) ----------------------------------------
def _check_unicode(value: str, field: str) -> str:
    """JSON may spell lone surrogates (``"\\ud800"``), which no database or UTF-8 answer can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(400, f"{field} contains invalid Unicode (a lone surrogate)") from None
    return value


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """Strict UTF-8, then JSON, then an object — each failure a clear 400/422."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"the request body is not valid UTF-8 (byte {exc.start})") from None
    if not body.strip():
        raise HTTPException(400, "the request body is empty; expected a JSON object")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise HTTPException(400, "malformed JSON: nested too deeply") from None
    except ValueError:  # an integer over Python's 4,300-digit conversion limit (was a 500)
        raise HTTPException(400, "malformed JSON: a number with more than 4300 digits") from None
    if not isinstance(data, dict):
        raise HTTPException(422, f"expected a JSON object, got {_json_type(data)}")
    if SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(data):
        # Only a \uD800-\uDFFF escape can make one; no database or UTF-8 answer holds it
        # (a Telegram update's text reached PostgreSQL with it before).
        raise HTTPException(400, "the JSON contains invalid Unicode (a lone surrogate)")
    return data


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:
        raise HTTPException(400, "malformed JSON: nested too deeply") from None
    return False


async def read_json_object(request: Request) -> dict[str, Any]:
    return decode_json_object(await request.body())


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object"
    )


def required_string(data: dict[str, Any], field: str) -> str:
    if field not in data:
        raise HTTPException(422, f"'{field}' is required")
    value = data[field]
    if not isinstance(value, str):
        raise HTTPException(422, f"'{field}' must be a string, got {_json_type(value)}")
    return _check_unicode(value, f"'{field}'")


def optional_string(
    data: dict[str, Any], field: str, max_chars: int, where: str = "", numbers: bool = False
) -> str | None:
    """A string field that may be missing or null; ``numbers`` accepts an integer too (ids)."""
    value = data.get(field)
    if value is None:
        return None
    name = f"'{where}{field}'"
    if isinstance(value, bool) or not isinstance(value, (str, int) if numbers else str):
        raise HTTPException(422, f"{name} must be a string, got {_json_type(value)}")
    value = _check_unicode(str(value), name)
    if len(value) > max_chars:
        raise HTTPException(422, f"{name} is longer than {max_chars} characters")
    return value


def has_control_characters(value: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)


def scoped_delivery_key(identity: str, message_id: str | None) -> str | None:
    """A client's message id is unique for that client only: scope it to the identity.

    Otherwise two widgets counting ``1, 2, 3 …`` would drop each other's messages as
    duplicates (and anybody could suppress someone else's next message). Hashed, so any
    identity and id fit the 200-character key column unambiguously.
    """
    if message_id is None:
        return None
    digest = hashlib.sha256(f"{len(identity)}:{identity}:{message_id}".encode()).hexdigest()
    return f"m:{digest}"


# -- replies (shared with the web chat) ---------------------------------------------------
def buttons_of(payload: dict[str, Any] | None) -> list[dict[str, str]]:
    """A stored message's ``{"buttons": [[title, payload], ...]}`` as API buttons."""
    return [{"title": b.title, "payload": b.payload} for b in stored_buttons(payload)]


def outgoing_buttons(reply: Outgoing) -> list[dict[str, str]]:
    return [{"title": b.title, "payload": b.payload} for b in reply.buttons]


def answer_rows(rows: Sequence[Message]) -> list[Outgoing]:
    """Stored outbound rows as replies (their ids kept, for the client's acknowledgement)."""
    return [Outgoing(m.channel, m.chat_id, m.text, stored_buttons(m.payload), message_id=m.id) for m in rows]


async def hand_over_queued(
    tickets: TicketStore, channel: str, external_id: str, delivery_key: str | None
) -> Sequence[Message]:
    """Replies queued for this identity, handed in the answer to its message (marked sent).

    With a delivery key they are tied to that message (``reply_to_id``), so a retry of the
    message after a lost answer gets them again; without one the answer is the only copy,
    as for the turn's own replies.
    """
    async with tickets.session() as tx:
        customer = await tx.find_customer(channel, external_id)
        if customer is None:
            return []
        inbound = await tx.inbound_id(channel, delivery_key) if delivery_key is not None else None
        return await tx.hand_over_replies(customer.id, channel, inbound)


async def poll_replies(tickets: TicketStore, channel: str, external_id: str, after: int | None) -> Sequence[Message]:
    """Acknowledge the replies up to ``after`` (the client has them), then hand out the rest."""
    async with tickets.session() as tx:
        customer = await tx.find_customer(channel, external_id)
        if customer is None:
            return []
        if after is not None:
            await tx.acknowledge_replies(customer.id, channel, after)
        return await tx.hand_out_replies(customer.id, channel)


def check_sender(sender: str, field: str = "sender") -> str:
    """A sender id: 1-200 characters, not blank, no control characters (NUL breaks PostgreSQL)."""
    if not sender.strip():
        raise HTTPException(422, f"'{field}' must not be empty")
    if len(sender) > MAX_SENDER_CHARS:
        raise HTTPException(422, f"'{field}' is longer than {MAX_SENDER_CHARS} characters")
    if has_control_characters(sender):
        raise HTTPException(422, f"'{field}' must not contain control characters")
    return _check_unicode(sender, f"'{field}'")


# -- API schema (documentation only: the handlers parse the body themselves) ------------
class RestButton(BaseModel):
    title: str
    payload: str


class RestReply(BaseModel):
    id: int | None = None
    recipient_id: str
    text: str
    buttons: list[RestButton] | None = None


REQUEST_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["sender", "message"],
                    "properties": {
                        "sender": {"type": "string", "maxLength": MAX_SENDER_CHARS},
                        "message": {"type": "string"},
                        "message_id": {
                            "type": "string",
                            "description": "delivery key: the same id twice is processed once",
                        },
                        "metadata": {
                            "type": "object",
                            "properties": {"language": {"type": "string"}, "message_id": {"type": "string"}},
                        },
                    },
                },
                "example": {
                    "sender": "visitor-42",
                    "message": "how much is the hoodie?",
                    "metadata": {"language": "en"},
                },
            }
        },
    }
}


# -- the channel ----------------------------------------------------------------------------
def _rest_reply(sender: str, reply: Outgoing) -> dict[str, Any]:
    out: dict[str, Any] = {"recipient_id": sender, "text": reply.text}
    if reply.message_id is not None:
        out["id"] = reply.message_id
    if reply.buttons:
        out["buttons"] = outgoing_buttons(reply)
    return out


def parse_incoming(data: dict[str, Any], max_message_chars: int) -> Incoming:
    """A validated webhook body as the pipeline's ``Incoming`` (HTTPException when invalid)."""
    sender = required_string(data, "sender")
    message = required_string(data, "message")
    check_sender(sender)
    if len(message) > max_message_chars:
        raise HTTPException(413, f"'message' is longer than {max_message_chars} characters")
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise HTTPException(422, f"'metadata' must be an object, got {_json_type(metadata)}")
    message_id = optional_string(data, "message_id", MAX_MESSAGE_ID_CHARS, numbers=True)
    if message_id is None:
        message_id = optional_string(metadata, "message_id", MAX_MESSAGE_ID_CHARS, where="metadata.", numbers=True)
    language = optional_string(metadata, "language", MAX_LANGUAGE_CHARS, where="metadata.")
    is_payload = message.startswith("/") and parse_payload(message) is not None
    return Incoming(
        channel=CHANNEL,
        chat_id=sender,
        user_id=sender,
        text="" if is_payload else message,
        payload=message.strip() if is_payload else None,
        delivery_key=scoped_delivery_key(sender, message_id),
        language=language,
        replies_in_answer=True,
    )


def build_router(app: App) -> APIRouter:
    """The REST channel's routes over an open ``App``."""
    settings = app.settings
    token = settings.secrets.get("rest_token")
    max_chars = settings.channels.rest.max_message_chars
    identity_secret = settings.secrets.get("rest_identity_secret")
    proofs = SenderProofs(
        "trusted" if token is not None else settings.channels.rest.sender_proof,
        app.tickets,
        CHANNEL,
        identity_secret.get_secret_value() if identity_secret is not None else None,
    )

    async def authorised(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(401, "a valid 'Authorization: Bearer <token>' header is required",
                                headers={"WWW-Authenticate": "Bearer"})

    router = APIRouter(prefix="/webhooks/rest", tags=["rest channel"], dependencies=[Depends(authorised)])

    @router.get("/", summary="Channel status (as Rasa's REST channel)")
    async def status() -> dict[str, str]:
        return {"status": "ok"}

    @router.post(
        "/webhook",
        summary="Send a customer message; the answer lists the replies",
        response_model=list[RestReply],
        response_model_exclude_none=True,
        openapi_extra=REQUEST_SCHEMA,
    )
    async def webhook(request: Request) -> JSONResponse:
        data = await read_json_object(request)
        incoming = parse_incoming(data, max_chars)
        issued = await proofs.for_message(request.headers, data.get("metadata") or {}, incoming.user_id)
        try:
            replies = await (app.intake or app.pipeline).handle(incoming)  # queued: a worker's turn
        except DeliveryInFlight:
            raise HTTPException(503, "this message_id is still being processed; retry shortly",
                                headers={"Retry-After": "1"}) from None
        # After the turn, so a failing turn never swallows the queued replies; they are
        # older than this turn's replies and go first. A retry's replayed answer has them.
        queued = await hand_over_queued(app.tickets, CHANNEL, incoming.user_id, incoming.delivery_key)
        answer = sorted(answer_rows(queued) + replies, key=_answer_order)
        body = [_rest_reply(incoming.chat_id, r) for r in answer]
        headers = {TOKEN_HEADER: issued} if issued is not None else None
        return JSONResponse(body, headers=headers)

    @router.get(
        "/messages",
        summary="Poll the replies queued for a sender (agent replies, rating requests)",
        response_model=list[RestReply],
        response_model_exclude_none=True,
    )
    async def poll(
        request: Request,
        sender: Annotated[str, Query(min_length=1, max_length=MAX_SENDER_CHARS)],
        after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="acknowledge replies up to this id")] = None,
    ) -> JSONResponse:
        check_sender(sender)
        await proofs.for_poll(request.headers, sender)
        pending = await poll_replies(app.tickets, CHANNEL, sender, after)
        body = [_rest_reply(sender, r) for r in answer_rows(pending)]
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return router


def _answer_order(reply: Outgoing) -> int:
    return reply.message_id if reply.message_id is not None else 2**63
