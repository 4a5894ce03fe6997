"""Pre-sale answers by retrieval from the shop's catalog and FAQ — never hard-coded."""

from __future__ import annotations

from handlers.context import Turn
from knowledge.shop import Product

FAQ_TOPICS = {
    "ask_shipping": "shipping",
    "ask_payment": "payment",
    "ask_return_policy": "returns",
    "ask_product": "product",
    "ask_price": "product",
    "ask_stock": "product",
}
PRODUCT_INTENTS = {"ask_product", "ask_price", "ask_stock"}


def _find_product(turn: Turn) -> Product | None:
    """The product named in the message, else (for product questions) the one discussed last."""
    catalog = turn.services.catalog
    found: Product | None = None
    for sku in turn.prediction.entity_values("product"):
        found = catalog.find_by_value(sku)
        if found is not None:
            break
    if found is None:
        found = catalog.find(turn.msg.text, turn.lang)
    if found is None and turn.prediction.intent in PRODUCT_INTENTS and turn.state.last_product:
        found = catalog.find_by_value(turn.state.last_product)
    if found is not None:
        turn.state.last_product = found.sku
    return found


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


async def _answer_product(turn: Turn, product: Product, intent: str) -> None:
    name = product.name_for(turn.lang)
    if intent == "ask_price":
        turn.say("price", product=name, price=_price(turn, product))
    elif intent == "ask_stock":
        turn.say_text(_stock_line(turn, product, turn.prediction.entity("size")))
    else:
        turn.say_text(_describe(turn, product))


def _answer_faq(turn: Turn, intent: str) -> bool:
    faq = turn.services.faq
    hits = faq.search(turn.msg.text, turn.lang, topic=FAQ_TOPICS.get(intent), k=1)
    if not hits:
        hits = faq.search(turn.msg.text, turn.lang, topic=None, k=1)
    if not hits:
        return False
    entry, _score = hits[0]
    turn.say_text(entry.answer_for(turn.lang))
    return True


async def presale(turn: Turn) -> None:
    intent = turn.prediction.intent
    product = _find_product(turn)
    if product is not None and intent in PRODUCT_INTENTS:
        await _answer_product(turn, product, intent)
        return
    if _answer_faq(turn, intent):
        return
    if product is not None:
        await _answer_product(turn, product, "ask_product")
        return
    buttons = (turn.button("button_human", "/human_handoff"),)
    if intent in PRODUCT_INTENTS and not turn.msg.text.strip():
        # The "Products" button, not a question: show what the shop sells.
        lines = [f"• {p.name_for(turn.lang)} — {_price(turn, p)}" for p in turn.services.catalog.products]
        turn.say("catalog_overview", products="\n".join(lines))
        return
    if intent in PRODUCT_INTENTS:
        names = ", ".join(p.name_for(turn.lang) for p in turn.services.catalog.products[:6])
        turn.say("product_unknown", buttons=buttons, examples=names)
    else:
        turn.say("faq_unknown", buttons=buttons)


ROUTES = {intent: presale for intent in FAQ_TOPICS}
