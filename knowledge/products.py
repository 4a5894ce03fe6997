"""Products as customers name them.

PLACEHOLDER IMPLEMENTATION — being replaced (rapidfuzz: partial names, plurals, typos).
"""

from __future__ import annotations

from dataclasses import dataclass

from intents.base import Entity
from knowledge.shop import Catalog, Product


@dataclass(frozen=True, slots=True)
class ProductMention:
    """Where a message names a product, and which products it may mean, best first."""

    start: int
    end: int
    text: str
    candidates: tuple[tuple[Product, float], ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


class ProductMatcher:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def mentions(self, text: str, language: str | None = None) -> list[ProductMention]:
        product = self.catalog.find(text, language)
        if product is None:
            return []
        return [ProductMention(0, 0, "", ((product, 1.0),))]

    def entities(self, text: str, language: str | None = None) -> list[Entity]:
        return [
            Entity("product", m.candidates[0][0].sku, m.start, m.end, m.text, confidence=m.candidates[0][1])
            for m in self.mentions(text, language)
            if m.end > m.start
        ]
