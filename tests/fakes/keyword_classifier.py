"""A deterministic classifier for tests that are not about understanding.

The real model is what the conversation tests over shops are about; a test of, say, ticket
routing or a channel's delivery only needs *some* intent for a message, the same one every
run, whatever the model learnt last. :class:`KeywordClassifier` gives it without training:

- a message equal to one of the NLU examples (case, spaces and end punctuation aside) gets
  that example's intent, confidence 1.0;
- otherwise the first rule whose keyword occurs in it (case-insensitive) or whose regex
  matches it, confidence 0.9;
- otherwise ``out_of_scope``, confidence 0.0.

Entities: the shop's ``known`` ones, plus whatever the NLU data's own extractor finds
elsewhere (the built-in classifier's rule); the language is the hint's, else detected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from intents.base import OUT_OF_SCOPE, Entity, IntentClassifier, Prediction, merge_entities
from intents.entities import EntityExtractor
from intents.language import detect_language, normalise_language_tag
from intents.nlu_data import NluData

EXAMPLE_CONFIDENCE = 1.0
RULE_CONFIDENCE = 0.9
_END_PUNCTUATION = "?!.。？！，,;；~ "


def normalise(text: str) -> str:
    """What two messages must share to count as the same example."""
    return " ".join(text.casefold().split()).strip(_END_PUNCTUATION)


@dataclass(frozen=True)
class Rule:
    """``intent`` when any keyword occurs in the message or any pattern matches it."""

    intent: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()

    def matches(self, text: str) -> bool:
        folded = text.casefold()
        return any(word.casefold() in folded for word in self.keywords) or any(
            pattern.search(text) for pattern in self.patterns
        )


def rule(intent: str, *keywords: str, patterns: Iterable[str] = ()) -> Rule:
    return Rule(intent, tuple(keywords), tuple(re.compile(p, re.IGNORECASE) for p in patterns))


class KeywordClassifier(IntentClassifier):
    """Examples first, then rules in order, else ``out_of_scope``; no training, no randomness."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        examples: Mapping[str, str] | None = None,
        *,
        extractor: EntityExtractor | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.examples = {normalise(text): intent for text, intent in (examples or {}).items()}
        self.extractor = extractor
        self.calls: list[str] = []
        """Every text it was asked about, in order (for tests that count classifications)."""

    @classmethod
    def from_nlu(cls, data: NluData, rules: Sequence[Rule] = ()) -> KeywordClassifier:
        """Knows the data's examples and finds its entities. An example text the data gives
        two intents keeps the first (``NluData.conflicts`` reports such data)."""
        examples: dict[str, str] = {}
        for example in data.examples:
            examples.setdefault(example.text, example.intent)
        return cls(rules, examples, extractor=EntityExtractor.from_nlu(data))

    @property
    def intents(self) -> tuple[str, ...]:
        """Every intent it can answer besides ``out_of_scope``."""
        return tuple(sorted({*self.examples.values(), *(r.intent for r in self.rules)}))

    async def predict(self, text: str, language: str | None = None, known: Sequence[Entity] = ()) -> Prediction:
        self.calls.append(text)
        lang = normalise_language_tag(language) if language else detect_language(text)
        found = self.extractor.extract(text, known) if self.extractor is not None and text.strip() else ()
        entities = merge_entities(known, found)
        intent, confidence = self._decide(text)
        ranking = ((intent, confidence),) if intent != OUT_OF_SCOPE else ()
        return Prediction(intent=intent, confidence=confidence, ranking=ranking, entities=entities, language=lang)

    def _decide(self, text: str) -> tuple[str, float]:
        if not text.strip():
            return OUT_OF_SCOPE, 0.0
        example = self.examples.get(normalise(text))
        if example is not None:
            return example, EXAMPLE_CONFIDENCE
        for candidate in self.rules:
            if candidate.matches(text):
                return candidate.intent, RULE_CONFIDENCE
        return OUT_OF_SCOPE, 0.0
