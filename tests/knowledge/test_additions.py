"""Phrasings and aliases admins add, merged into a shop's catalog and FAQ (knowledge/additions.py).

The shop here is written for these tests (not the demo): products whose names share words,
one phrasing per FAQ entry, Chinese beside English.
"""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.additions import (
    Addition,
    AdditionConflict,
    InvalidAddition,
    Suggestions,
    UnknownTarget,
    alias_from,
    check,
    in_use,
    known_question,
    merge,
)
from knowledge.bundle import ShopKnowledge
from knowledge.shop import Catalog, Faq
from storage.models import AdditionKind

PHRASING, ALIAS = AdditionKind.FAQ_PHRASING, AdditionKind.PRODUCT_ALIAS

CATALOG: dict[str, Any] = {
    "currency": "USD",
    "products": [
        {"sku": "HP-200", "name": {"en": "Studio Wireless Headphones", "zh": "录音室无线耳机"},
         "aliases": {"en": ["studio headphones"]}, "price": "129.00", "stock": 4},
        {"sku": "EB-100", "name": {"en": "Sport Wireless Earbuds", "zh": "运动无线耳塞"},
         "price": "59.00", "stock": 0},
        {"sku": "CH-030", "name": {"en": "Fast USB-C Charger 30W"}, "aliases": {"en": ["charger"]},
         "price": "19.00", "stock": 12},
    ],
}
FAQ: dict[str, Any] = {
    "faq": [
        {"id": "warranty", "topic": "general", "questions": {"en": ["How long is the warranty?"]},
         "answer": {"en": "Every device comes with a two-year warranty.", "zh": "所有设备保修两年。"}},
        {"id": "payment_methods", "topic": "payment", "questions": {"en": ["Which payment methods do you accept?"]},
         "answer": {"en": "We accept Visa, Mastercard and bank transfer.", "zh": "我们接受Visa、万事达卡和银行转账。"}},
        {"id": "store_pickup", "topic": "shipping", "questions": {"en": ["Can I pick up my order in the store?"]},
         "answer": {"en": "Yes: choose pickup at checkout, it is ready in two hours."}},
    ]
}


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.model_validate(CATALOG)


@pytest.fixture
def faq() -> Faq:
    return Faq.model_validate(FAQ)


def phrasing(target: str, text: str, language: str = "en") -> Addition:
    return Addition(PHRASING, target, language, text)


def alias(sku: str, text: str, language: str = "en") -> Addition:
    return Addition(ALIAS, sku, language, text)


# -- merging ------------------------------------------------------------------------------
def test_a_phrasing_added_makes_the_faq_search_answer_the_question(catalog: Catalog, faq: Faq) -> None:
    question = "Do you do buy now pay later with Affirm?"
    before = ShopKnowledge.build(catalog, faq)
    assert [entry.id for entry, _ in before.faq.search(question, "en", k=1)] != ["payment_methods"]

    merged = merge(catalog, faq, [phrasing("payment_methods", question)])
    after = ShopKnowledge.build(merged.catalog, merged.faq)
    hits = after.faq.search(question, "en", k=1)
    assert [entry.id for entry, _ in hits] == ["payment_methods"]
    assert merged.faq.get("payment_methods") is not None
    assert merged.faq.get("payment_methods").questions["en"] == [  # type: ignore[union-attr]
        "Which payment methods do you accept?", question,
    ]
    assert faq.get("payment_methods").questions["en"] == ["Which payment methods do you accept?"]  # type: ignore[union-attr]


def test_a_phrasing_in_a_new_language_is_answered_in_that_language(catalog: Catalog, faq: Faq) -> None:
    merged = merge(catalog, faq, [phrasing("warranty", "保修多久？", "zh")])
    entry = known_question(merged.faq, "保修多久")
    assert entry is not None and entry.id == "warranty"
    assert entry.answer_for("zh") == "所有设备保修两年。"
    assert merged.faq.get("warranty").questions == {  # type: ignore[union-attr]
        "en": ["How long is the warranty?"], "zh": ["保修多久？"],
    }


def test_an_alias_added_makes_the_product_found(catalog: Catalog, faq: Faq) -> None:
    assert catalog.find("do you still have the cans?") is None
    merged = merge(catalog, faq, [alias("HP-200", "cans"), alias("EB-100", "跑步耳机", "zh")])
    found = merged.catalog.find("do you still have the cans?")
    assert found is not None and found.sku == "HP-200"
    found_zh = merged.catalog.find("跑步耳机有货吗", "zh")
    assert found_zh is not None and found_zh.sku == "EB-100"
    assert merged.catalog.lookup_table()["cans"] == "HP-200"
    shop = ShopKnowledge.build(merged.catalog, merged.faq)
    assert "HP-200" in [e.value for e in shop.entities("are the cans any good?", "en") if e.type == "product"]


def test_merged_models_are_new_and_validated(catalog: Catalog, faq: Faq) -> None:
    merged = merge(catalog, faq, [alias("hp-200", "  over-ear   cans ")])
    product = merged.catalog.find_by_value("HP-200")
    assert product is not None and product.aliases["en"] == ["studio headphones", "over-ear cans"]
    assert catalog.find_by_value("HP-200").aliases["en"] == ["studio headphones"]  # type: ignore[union-attr]
    assert merged.applied == (alias("hp-200", "  over-ear   cans "),) and merged.skipped == ()


def test_additions_the_files_now_contradict_are_skipped_not_fatal(catalog: Catalog, faq: Faq) -> None:
    stored = [
        alias("HP-200", "cans"),
        alias("XX-999", "gone"),  # the product was removed from catalog.yml
        phrasing("old_entry", "What about the old thing?"),  # the entry was removed from faq.yml
        alias("EB-100", "cans"),  # clashes with an addition applied before it
        alias("CH-030", "Studio Wireless Headphones"),  # the file gives this name to another product
        phrasing("warranty", "how long is the WARRANTY?"),  # the file has it already
    ]
    merged = merge(catalog, faq, stored)
    assert merged.applied == (stored[0],)
    assert [addition for addition, _ in merged.skipped] == stored[1:]
    reasons = dict((a.text, why) for a, why in merged.skipped)
    assert "no product with sku 'XX-999'" in reasons["gone"]
    assert "HP-200" in reasons["Studio Wireless Headphones"]
    assert merged.catalog.find("cans") is not None and merged.catalog.find("cans").sku == "HP-200"  # type: ignore[union-attr]


# -- checking one new addition --------------------------------------------------------------
def test_an_alias_of_another_product_is_a_conflict_naming_it(catalog: Catalog, faq: Faq) -> None:
    with pytest.raises(AdditionConflict, match=r"already names another product \(CH-030"):
        check(catalog, faq, alias("EB-100", "Charger"))
    with pytest.raises(AdditionConflict, match="already names another product"):
        check(catalog, faq, alias("EB-100", "STUDIO  headphones"))
    with pytest.raises(AdditionConflict, match="already names CH-030"):
        check(catalog, faq, alias("CH-030", "charger"))


def test_a_phrasing_already_there_is_a_conflict(catalog: Catalog, faq: Faq) -> None:
    with pytest.raises(AdditionConflict, match="already a phrasing of warranty"):
        check(catalog, faq, phrasing("warranty", "how long is the  warranty?"))
    check(catalog, faq, phrasing("warranty", "How long is the warranty?", "zh"))  # another language: fine


@pytest.mark.parametrize(
    ("addition", "error", "message"),
    [
        (phrasing("no_such_entry", "hello?"), UnknownTarget, "no entry 'no_such_entry'"),
        (alias("NOPE-1", "thing"), UnknownTarget, "no product with sku 'NOPE-1'"),
        (alias("HP-200", "do you still have these headphones in black please"), InvalidAddition, "at most 6 words"),
        (alias("HP-200", "x" * 61), InvalidAddition, "at most 60 characters"),
        (phrasing("warranty", "   "), InvalidAddition, "empty"),
        (phrasing("warranty", "q" * 301), InvalidAddition, "at most 300 characters"),
        (phrasing("warranty", "Hoe lang garantie?", "Dutch"), InvalidAddition, "not a language code"),
    ],
)
def test_what_cannot_be_added_says_why(
    catalog: Catalog, faq: Faq, addition: Addition, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        check(catalog, faq, addition)


def test_in_use_tells_applied_from_skipped(catalog: Catalog, faq: Faq) -> None:
    applied, skipped = alias("HP-200", "cans"), alias("EB-100", "charger")
    merged = merge(catalog, faq, [applied, skipped, phrasing("warranty", "guarantee?")])
    assert in_use(merged.catalog, merged.faq, applied)
    assert not in_use(merged.catalog, merged.faq, skipped)
    assert in_use(merged.catalog, merged.faq, phrasing("warranty", "Guarantee?"))
    assert not in_use(catalog, faq, phrasing("warranty", "guarantee?"))


# -- the near-verbatim lookup ----------------------------------------------------------------
def test_known_question_is_near_verbatim_only(faq: Faq) -> None:
    found = known_question(faq, "can i pick up my order in the store")
    assert found is not None and found.id == "store_pickup"
    assert known_question(faq, "Can I pick up my odrer in the store??") is not None  # a typo
    assert known_question(faq, "can I pick up the headphones in another colour") is None
    assert known_question(faq, "store") is None
    assert known_question(faq, "!!!") is None


# -- suggestions --------------------------------------------------------------------------------
def test_suggestions_rank_the_entry_and_the_product_a_question_is_about(catalog: Catalog, faq: Faq) -> None:
    suggest = Suggestions(catalog, faq)
    entries = suggest.faq_entries("is there any warranty on the earbuds", "en")
    assert entries[0][0].id == "warranty"
    assert [entry.id for entry, _ in suggest.faq_entries("can I pay by bank transfer?", "en", k=1)] == ["payment_methods"]
    products = suggest.products("how much are the wireless earbuds for sport?")
    assert products[0][0].sku == "EB-100"
    assert products[0][2] == "wireless earbuds for sport"
    assert suggest.products("Which payment methods do you accept?") == []  # names no product
    assert suggest.faq_entries("", "en") == [] and suggest.products("?") == []


@pytest.mark.parametrize(
    ("text", "sku", "expected"),
    [
        ("do you have the studio cans in stock", "HP-200", "studio"),
        ("price of the sport earbud?", "EB-100", "sport earbud"),
        ("运动耳塞多少钱", "EB-100", "运动耳塞"),
        ("what's the weather like", "CH-030", ""),
    ],
)
def test_alias_from_takes_the_words_that_name_the_product(
    catalog: Catalog, text: str, sku: str, expected: str
) -> None:
    product = catalog.find_by_value(sku)
    assert product is not None
    assert alias_from(text, product) == expected
