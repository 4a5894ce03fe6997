"""Tickets, messages and events as plain JSON-able dicts (CLI ``--json`` and the API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.models import Identity, Message, Ticket, TicketEvent


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def ticket_dict(ticket: Ticket, identities: Sequence[Identity]) -> dict[str, Any]:
    customer = ticket.customer
    return {
        "number": ticket.number,
        "kind": ticket.kind.value,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "subject": ticket.subject,
        "order_id": ticket.order_id,
        "fields": ticket.fields,
        "channel": ticket.channel,
        "escalation_reason": ticket.escalation_reason,
        "customer": {
            "id": customer.id,
            "name": customer.display_name,
            "language": customer.language,
            "owner": customer.owner.value,
            "identities": [{"channel": i.channel, "id": i.external_id} for i in identities],
        },
        "assignee": ticket.assignee.email if ticket.assignee is not None else None,
        "created_at": _iso(ticket.created_at),
        "first_response_due": _iso(ticket.first_response_due),
        "resolution_due": _iso(ticket.resolution_due),
        "first_response_at": _iso(ticket.first_response_at),
        "resolved_at": _iso(ticket.resolved_at),
        "rating": ticket.rating,
        "rating_comment": ticket.rating_comment,
    }


def message_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction.value,
        "author": message.author.value,
        "channel": message.channel,
        "text": message.text,
        "status": message.status.value,
        "intent": message.intent,
        "error": message.error,
        "created_at": _iso(message.created_at),
    }


def event_dict(event: TicketEvent) -> dict[str, Any]:
    return {"actor": event.actor, "kind": event.kind, "data": event.data, "created_at": _iso(event.created_at)}
