"""Settings for asking a running Rasa server instead of the built-in classifier.

Embedded in :class:`intents.config.ClassifierConfig` as ``classifier.rasa``; used when
``classifier.backend`` is ``rasa``. The optional auth token is a secret and therefore
comes only from the environment (``DESKBOT_SECRETS__RASA_TOKEN``), never from here.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

OUT_OF_SCOPE = "out_of_scope"

DEFAULT_INTENT_MAP = {"nlu_fallback": OUT_OF_SCOPE}
"""Rasa's FallbackClassifier answers ``nlu_fallback``; deskbot calls the same verdict ``out_of_scope``."""


class RasaConfig(BaseModel):
    """Where the Rasa server is and how to read its answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None
    """Base URL of the Rasa server (``rasa run --enable-api``), e.g. ``http://rasa:5005``."""

    timeout: float = Field(default=3.0, gt=0, le=60)
    """Seconds for one parse call (connect + answer). A customer is waiting: keep it short."""

    retries: int = Field(default=2, ge=0, le=10)
    """Extra attempts when the connection fails (refused, reset, connect timeout).

    A call that reached Rasa and timed out or failed with 5xx is not retried: a slow or
    broken model would only make the customer wait longer.
    """

    retry_backoff: float = Field(default=0.2, ge=0, le=10)
    """Seconds before the first retry; doubled for each further one."""

    down_cooldown: float = Field(default=10.0, ge=0, le=3600)
    """After a failed call, answer without asking Rasa for this many seconds (0: always ask).

    While Rasa is down or hanging, each message would otherwise wait for the timeout and
    the retries before the fallback answers; one probe per cooldown finds it back.
    """

    intent_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_INTENT_MAP))
    """Rasa intent name → deskbot intent name; unmapped names pass through unchanged."""

    entity_map: dict[str, str] = Field(default_factory=dict)
    """Rasa entity name (or ``entity:role``) → deskbot entity type, e.g. ``order_number: order_id``."""

    builtin_entities: bool = True
    """Also run deskbot's own regex/lookup extractors (order ids, e-mail, phone, products) and
    add the entity types Rasa did not return, so forms work with any Rasa assistant."""

    on_error: Literal["out_of_scope", "raise"] = "out_of_scope"
    """When Rasa cannot answer: ``out_of_scope`` lets the fallback reply (rephrase, then offer a
    human; buttons keep working as they skip classification); ``raise`` makes the turn fail
    and the pipeline apologise."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL of the Rasa server, e.g. http://127.0.0.1:5005")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment (the token goes in DESKBOT_SECRETS__RASA_TOKEN)")
        return value.rstrip("/")

    @field_validator("intent_map", "entity_map")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for source, target in value.items():
            if not source.strip() or not target.strip():
                raise ValueError(f"empty name in mapping {source!r}: {target!r}")
        return value
