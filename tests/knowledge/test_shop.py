"""Catalog and FAQ loading, product lookup, stock and FAQ retrieval on the demo shop data."""

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
    FaqIndex,
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


@pytest.fixture(scope="module")
def index(faq: Faq) -> FaqIndex:
    return FaqIndex(faq)


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


# --- FAQ retrieval ---------------------------------------------------------------------

# Held out: written before the FAQ phrasings were last revised and never tuned against;
# none is a phrasing in faq.yml (checked below).
PARAPHRASES: list[tuple[str, str, str]] = [
    ("how many days until my parcel arrives", "en", "shipping_time"),
    ("可以用支付宝吗", "zh", "payment_methods"),
    ("how soon will my stuff get here", "en", "shipping_time"),
    ("delivery time to france?", "en", "shipping_time"),
    ("大概多久可以收到包裹", "zh", "shipping_time"),
    ("how much is delivery to the netherlands", "en", "shipping_cost"),
    ("do you have free shipping", "en", "shipping_cost"),
    ("邮费是多少", "zh", "shipping_cost"),
    ("do you ship to the usa", "en", "shipping_countries"),
    ("你们能发货到北京吗", "zh", "shipping_countries"),
    ("can you ship express", "en", "express_delivery"),
    ("能不能加急", "zh", "express_delivery"),
    ("has my order shipped yet", "en", "order_tracking"),
    ("我的包裹在哪里", "zh", "order_tracking"),
    ("can I update my address", "en", "change_address"),
    ("我搬家了，能改收货地址吗", "zh", "change_address"),
    ("can i pay by wechat", "en", "payment_methods"),
    ("支持信用卡付款吗", "zh", "payment_methods"),
    ("my payment was declined", "en", "payment_failed"),
    ("付不了款", "zh", "payment_failed"),
    ("could you send me an invoice", "en", "invoice"),
    ("需要开公司发票", "zh", "invoice"),
    ("how do I apply a coupon", "en", "vouchers"),
    ("有没有优惠券", "zh", "vouchers"),
    ("can I return these jeans", "en", "return_policy"),
    ("衣服不合适想退", "zh", "return_policy"),
    ("are return labels free", "en", "return_shipping_cost"),
    ("退货包邮吗", "zh", "return_shipping_cost"),
    ("still waiting for my refund", "en", "refund_time"),
    ("退款什么时候到", "zh", "refund_time"),
    ("can I exchange the size", "en", "exchange"),
    ("能换个大一点的码吗", "zh", "exchange"),
    ("the item I got is damaged", "en", "damaged_item"),
    ("商品坏了", "zh", "damaged_item"),
    ("what size should I get", "en", "size_guide"),
    ("尺码怎么选", "zh", "size_guide"),
    ("washing instructions for the jeans?", "en", "care_instructions"),
    ("牛仔裤能机洗吗", "zh", "care_instructions"),
    ("will the jeans come back in 32", "en", "restock"),
    ("什么时候补货啊", "zh", "restock"),
    ("do you do gift wrap", "en", "gift_wrapping"),
    ("能包成礼物吗", "zh", "gift_wrapping"),
    ("what are your hours", "en", "support_hours"),
    ("客服什么时间有人", "zh", "support_hours"),
    ("cancel order please", "en", "cancel_order"),
    ("我想取消刚才的订单", "zh", "cancel_order"),
    ("what's your phone number", "en", "contact"),
    ("怎么联系客服", "zh", "contact"),
]

OFF_TOPIC: list[tuple[str, str]] = [
    ("what's the weather in paris", "en"),
    ("tell me a joke", "en"),
    ("who won the football last night", "en"),
    ("hello", "en"),
    ("thanks a lot", "en"),
    ("can you recommend a movie", "en"),
    ("今天天气怎么样", "zh"),
    ("给我讲个笑话", "zh"),
    ("你好", "zh"),
    ("你叫什么名字", "zh"),
    ("帮我订一张机票", "zh"),
]


class TestFaqSearch:
    def test_paraphrases_are_not_in_the_file(self, faq: Faq) -> None:
        phrasings = {fold_text(q) for entry in faq.entries for qs in entry.questions.values() for q in qs}
        verbatim = [text for text, _, _ in PARAPHRASES if fold_text(text) in phrasings]
        assert verbatim == []

    @pytest.mark.parametrize(
        ("text", "language", "expected"),
        [
            ("how many days until my parcel arrives", "en", "shipping_time"),
            ("how long will it take for my parcel to get to Germany", "en", "shipping_time"),
            ("可以用支付宝吗", "zh", "payment_methods"),
            ("可以用PayPal吗", "zh", "payment_methods"),
            ("can I pay with alipay", "en", "payment_methods"),
            ("is it possible to return a dress I bought", "en", "return_policy"),
            ("退货运费谁出", "zh", "return_shipping_cost"),
            ("多少天能收到包裹", "zh-CN", "shipping_time"),
        ],
    )
    def test_finds_the_entry(self, index: FaqIndex, text: str, language: str, expected: str) -> None:
        results = index.search(text, language)
        assert results, text
        assert results[0][0].id == expected

    def test_held_out_paraphrases(self, index: FaqIndex) -> None:
        # A floor, not a wish: 41/46 rank first and 39 clear min_score when this was written.
        top = [index.search(text, lang, k=1) for text, lang, _ in PARAPHRASES]
        answered = sum(
            1 for result, (_, _, expected) in zip(top, PARAPHRASES) if result and result[0][0].id == expected
        )
        wrong = sum(
            1 for result, (_, _, expected) in zip(top, PARAPHRASES) if result and result[0][0].id != expected
        )
        assert answered >= 0.8 * len(PARAPHRASES)
        assert wrong <= 0.1 * len(PARAPHRASES)

    @pytest.mark.parametrize(("text", "language"), OFF_TOPIC)
    def test_off_topic_gets_nothing(self, index: FaqIndex, text: str, language: str) -> None:
        assert index.search(text, language) == []

    @pytest.mark.parametrize("text", ["", "   ", "?!。", "🙂"])
    def test_nothing_to_match(self, index: FaqIndex, text: str) -> None:
        assert index.search(text, "en") == []

    def test_scores_are_sorted_cosines_above_min_score(self, index: FaqIndex) -> None:
        results = index.search("how long does shipping take and what does it cost", "en", k=5)
        scores = [score for _, score in results]
        assert len(results) >= 2
        assert scores == sorted(scores, reverse=True)
        assert all(index.min_score <= score <= 1.0 + 1e-9 for score in scores)
        assert {entry.id for entry, _ in results[:2]} == {"shipping_time", "shipping_cost"}

    def test_verbatim_question_scores_high(self, index: FaqIndex) -> None:
        entry, score = index.search("How long does delivery take?", "en", k=1)[0]
        assert entry.id == "shipping_time" and score > 0.6

    def test_topic_filter(self, index: FaqIndex) -> None:
        results = index.search("how long does it take", "en", topic="returns", k=5)
        assert results and all(entry.topic == "returns" for entry, _ in results)
        assert results[0][0].id == "refund_time"

    def test_unknown_topic_is_an_error(self, index: FaqIndex) -> None:
        with pytest.raises(ValueError, match="unknown FAQ topic"):
            index.search("hello", "en", topic="weather")

    def test_k_limits_results(self, index: FaqIndex) -> None:
        assert len(index.search("return shipping refund exchange", "en", k=2)) <= 2
        assert index.search("how long does delivery take", "en", k=0) == []

    def test_entry_without_the_language_uses_english(self) -> None:
        faq = Faq(
            entries=[
                FaqEntry(
                    id="hours",
                    topic="general",
                    questions={"en": ["What are your opening hours?"], "zh": ["几点开门？"]},
                    answer={"en": "9 to 5.", "zh": "九点到五点。"},
                ),
                FaqEntry(
                    id="parking",
                    topic="general",
                    questions={"en": ["Is there parking near the shop?"]},
                    answer={"en": "Yes, behind the shop."},
                ),
            ]
        )
        index = FaqIndex(faq)
        # A Chinese message naming the English word still reaches the English-only entry.
        assert [e.id for e, _ in index.search("parking 在哪里？", "zh")] == ["parking"]
        # A language the FAQ lacks is searched like English.
        assert index.search("opening hours?", "de")[0][0].id == "hours"
        # Unknown language: every phrasing counts.
        assert index.search("几点开门", None)[0][0].id == "hours"


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
