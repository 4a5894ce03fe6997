"""Catalog and FAQ loading, product lookup and stock on the demo shop data (FAQ retrieval: test_faq_search.py)."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from knowledge.shop import (
    TOPICS,
    Catalog,
    Faq,
    FaqEntry,
    KnowledgeError,
    fold_text,
    load_catalog,
    load_faq,
    normalise_language,
)

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(SHOP / "catalog.yml")


@pytest.fixture(scope="module")
def faq() -> Faq:
    return load_faq(SHOP / "faq.yml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.yml"
    path.write_text(text, encoding="utf-8")
    return path


# --- loading the demo files ------------------------------------------------------------

class TestDemoFiles:
    def test_catalog_loads_with_both_languages(self, catalog: Catalog) -> None:
        assert catalog.currency == "EUR"
        assert len(catalog.products) >= 12
        for product in catalog.products:
            assert set(product.name) == {"en", "zh"}, product.sku
            assert product.description is not None and set(product.description) == {"en", "zh"}

    def test_prices_are_exact_decimals(self, catalog: Catalog) -> None:
        hoodie = catalog.find_by_value("HD-001")
        assert hoodie is not None
        assert hoodie.price == Decimal("49.90")

    def test_numeric_sizes_are_read_as_labels(self, catalog: Catalog) -> None:
        jeans = catalog.find_by_value("JN-001")
        assert jeans is not None
        assert jeans.sizes == ["28", "30", "32", "34", "36"]

    def test_faq_loads_with_every_topic_and_language(self, faq: Faq) -> None:
        assert len(faq.entries) >= 20
        assert {entry.topic for entry in faq.entries} == set(TOPICS)
        for entry in faq.entries:
            assert set(entry.answer) == {"en", "zh"}, entry.id
            for lang in ("en", "zh"):
                assert 3 <= len(entry.questions[lang]) <= 8, (entry.id, lang)

    def test_faq_get_by_id(self, faq: Faq) -> None:
        entry = faq.get("shipping_time")
        assert entry is not None and entry.topic == "shipping"
        assert faq.get("no_such_entry") is None


# --- malformed files -------------------------------------------------------------------

HOODIE = """\
  - sku: HD-001
    name: {en: Hoodie}
    price: 49.90
    sizes: [S, M]
    stock: {S: 1, M: 2}
"""


class TestMalformedFiles:
    def test_bad_field_names_file_entry_and_field(self, tmp_path: Path) -> None:
        path = write(tmp_path, "currency: EUR\nproducts:\n" + HOODIE + """\
  - sku: CP-001
    name: {en: Cap}
    price: -1
    stock: 3
""")
        with pytest.raises(KnowledgeError) as caught:
            load_catalog(path)
        assert caught.value.entry == "products[1] (sku CP-001)"
        assert caught.value.path == path
        message = str(caught.value)
        assert str(path) in message
        assert "products[1] (sku CP-001): price:" in message

    def test_misspelt_field_is_rejected(self, tmp_path: Path) -> None:
        path = write(tmp_path, "currency: EUR\nproducts:\n" + HOODIE + "    colors: {en: [red]}\n")
        with pytest.raises(KnowledgeError, match=r"products\[0\] \(sku HD-001\): colors: Extra inputs"):
            load_catalog(path)

    @pytest.mark.parametrize(
        ("stock", "complaint"),
        [
            ("{S: 1}", r"missing \['m'\]"),
            ("{S: 1, M: 2, L: 3}", r"not in sizes \['l'\]"),
            ("3", "needs stock per size"),
        ],
    )
    def test_stock_must_match_sizes(self, tmp_path: Path, stock: str, complaint: str) -> None:
        path = write(tmp_path, "currency: EUR\nproducts:\n" + HOODIE.replace("{S: 1, M: 2}", stock))
        with pytest.raises(KnowledgeError, match=complaint) as caught:
            load_catalog(path)
        assert caught.value.entry == "products[0] (sku HD-001)"

    def test_alias_of_two_products_names_both(self, tmp_path: Path) -> None:
        path = write(tmp_path, """\
currency: EUR
products:
  - {sku: RJ-001, name: {en: Rain Jacket}, aliases: {en: [jacket]}, price: 79, stock: 1}
  - {sku: DJ-001, name: {en: Denim Jacket}, aliases: {en: [Jacket]}, price: 89, stock: 1}
""")
        expected = r"products\[1\] \(sku DJ-001\): 'jacket' already names products\[0\] \(sku RJ-001\)"
        with pytest.raises(KnowledgeError, match=expected):
            load_catalog(path)

    def test_duplicate_sku(self, tmp_path: Path) -> None:
        path = write(tmp_path, "currency: EUR\nproducts:\n" + HOODIE + HOODIE.replace("Hoodie", "Other"))
        expected = r"products\[1\] \(sku HD-001\): the sku is already used by products\[0\]"
        with pytest.raises(KnowledgeError, match=expected):
            load_catalog(path)

    def test_faq_entry_errors_name_the_id(self, tmp_path: Path) -> None:
        path = write(tmp_path, """\
faq:
  - id: fine
    topic: general
    questions: {en: ["Hello?"]}
    answer: {en: Hi.}
  - id: broken
    topic: weather
    questions: {zh: ["天气怎么样？"]}
    answer: {zh: 晴天。}
""")
        with pytest.raises(KnowledgeError) as caught:
            load_faq(path)
        message = str(caught.value)
        assert caught.value.entry == "faq[1] (id broken)"
        assert "faq[1] (id broken): topic:" in message
        assert "faq[1] (id broken): questions: at least one 'en' question is required" in message
        assert "faq[1] (id broken): answer: an 'en' text is required" in message

    def test_duplicate_faq_id(self, tmp_path: Path) -> None:
        entry = '  - {id: same, topic: general, questions: {en: ["Hi?"]}, answer: {en: Hi.}}\n'
        with pytest.raises(KnowledgeError, match=r"faq\[1\] \(id same\): the id is already used by faq\[0\]"):
            load_faq(write(tmp_path, "faq:\n" + entry + entry))

    def test_yaml_boolean_gets_a_hint(self, tmp_path: Path) -> None:
        path = write(tmp_path, 'faq:\n  - {id: open, topic: general, questions: {en: ["Open?"]}, answer: {en: yes}}\n')
        with pytest.raises(KnowledgeError, match=r"faq\[0\] \(id open\): answer\.en: .*put the text in quotes"):
            load_faq(path)

    def test_invalid_yaml(self, tmp_path: Path) -> None:
        with pytest.raises(KnowledgeError, match="is not valid UTF-8 YAML"):
            load_faq(write(tmp_path, "faq: [\n"))

    def test_empty_file(self, tmp_path: Path) -> None:
        with pytest.raises(KnowledgeError, match="is empty"):
            load_catalog(write(tmp_path, "# nothing yet\n"))

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(KnowledgeError, match="cannot read the file") as caught:
            load_catalog(tmp_path / "nope.yml")
        assert caught.value.entry is None


# --- catalog lookup --------------------------------------------------------------------

class TestCatalogFind:
    @pytest.mark.parametrize(
        ("text", "language", "sku"),
        [
            ("Do you have hoodies in M?", "en", "HD-001"),
            ("is the EVERYDAY HOODIE warm", "en", "HD-001"),
            ("what material are the t shirts", "en", "TS-001"),
            ("any dresses in size S?", "en", "DR-001"),
            ("is the denim jacket lined", "en", "DJ-001"),  # longest form beats "denim"
            ("is the denim thick", "en", "JN-001"),
            ("how warm is the puffer jacket", "en", "PJ-001"),
            ("is HD-001 back?", "en", "HD-001"),
            ("我想买一件白色T恤", "zh", "TS-001"),
            ("卫衣还有M码吗", "zh", "HD-001"),
            ("牛仔外套有货吗", "zh", "DJ-001"),
            ("牛仔裤什么材质", "zh", "JN-001"),
            ("我要买hoodie", "zh", "HD-001"),  # customers mix languages
            ("ＨＤ－００１还有吗", "zh", "HD-001"),  # full-width input
        ],
    )
    def test_finds_product(self, catalog: Catalog, text: str, language: str, sku: str) -> None:
        product = catalog.find(text, language)
        assert product is not None and product.sku == sku

    @pytest.mark.parametrize(
        "text",
        ["what is the capital of France", "is your store open on capstone day", "我想问一下退货", ""],
    )
    def test_no_product(self, catalog: Catalog, text: str) -> None:
        assert catalog.find(text, "en") is None

    def test_find_by_value_is_case_insensitive(self, catalog: Catalog) -> None:
        product = catalog.find_by_value(" hd-001 ")
        assert product is not None and product.sku == "HD-001"
        assert catalog.find_by_value("XX-999") is None

    def test_lookup_table_maps_every_form_to_its_sku(self, catalog: Catalog) -> None:
        table = catalog.lookup_table()
        assert table["hoodie"] == "HD-001"
        assert table["卫衣"] == "HD-001"
        assert table["everyday hoodie"] == "HD-001"
        assert table["hd-001"] == "HD-001"
        assert table["t恤"] == "TS-001"  # "T恤" in the file, folded
        skus = {product.sku for product in catalog.products}
        assert set(table.values()) == skus
        assert all(key == fold_text(key) for key in table)
        for product in catalog.products:
            for lang, aliases in product.aliases.items():
                for alias in aliases:
                    assert table[fold_text(alias)] == product.sku, (lang, alias)

    def test_lookup_table_is_a_copy(self, catalog: Catalog) -> None:
        catalog.lookup_table()["hoodie"] = "XX-999"
        assert catalog.lookup_table()["hoodie"] == "HD-001"


class TestStock:
    def test_per_size(self, catalog: Catalog) -> None:
        hoodie = catalog.find_by_value("HD-001")
        assert hoodie is not None
        assert hoodie.stock_count("L") == 12
        assert hoodie.stock_count("m") == 0
        assert not hoodie.in_stock("M")
        assert hoodie.in_stock("xl")
        assert hoodie.in_stock("ＸＬ")
        assert hoodie.stock_count() == 19
        assert hoodie.in_stock()
        assert hoodie.sizes_in_stock() == ["S", "L", "XL"]

    def test_unknown_size_has_no_stock(self, catalog: Catalog) -> None:
        hoodie = catalog.find_by_value("HD-001")
        assert hoodie is not None
        assert not hoodie.has_size("XXXL")
        assert hoodie.stock_count("XXXL") == 0
        assert hoodie.has_size("xxl")

    def test_numeric_sizes(self, catalog: Catalog) -> None:
        jeans = catalog.find_by_value("JN-001")
        assert jeans is not None
        assert jeans.stock_count("30") == 8
        assert not jeans.in_stock("32")

    def test_one_size_product(self, catalog: Catalog) -> None:
        backpack = catalog.find_by_value("BP-001")
        assert backpack is not None
        assert backpack.sizes is None
        assert backpack.stock_count() == 25 and backpack.in_stock()
        assert not backpack.has_size("M") and backpack.stock_count("M") == 0
        assert backpack.sizes_in_stock() == []

    def test_sold_out_product(self, catalog: Catalog) -> None:
        scarf = catalog.find_by_value("SC-001")
        assert scarf is not None and not scarf.in_stock()


# --- localised text --------------------------------------------------------------------

class TestLocalisedText:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [("zh", "zh"), ("zh-CN", "zh"), ("zh_Hans", "zh"), ("EN-gb", "en"), (None, "en"), ("", "en")],
    )
    def test_normalise_language(self, given: str | None, expected: str) -> None:
        assert normalise_language(given) == expected

    def test_product_text(self, catalog: Catalog) -> None:
        hoodie = catalog.find_by_value("HD-001")
        assert hoodie is not None
        assert hoodie.name_for("zh-CN") == "日常连帽卫衣"
        assert hoodie.name_for("fr") == "Everyday Hoodie"
        assert hoodie.colours_for("zh") == ["黑色", "灰色", "森林绿"]
        assert hoodie.specs_for("zh")["材质"].startswith("80%")
        assert hoodie.specs_for("de") == hoodie.specs_for("en")

    def test_answer_falls_back_to_english(self) -> None:
        entry = FaqEntry(id="x", topic="general", questions={"en": ["Hi?"]}, answer={"en": "Hello."})
        assert entry.answer_for("zh") == "Hello."
        assert entry.questions_for("zh") == ["Hi?"]

    def test_demo_answer_in_chinese(self, faq: Faq) -> None:
        entry = faq.get("payment_methods")
        assert entry is not None
        assert "支付宝" in entry.answer_for("zh")
        assert "Alipay" in entry.answer_for("en")


# --- demo orders -----------------------------------------------------------------------

ORDER_COLUMNS = [
    "order_id", "email", "phone", "customer_name", "sku", "item_name", "size", "quantity",
    "unit_price", "currency", "status", "ordered_at", "delivered_at",
]
ORDER_LEVEL = ["email", "phone", "customer_name", "currency", "status", "ordered_at", "delivered_at"]
DEMO_TODAY = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with open(SHOP / "orders.csv", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ORDER_COLUMNS
        return list(reader)


class TestDemoOrders:
    def test_rows_are_well_formed(self, rows: list[dict[str, str]]) -> None:
        for row in rows:
            assert re.fullmatch(r"A\d{5}", row["order_id"])
            assert row["email"].endswith("@example.com")
            assert re.fullmatch(r"\+44 7700 900\d{3}|\+86 138 0013 8\d{3}", row["phone"])
            assert row["status"] in {"pending", "paid", "shipped", "delivered", "cancelled"}
            assert int(row["quantity"]) >= 1
            ordered = datetime.fromisoformat(row["ordered_at"])
            assert datetime(2026, 8, 1, tzinfo=UTC) <= ordered <= datetime(2026, 11, 21, tzinfo=UTC)
            if row["status"] == "delivered":
                assert datetime.fromisoformat(row["delivered_at"]) > ordered
            else:
                assert row["delivered_at"] == ""

    def test_items_match_the_catalog(self, rows: list[dict[str, str]], catalog: Catalog) -> None:
        for row in rows:
            product = catalog.find_by_value(row["sku"])
            assert product is not None, row["sku"]
            assert row["item_name"] == product.name_for("en")
            assert Decimal(row["unit_price"]) == product.price
            assert row["currency"] == catalog.currency
            if product.sizes:
                assert product.has_size(row["size"]), row
            else:
                assert row["size"] == ""

    def test_order_level_columns_agree(self, rows: list[dict[str, str]]) -> None:
        orders: dict[str, dict[str, str]] = {}
        for row in rows:
            first = orders.setdefault(row["order_id"], row)
            assert all(first[column] == row[column] for column in ORDER_LEVEL), row["order_id"]
        assert len(orders) >= 25
        assert any(sum(r["order_id"] == oid for r in rows) >= 3 for oid in orders)

    def test_mix_of_return_window_cases(self, rows: list[dict[str, str]]) -> None:
        delivered = {r["order_id"]: datetime.fromisoformat(r["delivered_at"]) for r in rows if r["delivered_at"]}
        window = timedelta(days=30)
        outside = [oid for oid, at in delivered.items() if DEMO_TODAY - at > window]
        inside = [oid for oid, at in delivered.items() if DEMO_TODAY - at <= window]
        not_delivered = {r["order_id"] for r in rows if not r["delivered_at"]}
        assert len(outside) >= 3 and len(inside) >= 3 and len(not_delivered) >= 3
