"""The test shops are valid shop data, unlike the demo, and the fixture serves them as ``make run`` would."""

from __future__ import annotations

import ast
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import App
from knowledge.shop import fold_text, load_catalog, load_faq
from storage.models import utcnow
from storage.orders_csv import parse_orders_csv
from tests.shops.harness import ANCHOR, SHOPS, load_probes, shifted_orders_csv

ALL_SHOPS = sorted(SHOPS)
DEMO = Path(__file__).resolve().parents[2] / "examples" / "shop"
ID_FORMATS = {"electronics": r"\d{6}", "cosmetics": r"DD\d{11}", "furniture": r"\d{4}-\d{2}-\d{6}"}
CURRENCIES = {"electronics": "USD", "cosmetics": "CNY", "furniture": "GBP"}
FIRST_LANGUAGE = {"electronics": "en", "cosmetics": "zh", "furniture": "en"}
BRANDS = ("Nova X2", "Volt", "Pulse Mini", "Arc 14", "Arc 16", "水漾", "Oslo Oak", "Bergen Linen", "Malmo", "Fjord")  # the test shops' own names


def _words(name: str) -> set[str]:
    folded = fold_text(name)
    if re.search(r"[\u4e00-\u9fff]", folded):
        return {folded[i : i + 2] for i in range(len(folded) - 1)}  # Chinese: shared two-character words
    return set(re.findall(r"[a-z0-9]+", folded))


@pytest.mark.parametrize("key", ALL_SHOPS)
def test_files_load_as_docs_shop_data_describes(key: str) -> None:
    spec = SHOPS[key]
    catalog, faq, orders = load_catalog(spec.catalog), load_faq(spec.faq), parse_orders_csv(spec.orders_csv)
    assert catalog.currency == CURRENCIES[key]
    assert all(re.fullmatch(ID_FORMATS[key], o.order_id) for o in orders)
    skus = {p.sku for p in catalog.products}
    assert {str(i["sku"]) for o in orders for i in o.items} <= skus
    # One phrasing per entry and language, as owners write FAQs.
    assert all(len(qs) == 1 for entry in faq.entries for qs in entry.questions.values())
    # Names that share words: the matcher cannot rely on a unique word per product.
    first = FIRST_LANGUAGE[key]
    shared = Counter(w for p in catalog.products for w in _words(p.name_for(first)))
    assert sum(1 for count in shared.values() if count >= 2) >= 3


@pytest.mark.parametrize("key", ALL_SHOPS)
def test_unlike_the_demo_and_each_other(key: str) -> None:
    spec = SHOPS[key]
    demo = load_catalog(DEMO / "catalog.yml")
    mine = load_catalog(spec.catalog)
    assert mine.currency != demo.currency
    assert not {p.sku for p in mine.products} & {p.sku for p in demo.products}
    assert not {p.name_for("en") for p in mine.products} & {p.name_for("en") for p in demo.products}
    demo_ids = {o.order_id for o in parse_orders_csv(DEMO / "orders.csv")}
    assert not any(re.fullmatch(ID_FORMATS[key], i) for i in demo_ids)
    others = [k for k in ALL_SHOPS if k != key]
    for other in others:
        assert not {o.order_id for o in parse_orders_csv(SHOPS[other].orders_csv)} & {
            o.order_id for o in parse_orders_csv(spec.orders_csv)
        }


@pytest.mark.parametrize("key", ALL_SHOPS)
def test_dates_are_shifted_so_the_anchor_is_today(key: str, tmp_path: Path) -> None:
    spec = SHOPS[key]
    today = utcnow().date()
    written = {o.order_id: o for o in parse_orders_csv(spec.orders_csv)}
    shifted = {o.order_id: o for o in parse_orders_csv(shifted_orders_csv(spec.orders_csv, tmp_path / "o.csv", today))}
    assert written.keys() == shifted.keys()
    for order_id, order in written.items():
        moved = shifted[order_id]
        assert moved.ordered_at - order.ordered_at == timedelta(days=(today - ANCHOR).days)
        assert (moved.delivered_at is None) == (order.delivered_at is None)
        assert moved.items == order.items and moved.total == order.total


@pytest.mark.parametrize("key", ALL_SHOPS)
def test_probes_refer_to_the_shop(key: str) -> None:
    spec = SHOPS[key]
    faq_probes, product_probes = load_probes(spec)
    entries = {e.id for e in load_faq(spec.faq).entries}
    skus = {p.sku for p in load_catalog(spec.catalog).products}
    assert {p.entry for p in faq_probes if p.entry} <= entries
    assert {p.entry for p in faq_probes} >= entries | {None}  # every entry probed, and abstention too
    assert {s for p in product_probes for s in p.products} <= skus
    assert any(len(p.products) > 1 for p in product_probes) and any(not p.products for p in product_probes)


@pytest.mark.parametrize("shop_key", ALL_SHOPS)
async def test_the_app_serves_the_shop_with_its_imported_orders(shop_app: App, shop_key: str) -> None:
    spec = SHOPS[shop_key]
    assert shop_app.settings.shop.name == spec.name
    assert shop_app.services.catalog.currency == CURRENCIES[shop_key]
    written = {o.order_id: o for o in parse_orders_csv(spec.orders_csv)}
    async with shop_app.tickets.session() as tx:
        assert set(await tx.order_ids()) == written.keys()
        for order_id, order in written.items():
            stored = await tx.get_order(order_id)
            assert stored is not None and stored.order_id == order_id
            if order.delivered_at is not None:
                assert stored.delivered_at is not None
                assert stored.delivered_at.date() - order.delivered_at.date() == utcnow().date() - ANCHOR


def _customer_lines() -> list[str]:
    """Every message the scripted customers type (the string arguments of ``chat.say``)."""
    lines: list[str] = []
    for module in sorted(Path(__file__).parent.glob("conversations_*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "say"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                lines.append(node.args[0].value)
    return lines


def _training_examples() -> tuple[set[str], str]:
    """The NLU examples (annotations resolved to their text, compared by :func:`_comparable`),
    and the whole data folded, for looking up terms."""
    examples: set[str] = set()
    texts: list[str] = []
    for path in sorted((DEMO.parents[1] / "intents" / "data").rglob("*.yml")):
        text = path.read_text(encoding="utf-8")
        texts.append(fold_text(text))
        examples |= {_comparable(m) for m in re.findall(r"^\s*-\s+(.+)$", text, re.M)}
    return examples, "\n".join(texts)


def _comparable(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # "[#100234](order_id)" -> "#100234"
    return " ".join(re.sub(r"[^\w]+", " ", fold_text(text)).split())


def test_no_test_shop_text_is_in_the_training_data() -> None:
    """The test shops stand for shops deskbot has never seen: no scripted customer line or
    probe is a training example, and no product name, brand, sku or customer of theirs
    appears in intents/data."""
    examples, data = _training_examples()
    lines = _customer_lines()
    assert len(lines) > 40
    terms: list[str] = []
    for key in ALL_SHOPS:
        spec = SHOPS[key]
        faq_probes, product_probes = load_probes(spec)
        lines += [p.text for p in faq_probes] + [p.text for p in product_probes]
        catalog = load_catalog(spec.catalog)
        terms += [fold_text(name) for p in catalog.products for name in p.name.values()]
        terms += [fold_text(p.sku) for p in catalog.products]
        terms += [fold_text(o.email) for o in parse_orders_csv(spec.orders_csv) if o.email]
    terms += [fold_text(brand) for brand in BRANDS]
    assert not [line for line in lines if _comparable(line) in examples]
    assert not sorted({t for t in terms if re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", data)})
