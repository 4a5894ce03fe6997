"""The Rasa-compatible REST channel over HTTP: answers, buttons, queued replies, bad input."""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.web.app import create_web_app
from common.errors import StorageError
from storage.models import Author, DeliveryStatus, Direction
from tests.web.conftest import LiveServer, OpenApp, asgi_client, messages_of

WEBHOOK = "/webhooks/rest/webhook"
POLL = "/webhooks/rest/messages"
TOKEN = "X-Deskbot-Sender-Token"

# The sender tokens each client was issued, as a widget keeps them (per client, per sender).
_TOKENS: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, str]] = weakref.WeakKeyDictionary()


def proof(client: httpx.AsyncClient, sender: str) -> dict[str, str]:
    token = _TOKENS.get(client, {}).get(sender)
    return {TOKEN: token} if token else {}


async def say(client: httpx.AsyncClient, sender: str, message: str, **extra: Any) -> list[dict[str, Any]]:
    response = await client.post(
        WEBHOOK, json={"sender": sender, "message": message, **extra}, headers=proof(client, sender)
    )
    assert response.status_code == 200, response.text
    if TOKEN in response.headers:
        _TOKENS.setdefault(client, {})[sender] = response.headers[TOKEN]
    body = response.json()
    assert isinstance(body, list)
    return body


async def poll(client: httpx.AsyncClient, sender: str, after: int | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"sender": sender} | ({"after": after} if after is not None else {})
    response = await client.get(POLL, params=params, headers=proof(client, sender))
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [r["text"] for r in replies]


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


# -- answers --------------------------------------------------------------------------------
async def test_presale_question_is_answered_like_rasa(client: httpx.AsyncClient, deskbot: App) -> None:
    replies = await say(client, "alice", "how much is the hoodie?")

    assert len(replies) == 1
    assert replies[0]["recipient_id"] == "alice"
    assert "49.90" in replies[0]["text"]
    assert set(replies[0]) == {"id", "recipient_id", "text"}  # no "buttons" key when there are none
    stored = await messages_of(deskbot, "rest", "alice")
    assert replies[0]["id"] == stored[1].id
    assert [(m.direction, m.text) for m in stored] == [
        (Direction.INBOUND, "how much is the hoodie?"),
        (Direction.OUTBOUND, replies[0]["text"]),
    ]
    assert stored[0].intent == "ask_price"


async def test_channel_status_route_like_rasa(client: httpx.AsyncClient) -> None:
    response = await client.get("/webhooks/rest/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_chinese_question_gets_a_chinese_answer(client: httpx.AsyncClient) -> None:
    replies = await say(client, "li", "卫衣多少钱？")
    assert replies and all(has_cjk(r["text"]) for r in replies), replies


async def test_language_hint_from_metadata(client: httpx.AsyncClient) -> None:
    # An empty message carries no language of its own: the hint decides.
    replies = await say(client, "wang", "", metadata={"language": "zh-CN"})
    assert len(replies) == 1 and has_cjk(replies[0]["text"]), replies


async def test_empty_and_blank_messages_get_a_polite_reply(client: httpx.AsyncClient) -> None:
    for text in ("", "   \n\t "):
        replies = await say(client, "bob", text)
        assert len(replies) == 1
        assert "empty" in replies[0]["text"].lower()


async def test_emoji_only_message(client: httpx.AsyncClient, deskbot: App) -> None:
    replies = await say(client, "emoji", "😀👍🎉")
    assert len(replies) >= 1 and all(r["text"] for r in replies)
    stored = await messages_of(deskbot, "rest", "emoji")
    assert stored[0].text == "😀👍🎉"


async def test_control_characters_are_stripped_not_fatal(client: httpx.AsyncClient, deskbot: App) -> None:
    text = "\x00\x01how much\x07 is the\u200b hoodie?\x1b\x7f\u202e"
    replies = await say(client, "ctrl", text)
    assert "49.90" in replies[0]["text"]
    stored = await messages_of(deskbot, "rest", "ctrl")
    assert stored[0].text == "how much is the hoodie?"


# -- buttons --------------------------------------------------------------------------------
async def test_buttons_are_returned_and_their_payloads_understood(client: httpx.AsyncClient, deskbot: App) -> None:
    replies = await say(client, "carol", "qwzx vbnm plok")  # gibberish → fallback with a menu
    buttons = [b for r in replies for b in r.get("buttons", [])]
    assert buttons, replies
    assert all(set(b) == {"title", "payload"} for b in buttons)
    products = next(b for b in buttons if b["payload"] == "/ask_product")

    # A Rasa widget sends the clicked button's payload back as the message.
    replies = await say(client, "carol", products["payload"])
    assert replies and replies[0]["text"]
    stored = await messages_of(deskbot, "rest", "carol")
    click = [m for m in stored if m.direction == Direction.INBOUND][-1]
    assert click.payload == {"button": "/ask_product"}
    assert click.intent == "ask_product" and click.confidence == 1.0
    assert click.text == ""


async def test_payload_with_entities_skips_the_classifier(client: httpx.AsyncClient, deskbot: App) -> None:
    await say(client, "dave", '/choose{"resolution": "refund"}')
    stored = await messages_of(deskbot, "rest", "dave")
    assert stored[0].payload == {"button": '/choose{"resolution": "refund"}'}
    assert stored[0].intent == "choose"


async def test_slash_text_that_is_no_payload_stays_text(client: httpx.AsyncClient, deskbot: App) -> None:
    await say(client, "erin", "/ how much is the hoodie?")
    stored = await messages_of(deskbot, "rest", "erin")
    assert stored[0].text == "/ how much is the hoodie?"
    assert stored[0].payload == {}


# -- queued replies -------------------------------------------------------------------------
async def test_agent_reply_comes_first_and_by_polling(client: httpx.AsyncClient, deskbot: App) -> None:
    replies = await say(client, "frank", "I want to talk to a human")
    assert any("T-1001" in r["text"] for r in replies), replies

    await deskbot.desk.reply("T-1001", "hello from agent")
    replies = await say(client, "frank", "are you there?")
    assert texts(replies) == ["hello from agent"]
    assert set(replies[0]) == {"id", "recipient_id", "text"}
    # The agent owns the conversation now: the bot stays silent, nothing follows.

    await deskbot.desk.reply("T-1001", "a second answer")
    first = await poll(client, "frank")
    assert texts(first) == ["a second answer"]
    # Not acknowledged: the next poll hands it over again (the first answer may have been lost).
    assert await poll(client, "frank") == first
    assert await poll(client, "frank", after=first[0]["id"]) == []  # acknowledged: gone
    stored = {m.id: m for m in await messages_of(deskbot, "rest", "frank")}
    assert stored[first[0]["id"]].status == DeliveryStatus.SENT and stored[first[0]["id"]].sent_at is not None

    # Resolving asks for a rating, with buttons, through the same outbox.
    await deskbot.desk.resolve("T-1001")
    rating = await poll(client, "frank")
    assert len(rating) == 1 and len(rating[0]["buttons"]) == 5
    assert rating[0]["buttons"][4]["payload"] == '/rate{"ticket": "T-1001", "score": 5}'
    replies = await say(client, "frank", rating[0]["buttons"][4]["payload"])
    # The rating request was still unacknowledged: it comes again first in the answer.
    assert replies[0] == rating[0] and replies[1]["text"]

    stored_rows = await messages_of(deskbot, "rest", "frank")
    agent_texts = [m.text for m in stored_rows if m.author == Author.AGENT]
    assert agent_texts == ["hello from agent", "a second answer"]
    assert all(m.status != DeliveryStatus.QUEUED for m in stored_rows)


async def test_poll_needs_a_sender_and_its_proof(client: httpx.AsyncClient) -> None:
    response = await client.get(POLL, params={"sender": "nobody"})
    assert response.status_code == 401 and TOKEN in response.json()["error"]
    response = await client.get(POLL)
    assert response.status_code == 422
    assert "sender" in response.json()["error"]


@pytest.mark.parametrize("sender", ["a\x00b", "\x00", "a\nb", "\x7f", "  "])
async def test_poll_refuses_control_characters_in_the_sender(client: httpx.AsyncClient, sender: str) -> None:
    # A NUL gave 503 on PostgreSQL and matched everything on SQLite.
    await say(client, "a", "hello")
    response = await client.get(POLL, params={"sender": sender}, headers=proof(client, "a"))
    assert response.status_code == 422, response.text
    assert "sender" in response.json()["error"]


async def test_poll_refuses_a_bad_cursor(client: httpx.AsyncClient) -> None:
    await say(client, "cursor", "hello")
    for after in ("-1", "x", str(2**31), "1" * 5000):
        response = await client.get(POLL, params={"sender": "cursor", "after": after}, headers=proof(client, "cursor"))
        assert response.status_code == 422, (after, response.text)


# -- delivery keys --------------------------------------------------------------------------
async def test_duplicate_message_id_is_processed_once(client: httpx.AsyncClient, deskbot: App) -> None:
    first = await say(client, "gina", "how much is the hoodie?", message_id="m-1")
    second = await say(client, "gina", "how much is the hoodie?", message_id="m-1")
    in_metadata = await say(client, "gina", "how much is the hoodie?", metadata={"message_id": "m-1"})

    # A retry (the first answer was lost) gets the same answer again, processed once.
    assert first and second == first and in_metadata == first
    stored = await messages_of(deskbot, "rest", "gina")
    assert len([m for m in stored if m.direction == Direction.INBOUND]) == 1


async def test_message_ids_are_scoped_to_their_sender(client: httpx.AsyncClient, deskbot: App) -> None:
    # Two widgets that both count from 1 must not drop each other's messages.
    assert await say(client, "hank", "hello", message_id=1)
    assert await say(client, "ivy", "hello", message_id=1)
    assert len(await messages_of(deskbot, "rest", "ivy")) == 2


# -- bad input ------------------------------------------------------------------------------
def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


BAD_INPUTS: list[tuple[str, bytes, int, str]] = [
    ("malformed JSON", b'{"sender": "x", "message": ', 400, "malformed JSON"),
    ("empty body", b"", 400, "empty"),
    ("JSON array", _json(["x"]), 422, "JSON object"),
    ("JSON string", _json("hello"), 422, "JSON object"),
    ("JSON null", b"null", 422, "JSON object"),
    ("JSON number", b"42", 422, "JSON object"),
    ("missing sender", _json({"message": "hi"}), 422, "'sender' is required"),
    ("missing message", _json({"sender": "x"}), 422, "'message' is required"),
    ("numeric sender", _json({"sender": 12, "message": "hi"}), 422, "'sender' must be a string"),
    ("null sender", _json({"sender": None, "message": "hi"}), 422, "'sender' must be a string"),
    ("list message", _json({"sender": "x", "message": ["hi"]}), 422, "'message' must be a string"),
    ("object message", _json({"sender": "x", "message": {"text": "hi"}}), 422, "'message' must be a string"),
    ("empty sender", _json({"sender": "", "message": "hi"}), 422, "'sender' must not be empty"),
    ("long sender", _json({"sender": "s" * 201, "message": "hi"}), 422, "longer than 200"),
    ("control sender", _json({"sender": "a\x00b", "message": "hi"}), 422, "control characters"),
    ("invalid UTF-8", b'{"sender": "x", "message": "caf\xe9 \xff\xfe"}', 400, "not valid UTF-8"),
    ("lone surrogate", b'{"sender": "x", "message": "\\ud800"}', 400, "lone surrogate"),
    ("long message", _json({"sender": "x", "message": "a" * 4001}), 413, "longer than 4000"),
    ("metadata list", _json({"sender": "x", "message": "hi", "metadata": []}), 422, "'metadata' must be an object"),
    ("bad message_id", _json({"sender": "x", "message": "hi", "message_id": {}}), 422, "'message_id'"),
    ("bad language", _json({"sender": "x", "message": "hi", "metadata": {"language": 5}}), 422, "language"),
    ("too deep", b"[" * 100_000 + b"]" * 100_000, 400, "malformed JSON"),
    ("over body limit", _json({"sender": "x", "message": "a" * 300_000}), 413, "larger than"),
]


@pytest.mark.parametrize(("body", "status", "error"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
async def test_bad_input_is_refused_clearly_and_the_server_keeps_serving(
    client: httpx.AsyncClient, deskbot: App, body: bytes, status: int, error: str
) -> None:
    before = await say(client, "steady", "how much is the hoodie?")

    response = await client.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert error in response.json()["error"]
    after = await say(client, "steady", "how much is the hoodie?")
    assert texts(after) == texts(before)
    stored = await messages_of(deskbot, "rest", "steady")
    assert [m.text for m in stored[:2]] == ["how much is the hoodie?", before[0]["text"]]
    assert len(stored) == 4
    assert await messages_of(deskbot, "rest", "x") == []  # nothing half-stored


async def test_chunked_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"sender": "x", "message": "'
        for _ in range(40):
            yield b"a" * 10_000
        yield b'"}'

    response = await client.post(WEBHOOK, content=chunks())
    assert response.status_code == 413
    assert "larger than 262144 bytes" in response.json()["error"]


async def test_sender_of_200_characters_is_fine(client: httpx.AsyncClient) -> None:
    assert await say(client, "s" * 200, "hi")


async def test_wrong_method_and_unknown_route_answer_json(client: httpx.AsyncClient) -> None:
    response = await client.get(WEBHOOK)
    assert response.status_code == 405 and response.json() == {"error": "Method Not Allowed"}
    response = await client.get("/webhooks/nope")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}


async def test_100_kb_text(open_app: OpenApp) -> None:
    text = "I want to return my hoodie, it is too small. " * 2300  # ~103 kB
    assert len(text.encode()) > 100_000
    async with open_app() as app, asgi_client(app) as client:
        response = await client.post(WEBHOOK, json={"sender": "long", "message": text})
        assert response.status_code == 413
        assert "longer than 4000 characters" in response.json()["error"]
    # A shop that allows long messages: the pipeline copes (stores a bounded prefix).
    async with open_app(DESKBOT_CHANNELS__REST__MAX_MESSAGE_CHARS="200000") as app, asgi_client(app) as client:
        replies = await say(client, "long", text)
        assert replies and all(r["text"] for r in replies)
        stored = await messages_of(app, "rest", "long")
        assert text.startswith(stored[0].text) and 0 < len(stored[0].text) <= 64_000


async def test_an_unexpected_crash_answers_json_500_and_the_server_goes_on(
    deskbot: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = httpx.ASGITransport(app=create_web_app(deskbot), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        before = await say(client, "crash", "how much is the hoodie?")
        handle = deskbot.pipeline.handle

        async def broken(msg: Any) -> Any:
            raise RuntimeError("boom")

        monkeypatch.setattr(deskbot.pipeline, "handle", broken)
        response = await client.post(WEBHOOK, json={"sender": "crash", "message": "hi"}, headers=proof(client, "crash"))
        assert response.status_code == 500
        assert response.json() == {"error": "internal error"}  # no traceback leaks

        monkeypatch.setattr(deskbot.pipeline, "handle", handle)
        assert texts(await say(client, "crash", "how much is the hoodie?")) == texts(before)


async def test_storage_errors_map_to_503(
    client: httpx.AsyncClient, deskbot: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(msg: Any) -> Any:
        raise StorageError("ticket store: OperationalError: database is locked")

    monkeypatch.setattr(deskbot.pipeline, "handle", unavailable)
    response = await client.post(WEBHOOK, json={"sender": "busy", "message": "hi"})
    assert response.status_code == 503
    assert response.json() == {"error": "the service is temporarily unavailable"}


# -- shared secret --------------------------------------------------------------------------
async def test_rest_token_is_required_when_configured(open_app: OpenApp) -> None:
    async with open_app(DESKBOT_SECRETS__REST_TOKEN="s3cret-token") as app, asgi_client(app) as client:
        body = {"sender": "tok", "message": "hi"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
            response = await client.post(WEBHOOK, json=body, headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert "Authorization" in response.json()["error"]
        assert (await client.get(POLL, params={"sender": "tok"})).status_code == 401
        assert await messages_of(app, "rest", "tok") == []

        bearer = {"Authorization": "Bearer s3cret-token"}
        ok = await client.post(WEBHOOK, json=body, headers=bearer)
        assert ok.status_code == 200 and ok.json()
        # A trusted server: it vouches for the sender, no per-sender proof issued or asked.
        assert TOKEN not in ok.headers
        assert (await client.post(WEBHOOK, json=body, headers=bearer)).status_code == 200
        assert (await client.get(POLL, params={"sender": "tok"}, headers=bearer)).json() == []
        # Health stays open for probes.
        assert (await client.get("/healthz")).status_code == 200


# -- the app around it ------------------------------------------------------------------------
async def test_healthz_and_openapi(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.json() == {"status": "ok"}
    assert health.headers["x-content-type-options"] == "nosniff"
    spec = (await client.get("/api/openapi.json")).json()
    assert "/webhooks/rest/webhook" in spec["paths"]
    assert "/chat/api/messages" in spec["paths"]


def test_real_uvicorn_serves_the_rest_channel(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30, trust_env=False) as http:
        response = http.post(WEBHOOK, json={"sender": "live-rest", "message": "how much is the hoodie?"})
        assert response.status_code == 200
        assert "49.90" in response.json()[0]["text"]

        bad = http.post(WEBHOOK, content=b'{"sender": "live-rest", "message": "\xff"}')
        assert bad.status_code == 400 and "UTF-8" in bad.json()["error"]

        def chunks() -> Any:
            yield b'{"sender": "live-rest", "message": "'
            for _ in range(30):
                yield b"b" * 10_000
            yield b'"}'

        huge = http.post(WEBHOOK, content=chunks())
        assert huge.status_code == 413

        again = http.post(WEBHOOK, json={"sender": "live-rest", "message": "how much is the hoodie?"},
                          headers={TOKEN: response.headers[TOKEN]})
        assert again.status_code == 200 and again.json()[0]["text"] == response.json()[0]["text"]
        assert http.get("/healthz").json()["status"] == "ok"
