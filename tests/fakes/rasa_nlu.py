"""A fake Rasa 3.6 server (``rasa run --enable-api``) on a real socket, for the Rasa classifier.

It answers ``POST /model/parse`` and ``GET /version`` the way Rasa 3.6 does — the same keys
(``text``, ``intent``, ``entities``, ``text_tokens``, ``intent_ranking``,
``response_selector``), DIET's ranking of at most 10 intents, the FallbackClassifier's
``nlu_fallback`` below its threshold, entities with ``extractor``/``confidence_entity``/
``processors``, and Rasa's error bodies (``{"version", "status": "failure", "message",
"reason", "details", "help", "code"}``) for a missing text or a wrong ``?token=``.

The "model" is a table: an exact text → intent, confidence and entity surface forms; any
other text gets a low-confidence guess, which the fallback turns into ``nlu_fallback``.
``fault`` switches the server into the failures the client must survive.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RASA_VERSION = "3.6.20"
DIET_RANKING_LENGTH = 10
Fault = Literal["none", "500", "hang", "malformed", "not_json_object", "no_model"]


@dataclass(frozen=True)
class FakeEntity:
    """An entity the fake finds when ``surface`` occurs in the text."""

    entity: str
    surface: str
    value: Any = None  # default: the surface (a synonym mapping gives another value)
    extractor: str = "DIETClassifier"
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Understanding:
    intent: str
    confidence: float
    entities: tuple[FakeEntity, ...] = ()


@dataclass
class FakeRasa:
    """The state the fake server answers from; tests change it between requests."""

    intents: list[str]
    answers: dict[str, Understanding] = field(default_factory=dict)
    fallback_threshold: float | None = 0.3  # None: no FallbackClassifier in the pipeline
    token: str | None = None
    fault: Fault = "none"
    retrieval: dict[str, str] = field(default_factory=dict)  # text -> "faq/ask_x" (ResponseSelector)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def understand(self, text: str, intent: str, confidence: float, *entities: FakeEntity) -> None:
        self.answers[text] = Understanding(intent, confidence, entities)

    # -- Rasa's answer -----------------------------------------------------------------
    def parse_result(self, text: str) -> dict[str, Any]:
        known = self.answers.get(text) or Understanding(self.intents[0], 0.21)
        ranking = self._ranking(known.intent, known.confidence)
        result: dict[str, Any] = {
            "text": text,
            "intent": dict(ranking[0]),
            "entities": [self._entity(text, e) for e in known.entities if e.surface in text],
            "text_tokens": [[m.start(), m.end()] for m in re.finditer(r"[^\s.,!?;:]+", text)],
            "intent_ranking": ranking,
            "response_selector": {
                "all_retrieval_intents": [],
                "default": {
                    "response": {
                        "responses": None,
                        "confidence": 0.0,
                        "intent_response_key": None,
                        "utter_action": "utter_None",
                    },
                    "ranking": [],
                },
            },
        }
        if text in self.retrieval:
            key = self.retrieval[text]
            base = key.split("/")[0]
            result["response_selector"] = {
                "all_retrieval_intents": [base],
                "default": {
                    "response": {
                        "responses": [{"text": f"(the answer to {key})"}],
                        "confidence": 0.97,
                        "intent_response_key": key,
                        "utter_action": f"utter_{key}",
                    },
                    "ranking": [{"confidence": 0.97, "intent_response_key": key}],
                },
            }
        if self.fallback_threshold is not None and known.confidence < self.fallback_threshold:
            fallback = {"name": "nlu_fallback", "confidence": self.fallback_threshold}
            result["intent"] = dict(fallback)
            result["intent_ranking"] = [fallback, *ranking]
        return result

    def _ranking(self, top: str, confidence: float) -> list[dict[str, Any]]:
        """DIET's softmax: the top intent, then the others sharing what is left, at most 10."""
        others = [name for name in self.intents if name != top]
        rest = 1.0 - confidence
        shares = [rest * (0.5 ** (i + 1)) for i in range(len(others))]
        ranking = [{"name": top, "confidence": confidence}]
        ranking += [{"name": n, "confidence": s} for n, s in zip(others, shares, strict=True)]
        return ranking[:DIET_RANKING_LENGTH]

    @staticmethod
    def _entity(text: str, spec: FakeEntity) -> dict[str, Any]:
        start = text.index(spec.surface)
        entity: dict[str, Any] = {"entity": spec.entity, "start": start, "end": start + len(spec.surface)}
        if spec.extractor == "DIETClassifier":
            entity["confidence_entity"] = 0.9987
        entity["value"] = spec.surface if spec.value is None else spec.value
        entity["extractor"] = spec.extractor
        if spec.role:
            entity["role"] = spec.role
            entity["confidence_role"] = 0.97
        if spec.group:
            entity["group"] = spec.group
            entity["confidence_group"] = 0.95
        if spec.value is not None and spec.value != spec.surface:
            entity["processors"] = ["EntitySynonymMapper"]
        return entity


def _rasa_error(status: int, reason: str, message: str) -> JSONResponse:
    body = {
        "version": RASA_VERSION,
        "status": "failure",
        "message": message,
        "reason": reason,
        "details": {},
        "help": None,
        "code": status,
    }
    return JSONResponse(body, status_code=status)


def create_fake_rasa_app(fake: FakeRasa) -> Starlette:
    async def parse(request: Request) -> Response:
        if fake.token is not None and request.query_params.get("token") != fake.token:
            return _rasa_error(401, "NotAuthenticated", "User is not authenticated.")
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fake.requests.append({"body": body, "query": dict(request.query_params)})
        if not isinstance(body, dict) or "text" not in body:
            return _rasa_error(
                400,
                "BadRequest",
                "No text message defined in request_body. Add text message to request body in order to "
                "obtain the intent and extracted entities.",
            )
        if fake.fault == "hang":
            await fake.release.wait()
        if fake.fault == "500":
            return _rasa_error(500, "ParsingError", "An unexpected error occurred. Error: model crashed")
        if fake.fault == "no_model":
            return _rasa_error(409, "Conflict", "No agent loaded. To continue processing, a model of a trained agent needs to be loaded.")
        if fake.fault == "malformed":
            return Response('{"text": "hi", "intent": {"name": "gre', media_type="application/json")
        if fake.fault == "not_json_object":
            return JSONResponse(["greet", 0.9])
        return JSONResponse(fake.parse_result(str(body["text"])))

    async def version(_: Request) -> Response:
        return JSONResponse({"version": RASA_VERSION, "minimum_compatible_version": "3.5.0"})

    return Starlette(routes=[Route("/model/parse", parse, methods=["POST"]), Route("/version", version)])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningServer:
    """An ASGI app under uvicorn on 127.0.0.1 in this event loop; ``url`` once started."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it (port taken...)
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
