"""``deskbot rasa-actions``: a Rasa action server (rasa-sdk) exposing deskbot's ticket operations.

Point an existing Rasa assistant's ``endpoints.yml`` at it (``action_endpoint: url:
http://deskbot-actions:5055/webhook``) and call these custom actions from its stories,
rules or forms:

- ``action_deskbot_open_return`` — slots ``order_id``, ``item``, ``reason``, ``resolution``
  (``refund``/``exchange``; optional ``wanted``, and ``email``/``phone``/``contact`` when
  the order is not yet linked to the sender) → a return or exchange ticket, validated
  like deskbot's own form; sets ``ticket_number``, ``ticket_status``…, or clears the slot
  deskbot rejected and names it in ``deskbot_missing_slot``.
- ``action_deskbot_escalate_complaint`` — slot ``complaint`` (else the latest message) and
  optional ``order_id`` → a prioritised complaint ticket queued for a human.
- ``action_deskbot_ticket_status`` — slot ``ticket_number`` (only the sender's own) or the
  sender's latest tickets.
- ``action_deskbot_rate`` — the rating buttons deskbot sends after resolving
  (``/rate{"ticket": "T-1001", "score": 5}``: entities ``ticket`` and ``score``).
- ``action_deskbot_forward_to_agent`` — while ``deskbot_owner`` is ``queued``/``agent``: the
  message goes onto the handoff ticket (queued: the customer hears their place in the queue).
- ``action_deskbot_agent_replies`` — what agents wrote in deskbot meanwhile (every action
  delivers those first; this one only that, e.g. after ``trigger_intent`` from outside).

Every action sets ``deskbot_owner`` (``bot``/``queued``/``agent``) for the assistant's rules.

The Rasa SDK's own web app (Sanic) serves ``/webhook``, ``/actions`` and ``/health``; it
runs under uvicorn in one process, so deskbot's stores open once, in the same event loop.
This module imports ``rasa_sdk`` (the ``deskbot[rasa]`` extra); the rest of deskbot never does.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from rasa_sdk import Action, Tracker
from rasa_sdk.endpoint import create_app
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection
from sanic import Sanic, response
from sanic.request import Request

from bot.app import build_app
from bot.config import Settings
from bot.rasa_actions.operations import ActionOutcome, ActionRequest, RasaOwnsUnderstanding, TicketOperations

log = logging.getLogger("deskbot.rasa_actions")

DEFAULT_PORT = 5055
MAX_SENDER_ID = 200
MAX_BODY_BYTES = 8 * 1024 * 1024  # Rasa sends the whole tracker and domain with every call
Operation = Callable[[ActionRequest], Awaitable[ActionOutcome]]
SanicApp: TypeAlias = "Sanic[Any, Any]"  # typed where sanic is installed, Any where it is not (core mypy run)


class DeskbotAction(Action):  # type: ignore[misc]
    """One deskbot operation as a Rasa custom action."""

    def __init__(self, action_name: str, operations: TicketOperations, operation: Operation) -> None:
        self._name = action_name
        self._operations = operations
        self._operation = operation

    def name(self) -> str:
        return self._name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        request = self._request(tracker)
        try:
            outcome = await self._operation(request)
        except Exception:
            # The turn's transaction rolled back; the customer hears an apology instead of
            # Rasa logging a 500 and going silent (and the SDK echoing the call in its answer).
            log.exception("rasa action failed", extra={"action": self._name})
            dispatcher.utter_message(text=self._operations.apology(request))
            return []
        for reply in outcome.replies:
            buttons = [{"title": b.title, "payload": b.payload} for b in reply.buttons]
            dispatcher.utter_message(text=reply.text, buttons=buttons)
        known = set((domain or {}).get("slots") or {})
        # Rasa warns about (and drops) slots its domain lacks: set only the assistant's own.
        return [SlotSet(name, value) for name, value in outcome.slots.items() if not known or name in known]

    def _request(self, tracker: Tracker) -> ActionRequest:
        sender = tracker.sender_id
        if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_ID:
            raise ActionExecutionRejection(self._name, f"sender_id must be 1..{MAX_SENDER_ID} characters")
        latest = _object(tracker.latest_message)
        text = latest.get("text")
        intent = _object(latest.get("intent"))
        metadata = _object(latest.get("metadata"))
        slots = _object(tracker.slots)
        language = slots.get("language") or metadata.get("language")
        raw_entities = latest.get("entities")
        entities = {
            str(e["entity"]): str(e["value"])
            for e in (raw_entities if isinstance(raw_entities, list) else [])
            if isinstance(e, dict) and isinstance(e.get("entity"), str) and isinstance(e.get("value"), str | int)
        }
        return ActionRequest(
            sender_id=sender,
            slots=slots,
            text=text if isinstance(text, str) else "",
            intent=intent.get("name") if isinstance(intent.get("name"), str) else None,
            language=language if isinstance(language, str) else None,
            entities=entities,
        )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def build_executor(operations: TicketOperations) -> ActionExecutor:
    executor = ActionExecutor()
    actions: tuple[tuple[str, Operation], ...] = (
        ("action_deskbot_open_return", operations.open_return),
        ("action_deskbot_escalate_complaint", operations.escalate_complaint),
        ("action_deskbot_ticket_status", operations.ticket_status),
        ("action_deskbot_rate", operations.rate),
        ("action_deskbot_forward_to_agent", operations.forward_to_agent),
        ("action_deskbot_agent_replies", operations.agent_replies),
    )
    for name, operation in actions:
        executor.register_action(DeskbotAction(name, operations, operation))
    return executor


def _bad_call(body: Any) -> str | None:
    """Why a /webhook body is not an action call Rasa would send (rasa-sdk would answer 500)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object (an action call from Rasa)"
    if not isinstance(body.get("next_action"), str) or not body["next_action"]:
        return "next_action must name an action"
    tracker = body.get("tracker")
    if not isinstance(tracker, dict) or not isinstance(tracker.get("sender_id"), str):
        return "tracker must be an object with a sender_id"
    for key in ("slots", "latest_message"):
        if tracker.get(key) is not None and not isinstance(tracker[key], dict):
            return f"tracker.{key} must be an object"
    if tracker.get("events") is not None and not isinstance(tracker["events"], list):
        return "tracker.events must be a list"
    return None


def create_action_app(operations: TicketOperations) -> SanicApp:
    """The Rasa SDK's web app with deskbot's actions, plus a check that answers 400 to broken calls."""
    # deskbot's actions read only the tracker's slots, sender and latest message, and return
    # SlotSet + utterances: a stable part of the protocol across Rasa 3.x, so the SDK's
    # "versions might not be compatible" warning on every call is noise here.
    warnings.filterwarnings("ignore", message="Your versions of rasa and rasa_sdk", category=UserWarning)
    app: SanicApp = create_app(build_executor(operations), cors_origins=[])
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    # Sanic's "touchup" rewrites its own methods at start-up for speed; under uvicorn a second
    # app in one process (tests, a restart in-process) fails that rewrite. Unneeded in ASGI mode.
    app.config.TOUCHUP = False

    async def reject_broken_calls(request: Request) -> Any:
        if request.path != "/webhook" or request.method != "POST":
            return None
        if request.headers.get("Content-Encoding") == "deflate":
            return None  # the SDK inflates it itself
        try:
            body = request.json
        except Exception:  # Sanic raises its own BadRequest for invalid JSON
            return response.json({"error": "the body is not valid JSON"}, status=400)
        problem = _bad_call(body)
        return response.json({"error": problem}, status=400) if problem else None

    app.register_middleware(reject_broken_calls, "request")
    return app


@asynccontextmanager
async def action_app(settings: Settings, *, create_schema: bool = False) -> AsyncIterator[SanicApp]:
    """deskbot's stores opened, the action app built; closes both (and frees Sanic's app name)."""
    async with build_app(settings, classifier=RasaOwnsUnderstanding(), create_schema=create_schema) as deskbot:
        app = create_action_app(TicketOperations(deskbot))
        app.ctx.deskbot = deskbot
        try:
            yield app
        finally:
            Sanic.unregister_app(app)


async def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    async with action_app(settings) as app:
        log.info("rasa action server listening", extra={"host": host, "port": port})
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
        await uvicorn.Server(config).serve()
