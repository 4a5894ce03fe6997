"""The JSON a Rasa 3.6 server POSTs to an action server's ``/webhook``.

``RemoteAction._action_call_format`` in Rasa 3.6 sends ``next_action``, ``sender_id``, the
tracker as ``tracker.current_state(EventVerbosity.ALL)`` (``sender_id``, ``slots``,
``latest_message`` — the full parse data —, ``latest_event_time``, ``followup_action``,
``paused``, ``events``, ``latest_input_channel``, ``active_loop``, ``latest_action``,
``latest_action_name``), the domain as a dict, and Rasa's ``version``. This builder makes
such a call for an assistant with a return form that has just been filled.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

RASA_VERSION = "3.6.20"

SLOTS = (
    "order_id",
    "item",
    "reason",
    "resolution",
    "wanted",
    "email",
    "complaint",
    "ticket_number",
    "ticket_status",
    "ticket_kind",
    "ticket_priority",
    "deskbot_missing_slot",
    "deskbot_owner",
)


def domain() -> dict[str, Any]:
    """The assistant's domain as Rasa sends it (``Domain.as_dict()``)."""
    text_slot = {"type": "text", "influence_conversation": False, "mappings": [{"type": "from_text"}]}
    return {
        "version": "3.1",
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
        "intents": ["greet", "request_return", "complaint", "ticket_status", "affirm", "deny", "inform", "rate"],
        "entities": ["order_id", "product", "email", "ticket_number", "ticket", "score"],
        "slots": {name: dict(text_slot) for name in SLOTS},
        "responses": {"utter_ask_order_id": [{"text": "What is your order number?"}]},
        "actions": [
            "action_deskbot_open_return",
            "action_deskbot_escalate_complaint",
            "action_deskbot_ticket_status",
            "action_deskbot_forward_to_agent",
            "action_deskbot_agent_replies",
        ],
        "forms": {"return_form": {"required_slots": ["order_id", "item", "reason", "resolution"]}},
        "e2e_actions": [],
    }


def parse_data(text: str, intent: str, confidence: float = 0.98, entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "intent": {"name": intent, "confidence": confidence},
        "entities": entities or [],
        "text": text,
        "message_id": uuid.uuid4().hex,
        "metadata": {},
        "text_tokens": [[i, i + len(w)] for i, w in _tokens(text)],
        "intent_ranking": [{"name": intent, "confidence": confidence}, {"name": "inform", "confidence": 1 - confidence}],
        "response_selector": {
            "all_retrieval_intents": [],
            "default": {
                "response": {"responses": None, "confidence": 0.0, "intent_response_key": None, "utter_action": "utter_None"},
                "ranking": [],
            },
        },
    }


def _tokens(text: str) -> list[tuple[int, str]]:
    out, position = [], 0
    for word in text.split():
        position = text.index(word, position)
        out.append((position, word))
        position += len(word)
    return out


def action_call(
    action: str,
    sender_id: str,
    *,
    slots: dict[str, Any] | None = None,
    text: str = "",
    intent: str = "affirm",
    active_loop: str | None = None,
    include_domain: bool = True,
    entities: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    now = time.time()
    filled = dict.fromkeys(SLOTS) | {"session_started_metadata": None} | (slots or {})
    latest = parse_data(text, intent, 1.0 if text.startswith("/") else 0.98, entities)
    events: list[dict[str, Any]] = [
        {"event": "action", "timestamp": now - 9, "name": "action_session_start", "policy": None, "confidence": 1.0},
        {"event": "session_started", "timestamp": now - 9},
        {"event": "action", "timestamp": now - 9, "name": "action_listen", "policy": None, "confidence": None},
        {
            "event": "user",
            "timestamp": now - 1,
            "text": text,
            "parse_data": latest,
            "input_channel": "rest",
            "message_id": latest["message_id"],
        },
        {"event": "user_featurization", "timestamp": now - 1, "use_text_for_featurization": False},
    ]
    events += [{"event": "slot", "timestamp": now - 1, "name": k, "value": v} for k, v in (slots or {}).items()]
    if active_loop:
        events.append({"event": "active_loop", "timestamp": now, "name": None})
    tracker = {
        "sender_id": sender_id,
        "slots": filled,
        "latest_message": latest,
        "latest_event_time": now,
        "followup_action": None,
        "paused": False,
        "events": events,
        "latest_input_channel": "rest",
        "active_loop": {},
        "latest_action": {"action_name": active_loop or "action_listen"},
        "latest_action_name": active_loop or "action_listen",
    }
    call: dict[str, Any] = {"next_action": action, "sender_id": sender_id, "tracker": tracker, "version": RASA_VERSION}
    if include_domain:
        call["domain"] = domain()
    return call
