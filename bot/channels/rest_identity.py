"""Proof that a REST caller is the sender it names (issue 11, defect 5).

The REST channel's ``sender`` is a string the client chooses, so on its own it proves
nothing: whoever knows a customer's sender id could poll their replies or ask for "the
status of my ticket". Every request for a sender therefore carries a proof:

- ``token`` (default): on a sender's first message deskbot issues a random sender token
  (``secrets.token_urlsafe``) in the ``X-Deskbot-Sender-Token`` response header and keeps
  only its SHA-256 (``Identity.proof_hash``). Later messages, polls and acknowledgements
  send it back in that header (or ``metadata.sender_token`` in a message body). A client
  may instead choose its own token (32+ random characters) and send it from the first
  message on: then a first message whose answer was lost (a crash, a timeout) can be
  retried, where an issued token would be lost with the answer. Nothing secret is
  stored: a database leak gives no usable token.
- ``hmac``: the shop's backend, which knows who is logged in, signs the sender id
  (hex ``HMAC-SHA256(secrets.rest_identity_secret, sender)``, as Chatwoot's identity
  validation does) and the widget sends it in ``X-Deskbot-Sender-Signature`` (or
  ``metadata.sender_signature``). No token is issued; a customer keeps the same
  conversation on every device the shop logs them into.

A caller with the shared ``rest_token`` Bearer is a trusted server: it vouches for the
sender itself, so no per-sender proof is asked or issued.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Literal

from fastapi import HTTPException

from storage.tickets import TicketStore

TOKEN_HEADER = "X-Deskbot-Sender-Token"  # noqa: S105 - a header name
SIGNATURE_HEADER = "X-Deskbot-Sender-Signature"
MAX_PROOF_CHARS = 200
MIN_CHOSEN_TOKEN_CHARS = 32  # a client's own token: as unguessable as the ones deskbot issues

ProofMode = Literal["token", "hmac", "trusted"]


def proof_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_sender(secret: str, sender: str) -> str:
    """What a shop backend computes for the ``hmac`` mode (hex HMAC-SHA256 of the sender id)."""
    return hmac.new(secret.encode(), sender.encode(), hashlib.sha256).hexdigest()


class SenderProofs:
    """Checks (and in ``token`` mode issues) the proof of a REST sender."""

    def __init__(self, mode: ProofMode, tickets: TicketStore, channel: str, secret: str | None = None) -> None:
        if mode == "hmac" and not secret:
            raise ValueError("the hmac sender proof needs secrets.rest_identity_secret")
        self.mode = mode
        self.tickets = tickets
        self.channel = channel
        self._secret = secret

    @staticmethod
    def given(headers: Any, metadata: dict[str, Any] | None, header: str, field: str) -> str | None:
        value = headers.get(header)
        if value is None and metadata is not None:
            value = metadata.get(field)
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > MAX_PROOF_CHARS:
            raise HTTPException(403, f"the {header} value is not valid")
        return value.strip()

    async def for_message(self, headers: Any, metadata: dict[str, Any], sender: str) -> str | None:
        """Check a message's proof; returns a newly issued token (the sender's first message)."""
        if self.mode == "trusted":
            return None
        if self.mode == "hmac":
            self._check_signature(self.given(headers, metadata, SIGNATURE_HEADER, "sender_signature"), sender)
            return None
        token = self.given(headers, metadata, TOKEN_HEADER, "sender_token")
        async with self.tickets.session() as tx:
            _exists, stored = await tx.identity_proof(self.channel, sender)
            if stored is not None:
                self._check_token(token, stored)
                return None
            # A sender nobody has proven yet (new, or from before proofs): the first to speak
            # gets it, with the token it chose (a retry of a first message whose answer was
            # lost then still works) or one deskbot issues.
            if token is not None and len(token) < MIN_CHOSEN_TOKEN_CHARS:
                raise HTTPException(
                    422, f"a sender token a client chooses must have at least {MIN_CHOSEN_TOKEN_CHARS} characters"
                )
            issued = secrets.token_urlsafe(32) if token is None else None
            chosen = token if token is not None else issued
            assert chosen is not None
            await tx.resolve_customer(self.channel, sender, sender)
            if not await tx.claim_identity_proof(self.channel, sender, proof_hash(chosen)):
                # A concurrent first message won. With the same chosen token (a retry racing
                # the original, two messages sent at once) this one is the same sender.
                _exists, stored = await tx.identity_proof(self.channel, sender)
                if stored is None or token is None:
                    raise HTTPException(401, _needs_token())
                self._check_token(token, stored)
                return None
        return issued

    async def for_poll(self, headers: Any, sender: str) -> None:
        """Polls and acknowledgements reveal replies: the proof is required, nothing is issued."""
        if self.mode == "trusted":
            return
        if self.mode == "hmac":
            self._check_signature(self.given(headers, None, SIGNATURE_HEADER, "sender_signature"), sender)
            return
        token = self.given(headers, None, TOKEN_HEADER, "sender_token")
        async with self.tickets.session() as tx:
            _exists, stored = await tx.identity_proof(self.channel, sender)
        if stored is None:
            if token is None:
                raise HTTPException(401, _needs_token())
            raise HTTPException(403, "the sender token does not match this sender")
        self._check_token(token, stored)

    @staticmethod
    def _check_token(token: str | None, stored: str) -> None:
        if token is None:
            raise HTTPException(401, _needs_token())
        if not hmac.compare_digest(proof_hash(token), stored):
            raise HTTPException(403, "the sender token does not match this sender")

    def _check_signature(self, signature: str | None, sender: str) -> None:
        assert self._secret is not None
        if signature is None:
            raise HTTPException(
                401,
                f"this sender needs the {SIGNATURE_HEADER} header (or metadata.sender_signature): "
                "hex HMAC-SHA256 of the sender id, signed by the shop's backend",
            )
        if not hmac.compare_digest(signature.lower().encode(), sign_sender(self._secret, sender).encode()):
            raise HTTPException(403, "the sender signature does not match this sender")


def _needs_token() -> str:
    return (
        f"this sender needs the {TOKEN_HEADER} header (or metadata.sender_token) that deskbot "
        "returned with the answer to its first message"
    )
