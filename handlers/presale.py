"""Pre-sale answers by retrieval from the shop's catalog and FAQ — never hard-coded.

Products come from the shop's :class:`~knowledge.products.ProductMatcher` (partial names,
plurals, typos, skus). A product question is answered from the catalog; when the name fits
several products the customer picks one from buttons that carry the question on
(``/ask_price{"product": "SKU"}``), so the click answers what was asked. A product question,
or any message naming a product, is never answered with an unrelated FAQ entry: the FAQ
answers it only from the question's own topic, or from another topic when the FAQ search is
confident and no product is named. A product question naming nothing the shop sells gets
"I couldn't find that product" with examples from the catalog.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from common.messages import Button
from handlers.context import Turn
from knowledge.additions import known_question
from knowledge.products import ProductMention
from knowledge.shop import FaqEntry, Product, fold_text

FAQ_TOPICS = {
    "ask_shipping": "shipping",
    "ask_payment": "payment",
    "ask_return_policy": "returns",
    "ask_product": "product",
    "ask_price": "product",
    "ask_stock": "product",
}
PRODUCT_INTENTS = {"ask_product", "ask_price", "ask_stock"}
SURE_INTENT = 0.8
"""Below this classifier confidence, a message naming no product is answered by the FAQ's own
ranking over every topic: the classifier hesitated ("When is customer service available?"
read as a stock question at 0.66, "The product is defective" as a product question at 0.34)."""
MAX_ANSWERED = 3  # products answered in one reply ("how much are the scarf and the trail shoes?")
MAX_EXAMPLES = 6  # catalog names shown when a product is not found
CONFIDENT_FAQ = 1.5
"""A product question naming no product takes an FAQ answer from another topic only at this
multiple of the FAQ's own threshold. The question may be an FAQ one the classifier read as
about a product ("Do you have any coupons?" scores 1.7 times the threshold on the demo FAQ),
or about a product the shop does not sell, whose words may still brush an entry ("how much is
the delivery drone?" reaches the express-delivery entry at 1.25 times)."""


@dataclass(slots=True)
class _Named:
    """The products a message names for sure, its mentions that fit several, and the text
    without any product mention (what the FAQ is asked: a name says nothing about a policy)."""

    resolved: list[Product] = field(default_factory=list)
    ambiguous: list[ProductMention] = field(default_factory=list)
    rest: str = ""

    @property
    def any(self) -> bool:
        return bool(self.resolved or self.ambiguous)


def _named(turn: Turn) -> _Named:
    """A button press names its product in the payload (``{"product": "SKU"}``); a text is
    read by the shop's matcher, the same that gave the classifier its ``product`` placeholders."""
    catalog = turn.services.catalog
    text = turn.msg.text
    if turn.msg.payload:
        chosen = [catalog.find_by_value(sku) for sku in turn.prediction.entity_values("product")]
        return _Named([product for product in chosen if product is not None], [], text)
    named = _Named()
    cursor = 0
    parts: list[str] = []
    for mention in turn.services.shop.products.mentions(text, turn.lang):
        if mention.ambiguous:
            named.ambiguous.append(mention)
        elif mention.best not in named.resolved:
            named.resolved.append(mention.best)
        parts.append(text[cursor : mention.start])
        cursor = mention.end
    named.rest = " ".join(part.strip() for part in [*parts, text[cursor:]] if part.strip())
    return named


def _price(turn: Turn, product: Product) -> str:
    return f"{product.price:.2f} {turn.services.catalog.currency}"


def _stock_line(turn: Turn, product: Product, size: str | None) -> str:
    name = product.name_for(turn.lang)
    if size is not None and product.sizes and not product.has_size(size):
        return turn.t("stock_no_such_size", product=name, size=size, sizes=", ".join(product.sizes))
    if size is not None and product.sizes:
        key = "stock_size_yes" if product.in_stock(size) else "stock_size_no"
        return turn.t(key, product=name, size=size, count=product.stock_count(size))
    if product.sizes:
        available = product.sizes_in_stock()
        if not available:
            return turn.t("stock_none", product=name)
        return turn.t("stock_sizes", product=name, sizes=", ".join(available))
    return turn.t("stock_yes" if product.in_stock(None) else "stock_none", product=name)


def _describe(turn: Turn, product: Product) -> str:
    lang = turn.lang
    lines = [f"{product.name_for(lang)} — {_price(turn, product)}"]
    description = product.description_for(lang)
    if description:
        lines.append(description)
    for key, value in product.specs_for(lang).items():
        lines.append(f"• {key}: {value}")
    if product.sizes:
        lines.append(turn.t("product_sizes", sizes=", ".join(product.sizes)))
    colours = product.colours_for(lang)
    if colours:
        lines.append(turn.t("product_colours", colours=", ".join(colours)))
    return "\n".join(lines)


def _size_asked(turn: Turn, product: Product, text: str) -> str | None:
    """The size the customer asks about: one of this product's own sizes written in the
    message ("口红N02有货吗", "socks in 39-42"), else the classifier's ``size`` entity."""
    return _own_size(product, text) or turn.prediction.entity("size")


def _own_size(product: Product, text: str) -> str | None:
    """One of the product's sizes as written in ``text``; a one-letter size counts only as
    written (capital "M", never the "m" of "I'm")."""
    folded = fold_text(text)
    for label in product.sizes or ():
        key = fold_text(label)
        if len(key) == 1 and key.isalpha():
            found = re.search(f"(?<![0-9A-Za-z]){re.escape(label)}(?![0-9A-Za-z])", text)
        else:
            found = re.search(f"(?<![0-9a-z]){re.escape(key)}(?![0-9a-z])", folded)
        if found:
            return label
    return None


async def _answer_product(turn: Turn, product: Product, intent: str, text: str = "") -> None:
    name = product.name_for(turn.lang)
    if intent == "ask_price":
        turn.say("price", product=name, price=_price(turn, product))
    elif intent == "ask_stock":
        turn.say_text(_stock_line(turn, product, _size_asked(turn, product, text)))
    else:
        turn.say_text(_describe(turn, product))


def _faq_hit(turn: Turn, topic: str | None, named: _Named | None = None, *, confident: bool = False) -> FaqEntry | None:
    """The FAQ entry that answers the message (one topic, or any with ``topic`` None), or None;
    ``confident`` asks for a score of :data:`CONFIDENT_FAQ` times the FAQ's threshold."""
    faq = turn.services.faq
    verbatim = known_question(faq.faq, turn.msg.text)
    if verbatim is not None:
        # One of the shop's own phrasings, word for word: its entry, whatever the ranking says.
        return verbatim
    # With product mentions only the rest is asked: a name says nothing about a policy, and
    # its words may brush an unrelated answer ("the Bergen sofa" and a guarantee naming sofas).
    query = named.rest if named is not None and named.any else turn.msg.text
    return faq_search_hit(turn, query, topic, confident=confident)


def faq_search_hit(turn: Turn, query: str, topic: str | None = None, *, confident: bool = False) -> FaqEntry | None:
    """The FAQ search's best entry for ``query`` (its own threshold, or :data:`CONFIDENT_FAQ`
    times it), or None."""
    faq = turn.services.faq
    hits = faq.search(query, turn.lang, topic=topic, k=1) if query.strip() else []
    if not hits:
        return None
    entry, score = hits[0]
    if confident and score < CONFIDENT_FAQ * faq.min_score:
        return None
    return entry


def _answer_faq(turn: Turn, topic: str | None, named: _Named | None = None, *, confident: bool = False) -> bool:
    """Answer from the FAQ entry :func:`_faq_hit` finds; False when there is none."""
    entry = _faq_hit(turn, topic, named, confident=confident)
    if entry is not None:
        turn.say_text(entry.answer_for(turn.lang))
    return entry is not None


def _ask_which(turn: Turn, mention: ProductMention, intent: str) -> None:
    """One button per product the mention fits; the payload keeps the question (and a size)."""
    slots: dict[str, str] = {}
    size = turn.prediction.entity("size")
    if size:
        slots["size"] = size
    buttons = tuple(
        Button(
            product.name_for(turn.lang),
            f"/{intent}" + json.dumps({"product": product.sku, **slots}, ensure_ascii=False),
        )
        for product, _confidence in mention.candidates
    )
    turn.say("product_which", buttons=buttons, mention=mention.text)


def _remember(turn: Turn, product: Product) -> None:
    turn.state.last_product = product.sku  # "do you have it in L?" next


FOLLOW_UP = re.compile(
    r"^\W*(?:(?:and|what|how|about|the|in|with|for|too|also|then|of|it|one|那|还有|和|的|呢|吗|怎么样|呀|啊)\W*)*$",
    re.IGNORECASE,
)


def _is_follow_up(rest: str) -> bool:
    """Nothing but the product and small words around it ("and the armchair?", "那扶手椅呢？"):
    the customer asks the previous question again about another product."""
    return bool(FOLLOW_UP.match(rest))


async def follow_up(turn: Turn) -> bool:
    """A size of the product discussed last, on its own ("and in 160x230?"): its stock.

    The intent model cannot know one shop's sizes, so such a message may read as anything;
    only a size this very product is sold in counts, never the generic size entity.
    """
    last = turn.services.catalog.find_by_value(turn.state.last_product) if turn.state.last_product else None
    if last is None or not last.sizes or turn.services.shop.products.mentions(turn.msg.text, turn.lang):
        return False
    size = _own_size(last, turn.msg.text)
    if size is None:
        return False
    turn.state.last_intent = "ask_stock"
    turn.say_text(_stock_line(turn, last, size))
    return True


def _unknown(turn: Turn, intent: str) -> None:
    buttons = (turn.button("button_human", "/human_handoff"),)
    turn.missed = "product_unknown" if intent in PRODUCT_INTENTS else "faq_unknown"  # the workspace's missed list
    if intent in PRODUCT_INTENTS:
        names = ", ".join(p.name_for(turn.lang) for p in turn.services.catalog.products[:MAX_EXAMPLES])
        turn.say("product_unknown", buttons=buttons, examples=names)
    else:
        turn.say("faq_unknown", buttons=buttons)


async def _product_question(turn: Turn, intent: str, named: _Named) -> None:
    if named.resolved:
        previous = turn.state.last_intent
        if previous in PRODUCT_INTENTS and previous != intent and _is_follow_up(named.rest):
            # "is the sofa in stock?" … "and the armchair?": the same question again.
            intent = previous
            turn.prediction = replace(turn.prediction, intent=previous)
        entry = (
            # Confident over every topic, or the best about products ("亚麻套可以机洗吗？": care).
            _faq_hit(turn, None, named, confident=True) or _faq_hit(turn, "product", named)
            if intent == "ask_product"
            else None
        )
        if entry is not None:
            # "Do the shoes run true to size?", "will you assemble the dining table?": an FAQ
            # entry that answers the message confidently comes first. About the products (a
            # size guide) the product follows it; about a service (assembly, samples) the
            # card would only bury the answer.
            turn.say_text(entry.answer_for(turn.lang))
            if entry.topic != "product":
                _remember(turn, named.resolved[0])
                return
        for product in named.resolved[:MAX_ANSWERED]:
            await _answer_product(turn, product, intent, named.rest)
            _remember(turn, product)
        return
    if named.ambiguous:
        _ask_which(turn, named.ambiguous[0], intent)
        return
    if not turn.msg.text.strip():
        # The "Products" button, not a question: show what the shop sells.
        lines = [f"• {p.name_for(turn.lang)} — {_price(turn, p)}" for p in turn.services.catalog.products]
        turn.say("catalog_overview", products="\n".join(lines))
        return
    last = turn.services.catalog.find_by_value(turn.state.last_product) if turn.state.last_product else None
    if last is not None:  # a follow-up about the product discussed last
        await _answer_product(turn, last, intent, turn.msg.text)
        return
    if turn.prediction.confidence < SURE_INTENT:
        if _answer_faq(turn, None):
            return
    # Nothing named in what is surely a product question: the FAQ answers only what is about
    # products (a size chart, restocking), or what it is confident about; "how much are the
    # <something we don't sell>?" is no question about shipping costs.
    elif _answer_faq(turn, "product") or _answer_faq(turn, None, confident=True):
        return
    _unknown(turn, intent)


async def _policy_question(turn: Turn, intent: str, named: _Named) -> None:
    if not named.any and turn.prediction.confidence < SURE_INTENT and _answer_faq(turn, None):
        return  # the classifier hesitated: the FAQ's own ranking over every topic decides
    if _answer_faq(turn, FAQ_TOPICS[intent], named):
        return
    # Another topic's answer only when no product is named: the classifier may mix up
    # shipping and payment, but a message about a product is not answered off-topic.
    if not named.any and _answer_faq(turn, None):
        return
    if named.resolved:
        await _answer_product(turn, named.resolved[0], "ask_product")
        _remember(turn, named.resolved[0])
        return
    if named.ambiguous:
        _ask_which(turn, named.ambiguous[0], "ask_product")
        return
    _unknown(turn, intent)


async def presale(turn: Turn) -> None:
    intent = turn.prediction.intent
    named = _named(turn)
    if intent in PRODUCT_INTENTS:
        await _product_question(turn, intent, named)
    else:
        await _policy_question(turn, intent, named)


ROUTES = {intent: presale for intent in FAQ_TOPICS}
