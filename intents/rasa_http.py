"""The classifier port answered by a running Rasa server (``POST /model/parse``).

Shops that already trained a Rasa assistant keep its NLU: deskbot sends each message to
Rasa, maps Rasa's intent and entity names onto its own, and applies its own fallback
threshold, so forms, routing and tickets work exactly as with the built-in classifier.

When Rasa cannot answer (down, slow, broken answer) the default is to degrade, not to
fail: the message is classified ``out_of_scope`` with confidence 0, so the fallback asks
to rephrase and then offers a human, while buttons (which skip classification) and the
regex entities (order ids, e-mails) keep forms moving. ``on_error: raise`` turns that into
an error instead, and the pipeline apologises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from common.errors import DeskbotError
from intents.base import OUT_OF_SCOPE, Entity, IntentClassifier, Prediction, merge_entities
from intents.entities import EntityExtractor
from intents.language import detect_language, normalise_language_tag
from intents.rasa_config import RasaConfig

log = logging.getLogger("deskbot.intents.rasa")

PARSE_PATH = "/model/parse"
VERSION_PATH = "/version"
MAX_ERROR_CHARS = 200
# Failures where the request never reached Rasa (or Rasa dropped it unanswered): parsing
# has no side effects, so trying again is safe.
RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


class RasaError(DeskbotError):
    """Rasa could not be asked, or its answer could not be used."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def server_down(self) -> bool:
        """Unreachable, silent, 5xx or no model loaded (409) — not a problem with one message."""
        return self.status is None or self.status >= 500 or self.status == 409


class RasaHttpClassifier(IntentClassifier):
    """Asks Rasa for intent and entities; receives its HTTP client (see :meth:`from_config`)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: RasaConfig,
        *,
        threshold: float,
        token: str | None = None,
        extractor: EntityExtractor | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.config = config
        self.threshold = threshold
        self._token = token
        self._extractor = extractor
        self._sleep = sleep
        self._clock = clock
        self._down_until = 0.0

    @classmethod
    def from_config(
        cls,
        config: RasaConfig,
        *,
        threshold: float,
        token: str | None = None,
        extractor: EntityExtractor | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> RasaHttpClassifier:
        if not config.url:
            raise DeskbotError("classifier.rasa.url: required when backend is rasa")
        client = httpx.AsyncClient(
            base_url=config.url,
            timeout=httpx.Timeout(config.timeout),
            transport=transport,
            headers={"Accept": "application/json"},
        )
        return cls(client, config, threshold=threshold, token=token, extractor=extractor)

    async def close(self) -> None:
        await self.client.aclose()

    # -- the port --------------------------------------------------------------------
    async def predict(self, text: str, language: str | None = None, known: Sequence[Entity] = ()) -> Prediction:
        lang = normalise_language_tag(language) if language else detect_language(text)
        try:
            if self._clock() < self._down_until:
                raise RasaError(f"Rasa was down less than {self.config.down_cooldown:g} s ago; not asked")
            data = await self.parse(text)
        except RasaError as exc:
            if exc.server_down and self._clock() >= self._down_until:
                self._down_until = self._clock() + self.config.down_cooldown
            if self.config.on_error == "raise":
                raise
            log.warning("rasa unavailable, message treated as out of scope", extra={"error": str(exc)})
            return Prediction(OUT_OF_SCOPE, 0.0, entities=self._with_builtin(text, [], known), language=lang)
        return self.to_prediction(text, data, lang, known)

    # -- talking to Rasa ---------------------------------------------------------------
    async def parse(self, text: str, message_id: str | None = None) -> dict[str, Any]:
        """Rasa's raw parse result for ``text``; raises :class:`RasaError` (never an httpx error)."""
        body: dict[str, str] = {"text": text}
        if message_id:
            body["message_id"] = message_id
        response = await self._post(body)
        if response.status_code in (401, 403):
            raise RasaError(
                f"Rasa refused the request ({response.status_code}): set DESKBOT_SECRETS__RASA_TOKEN "
                "to the token the server was started with (--auth-token)",
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise RasaError(
                f"Rasa answered {response.status_code}: {_error_message(response)}", status=response.status_code
            )
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise RasaError("Rasa answered with malformed JSON", status=response.status_code) from exc
        _check_shape(data)
        return dict(data)

    async def _post(self, body: dict[str, str]) -> httpx.Response:
        params = {"token": self._token} if self._token else None
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:
                return await self.client.post(PARSE_PATH, json=body, params=params)
            except RETRYABLE as exc:
                if attempt + 1 == attempts:
                    raise RasaError(
                        f"cannot reach Rasa at {self.config.url} after {attempts} attempts: {type(exc).__name__}"
                    ) from exc
                await self._sleep(self.config.retry_backoff * 2**attempt)
            except httpx.TimeoutException as exc:
                raise RasaError(f"Rasa did not answer within {self.config.timeout:g} s") from exc
            except httpx.HTTPError as exc:
                raise RasaError(f"calling Rasa failed: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def version(self) -> str:
        """Rasa's version (``GET /version``, no auth); for the start-up check and the logs."""
        try:
            response = await self.client.get(VERSION_PATH)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RasaError(f"cannot reach Rasa at {self.config.url}: {type(exc).__name__}") from exc
        return str(data.get("version", "?")) if isinstance(data, dict) else "?"

    # -- mapping -----------------------------------------------------------------------
    def to_prediction(
        self, text: str, data: Mapping[str, Any], language: str, known: Sequence[Entity] = ()
    ) -> Prediction:
        """Rasa's answer in deskbot's terms: mapped names, deskbot's threshold, merged entities."""
        intent = data.get("intent") or {}
        rasa_name = intent.get("name")
        confidence = _confidence(intent.get("confidence"))
        retrieval = _retrieval_intent(data, rasa_name)
        if retrieval and retrieval in self.config.intent_map:
            name = self.config.intent_map[retrieval]  # e.g. faq/ask_payment → ask_payment
        else:
            name = self._intent(rasa_name) if rasa_name else OUT_OF_SCOPE
        ranking: dict[str, float] = {}
        for item in data.get("intent_ranking") or [{"name": rasa_name, "confidence": confidence}]:
            if isinstance(item, Mapping) and item.get("name"):
                ranking.setdefault(self._intent(str(item["name"])), _confidence(item.get("confidence")))
        if confidence < self.threshold:
            name = OUT_OF_SCOPE
        entities = [ent for raw in data.get("entities") or [] if (ent := self._entity(text, raw)) is not None]
        return Prediction(
            intent=name,
            confidence=confidence,
            ranking=tuple(ranking.items()),
            entities=self._with_builtin(text, entities, known),
            language=language,
        )

    def _intent(self, rasa_name: str) -> str:
        return self.config.intent_map.get(rasa_name, rasa_name)

    def _entity(self, text: str, raw: Any) -> Entity | None:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("entity"), str) or raw.get("value") is None:
            return None
        rasa_type: str = raw["entity"]
        role, group = raw.get("role"), raw.get("group")
        mapped = self.config.entity_map.get(f"{rasa_type}:{role}") if role else None
        start, end = raw.get("start"), raw.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            start = end = 0  # an external entity (trigger_intent, reminders) has no span
        value = _entity_value(raw["value"])
        score = raw.get("confidence_entity")
        return Entity(
            type=mapped or self.config.entity_map.get(rasa_type, rasa_type),
            value=value,
            start=start,
            end=end,
            text=text[start:end] if end else value,
            confidence=float(score) if isinstance(score, int | float) and math.isfinite(score) else None,
            extractor=str(raw["extractor"]) if raw.get("extractor") else None,
            role=str(role) if role else None,
            group=str(group) if group else None,
        )

    def _with_builtin(self, text: str, entities: list[Entity], known: Sequence[Entity] = ()) -> tuple[Entity, ...]:
        """Add deskbot's own entities (the shop's ``known`` ones first) of the types Rasa did not
        find, where they do not overlap Rasa's."""
        if not self.config.builtin_entities:
            return tuple(entities)
        own = merge_entities(known, self._extractor.extract(text) if self._extractor is not None else ())
        found = {e.type for e in entities}
        spans = [(e.start, e.end) for e in entities if e.end > e.start]
        extra = [
            e
            for e in own
            if e.type not in found and not any(e.start < end and start < e.end for start, end in spans)
        ]
        return tuple(sorted(entities + extra, key=lambda e: (e.start, e.end)))


def _retrieval_intent(data: Mapping[str, Any], rasa_name: str | None) -> str | None:
    """The full retrieval intent (``faq/ask_location``) Rasa's ResponseSelector chose, if any."""
    selectors = data.get("response_selector")
    if not rasa_name or not isinstance(selectors, Mapping):
        return None
    selector = selectors.get(rasa_name)
    if selector is None and rasa_name in (selectors.get("all_retrieval_intents") or []):
        selector = selectors.get("default")
    response = selector.get("response") if isinstance(selector, Mapping) else None
    key = response.get("intent_response_key") if isinstance(response, Mapping) else None
    return key if isinstance(key, str) and key else None


def _confidence(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return 0.0
    return min(max(float(raw), 0.0), 1.0)


def _entity_value(raw: Any) -> str:
    """Entity values are text for deskbot; Duckling-style ``{"value": ...}`` objects give their value."""
    if isinstance(raw, Mapping) and "value" in raw:
        raw = raw["value"]
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    return json.dumps(raw, ensure_ascii=False, sort_keys=True)


def _check_shape(data: Any) -> None:
    if not isinstance(data, dict):
        raise RasaError("Rasa answered JSON that is not a parse result (expected an object)")
    intent = data.get("intent")
    if not isinstance(intent, dict) or not isinstance(intent.get("name"), str | None):
        raise RasaError("Rasa's parse result has no usable 'intent' (is an NLU model loaded?)")
    if not isinstance(data.get("entities", []), list) or not isinstance(data.get("intent_ranking", []), list):
        raise RasaError("Rasa's parse result has 'entities' or 'intent_ranking' that are not lists")


def _error_message(response: httpx.Response) -> str:
    """Rasa's own error text (``{"status": "failure", "message": ...}``), shortened; never the request."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.reason_phrase or "error"
    if isinstance(data, dict):
        detail = data.get("message") or data.get("reason") or response.reason_phrase
        return str(detail)[:MAX_ERROR_CHARS]
    return response.reason_phrase or "error"
