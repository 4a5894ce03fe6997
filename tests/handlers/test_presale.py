"""Pre-sale through the whole pipeline on a shop unlike the demo (tests/knowledge/product_shops/outdoor).

Its FAQ has one question per entry, and its shipping-cost entry starts with "How much": a
product question must get the product's answer, an ambiguous name buttons that answer the
question asked, an unknown product "I couldn't find that product" — never the shipping cost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.app import App
from bot.web.app import create_web_app
from intents.classifier import BuiltinClassifier
from tests.conftest import PROJECT_ROOT, _delete_keys, empty_tables, storage_environ
from tests.factories import Chat
from tests.rest_client import RestClient

SHOP = Path(__file__).parents[1] / "knowledge" / "product_shops" / "outdoor"
SHIPPING_COST = "7.50"


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def outdoor(
    request: pytest.FixtureRequest, tmp_path: Path, trained_classifier: BuiltinClassifier, redis_prefix: str
) -> AsyncIterator[App]:
    """deskbot on the outdoor shop's catalog and FAQ, on both backend pairs."""
    from bot.app import build_app
    from bot.config import load_settings

    sqlite = request.param == "sqlite+memory"
    env = {
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "unused.npz"),
        "DESKBOT_SHOP__CATALOG": str(SHOP / "catalog.yml"),
        "DESKBOT_SHOP__FAQ": str(SHOP / "faq.yml"),
    }
    env |= storage_environ(request, tmp_path, redis_prefix, server=not sqlite)
    settings = load_settings(PROJECT_ROOT / "config.yaml", environ=env)
    async with build_app(settings, classifier=trained_classifier, create_schema=sqlite) as deskbot:
        if not sqlite:
            await empty_tables(deskbot.tickets.engine)  # type: ignore[attr-defined]
        yield deskbot
    if not sqlite:
        await _delete_keys(settings.state.redis_url, redis_prefix)


def _payloads(chat: Chat) -> list[str]:
    return [button.payload for reply in chat.last for button in reply.buttons]


async def test_a_partial_name_gets_the_price_not_the_shipping_cost(outdoor: App) -> None:
    chat = Chat(outdoor, "ana")
    await chat.say("how much are the trail shoes?")
    assert "165.00 CHF" in chat.text and "Ridge Trail Running Shoes" in chat.text
    assert SHIPPING_COST not in chat.text
    await chat.say("alpine scraf price?")
    assert "59.00 CHF" in chat.text and "Alpine Wool Scarf" in chat.text
    await chat.say("羊毛围巾多少钱")
    assert "59.00 CHF" in chat.text and "阿尔卑斯羊毛围巾" in chat.text


async def test_an_ambiguous_name_asks_which_and_the_click_answers_the_question(outdoor: App) -> None:
    transport = httpx.ASGITransport(app=create_web_app(outdoor))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        rest = RestClient(http)

        async def say(message: str) -> list[dict[str, object]]:
            return await rest.say("ben", message)

        [question] = await say("how much are the running shoes?")
        assert "running shoes" in str(question["text"]) and SHIPPING_COST not in str(question["text"])
        buttons = {str(b["title"]): str(b["payload"]) for b in question["buttons"]}  # type: ignore[attr-defined]
        assert buttons == {
            "City Running Shoes": '/ask_price{"product": "CR-110"}',
            "Ridge Trail Running Shoes": '/ask_price{"product": "RT-220"}',
        }
        [answer] = await say(buttons["City Running Shoes"])
        assert "City Running Shoes" in str(answer["text"]) and "120.00 CHF" in str(answer["text"])
        # The product chosen is the one a follow-up refers to.
        [follow_up] = await say("do you have them in 43?")
        assert "City Running Shoes" in str(follow_up["text"]) and "43" in str(follow_up["text"])


async def test_the_buttons_keep_the_size_asked_for(outdoor: App) -> None:
    chat = Chat(outdoor, "cem")
    await chat.say("do you have the running shoes in size 42?")
    payloads = _payloads(chat)
    assert sorted((json.loads(p[p.index("{") :]) for p in payloads), key=str) == [
        {"product": "CR-110", "size": "42"},
        {"product": "RT-220", "size": "42"},
    ]
    assert all(p.startswith("/ask_stock{") for p in payloads)
    await chat.press_title("Ridge Trail")
    assert "Ridge Trail Running Shoes" in chat.text and "in stock in size 42" in chat.text


async def test_a_size_of_the_shop_s_own_is_read_from_the_message(outdoor: App) -> None:
    chat = Chat(outdoor, "cid")
    await chat.say("do you have the merino socks in 39-42?")
    assert "Merino Wool Socks" in chat.text and "out of stock in size 39-42" in chat.text
    await chat.say("羊毛袜43-46码有货吗")
    assert "美利奴羊毛袜" in chat.text and "43-46" in chat.text and "缺货" not in chat.text


async def test_a_chinese_ambiguous_name_gets_chinese_buttons(outdoor: App) -> None:
    chat = Chat(outdoor, "dai")
    await chat.say("跑鞋多少钱")
    assert "哪一款" in chat.text
    assert sorted(b.title for r in chat.last for b in r.buttons) == ["城市跑鞋", "山脊越野跑鞋"]
    await chat.press_title("山脊越野跑鞋")
    assert "165.00 CHF" in chat.text


async def test_an_unknown_product_is_not_answered_from_the_faq(outdoor: App) -> None:
    chat = Chat(outdoor, "eva")
    await chat.say("how much are the rainbow sandals?")
    assert "couldn't find" in chat.text and SHIPPING_COST not in chat.text
    assert "Alpine Wool Scarf" in chat.text  # examples from this shop's catalog
    assert any(b.payload == "/human_handoff" for r in chat.last for b in r.buttons)
    await chat.say("彩虹凉鞋多少钱")
    assert "没有找到" in chat.text and SHIPPING_COST not in chat.text
    assert "阿尔卑斯羊毛围巾" in chat.text


async def test_the_faq_still_answers_what_is_about_the_question(outdoor: App) -> None:
    chat = Chat(outdoor, "fay")
    await chat.say("how much does shipping cost?")
    assert SHIPPING_COST in chat.text
    await chat.say("can I return the trail shoes if they don't fit?")
    assert "30 days" in chat.text
    await chat.say("which payment methods do you accept?")
    assert "TWINT" in chat.text
    # A product-topic entry that answers the question comes first, the product after it.
    await chat.say("do the trail shoes run true to size?")
    assert "take the larger" in chat.text and "Ridge Trail Running Shoes — 165.00 CHF" in chat.text
