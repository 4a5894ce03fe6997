"""The classifier port: what the pipeline needs from intent understanding.

Handlers and the pipeline import only these types, so a Rasa server, the built-in
model or a tiny test double can stand behind the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class Entity:
    """One value found in a message; ``value`` is normalised (synonyms applied)."""

    type: str
    value: str
    start: int
    end: int
    text: str
    confidence: float | None = None
    extractor: str | None = None
    """Who found it (``DIETClassifier``, ``RegexEntityExtractor``… for Rasa; None for built-in)."""
    role: str | None = None
    group: str | None = None
    """Rasa's entity roles and groups (``city`` with role ``departure``), kept for handlers that care."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """The classifier's verdict. ``intent`` is ``out_of_scope`` below the threshold."""

    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()
    entities: tuple[Entity, ...] = field(default_factory=tuple)
    language: str = "en"

    def entity(self, type_: str) -> str | None:
        """The first entity value of a type, or None."""
        for ent in self.entities:
            if ent.type == type_:
                return ent.value
        return None

    def entity_values(self, type_: str) -> list[str]:
        return [ent.value for ent in self.entities if ent.type == type_]


class IntentClassifier(ABC):
    """Port for intent classification and entity extraction."""

    @abstractmethod
    async def predict(self, text: str, language: str | None = None) -> Prediction:
        """Classify one message. ``language`` is a hint; None means detect it."""

    async def close(self) -> None:  # pragma: no cover - default no-op
        """Release resources (HTTP clients for remote classifiers)."""
