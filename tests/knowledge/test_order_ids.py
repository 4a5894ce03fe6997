"""OrderIds on shops whose ids look nothing alike: the shape comes from the shop's own ids."""

from __future__ import annotations

import pytest

from knowledge.order_ids import OrderIds, infer_shapes, order_key

KX = ["KX-20417", "KX-20418", "KX-20502", "KX-20503"]
DIGITS = ["100234", "100235", "100301", "100302"]
DATED = ["DD20261123001", "DD20261123002", "DD20261201017"]
DEMO = ["A10231", "A10234", "A10255"]
SLASHED = ["ORD/2026/0042", "ORD/2026/0043", "ORD/2025/0999"]
MONTHLY = ["2026-10-000388", "2026-11-000398", "2026-11-000402", "2026-11-000415", "2025-11-000415"]


def values(ids: OrderIds, text: str, **kwargs: bool) -> list[str]:
    return [entity.value for entity in ids.find(text, **kwargs)]


# -- every known id, however it is typed ---------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "I'd like to send back the shoes from order KX-20417",
        "kx-20417",
        "KX20417 please",
        "where is kx 20417?",
        "order #KX-20417",
        "order no. kx.20417",
        "订单号KX-20417",
        "我想退货，订单号kx 20417",
        "我的订单kx20417到哪了",
        "我的订单ＫＸ－２０４１７到哪了",  # full-width, as Chinese input methods type it
    ],
)
def test_a_known_id_in_any_spelling_is_the_shops_spelling(text: str) -> None:
    assert values(OrderIds(KX), text) == ["KX-20417"]


def test_entity_offsets_cover_what_the_customer_typed() -> None:
    text = "我的订单kx 20417到哪了"
    [entity] = OrderIds(KX).find(text)
    assert (entity.type, entity.text, text[entity.start : entity.end]) == ("order_id", "kx 20417", "kx 20417")


@pytest.mark.parametrize(
    ("ids", "text", "expected"),
    [
        (DIGITS, "where is #100234", "100234"),
        (DIGITS, "100234 hasn't arrived", "100234"),
        (DIGITS, "订单100301还没到", "100301"),
        (DATED, "dd20261123001 到哪了", "DD20261123001"),
        (DATED, "退货 DD 20261201017", "DD20261201017"),
        (DEMO, "return a10234 please", "A10234"),
        (DEMO, "我想退货，订单号A10255", "A10255"),
        (SLASHED, "where is ORD/2026/0042?", "ORD/2026/0042"),
        (SLASHED, "ord 2025 0999 is late", "ORD/2025/0999"),
        (SLASHED, "订单ORD-2026-0043", "ORD/2026/0043"),
    ],
)
def test_known_ids_of_other_formats(ids: list[str], text: str, expected: str) -> None:
    assert values(OrderIds(ids), text) == [expected]


def test_the_shops_own_spelling_is_kept_even_when_irregular() -> None:
    ids = OrderIds([*KX, "kx-legacy-7", "#100234"])
    assert values(ids, "order KX LEGACY 7 please") == ["kx-legacy-7"]
    assert values(ids, "and 100234") == ["#100234"]
    assert ids.spelling("Kx-Legacy-7") == "kx-legacy-7" and ids.spelling("kx-99999") is None
    assert "kx20418" in ids and "KX-99999" not in ids and len(ids) == 6


# -- ids of the shop's shape that are not in the store (yet) ---------------------------------
@pytest.mark.parametrize(
    ("ids", "text", "expected"),
    [
        (KX, "I want to return KX-99999", "KX-99999"),
        (KX, "退货 kx99999", "KX-99999"),
        (DATED, "where is dd20270101001", "DD20270101001"),
        (DEMO, "return a99999", "A99999"),
        (SLASHED, "ord/2027/0001 never came", "ORD/2027/0001"),
        (DIGITS, "order 100999", "100999"),
        (DIGITS, "#100999", "100999"),
        (DIGITS, "订单号100999", "100999"),
    ],
)
def test_an_unknown_id_of_the_shape_is_an_order_id_spelled_as_the_shop_would(
    ids: list[str], text: str, expected: str
) -> None:
    assert values(OrderIds(ids), text) == [expected]


def test_an_unknown_id_is_never_truncated() -> None:
    # the old guess [A-Za-z]?\d{4,} read "KX-99999" as 99999
    assert values(OrderIds(KX), "I couldn't find order KX-99999?") == ["KX-99999"]
    assert OrderIds(KX).canonical("kx 99999") == "KX-99999"


def test_bare_digits_of_a_digits_only_shape_need_a_cue() -> None:
    ids = OrderIds(DIGITS)
    assert values(ids, "we are at 100999 Beijing") == []  # a postcode, not an order
    assert values(ids, "order number is 100999") == ["100999"]
    assert values(ids, "100999", expect=True) == ["100999"]


def test_long_digit_groups_with_the_shops_separators_need_no_cue() -> None:
    ids = OrderIds(MONTHLY)
    assert [s.distinctive for s in ids.shapes] == [True]
    assert values(ids, "where is 2026-11-000998?") == ["2026-11-000998"]
    assert values(ids, "where is 2026/11/000998?") == ["2026-11-000998"]
    assert values(ids, "2026 11 000415 is late") == ["2026-11-000415"]  # known: any spelling
    assert values(ids, "call 0207 11 123456") == []  # unknown and spaced: a phone as likely as an id
    assert values(ids, "order 2026 11 000999") == ["2026-11-000999"]


@pytest.mark.parametrize(
    "ids",
    [
        ["2026-11-23", "2026-11-24", "2026-12-01"],  # dates
        ["1,234,567", "2,345,678", "3,456,789"],  # amounts
        ["415-555-2671", "415-555-2672", "212-555-0100"],  # phone numbers
        ["2026 11 000402", "2026 11 000403", "2026 10 000388"],  # spaces, as phones are grouped
        ["26-11-42", "26-11-43", "26-10-38"],  # too short
    ],
)
def test_digit_groups_that_read_as_dates_amounts_or_phones_need_a_cue(ids: list[str]) -> None:
    assert [s.distinctive for s in infer_shapes(ids)] == [False]


def test_a_serial_after_a_cue_stands_for_the_one_known_id_ending_in_it() -> None:
    ids = OrderIds(MONTHLY)
    assert values(ids, "order no. 000402") == ["2026-11-000402"]
    assert values(ids, "订单000398到哪了") == ["2026-11-000398"]
    assert ids.canonical("000402") == "2026-11-000402"
    assert values(ids, "order 000415") == ["000415"]  # two years end in it: as typed
    assert values(ids, "order 000999") == ["000999"]  # no known id ends in it
    assert values(ids, "000402 is late") == []  # a bare serial needs the cue


def test_a_prefix_left_out_finds_the_known_id() -> None:
    assert values(OrderIds(KX), "my order 20417 is late") == ["KX-20417"]
    assert OrderIds(KX).canonical("20417") == "KX-20417"


# -- shops without orders: cues, the configured pattern, an expected answer ----------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is order 12345", "12345"),
        ("order #AB-123 never came", "AB-123"),
        ("order number: kx-20417", "KX-20417"),
        ("订单号XY12345怎么还没发货", "XY12345"),
        ("订单号是 A10234", "A10234"),
    ],
)
def test_without_orders_a_cue_marks_the_id(text: str, expected: str) -> None:
    assert values(OrderIds(), text) == [expected]


def test_without_orders_or_cue_nothing_is_guessed() -> None:
    assert values(OrderIds(), "KX-20417 is late") == []
    assert values(OrderIds(), "I want to order 100 pieces") == []
    assert values(OrderIds(), "order 2 more") == []


def test_an_answer_to_the_order_question_is_taken_as_the_id() -> None:
    ids = OrderIds()
    assert values(ids, "A99998", expect=True) == ["A99998"]
    assert values(ids, "it's kx-20417", expect=True) == ["KX-20417"]
    assert values(ids, "it is too small", expect=True) == []
    assert values(ids, "alice@example.com", expect=True) == []
    assert values(ids, "+44 7700 900123", expect=True) == []


def test_the_configured_pattern_recognises_ids_before_any_import() -> None:
    ids = OrderIds(pattern=r"KX-?\d{5}")
    assert values(ids, "where is kx-20417") == ["KX-20417"]
    assert values(ids, "where is KX-2041") == []


# -- what is never an order id -----------------------------------------------------------------
@pytest.mark.parametrize("shop", [KX, DIGITS, DATED, DEMO, SLASHED, MONTHLY, []])
@pytest.mark.parametrize(
    "text",
    [
        "call me on +44 7700 900123 or 13800138000",
        "my number is 138 0013 8002",
        "mail me at li.wei100234@example.com",
        "what's the status of ticket T-1001?",
        "it cost 49.90 EUR, or €100234",
        "I paid ¥1999.00 for 2 pieces",
        "it arrived on 2026-11-23 at 10:30",
        "delivered 23/11/2026",
        "2026年11月23日到的",
        "I'd like 3 pairs and 100 units",
        "see https://shop.example.com/orders/100234",
    ],
)
def test_phones_emails_prices_quantities_tickets_dates_are_not_order_ids(shop: list[str], text: str) -> None:
    assert values(OrderIds(shop), text) == []


def test_a_small_shops_short_ids_need_a_cue() -> None:
    ids = OrderIds([str(n) for n in range(1, 2500)])
    assert values(ids, "I want 2 shirts, I have been a customer since 2019") == []
    assert values(ids, "where is order 2019?") == ["2019"]
    assert values(ids, "#17 never came") == ["17"]
    assert values(ids, "17", expect=True) == ["17"]


def test_a_known_id_shaped_like_a_phone_number_is_still_found() -> None:
    ids = OrderIds(["13800138000"])
    assert values(ids, "where is 13800138000") == ["13800138000"]


# -- shapes, keys, examples ---------------------------------------------------------------------
def test_shapes_keep_shared_prefixes_literal_and_digit_ranges() -> None:
    assert [s.describe() for s in infer_shapes(KX)] == ["KX-99999"]
    assert [s.describe() for s in infer_shapes(DATED)] == ["DD" + "9" * 11]
    assert [s.describe() for s in infer_shapes(SLASHED)] == ["ORD/9999/9999"]
    assert [s.describe() for s in infer_shapes(["A1", "A12345"])] == ["A9{1-5}"]
    varied = [f"{a}{b}-{n}" for a in "ABCDEFGHJK" for b in "XYZ" for n in (1001, 1002)]
    [shape] = infer_shapes(varied)
    assert shape.describe() == "AA-9999" and shape.distinctive


def test_rare_forms_are_known_one_by_one_without_a_shape() -> None:
    ids = OrderIds([f"KX-{n}" for n in range(20000, 20100)] + ["SPECIAL ORDER 7"])
    assert [s.describe() for s in ids.shapes] == ["KX-99999"]
    assert values(ids, "it was SPECIAL ORDER 7") == ["SPECIAL ORDER 7"]


def test_order_key_ignores_case_separators_hash_and_width() -> None:
    assert order_key(" #kx-20417 ") == order_key("ＫＸ２０４１７") == "KX20417"


def test_the_example_is_one_of_the_shops_ids_of_its_main_shape() -> None:
    assert OrderIds(KX).example() == "KX-20417"
    assert OrderIds([*DIGITS, *KX[:1]]).example() == "100234"
    assert OrderIds().example() is None
    assert OrderIds(pattern=r"KX-\d{5}").example() is None


def test_half_a_million_orders() -> None:
    order_ids = OrderIds([f"KX-{n}" for n in range(100_000, 600_000)])
    assert len(order_ids) == 500_000 and [s.describe() for s in order_ids.shapes] == ["KX-999999"]
    assert values(order_ids, "我想退货，订单号kx 599999，鞋子太小了") == ["KX-599999"]
    assert values(order_ids, "where is KX-999999") == ["KX-999999"]
