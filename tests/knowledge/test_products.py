"""Products as customers name them, on four catalogs unlike the demo and unlike each other.

Each case is a message, its language and what the matcher must make of it:

- a sku: one mention whose best candidate is that product, not ambiguous;
- a tuple of skus: one ambiguous mention whose candidates are exactly those products;
- None: no product at all (an FAQ-like sentence that happens to share a word with a name).
"""

from __future__ import annotations

import time
from pathlib import Path
from statistics import median

import pytest

from knowledge.products import ProductMatcher
from knowledge.shop import Catalog, load_catalog

SHOPS = Path(__file__).parent / "product_shops"

Expected = str | tuple[str, ...] | None

CASES: dict[str, list[tuple[str, str, Expected]]] = {
    "electronics": [
        # full names, partial names, what tells shared names apart
        ("how much are the Nova X2 Wireless Earbuds?", "en", "NV-X2"),
        ("price of the nova x2 pro wireless earbuds", "en", "NV-X2P"),
        ("is the X2 Pro in stock?", "en", "NV-X2P"),
        ("do you still sell the x2 pro earbuds", "en", "NV-X2P"),
        ("are the x2 earbuds any good", "en", ("NV-X2", "NV-X2P")),
        ("which nova earbuds are better for running?", "en", ("NV-X2", "NV-X2P")),
        ("how much is the charging case", "en", "NV-CC"),
        ("do you have a smartwatch band in size S", "en", "PL-B1"),
        ("is the pulse smartwatch waterproof?", "en", "PL-W1"),
        ("how much is the smartwatch", "en", "PL-W1"),
        ("I need a usb-c cable", "en", "VT-C2"),
        ("is the usb c cable long enough", "en", "VT-C2"),
        ("does the 65w charger work with a laptop?", "en", "VT-P65"),
        ("price of the charger?", "en", "VT-P65"),
        ("how loud is the bluetooth speaker", "en", ("HX-S", "HX-SM")),
        ("do you sell speakers?", "en", ("HX-S", "HX-SM")),
        ("the mini speaker, is it in stock", "en", "HX-SM"),
        ("the halo mini, how much?", "en", "HX-SM"),
        ("arc keyboard price", "en", "KB-01"),
        # plurals, typos, skus
        ("do you sell smartwatches?", "en", "PL-W1"),
        ("wireles earbuds pro x2", "en", "NV-X2P"),
        ("is the mechanical keybaord in stock", "en", "KB-01"),
        ("how much is the pulse smartwach", "en", "PL-W1"),
        ("NV-X2P in stock?", "en", "NV-X2P"),
        ("do you have nvx2p", "en", "NV-X2P"),
        ("vt p65 price", "en", "VT-P65"),
        # Chinese and mixed
        ("Nova X2 无线耳机多少钱", "zh", "NV-X2"),
        ("智能手表表带有货吗", "zh", "PL-B1"),
        ("蓝牙音箱多少钱", "zh", ("HX-S", "HX-SM")),
        ("机械键盘还有吗", "zh", "KB-01"),
        ("充电器多少钱", "zh", "VT-P65"),
        ("充电盒有货吗", "zh", "NV-CC"),
        ("我想买 x2 pro 耳机", "zh", "NV-X2P"),
        ("how much is the 智能手表", "en", "PL-W1"),
        # no product
        ("how long is delivery to Canada?", "en", None),
        ("can I pay with PayPal?", "en", None),
        ("I want to return my order", "en", None),
        ("where is my parcel?", "en", None),
        ("is there a warranty on electronics?", "en", None),
        ("do you offer wireless charging pads?", "en", None),
        ("how much do you charge for shipping?", "en", None),
        ("I was charged twice for my order", "en", None),
        ("which items are in stock?", "en", None),
        ("发货要多久", "zh", None),
        ("可以开发票吗", "zh", None),
    ],
    "outdoor": [
        ("How much is the Alpine Wool Scarf?", "en", "AWS-01"),
        ("is the wool scarf warm?", "en", "AWS-01"),
        ("do you have scarves?", "en", "AWS-01"),
        ("a scarf in red please", "en", "AWS-01"),
        ("alpine scraf price", "en", "AWS-01"),
        ("how much are the trail shoes", "en", "RT-220"),
        ("Ridge Trail Running Shoes in 42?", "en", "RT-220"),
        ("do you have running shoes in 42", "en", ("CR-110", "RT-220")),
        ("how much are your shoes", "en", ("CR-110", "RT-220")),
        ("the city shoes, size 43", "en", "CR-110"),
        ("city running shoes in 41?", "en", "CR-110"),
        ("RT-220 price", "en", "RT-220"),
        ("is rt220 waterproof", "en", "RT-220"),
        ("do you have the rt 220 in 44", "en", "RT-220"),
        ("how much is the ridge trail jacket", "en", "RTJ-300"),
        ("is the trail jacket waterproof", "en", "RTJ-300"),
        ("the jacket in M?", "en", "RTJ-300"),
        ("ridge jackets", "en", "RTJ-300"),
        ("wool socks price", "en", "MW-05"),
        ("are the merino socks thick", "en", "MW-05"),
        ("how long are the trekking poles", "en", "TP-02"),
        ("is one trekking pole sold alone", "en", "TP-02"),
        ("how big is the hiking backpack", "en", "HB-30"),
        ("the 30l backpack", "en", "HB-30"),
        ("head lamp battery life", "en", "HL-02"),
        ("is the headlamp rechargeable", "en", "HL-02"),
        ("how much is the water bottle", "en", "TH-01"),
        ("羊毛围巾多少钱", "zh", "AWS-01"),
        ("我想买阿尔卑斯的羊毛围巾", "zh", "AWS-01"),
        ("越野跑鞋有42码吗", "zh", "RT-220"),
        ("跑鞋多少钱", "zh", ("CR-110", "RT-220")),
        ("城市跑鞋有43码吗", "zh", "CR-110"),
        ("登山杖多长", "zh", "TP-02"),
        ("头灯能充电吗", "zh", "HL-02"),
        ("保温水壶还有货吗", "zh", "TH-01"),
        ("羊毛袜多少钱一双", "zh", "MW-05"),
        ("alpine 围巾 有红色吗", "zh", "AWS-01"),
        ("我要 trail shoes 42码", "zh", "RT-220"),
        ("do you ship to the Alps?", "en", None),
        ("how long is delivery?", "en", None),
        ("which payment methods do you accept", "en", None),
        ("I want to return my order", "en", None),
        ("I'm running late with the payment", "en", None),
        ("do you have anything in wool?", "en", None),
        ("which city do you ship from?", "en", None),
        ("is the trail to the summit open?", "en", None),
        ("寄到阿尔卑斯山要多久", "zh", None),
        ("可以用支付宝吗", "zh", None),
        ("我想退货", "zh", None),
        ("羊毛的要手洗吗？", "zh", None),
        ("登山的时候穿什么好", "zh", None),
        ("where is my packet, it's late", "en", None),
    ],
    "cosmetics": [
        ("玻尿酸保湿精华液多少钱", "zh", "HA-SER"),
        ("保湿精华液适合油皮吗", "zh", "HA-SER"),
        ("玻尿酸精华有货吗", "zh", "HA-SER"),
        ("精华液多少钱", "zh", ("HA-SER", "VC-SER")),
        ("洁面乳多少钱", "zh", "AA-CLN"),
        ("氨基酸洗面奶敏感肌能用吗", "zh", "AA-CLN"),
        ("维C精华什么时候补货", "zh", "VC-SER"),
        ("防晒霜多少钱", "zh", "SPF-50"),
        ("你们的防晒怎么样", "zh", "SPF-50"),
        ("玫瑰面霜还有吗", "zh", "RC-CRM"),
        ("补水面膜一盒几片", "zh", "MK-HYD"),
        ("玻尿酸面膜多少钱", "zh", "MK-HYD"),
        ("唇膏多少钱", "zh", "LB-01"),
        ("爽肤水有货吗", "zh", "TN-01"),
        ("hyaluronic serum price", "en", "HA-SER"),
        ("is the vitamin c serum in stock", "en", "VC-SER"),
        ("how much is the serum", "en", ("HA-SER", "VC-SER")),
        ("rose face cream", "en", "RC-CRM"),
        ("do you sell sunscreen", "en", "SPF-50"),
        ("spf 50 price", "en", "SPF-50"),
        ("lip balm price", "en", "LB-01"),
        ("sheet masks", "en", "MK-HYD"),
        ("hyaluronik serum", "en", "HA-SER"),
        ("how much is the sunscren", "en", "SPF-50"),
        ("HA-SER有货吗", "zh", "HA-SER"),
        ("玻尿酸 serum 多少钱", "zh", "HA-SER"),
        ("发货要多久", "zh", None),
        ("可以用微信支付吗", "zh", None),
        ("我要退货", "zh", None),
        ("我的快递到哪了", "zh", None),
        ("保湿效果怎么样", "zh", None),
        ("多少钱包邮", "zh", None),
        ("玫瑰花的味道浓吗", "zh", None),
        ("玻尿酸孕妇能用吗", "zh", None),
        ("how long does shipping take", "en", None),
        ("is it suitable for sensitive skin", "en", None),
    ],
    "home": [
        # The head character (桌) fits several names and nothing before it tells them apart:
        # ask which, as for "oak table"; 子 and a 的 between modifier and head change nothing.
        ("奥斯陆橡木桌有货吗？", "zh", ("DT", "CT")),
        ("奥斯陆橡木的桌子有货吗", "zh", ("DT", "CT")),
        ("奥斯陆桌子多少钱", "zh", ("DT", "CT")),
        ("桌子多少钱", "zh", ("DT", "CT")),
        ("椅子有货吗", "zh", ("AC", "DC")),
        ("oak table", "en", ("DT", "CT")),
        ("table price", "en", ("DT", "CT")),
        # A name that is another plus a word: its head alone says nothing of that word.
        ("地毯多少钱", "zh", ("RUG", "RUGX")),
        ("wool rug", "en", ("RUG", "RUGX")),
        ("防滑地毯", "zh", "RUGX"),
        ("non-slip rug", "en", "RUGX"),
        # ... and where the words before it do, that product alone.
        ("橡木餐桌", "zh", "DT"),
        ("咖啡桌多少钱", "zh", "CT"),
        ("橡木椅子", "zh", "DC"),
        ("亚麻椅子", "zh", "AC"),
        ("卑尔根的沙发多少钱", "zh", "SF"),
        ("亚麻的裙子", "zh", "DRS"),
        # a one-character head said with 子
        ("杯子多少钱", "zh", "MUG"),
        ("裙子有红色的吗", "zh", "DRS"),
        ("柜子有几层", "zh", "SB"),
        ("马克杯", "zh", "MUG"),
        ("手提包", "zh", "BAG"),
        # a head character alone is no product: 发 of 发货, 包 of 包邮, 杯 of 杯垫
        ("发货要多久", "zh", None),
        ("多少钱包邮", "zh", None),
        ("有杯垫吗", "zh", None),
        ("包包多少钱", "zh", None),
    ],
}

ALL_CASES = [(shop, *case) for shop, cases in CASES.items() for case in cases]


@pytest.fixture(scope="module")
def matchers() -> dict[str, ProductMatcher]:
    return {shop: ProductMatcher(load_catalog(SHOPS / shop / "catalog.yml")) for shop in CASES}


def _describe(matcher: ProductMatcher, text: str, language: str) -> str:
    return repr([(m.text, [(p.sku, round(c, 2)) for p, c in m.candidates]) for m in matcher.mentions(text, language)])


@pytest.mark.parametrize(("shop", "text", "language", "expected"), ALL_CASES, ids=[f"{c[0]}:{c[1]}" for c in ALL_CASES])
def test_mentions(matchers: dict[str, ProductMatcher], shop: str, text: str, language: str, expected: Expected) -> None:
    matcher = matchers[shop]
    mentions = matcher.mentions(text, language)
    seen = _describe(matcher, text, language)
    if expected is None:
        assert mentions == [], seen
        return
    assert len(mentions) == 1, seen
    mention = mentions[0]
    skus = [product.sku for product, _ in mention.candidates]
    if isinstance(expected, str):
        assert skus == [expected], seen
        assert not mention.ambiguous
    else:
        assert sorted(skus) == sorted(expected), seen
        assert mention.ambiguous
    # The span is where the customer wrote it, in the original text.
    assert text[mention.start : mention.end] == mention.text and mention.text.strip() == mention.text
    assert all(0.0 < confidence <= 1.0 for _, confidence in mention.candidates)
    confidences = [confidence for _, confidence in mention.candidates]
    assert confidences == sorted(confidences, reverse=True)


def test_an_exact_name_is_certain_and_a_partial_one_less(matchers: dict[str, ProductMatcher]) -> None:
    outdoor = matchers["outdoor"]
    [full] = outdoor.mentions("the Alpine Wool Scarf", "en")
    [partial] = outdoor.mentions("the wool scarf", "en")
    [typo] = outdoor.mentions("the alpine scraf", "en")
    assert full.candidates[0][1] == 1.0
    assert 0.5 < typo.candidates[0][1] < partial.candidates[0][1] < 1.0


def test_what_distinguishes_shared_names_decides_the_ranking(matchers: dict[str, ProductMatcher]) -> None:
    electronics = matchers["electronics"]
    [nova] = electronics.mentions("the nova x2 earbuds", "en")
    # Both fit; the one without an unmentioned "Pro" fits better.
    assert nova.candidates[0][0].sku == "NV-X2"
    [pro] = electronics.mentions("the x2 pro", "en")
    assert [p.sku for p, _ in pro.candidates] == ["NV-X2P"]


def test_several_products_in_one_message_are_separate_mentions(matchers: dict[str, ProductMatcher]) -> None:
    text = "do you have the wool scarf and the trail shoes, or 3 pairs of merino socks?"
    mentions = matchers["outdoor"].mentions(text, "en")
    assert [(m.text, m.candidates[0][0].sku) for m in mentions] == [
        ("wool scarf", "AWS-01"),
        ("trail shoes", "RT-220"),
        ("merino socks", "MW-05"),
    ]


def test_offsets_survive_full_width_and_case_folding(matchers: dict[str, ProductMatcher]) -> None:
    outdoor = matchers["outdoor"]
    text = "Straße? ＲＴ－２２０ und WOOL SCARVES"
    mentions = outdoor.mentions(text, "de")
    assert [(text[m.start : m.end], m.candidates[0][0].sku) for m in mentions] == [
        ("ＲＴ－２２０", "RT-220"),
        ("WOOL SCARVES", "AWS-01"),
    ]


def test_entities_give_the_best_sku_at_the_real_offsets(matchers: dict[str, ProductMatcher]) -> None:
    text = "我想买羊毛围巾和 trail shoes"
    entities = matchers["outdoor"].entities(text, "zh")
    assert [(e.type, e.value, text[e.start : e.end]) for e in entities] == [
        ("product", "AWS-01", "羊毛围巾"),
        ("product", "RT-220", "trail shoes"),
    ]
    assert all(e.confidence is not None and 0.5 <= e.confidence <= 1.0 for e in entities)
    # An ambiguous mention still gives its best guess as the entity (handlers ask which one).
    [shoes] = matchers["outdoor"].entities("running shoes", "en")
    assert shoes.value in {"RT-220", "CR-110"} and shoes.text == "running shoes"


def test_a_chinese_mention_spans_its_head_and_suffix(matchers: dict[str, ProductMatcher]) -> None:
    home = matchers["home"]
    text = "奥斯陆橡木的桌子和粗陶马克杯还有吗"
    assert [(m.text, sorted(p.sku for p, _ in m.candidates)) for m in home.mentions(text, "zh")] == [
        ("奥斯陆橡木的桌子", ["CT", "DT"]),
        ("粗陶马克杯", ["MUG"]),
    ]
    # The full name is still exact; a head character of another name does not cut a mention short.
    [table] = home.mentions("奥斯陆橡木餐桌", "zh")
    assert [(p.sku, c) for p, c in table.candidates] == [("DT", 1.0)]
    [sofa] = home.mentions("卑尔根亚麻沙发发货要多久", "zh")
    assert sofa.text == "卑尔根亚麻沙发" and [p.sku for p, _ in sofa.candidates] == ["SF"]


def test_a_shop_alias_decides_over_a_partial_match() -> None:
    catalog = Catalog.model_validate(
        {
            "currency": "EUR",
            "products": [
                {"sku": "A", "name": {"en": "Ridge Trail Running Shoes"}, "price": 1, "stock": 1},
                {"sku": "B", "name": {"en": "City Running Shoes"}, "price": 1, "stock": 1,
                 "aliases": {"en": ["running shoes"]}},
            ],
        }
    )
    [mention] = ProductMatcher(catalog).mentions("how much are the running shoes?", "en")
    assert [(p.sku, c) for p, c in mention.candidates] == [("B", 1.0)]


def test_the_minimum_confidence_is_a_setting() -> None:
    catalog = load_catalog(SHOPS / "outdoor" / "catalog.yml")
    assert ProductMatcher(catalog).mentions("alpine scraf", "en")
    assert ProductMatcher(catalog, min_confidence=0.99).mentions("alpine scraf", "en") == []
    assert ProductMatcher(catalog, min_confidence=0.99).mentions("Alpine Wool Scarf", "en")


def test_demo_catalog_forms_are_all_found() -> None:
    """Every name and alias of the demo shop is found as itself (the old exact lookup's job)."""
    catalog = load_catalog(Path(__file__).parents[2] / "examples" / "shop" / "catalog.yml")
    matcher = ProductMatcher(catalog)
    for product in catalog.products:
        forms = [product.sku, *product.name.values(), *(a for aliases in product.aliases.values() for a in aliases)]
        for form in forms:
            mentions = matcher.mentions(f"{form}?", None)
            assert [m.candidates[0][0].sku for m in mentions] == [product.sku], (form, _describe(matcher, form, "en"))


def test_a_lookup_is_fast_on_a_large_catalog() -> None:
    """Index once, then well under a millisecond per message (bench/products.py measures it properly)."""
    from bench.products import generated_catalog, messages_for

    catalog = generated_catalog(200, seed=7)
    matcher = ProductMatcher(catalog)
    texts = messages_for(catalog, 200, seed=7)
    timings = []
    for text in texts:
        started = time.perf_counter()
        matcher.mentions(text, "en")
        timings.append(time.perf_counter() - started)
    assert median(timings) < 0.001
