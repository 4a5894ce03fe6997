"""The project's NLU data teaches customers' intents, not one shop's nouns or order-id format.

Product mentions and order ids are annotated (training turns them into placeholders), in
many trades and many formats, and nothing from the demo shop's catalog is left in the words
around them: a model trained on the demo's hoodies and ``A12345`` ids would understand the
demo and stumble on every other shop.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from intents.nlu_data import NluData, TrainingExample, load_nlu_data

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DATA = ROOT / "intents" / "data"
DEMO_CATALOG = ROOT / "examples" / "shop" / "catalog.yml"
LANGUAGES = ("en", "zh")
GENERIC_WORDS = frozenset({"shoes"})
"""Demo aliases that are every shoe shop's word too: allowed, as long as they stay rare."""


@pytest.fixture(scope="module")
def data() -> NluData:
    return load_nlu_data(PROJECT_DATA)


def demo_surface_forms() -> set[str]:
    catalog = yaml.safe_load(DEMO_CATALOG.read_text(encoding="utf-8"))
    forms: set[str] = set()
    for product in catalog["products"]:
        forms.add(product["sku"])
        forms.update(product["name"].values())
        for aliases in (product.get("aliases") or {}).values():
            forms.update(aliases)
    return {form.lower() for form in forms} - GENERIC_WORDS


def mentions(text: str, form: str) -> bool:
    if re.search(r"[\u4e00-\u9fff]", form):
        return form in text
    return re.search(r"(?<![a-z0-9])" + re.escape(form) + r"(?![a-z0-9])", text) is not None


def annotated(data: NluData, type_: str, language: str) -> list[str]:
    return [ent.text for ex in data.examples if ex.language == language for ent in ex.entities if ent.type == type_]


def shape(order_id: str) -> str:
    """The id's format: ``KX-20417`` → ``AA-99999``, ``#100234`` → ``#999999``."""
    return re.sub(r"[A-Za-z]", "A", re.sub(r"\d", "9", order_id))


def test_no_shop_entity_is_a_regex_or_a_lookup(data: NluData) -> None:
    assert {"order_id", "product"}.isdisjoint(data.regexes)
    assert {"order_id", "product"}.isdisjoint(data.lookups)


def test_no_demo_product_is_named_anywhere(data: NluData) -> None:
    forms = demo_surface_forms()
    offending = [
        f"{ex.intent}: {ex.text}  [{form}]"
        for ex in data.examples
        for form in forms
        if mentions(ex.text.lower(), form)
    ]
    assert offending == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_order_ids_come_in_many_formats(data: NluData, language: str) -> None:
    ids = annotated(data, "order_id", language)
    shapes = Counter(shape(order_id) for order_id in ids)
    assert len(ids) >= 30
    assert len(shapes) >= 6, shapes
    assert shapes.most_common(1)[0][1] <= len(ids) / 3, shapes


@pytest.mark.parametrize("language", LANGUAGES)
def test_products_come_from_many_trades(data: NluData, language: str) -> None:
    products = Counter(text.lower() for text in annotated(data, "product", language))
    assert len(products) >= 80, len(products)
    assert products.most_common(1)[0][1] <= sum(products.values()) / 20, products.most_common(3)


def test_product_and_order_annotations_cover_the_shop_intents(data: NluData) -> None:
    def share(intent: str, type_: str) -> float:
        rows: list[TrainingExample] = [ex for ex in data.examples if ex.intent == intent]
        return sum(any(ent.type == type_ for ent in ex.entities) for ex in rows) / len(rows)

    for intent in ("ask_price", "ask_stock", "request_return", "request_exchange"):
        assert share(intent, "product") >= 0.25, intent
    assert share("order_status", "order_id") >= 0.2
