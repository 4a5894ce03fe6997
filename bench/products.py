"""Time per message of the product matcher on generated catalogs, against the old exact lookup.

For a 20- and a 500-product catalog (names built from shared brands, modifiers and nouns in
English and Chinese, so many products share words), it times, in the same process and on
the same messages:
  * baseline: ``Catalog.find``, the exact name/alias lookup the matcher replaced;
  * matcher: ``ProductMatcher.mentions`` (partial names, plurals, typos, skus, Chinese).
The messages mix partial names, typos, plurals, skus, Chinese names and FAQ-like questions
naming no product. Index build time is printed too (it runs once per catalog, off the loop).
Run: ``.venv/bin/python bench/products.py [--messages N] [--sizes 20 500] [--seed S]``
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.products import ProductMatcher  # noqa: E402
from knowledge.shop import Catalog  # noqa: E402

BRANDS = ["Nova", "Ridge", "Halo", "Pulse", "Volt", "Arc", "Summit", "Alpine", "City", "Terra",
          "Luma", "Vista", "Echo", "Drift", "Nimbus", "Cobalt", "Aero", "Zen", "Orbit", "Peak"]
MODIFIERS = [("Wireless", "无线"), ("Waterproof", "防水"), ("Classic", "经典"), ("Slim", "修身"),
             ("Ultra", "超轻"), ("Mini", "迷你"), ("Pro", "专业"), ("Insulated", "保温"), ("Trail", "越野"),
             ("Running", "跑步"), ("Merino", "美利奴"), ("Carbon", "碳纤维"), ("Bamboo", "竹纤维"),
             ("Organic", "有机"), ("Compact", "便携"), ("Foldable", "折叠"), ("Heated", "加热"),
             ("Thermal", "保暖"), ("Reflective", "反光"), ("Wool", "羊毛")]
NOUNS = [("Scarf", "围巾"), ("Shoes", "鞋"), ("Jacket", "夹克"), ("Earbuds", "耳机"), ("Speaker", "音箱"),
         ("Backpack", "背包"), ("Bottle", "水壶"), ("Socks", "袜子"), ("Gloves", "手套"), ("Hat", "帽子"),
         ("Headlamp", "头灯"), ("Charger", "充电器"), ("Cable", "数据线"), ("Keyboard", "键盘"),
         ("Watch", "手表"), ("Tent", "帐篷"), ("Blanket", "毯子"), ("Mug", "马克杯"), ("Lamp", "台灯"),
         ("Wallet", "钱包"), ("Belt", "腰带"), ("Sunglasses", "太阳镜"), ("Umbrella", "雨伞"),
         ("Pillow", "枕头"), ("Towel", "毛巾")]
NO_PRODUCT = [
    "how long does delivery take to Germany?", "can I pay with PayPal or a credit card?",
    "I want to return my order, it arrived too late", "where is my parcel? it has been a week",
    "do you ship to the Alps?", "what is your return policy for sale items", "发货要多久？",
    "可以用支付宝付款吗", "我想退货，订单号KX-20417", "hello, is anyone there?",
]
TEMPLATES = ["how much is the {}?", "do you have the {} in stock", "is the {} waterproof?", "{} price please",
             "I'd like to buy {} for my brother", "{}"]
ZH_TEMPLATES = ["{}多少钱", "请问{}有货吗", "我想买{}", "{}还有吗？"]


def generated_catalog(size: int, seed: int = 1) -> Catalog:
    """``size`` products named brand + one or two modifiers + noun, in English and Chinese."""
    rng = random.Random(seed)
    seen: set[str] = set()
    products: list[dict[str, object]] = []
    while len(products) < size:
        brand = rng.choice(BRANDS)
        modifiers = rng.sample(MODIFIERS, rng.choice((1, 1, 2)))
        noun = rng.choice(NOUNS)
        code = f" X{rng.randint(1, 9)}" if rng.random() < 0.2 else ""
        en = f"{brand}{code} {' '.join(m[0] for m in modifiers)} {noun[0]}"
        zh = f"{brand}{code} {''.join(m[1] for m in modifiers)}{noun[1]}"
        if en.casefold() in seen or zh.casefold() in seen:
            continue
        seen |= {en.casefold(), zh.casefold()}
        products.append({"sku": f"G{len(products):04d}-{noun[0][:2].upper()}", "name": {"en": en, "zh": zh},
                         "price": rng.randint(5, 300), "stock": rng.randint(0, 20)})
    return Catalog.model_validate({"currency": "EUR", "products": products})


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def messages_for(catalog: Catalog, count: int, seed: int = 1) -> list[str]:
    """Customer-like messages about ``catalog``: partial names, typos, plurals, skus, Chinese, none."""
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(count):
        product = rng.choice(catalog.products)
        words = product.name["en"].split()
        kind = rng.randrange(7)
        if kind == 0:
            texts.append(rng.choice(NO_PRODUCT))
            continue
        if kind == 1:
            mention = product.name["en"]
        elif kind == 2:
            mention = " ".join(words[-2:])
        elif kind == 3:
            mention = " ".join([*words[1:-1], _typo(words[-1].lower(), rng)])
        elif kind == 4:
            mention = product.sku.lower().replace("-", "")
        else:
            zh = product.name["zh"]
            texts.append(rng.choice(ZH_TEMPLATES).format(zh[-4:] if kind == 5 else zh))
            continue
        texts.append(rng.choice(TEMPLATES).format(mention))
    return texts


def _percentiles(call: Callable[[str], object], texts: list[str], rounds: int) -> tuple[float, float]:
    timings: list[float] = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            call(text)
            timings.append(time.perf_counter() - started)
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49] * 1e6, cuts[98] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 500])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{'products':>8} {'build ms':>9} {'find p50 µs':>12} {'find p99 µs':>12} "
          f"{'matcher p50 µs':>15} {'matcher p99 µs':>15} {'found':>6}")
    for size in args.sizes:
        catalog = generated_catalog(size, args.seed)
        started = time.perf_counter()
        matcher = ProductMatcher(catalog)
        build_ms = (time.perf_counter() - started) * 1e3
        texts = messages_for(catalog, args.messages, args.seed)
        find = _percentiles(functools.partial(catalog.find, language="en"), texts, args.rounds)
        mentions = _percentiles(functools.partial(matcher.mentions, language="en"), texts, args.rounds)
        found = sum(1 for t in texts if matcher.mentions(t, "en")) / len(texts)
        print(f"{size:>8} {build_ms:>9.1f} {find[0]:>12.1f} {find[1]:>12.1f} "
              f"{mentions[0]:>15.1f} {mentions[1]:>15.1f} {found:>6.0%}")


if __name__ == "__main__":
    main()
