"""One consistent view of a shop's knowledge, replaced as a whole when its data changes.

Handlers read ``turn.services.shop``; an import of new orders or an admin's new FAQ phrasing
builds a new :class:`ShopKnowledge` and swaps it in, so a turn never sees a catalog from one
version and a product index from another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from intents.base import Entity, merge_entities
from knowledge.order_ids import OrderIds
from knowledge.products import ProductMatcher
from knowledge.shop import Catalog, Faq, FaqIndex


@dataclass(frozen=True, slots=True)
class ShopKnowledge:
    catalog: Catalog
    faq: FaqIndex
    products: ProductMatcher
    order_ids: OrderIds

    @classmethod
    def build(
        cls, catalog: Catalog, faq: Faq, order_ids: Iterable[str] = (), order_id_pattern: str | None = None
    ) -> ShopKnowledge:
        """Index a shop's catalog, FAQ and order ids (all the CPU work: call it off the event loop)."""
        return cls(catalog, FaqIndex(faq), ProductMatcher(catalog), OrderIds(order_ids, order_id_pattern))

    def with_order_ids(self, order_ids: OrderIds) -> ShopKnowledge:
        return ShopKnowledge(self.catalog, self.faq, self.products, order_ids)

    def entities(self, text: str, language: str | None = None) -> tuple[Entity, ...]:
        """The shop's entities in ``text``: order ids first (an id never reads as a product), then products."""
        return merge_entities(self.order_ids.find(text), self.products.entities(text, language))
