"""Grouping what the bot missed (knowledge/missed.py): near-duplicates together, other questions apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from knowledge.missed import GROUP_THRESHOLD, group, group_key, similarity
from storage.missed import MissedRow
from storage.models import MissedReason

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def row(
    row_id: int,
    text: str,
    *,
    language: str = "en",
    customer: int | None = None,
    minutes: int = 0,
    reason: MissedReason = MissedReason.FALLBACK,
    handed_off: bool = False,
) -> MissedRow:
    return MissedRow(
        id=row_id,
        text=text,
        language=language,
        reason=reason,
        intent="out_of_scope",
        confidence=0.2,
        created_at=T0 + timedelta(minutes=minutes),
        customer_id=customer if customer is not None else row_id,
        handed_off=handed_off,
    )


# Wordings of one question: they must share a group.
SAME = [
    ("do you accept paypal?", "Do you accept PayPal"),
    ("paypal ok?", "is paypal ok"),
    ("can I pay with paypal", "can i pay by paypal?"),
    ("where is my order 12345", "where is my order #67890"),
    ("可以用支付宝吗", "支付宝可以吗？"),
    ("可以用支付宝付款吗", "能用支付宝吗"),
]
# Different questions in one frame: they must not.
DIFFERENT = [
    ("what is the price of the hoodie", "what is the price of the jeans"),
    ("do you ship to canada", "do you ship to australia"),
    ("你们发货到加拿大吗", "你们发货到澳大利亚吗"),
    ("hi", "hi can I return"),
    ("do you have gift cards", "do you have the wool scarf"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_wordings_of_one_question_are_similar(a: str, b: str) -> None:
    assert similarity(group_key(a), group_key(b)) >= GROUP_THRESHOLD


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_questions_in_one_frame_are_not(a: str, b: str) -> None:
    assert similarity(group_key(a), group_key(b)) < GROUP_THRESHOLD


def test_groups_count_customers_handoffs_and_reasons() -> None:
    rows = [
        row(1, "Do you accept PayPal?", customer=7, minutes=1),
        row(2, "do you accept paypal", customer=7, minutes=2),
        row(3, "can I pay with PayPal", customer=8, minutes=3, reason=MissedReason.FAQ_UNKNOWN, handed_off=True),
        row(4, "can i pay by paypal?", customer=9, minutes=4),
        row(5, "do you ship to canada", customer=10, minutes=5),
        row(6, "可以用支付宝吗", language="zh", customer=11, minutes=6),
        row(7, "支付宝可以吗？", language="zh", customer=12, minutes=7),
        row(8, "???", minutes=8),  # nothing to group by
    ]
    groups = group(rows)
    # Biggest first; among equals the most recently asked.
    assert [(g.language, g.count) for g in groups] == [("zh", 2), ("en", 2), ("en", 2), ("en", 1)]
    alipay, pay_with, accept, canada = groups
    assert accept.text == "do you accept paypal" and accept.ids == [2, 1]
    assert accept.customers == 1 and accept.handoffs == 0
    assert pay_with.ids == [4, 3] and pay_with.customers == 2 and pay_with.handoffs == 1
    assert pay_with.reasons == {"fallback": 1, "faq_unknown": 1}
    assert pay_with.first_seen == T0 + timedelta(minutes=3) and pay_with.last_seen == T0 + timedelta(minutes=4)
    assert set(pay_with.examples) == {"can I pay with PayPal", "can i pay by paypal?"}
    assert alipay.language == "zh" and alipay.ids == [7, 6]
    assert canada.text == "do you ship to canada"


def test_the_most_frequent_wording_names_the_group_and_languages_stay_apart() -> None:
    rows = [row(i, "Is shipping free?", minutes=i) for i in range(1, 4)]
    rows += [row(10, "is shipping free??", minutes=20), row(11, "Shipping free?", minutes=21)]
    rows += [row(12, "is shipping free?", language="de", minutes=22)]
    groups = group(rows)
    assert [(g.language, g.count) for g in groups] == [("en", 5), ("de", 1)]
    assert groups[0].text == "is shipping free??"  # the bucket's latest wording, the biggest bucket
    assert groups[0].examples[-1] == "Shipping free?"


def test_order_is_by_size_then_recency() -> None:
    rows = [row(1, "alpha question here", minutes=1), row(2, "totally different words", minutes=50)]
    assert [g.text for g in group(rows)] == ["totally different words", "alpha question here"]
    assert group([]) == []
