"""An explicit request wins over the mood: the return/exchange cue rule, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from intents.base import OUT_OF_SCOPE, Entity, Prediction
from intents.classifier import BuiltinClassifier
from intents.config import ClassifierConfig
from intents.explicit import apply_explicit_request, explicit_request
from tests.trained_models import trained_model

PROJECT_DATA = Path(__file__).resolve().parents[2] / "intents" / "data"


@pytest.mark.parametrize(
    "text",
    [
        "I want to return it, the zip is broken",
        "I want to return, order KX-20417",
        "the screen is cracked so I'd like a refund",
        "not happy at all, I want my money back",
        "it stopped working after a day. refund please",
        "the handle snapped, I'm sending it back",
        "can I return it? the stitching came apart",
        "please refund me, it arrived smashed",
        "我想退货，订单号A10243",
        "我想退货，拉链坏了",
        "拉链坏了，退货",
        "质量太差了 帮我退了吧",
        "屏幕碎了 我要退款",
        "东西是坏的 我要提交退货申请",
    ],
)
def test_explicit_return_requests(text: str) -> None:
    assert explicit_request(text) == "request_return"


@pytest.mark.parametrize(
    "text",
    [
        "the zip is broken, I want an exchange",
        "it crackles, can I exchange it?",
        "I don't want a refund, I want a replacement",
        "the kettle leaks, I need a new one",
        "拉链坏了，我想换货",
        "有杂音 给我换一个",
        "我不想退货了 换个新的吧",
    ],
)
def test_explicit_exchange_requests(text: str) -> None:
    assert explicit_request(text) == "request_exchange"


@pytest.mark.parametrize(
    "text",
    [
        "the zip is broken",
        "this is the worst shop ever",
        "how do returns work?",
        "what is your return policy? the zip broke",
        "where is my refund",
        "I already returned it and still no refund",
        "I don't want a refund, just tell me where my parcel is",
        "I want my refund now, it's been three weeks",
        "I tried to return it three times and nobody answers",
        "I need to change my delivery address",
        "I want to return to the main menu",
        "拉链坏了",
        "退货政策是什么",
        "退款怎么还没到账",
        "我不想退货",
        "已经申请退货了 退款什么时候到",
        "我的退款申请怎么样了",
        "我要换收货地址",
        "我要退出",
        "坏了能退吗",
    ],
)
def test_what_is_not_an_explicit_request(text: str) -> None:
    assert explicit_request(text) is None


def prediction(intent: str, *ranking: tuple[str, float], confidence: float | None = None) -> Prediction:
    scores = ranking or ((intent, 0.8),)
    return Prediction(intent, scores[0][1] if confidence is None else confidence, scores, language="en")


@pytest.mark.parametrize("heard", ["complaint", "order_status"])
def test_the_request_wins_over_a_complaint_or_an_order_status(heard: str) -> None:
    before = prediction(heard, (heard, 0.7), ("request_return", 0.2), ("ask_price", 0.1))
    after = apply_explicit_request(before, "I want to return it, the zip is broken")

    assert after.intent == "request_return"
    assert (after.confidence, after.ranking) == (before.confidence, before.ranking)  # the mood stays readable


def test_below_the_threshold_the_top_intent_decides_whether_to_look() -> None:
    unsure = prediction(OUT_OF_SCOPE, ("complaint", 0.25), ("order_status", 0.2), confidence=0.25)
    assert apply_explicit_request(unsure, "我想退货，拉链坏了").intent == "request_return"


@pytest.mark.parametrize("heard", ["ask_return_policy", "ask_price", "request_exchange", "human_handoff"])
def test_other_intents_are_left_alone(heard: str) -> None:
    before = prediction(heard)
    assert apply_explicit_request(before, "I want to return it, the zip is broken") is before


def test_no_cue_leaves_a_complaint_a_complaint() -> None:
    before = prediction("complaint")
    assert apply_explicit_request(before, "the zip broke after one day, rubbish") is before


# -- with the project's model -----------------------------------------------------------------
@pytest.fixture(scope="module")
def project() -> BuiltinClassifier:
    # Trained once for all workers and kept across runs (tests/trained_models.py).
    return trained_model(ClassifierConfig(), PROJECT_DATA)[1]


def order(text: str, surface: str) -> tuple[Entity, ...]:
    start = text.index(surface)
    return (Entity("order_id", surface, start, start + len(surface), surface),)


@pytest.mark.parametrize(
    ("text", "order_id", "intent"),
    [
        ("我想退货，订单号A10243", "A10243", "request_return"),
        ("我想退货，订单号KX-20417", "KX-20417", "request_return"),
        ("我要退货 拉链坏了 订单DD20261123001", "DD20261123001", "request_return"),
        ("I want to return order #100234, the zip is broken", "#100234", "request_return"),
        ("the screen is cracked, I'd like an exchange for order 50412", "50412", "request_exchange"),
        ("拉链坏了 我想换货 订单号ord-7781", "ord-7781", "request_exchange"),
    ],
)
def test_project_model_with_the_rule_starts_the_request(
    project: BuiltinClassifier, text: str, order_id: str, intent: str
) -> None:
    heard = project.predict_sync(text, known=order(text, order_id))
    assert apply_explicit_request(heard, text).intent == intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("the zip broke after one day, really poor quality", "complaint"),
        ("拉链坏了 质量太差了", "complaint"),
        ("where is my refund", "order_status"),
        ("my order KX-20417 is late again, this is ridiculous", "complaint"),
    ],
)
def test_project_model_with_the_rule_keeps_complaints_and_status(
    project: BuiltinClassifier, text: str, intent: str
) -> None:
    heard = project.predict_sync(text)
    assert heard.intent == intent
    assert apply_explicit_request(heard, text) is heard
