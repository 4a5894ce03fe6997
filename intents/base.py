"""The classifier port: what the pipeline needs from intent understanding.

Handlers and the pipeline import only these types, so a Rasa server, the built-in
model or a tiny test double can stand behind the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
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


def merge_entities(known: Sequence[Entity], found: Sequence[Entity]) -> tuple[Entity, ...]:
    """``known`` plus every entity of ``found`` that overlaps none of them, in text order."""
    if not known:
        return tuple(found)
    kept = list(known) + [
        ent for ent in found if all(ent.end <= k.start or ent.start >= k.end for k in known)
    ]
    return tuple(sorted(kept, key=lambda ent: (ent.start, ent.end)))


class IntentClassifier(ABC):
    """Port for intent classification and entity extraction."""

    @abstractmethod
    async def predict(self, text: str, language: str | None = None, known: Sequence[Entity] = ()) -> Prediction:
        """Classify one message. ``language`` is a hint; None means detect it.

        ``known`` are the shop's entities already found in ``text`` (order ids, products):
        they are part of the returned entities, win over anything the classifier's own
        extractor finds at the same place, and stand as typed placeholders in what the
        model reads, so no shop's nouns or id format ever decide an intent.
        """

    async def close(self) -> None:  # pragma: no cover - default no-op
        """Release resources (HTTP clients for remote classifiers)."""
