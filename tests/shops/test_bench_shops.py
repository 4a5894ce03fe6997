"""bench/shops.py scores what it claims: abstention counts in FAQ precision and recall, a
which-one question is right only when it offers exactly the products meant."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from knowledge.products import ProductMatcher, ProductMention
from knowledge.shop import load_catalog
from tests.shops.harness import SHOPS, FaqProbe, ProductProbe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_shops", ROOT / "bench" / "shops.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_shops"] = module
    spec.loader.exec_module(module)
    return module


def test_faq_precision_recall_and_abstention(bench: ModuleType) -> None:
    score = bench.FaqScore()
    score.record(FaqProbe("a", "en", "shipping"), "shipping")  # right
    score.record(FaqProbe("b", "en", "payment"), "shipping")  # wrong answer
    score.record(FaqProbe("c", "en", "payment"), None)  # abstained on an answerable question
    score.record(FaqProbe("d", "en", None), None)  # rightly abstained
    score.record(FaqProbe("e", "en", None), "returns")  # answered the unanswerable
    assert (score.precision.hits, score.precision.total) == (1, 3)
    assert (score.recall.hits, score.recall.total) == (1, 3)
    assert (score.abstained.hits, score.abstained.total) == (1, 2)
    assert len(score.misses) == 3


def test_a_reply_counts_as_the_entry_it_quotes(bench: ModuleType) -> None:
    answers = {"shipping": ["Ships in 1 day.", "1 天发货。"], "payment": ["We take cards."]}
    assert bench.quoted_entry(["Hi!", "1 天发货。"], answers) == "shipping"
    assert bench.quoted_entry(["We take cards and cash?"], answers) is None
    assert bench.quoted_entry(["I don't know."], answers) is None


def test_product_verdicts(bench: ModuleType) -> None:
    catalog = load_catalog(SHOPS["electronics"].catalog)
    a14, a16 = catalog.find_by_value("ARC-14"), catalog.find_by_value("ARC-16")
    assert a14 is not None and a16 is not None
    both = [ProductMention(0, 6, "sleeve", ((a14, 0.8), (a16, 0.8)))]
    one = [ProductMention(0, 6, "arc 14", ((a14, 0.9),))]
    assert bench.product_verdict(ProductProbe("x", "en", ("ARC-14", "ARC-16")), both)[0]
    assert not bench.product_verdict(ProductProbe("x", "en", ("ARC-14",)), both)[0]  # asking is not answering
    assert bench.product_verdict(ProductProbe("x", "en", ("ARC-14",)), one)[0]
    assert not bench.product_verdict(ProductProbe("x", "en", ("ARC-14", "ARC-16")), one)[0]  # a guess
    assert bench.product_verdict(ProductProbe("x", "en", ()), [])[0]
    assert not bench.product_verdict(ProductProbe("x", "en", ()), one)[0]
    # the real matcher is what the bench asks
    assert ProductMatcher(catalog).mentions("arc 14 sleeve", "en")
