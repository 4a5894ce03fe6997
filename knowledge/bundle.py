"""One consistent view of a shop's knowledge, replaced as a whole when its data changes.

Handlers read ``turn.services.shop``; an import of new orders or an admin's new FAQ phrasing
builds a new :class:`ShopKnowledge` and swaps it in, so a turn never sees a catalog from one
version and a product index from another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from intents.base import Entity, merge_entities
from knowledge.faq_search import FaqSearch, TextEncoder
from knowledge.order_ids import OrderIds
from knowledge.products import ProductMatcher
from knowledge.shop import Catalog, Faq


@dataclass(frozen=True, slots=True)
class ShopKnowledge:
    catalog: Catalog
    faq: FaqSearch
    products: ProductMatcher
    order_ids: OrderIds

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        faq: Faq,
        order_ids: Iterable[str] = (),
        order_id_pattern: str | None = None,
        faq_encoders: Mapping[str, TextEncoder] | None = None,
    ) -> ShopKnowledge:
        """Index a shop's catalog, FAQ and order ids (all the CPU work: call it off the event loop).

        ``faq_encoders`` (``knowledge.faq_search.bundled_encoders()``, with ``classifier.model:
        accurate``) add sentence embeddings to the FAQ's lexical search.
        """
        return cls(
            catalog, FaqSearch(faq, faq_encoders), ProductMatcher(catalog), OrderIds(order_ids, order_id_pattern)
        )

    def with_order_ids(self, order_ids: OrderIds) -> ShopKnowledge:
        return ShopKnowledge(self.catalog, self.faq, self.products, order_ids)

    def entities(self, text: str, language: str | None = None) -> tuple[Entity, ...]:
        """The shop's entities in ``text``: order ids first (an id never reads as a product), then products."""
        return merge_entities(self.order_ids.find(text), self.products.entities(text, language))
