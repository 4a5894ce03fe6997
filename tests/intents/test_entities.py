"""Rule-based entities in English and Chinese."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from intents.base import Entity
from intents.entities import DEFAULT_ITEM_WORDS, EntityExtractor, EntitySpec, fold_width, parse_zh_number
from intents.nlu_data import load_nlu_data

MINI = Path(__file__).parent / "data" / "mini"
# A regex entity of the data's own (a voucher code); order ids are the shop's, never the data's.
VOUCHER = r"[Vv]\d{5}"


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor.from_nlu(load_nlu_data(MINI))


@pytest.fixture(scope="module")
def vouchers() -> EntityExtractor:
    return EntityExtractor(EntitySpec(regexes={"voucher": (VOUCHER,)}))


def found(extractor: EntityExtractor, text: str, known: tuple[Entity, ...] = ()) -> list[tuple[str, str, str]]:
    return [(e.type, e.value, e.text) for e in extractor.extract(text, known)]


def product_at(text: str, surface: str, value: str = "SKU-1") -> Entity:
    """The product span the shop's own finder would report in ``text``."""
    start = text.index(surface)
    return Entity("product", value, start, start + len(surface), surface)


def test_regex_entity_is_case_insensitive_and_normalised(vouchers: EntityExtractor) -> None:
    assert found(vouchers, "my code is v10234?") == [("voucher", "V10234", "v10234")]


def test_regex_entity_inside_chinese_text(vouchers: EntityExtractor) -> None:
    # \b would fail here: Han characters are word characters too.
    assert found(vouchers, "我的优惠码V10234用不了") == [("voucher", "V10234", "V10234")]


def test_full_width_regex_entity(vouchers: EntityExtractor) -> None:
    ents = vouchers.extract("优惠码Ｖ１０２３４")
    assert [(e.type, e.value, e.text, e.start, e.end) for e in ents] == [("voucher", "V10234", "Ｖ１０２３４", 3, 9)]


@pytest.mark.parametrize("text", ["V102345", "XV10234", "V1023", "code#V10234B"])
def test_regex_entity_must_stand_alone(vouchers: EntityExtractor, text: str) -> None:
    assert [e for e in vouchers.extract(text) if e.type == "voucher"] == []


def test_the_shop_entities_in_the_data_are_never_learnt(extractor: EntityExtractor) -> None:
    # The mini data annotates [hoodie](product), [A10234](order_id) and keeps a `regex: order_id`:
    # none of it may reach the extractor, which would then know one shop's nouns and id format.
    spec = EntitySpec.from_nlu(load_nlu_data(MINI))
    assert "order_id" in load_nlu_data(MINI).regexes
    assert "order_id" not in spec.regexes and "product" not in spec.lookups
    assert {t for t, _, _ in spec.annotated}.isdisjoint({"order_id", "product"})
    assert found(extractor, "where is order A10234 with my hoodie") == []
    assert found(extractor, "我的订单A10234里的卫衣") == []


def test_default_item_words_name_no_goods_of_any_trade() -> None:
    assert {"hoodie", "jeans", "sneakers", "t-shirt", "socks", "scarf", "backpack"}.isdisjoint(DEFAULT_ITEM_WORDS)


def test_ticket_number(extractor: EntityExtractor) -> None:
    assert found(extractor, "any news on t-1042?") == [("ticket", "T-1042", "t-1042")]


def test_email(extractor: EntityExtractor) -> None:
    assert found(extractor, "mail me at Li.Wei+shop@Example.COM.") == [
        ("email", "Li.Wei+shop@example.com", "Li.Wei+shop@Example.COM")
    ]
    assert found(extractor, "邮箱是wang@qq.com谢谢") == [("email", "wang@qq.com", "wang@qq.com")]


def test_email_wins_over_an_order_id_inside_it(extractor: EntityExtractor) -> None:
    assert found(extractor, "a10234@shop.com") == [("email", "a10234@shop.com", "a10234@shop.com")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("call me on 13812345678", "13812345678"),
        ("电话138-1234-5678", "13812345678"),
        ("我的手机号是 +86 138 1234 5678 谢谢", "+8613812345678"),
        ("reach me at +44 20 7946 0958 tomorrow", "+442079460958"),
        ("my number is (415) 555-2671", "4155552671"),
        ("座机010-12345678", "01012345678"),
    ],
)
def test_phone_numbers(extractor: EntityExtractor, text: str, value: str) -> None:
    assert [(e.type, e.value) for e in extractor.extract(text)] == [("phone", value)]


@pytest.mark.parametrize("text", ["order A10234", "ticket T-1042", "ticket T-10428861", "code 12345", "year 2024"])
def test_ids_and_short_numbers_are_not_phones(extractor: EntityExtractor, text: str) -> None:
    assert "phone" not in {e.type for e in extractor.extract(text)}


def test_english_quantity_next_to_an_item(extractor: EntityExtractor) -> None:
    assert found(extractor, "I want 2 black pieces in size M") == [
        ("quantity", "2", "2"),
        ("colour", "black", "black"),
        ("size", "M", "M"),
    ]
    assert ("quantity", "3", "three") in found(extractor, "three pairs please")
    assert ("quantity", "12", "a dozen") in found(extractor, "a dozen bottles")


def test_a_number_before_a_known_product_is_a_quantity(extractor: EntityExtractor) -> None:
    text = "I want 2 black wool scarves in size M"
    assert found(extractor, text) == [("colour", "black", "black"), ("size", "M", "M")]  # no item word
    assert found(extractor, text, (product_at(text, "wool scarves"),)) == [
        ("quantity", "2", "2"),
        ("colour", "black", "black"),
        ("size", "M", "M"),
    ]
    later = "2 days ago I bought a lamp"
    assert "quantity" not in {t for t, _, _ in found(extractor, later, (product_at(later, "lamp"),))}


@pytest.mark.parametrize(
    "text", ["it arrived 3 days late", "I waited 2 weeks", "tens of hoodies", "order A10234 hoodie"]
)
def test_numbers_that_are_not_quantities(extractor: EntityExtractor, text: str) -> None:
    assert "quantity" not in {e.type for e in extractor.extract(text)}


@pytest.mark.parametrize(
    ("text", "value", "surface"),
    [("我要两件卫衣", "2", "两件"), ("买3个", "3", "3个"), ("十二双袜子", "12", "十二双"), ("数量: 4", "4", "4")],
)
def test_chinese_quantities(extractor: EntityExtractor, text: str, value: str, surface: str) -> None:
    assert ("quantity", value, surface) in found(extractor, text)


@pytest.mark.parametrize("text", ["我有一个问题", "第一件衣服破了", "三天了还没到"])
def test_chinese_numbers_that_are_not_quantities(extractor: EntityExtractor, text: str) -> None:
    assert "quantity" not in {e.type for e in extractor.extract(text)}


def test_chinese_lookups_need_no_segmenter(extractor: EntityExtractor) -> None:
    assert found(extractor, "我要两件黑色的中号毛衣") == [
        ("quantity", "2", "两件"),
        ("colour", "black", "黑色"),  # synonym 黑色 → black
        ("size", "M", "中号"),  # synonym 中号 → M
    ]


def test_single_letter_sizes_only_as_standalone_tokens(extractor: EntityExtractor) -> None:
    assert found(extractor, "it's my size, I'm sure") == []
    assert found(extractor, "do you have it in S or XS?") == [("size", "S", "S"), ("size", "XS", "XS")]
    assert found(extractor, "a T-shirt from M&S") == []
    assert found(extractor, "我要M码") == [("size", "M", "M")]
    # lower-case single letters only right after "size": "i m fine" is not a size
    assert found(extractor, "i m fine") == []
    assert found(extractor, "size m please") == [("size", "M", "m")]


def test_synonyms_normalise_values(extractor: EntityExtractor) -> None:
    assert found(extractor, "a medium one, or med") == [("size", "M", "medium"), ("size", "M", "med")]


def test_longest_match_wins_without_overlaps(extractor: EntityExtractor) -> None:
    assert found(extractor, "the light blue one") == [("colour", "light blue", "light blue")]


def test_words_are_not_matched_inside_words(extractor: EntityExtractor) -> None:
    assert found(extractor, "blackberry mediumish redness") == []


def test_offsets_point_into_the_original_text(extractor: EntityExtractor) -> None:
    rng = random.Random(7)
    pieces = [
        "订单A10234",
        " 2 pieces ",
        "两件卫衣",
        "wang@qq.com",
        " 13812345678 ",
        "size M",
        "黑色",
        " the ",
        "X",
        "T-1042",
    ]
    for _ in range(200):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        ents = extractor.extract(text)
        for ent in ents:
            assert text[ent.start : ent.end] == ent.text
        for first, second in zip(ents, ents[1:]):
            assert first.end <= second.start, (text, ents)


def test_only_the_first_max_chars_are_scanned() -> None:
    short = EntityExtractor(EntitySpec(regexes={"voucher": (VOUCHER,)}), max_chars=20)
    assert short.extract("x" * 30 + " V10234") == ()
    assert [e.value for e in short.extract("V10234 " + "x" * 30)] == ["V10234"]


def test_data_regex_anchors_are_relaxed() -> None:
    ext = EntityExtractor(EntitySpec(regexes={"voucher": (r"\b" + VOUCHER + r"\b",)}))
    assert [e.value for e in ext.extract("优惠码V10234")] == ["V10234"]


def test_spec_survives_json() -> None:
    spec = EntitySpec.from_nlu(load_nlu_data(MINI))
    assert EntitySpec.from_json(spec.to_json()) == spec
    assert ("return_kind", "退款", "refund") in spec.annotated
    assert all(t not in {"order_id", "product", "quantity"} for t, _, _ in spec.annotated)


@pytest.mark.parametrize(
    ("text", "value"),
    [("两", 2), ("十", 10), ("十五", 15), ("二十", 20), ("一百二十", 120), ("12", 12), ("零", None), ("个", None)],
)
def test_parse_zh_number(text: str, value: int | None) -> None:
    assert parse_zh_number(text) == value


def test_fold_width_keeps_length() -> None:
    assert fold_width("Ａ１０２３４\u3000ok") == "A10234 ok"
