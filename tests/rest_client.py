"""A client of the REST channel for tests, that works the way a real widget must.

Every request to ``/webhooks/rest/`` proves it is the sender it names (README, "REST
channel"; ``bot/channels/rest_identity.py``). A widget keeps the ``X-Deskbot-Sender-Token``
that the answer to a sender's first message carried (or the token it chose itself) and
sends it on every later message and poll, and a poll sends ``after=<id>``, the highest reply
id the widget has, so the replies it has are acknowledged. Tests that speak the REST
channel go through here rather than posting a bare sender, so the proof stays on (the
server is never weakened for them) and is written once.

``SenderTokens`` is the part shared with synchronous clients (the browser end-to-end tests);
``RestClient`` wraps an ``httpx.AsyncClient``.
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable
from typing import Any

import httpx

from bot.app import App
from bot.channels.rest_identity import TOKEN_HEADER, proof_hash
from bot.web.rest_channel import CHANNEL

WEBHOOK = "/webhooks/rest/webhook"
POLL = "/webhooks/rest/messages"


def chosen_token() -> str:
    """A token a client makes itself (the README's "two ``crypto.randomUUID()``s"): 43 characters."""
    return secrets.token_urlsafe(32)


class SenderTokens:
    """What a widget keeps per sender: its token and its cursor (the highest reply id it has)."""

    def __init__(self, *, choose: bool = False) -> None:
        self.choose = choose  # send a token of our own from the first message on
        self.tokens: dict[str, str] = {}
        self.cursors: dict[str, int] = {}

    def headers(self, sender: str) -> dict[str, str]:
        """The proof for a request of ``sender`` (none before its first message, unless we choose)."""
        token = self.tokens.get(sender)
        if token is None and self.choose:
            token = self.tokens[sender] = chosen_token()
        return {TOKEN_HEADER: token} if token is not None else {}

    def poll_params(self, sender: str) -> dict[str, Any]:
        cursor = self.cursors.get(sender)
        return {"sender": sender} | ({"after": cursor} if cursor is not None else {})

    def received(self, sender: str, response: httpx.Response) -> None:
        """Keep an issued token and move the cursor past the replies a 200 answer carried."""
        issued = response.headers.get(TOKEN_HEADER)
        if issued is not None:
            self.tokens[sender] = issued
        if response.status_code != 200:
            return
        ids = [r["id"] for r in response.json() if isinstance(r, dict) and isinstance(r.get("id"), int)]
        if ids:
            self.cursors[sender] = max([*ids, self.cursors.get(sender, 0)])

    async def adopt(self, app: App, sender: str) -> str:
        """Prove a sender whose earlier messages the test fed to the pipeline directly.

        ``Desk.handoff`` and ``Chat.say`` skip HTTP, so no request ever proved that sender.
        This stores what the REST channel stores when a widget's first message carries a
        token it chose (the token's SHA-256 on the identity); from then on the sender's
        requests carry the token like any other. Returns the token.
        """
        token = self.tokens.get(sender) or chosen_token()
        async with app.tickets.session() as tx:
            await tx.resolve_customer(CHANNEL, sender, sender)
            if not await tx.claim_identity_proof(CHANNEL, sender, proof_hash(token)):
                raise AssertionError(f"REST sender {sender!r} already has a proof this client does not know")
        self.tokens[sender] = token
        return token


class RestClient(SenderTokens):
    """One widget's (or one test's) conversations over ``/webhooks/rest/`` on an ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, *, choose: bool = False) -> None:
        super().__init__(choose=choose)
        self.http = http

    async def post(
        self, sender: str, message: str, *, headers: dict[str, str] | None = None, **body: Any
    ) -> httpx.Response:
        """Send a message with the sender's proof; any answer (a 4xx too) is returned as is."""
        response = await self.http.post(
            WEBHOOK, json={"sender": sender, "message": message, **body}, headers=self.headers(sender) | (headers or {})
        )
        self.received(sender, response)
        return response

    async def say(self, sender: str, message: str, **body: Any) -> list[dict[str, Any]]:
        """Send a message that must be answered (200); the answer's replies."""
        response = await self.post(sender, message, **body)
        assert response.status_code == 200, f"{WEBHOOK} answered {response.status_code}: {response.text}"
        replies: list[dict[str, Any]] = response.json()
        return replies

    async def get_messages(self, sender: str) -> httpx.Response:
        """Poll with the sender's proof and cursor (acknowledging what it has); the raw answer."""
        response = await self.http.get(POLL, params=self.poll_params(sender), headers=self.headers(sender))
        self.received(sender, response)
        return response

    async def poll(self, sender: str) -> list[dict[str, Any]]:
        """The replies queued for the sender and not acknowledged yet (this poll acknowledges the earlier ones)."""
        response = await self.get_messages(sender)
        assert response.status_code == 200, f"{POLL} answered {response.status_code}: {response.text}"
        replies: list[dict[str, Any]] = response.json()
        return replies


_WIDGETS: weakref.WeakKeyDictionary[Any, RestClient] = weakref.WeakKeyDictionary()


def widget_for(owner: Any, connect: Callable[[], httpx.AsyncClient]) -> RestClient:
    """The one widget of a test (``owner``: its ``Desk`` or app fixture), for helpers that are plain
    functions: its tokens and cursors are kept from one call to the next, as a browser keeps them."""
    found = _WIDGETS.get(owner)
    if found is None:
        found = _WIDGETS[owner] = RestClient(connect())
    return found


async def poll_customer(rest: RestClient, app: App, sender: str) -> list[dict[str, Any]]:
    """Poll for a customer who may have spoken only through the pipeline so far (adopted first)."""
    if sender not in rest.tokens:
        await rest.adopt(app, sender)
    return await rest.poll(sender)
