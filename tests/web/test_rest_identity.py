"""Nobody acts as another REST customer (issue 11, defect 5): sender tokens and HMAC proofs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.config import load_settings
from storage.models import DeliveryStatus
from tests.web.conftest import OpenApp, asgi_client, messages_of

WEBHOOK = "/webhooks/rest/webhook"
POLL = "/webhooks/rest/messages"
TOKEN = "X-Deskbot-Sender-Token"
SIGNATURE = "X-Deskbot-Sender-Signature"
IDENTITY_SECRET = "shop-backend-signing-key-for-tests"


async def post(client: httpx.AsyncClient, sender: str, text: str, headers: dict[str, str] | None = None,
               **extra: Any) -> httpx.Response:
    return await client.post(WEBHOOK, json={"sender": sender, "message": text, **extra}, headers=headers or {})


async def victim_with_agent_reply(client: httpx.AsyncClient, deskbot: App) -> str:
    """The victim opened T-1001 and an agent's reply waits for them; returns their token."""
    first = await post(client, "victim", "I want to talk to a human")
    assert first.status_code == 200 and any("T-1001" in r["text"] for r in first.json())
    token = first.headers[TOKEN]
    assert len(token) >= 32
    await deskbot.desk.reply("T-1001", "your refund is on its way")
    return token


async def test_a_spoofed_sender_can_neither_poll_nor_consume_nor_list_tickets(
    client: httpx.AsyncClient, deskbot: App
) -> None:
    token = await victim_with_agent_reply(client, deskbot)

    for headers, status in (({}, 401), ({TOKEN: "forged-" + "x" * 40}, 403), ({TOKEN: token[:-1] + ("B" if token.endswith("A") else "A")}, 403)):
        poll = await client.get(POLL, params={"sender": "victim"}, headers=headers)
        assert poll.status_code == status, poll.text
        assert "sender token" in poll.json()["error"].replace("Sender-Token", "sender token")
        # "status of my ticket" as the victim: refused before anything is looked up or stored.
        status_ask = await post(client, "victim", "what is the status of my ticket?", headers)
        assert status_ask.status_code == status
        assert "T-1001" not in status_ask.text
        ack = await client.get(POLL, params={"sender": "victim", "after": 2**31 - 1}, headers=headers)
        assert ack.status_code == status
    # In the body too (clients that can only set the body).
    forged = await post(client, "victim", "status of my ticket", metadata={"sender_token": "y" * 43})
    assert forged.status_code == 403

    # Nothing was consumed or stored: the real customer still gets everything.
    stored = await messages_of(deskbot, "rest", "victim")
    assert [m.text for m in stored if m.text.startswith("what is the status")] == []
    pending = await client.get(POLL, params={"sender": "victim"}, headers={TOKEN: token})
    assert [r["text"] for r in pending.json()] == ["your refund is on its way"]
    ask = await post(client, "victim", "what is the status of my ticket?", metadata={"sender_token": token})
    assert ask.status_code == 200 and [r["text"] for r in ask.json()] == ["your refund is on its way"], ask.text
    assert TOKEN not in ask.headers  # issued once, on the first message only


async def test_the_first_message_of_a_sender_is_not_a_way_into_another(client: httpx.AsyncClient) -> None:
    mine = await post(client, "alice", "hello")
    other = await post(client, "bob", "hello")
    assert mine.headers[TOKEN] != other.headers[TOKEN]
    # Bob's token does not open Alice's conversation.
    assert (await post(client, "alice", "hi", {TOKEN: other.headers[TOKEN]})).status_code == 403
    assert (await client.get(POLL, params={"sender": "alice"}, headers={TOKEN: other.headers[TOKEN]})).status_code == 403


async def test_a_client_may_choose_its_own_token_so_a_lost_first_answer_can_be_retried(
    client: httpx.AsyncClient, deskbot: App
) -> None:
    own = "c" * 16 + "0123456789abcdef0123456789"
    first = await post(client, "chooser", "how much is the hoodie?", {TOKEN: own}, message_id="m-1")
    assert first.status_code == 200 and TOKEN not in first.headers
    retry = await post(client, "chooser", "how much is the hoodie?", {TOKEN: own}, message_id="m-1")
    assert retry.status_code == 200 and retry.json() == first.json()
    short = await post(client, "newcomer", "hello", {TOKEN: "too-short"})
    assert short.status_code == 422 and "32" in short.json()["error"]
    assert await messages_of(deskbot, "rest", "newcomer") == []


def sign(sender: str) -> str:
    return hmac.new(IDENTITY_SECRET.encode(), sender.encode(), hashlib.sha256).hexdigest()


async def test_hmac_proof_signed_by_the_shop_backend(open_app: OpenApp) -> None:
    async with open_app(
        DESKBOT_CHANNELS__REST__SENDER_PROOF="hmac", DESKBOT_SECRETS__REST_IDENTITY_SECRET=IDENTITY_SECRET
    ) as app, asgi_client(app) as client:
        ok = await post(client, "customer-7", "I want to talk to a human", {SIGNATURE: sign("customer-7")})
        assert ok.status_code == 200 and TOKEN not in ok.headers
        await app.desk.reply("T-1001", "hello from agent")

        assert (await post(client, "customer-7", "hi")).status_code == 401
        assert (await post(client, "customer-7", "hi", {SIGNATURE: sign("customer-8")})).status_code == 403
        assert (await post(client, "customer-7", "hi", {SIGNATURE: "0" * 64})).status_code == 403
        assert (await client.get(POLL, params={"sender": "customer-7"})).status_code == 401
        spoof = await client.get(POLL, params={"sender": "customer-7"}, headers={SIGNATURE: sign("customer-8")})
        assert spoof.status_code == 403

        pending = await client.get(POLL, params={"sender": "customer-7"}, headers={SIGNATURE: sign("customer-7")})
        assert [r["text"] for r in pending.json()] == ["hello from agent"]
        body_proof = await post(client, "customer-7", "thanks", metadata={"sender_signature": sign("customer-7")})
        assert body_proof.status_code == 200
        acked = await client.get(
            POLL, params={"sender": "customer-7", "after": pending.json()[0]["id"]},
            headers={SIGNATURE: sign("customer-7").upper()},
        )
        assert acked.json() == []
        stored = await messages_of(app, "rest", "customer-7")
        assert [m.status for m in stored if m.text == "hello from agent"] == [DeliveryStatus.SENT]


def test_hmac_mode_needs_its_secret_at_start() -> None:
    with pytest.raises(Exception, match="REST_IDENTITY_SECRET"):
        load_settings(path=None, environ={"DESKBOT_CHANNELS__REST__SENDER_PROOF": "hmac"})
    with pytest.raises(Exception, match="sender_proof"):
        load_settings(path=None, environ={"DESKBOT_CHANNELS__REST__SENDER_PROOF": "none"})


async def test_first_messages_sent_at_once_with_the_chosen_token_are_all_accepted(app: App) -> None:
    """A retry racing its original, or a widget sending twice before the first answer: the
    first message to claim the sender wins, the others carry the same token and are the same
    sender (they were refused with 401 when they lost the race)."""
    senders = [f"racer-{n}" for n in range(12)]
    tokens = {sender: f"{sender}-" + "t" * 40 for sender in senders}
    async with asgi_client(app) as http:
        sent = [
            post(http, sender, f"hello {n}", {TOKEN: tokens[sender]}, message_id=f"{sender}-m{n}")
            for sender in senders
            for n in range(3)
        ]
        answers = await asyncio.gather(*sent)
        assert [a.status_code for a in answers] == [200] * len(sent), [a.text for a in answers if a.status_code != 200]
        for sender in senders:
            stored = [m.text for m in await messages_of(app, "rest", sender) if m.text.startswith("hello")]
            assert sorted(stored) == ["hello 0", "hello 1", "hello 2"]
        # Another token for a claimed sender is still refused.
        impostor = await post(http, senders[0], "hello", {TOKEN: "impostor-" + "x" * 40})
        assert impostor.status_code == 403
