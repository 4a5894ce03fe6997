"""What a customer would ask of one shop, generated from its own data (for ``deskbot shop check``).

Nothing here talks to the bot: these are the questions and the facts their answers must hold.

- Products are named as customers name them: the full name, each alias, and a short name —
  the last one or two words of the name ("Jacket", "Rain Jacket"), after dropping trailing
  codes and pack sizes; in Chinese, written without spaces, the last two or three characters
  (沙发, 咖啡桌), where the head noun is. A form that is the short name of several products
  ("Jacket" for three jackets) fits them all: the bot should ask which one is meant.
- An FAQ entry is asked by each phrasing and by a paraphrase built from its answer: the
  answer's most distinctive words (in the fewest other answers) that its phrasings do not
  already use, because that is how a customer asks about a fact only the answer states
  ("Do you have Mastercard and American Express?").
- A return is asked for a few real orders, one-shot, with the order id as the shop writes it.

The wordings are plain and fixed per language: the check measures the shop's data, not how far
the classifier stretches, and the same data always gives the same questions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.shop import Catalog, Faq, FaqEntry, Product, fold_text
from storage.models import Order

RETURN_ORDERS = 3  # how many of the imported orders a return is tried for
KEYWORDS = 2  # words (or Chinese clauses) an answer's paraphrase is built from

# The customer's side of each probe, per language the bot speaks.
ASK: dict[str, dict[str, str]] = {
    "en": {
        "price": "How much is the {form}?",
        "stock": "Do you have the {form} in stock?",
        "about": "Do you have {topics}?",
        "and": " and ",
        "return": "I want to return order {order_id}",
    },
    "zh": {
        "price": "{form}多少钱？",
        "stock": "{form}有货吗？",
        "about": "{topics}吗？",
        "and": "和",
        "return": "我想退货，订单号{order_id}",
    },
}

CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
# A run of CJK characters, or a word in another script: the pieces of a Chinese name.
_CJK_RUN = re.compile(f"{CJK.pattern}+|[^\\W_{CJK.pattern[1:-1]}]+")
# A run that starts with a numeral is a count or a generation, no name: 二代, 三双装.
_CJK_NUMERALS = frozenset("零一二三四五六七八九十百千万两")
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|（[^）]*）|【[^】]*】")
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_LETTERS = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_ROMAN = re.compile(r"[ivxlcdm]+", re.I)
_ADDRESS = re.compile(r"\S+@\S+|https?://\S+|www\.\S+")
# Chinese clauses end at punctuation (a dot only when it is not a decimal point).
_CLAUSE_BREAK = re.compile(r"[，。；：、！？（）()【】「」“”\"‘’'…—–,;:!?]+|\.(?!\d)")
_CLAUSE_EDGE = re.compile(r"^[\d\s.%]+|[\d\s.%]+$")  # "1–3 个工作日" splits at the dash
# Words a stop list keeps but that name no topic in an answer ("you would", "we will also").
_MODALS = frozenset({"would", "could", "should", "might", "must", "shall", "will", "can", "may", "also", "please"})
# Words after which English puts a noun phrase ("of citric acid", "a prepaid label", "two spoons").
_PHRASE_STARTERS = frozenset(
    "a an the your our my their its this that these those any each every some no of with without for in on at by "
    "from to into within per about via over under after before behind one two three four five six seven eight nine "
    "ten".split()
)
# Words after which a word is more likely a verb than a noun ("takes *the* parcel", "ships *it*").
_OBJECT_WORDS = frozenset("a an the your our my their its this that these those it you us them".split())


def catalog_languages(catalog: Catalog) -> list[str]:
    """The languages the catalog names its products in."""
    return sorted({lang for p in catalog.products for lang in (*p.name, *p.aliases)})


# -- products ---------------------------------------------------------------------------
def short_names(name: str) -> list[str]:
    """How customers shorten a product name: its last word and its last two words.

    Trailing codes and pack sizes ("3-Pack", "2m", "(2nd gen.)") are dropped first: customers
    name the thing, not the variant; a tail of codes or numerals ("Mk II") is no name. A
    Chinese name has no spaces to cut at: see :func:`chinese_short_names`.
    """
    if CJK.search(name):
        return chinese_short_names(name)
    full = _WORD.findall(name)
    words = _WORD.findall(_BRACKETED.sub(" ", name))
    while words and any(char.isdigit() for char in words[-1]):
        words.pop()
    found: list[str] = []
    for n in (1, 2):
        tail = words[-n:]
        if len(words) < n or tail == full or any(char.isdigit() for word in tail for char in word):
            continue
        if not any(len(word) >= 3 and not _ROMAN.fullmatch(word) for word in tail):
            continue
        found.append(" ".join(tail))
    return found


def chinese_short_names(name: str) -> list[str]:
    """The last two and the last three characters of a Chinese name: where its head noun is
    (餐桌 of 奥斯陆橡木餐桌, 咖啡桌 of 奥斯陆橡木咖啡桌), which the product matcher finds
    alone. Without a dictionary the check cannot tell which of the two is the word, so it asks
    with both. Trailing codes, counts and pack sizes ("SPF50", "10片装", "（三双装）", "二代") are
    dropped first, as in English; a name that then ends in no Chinese run of two characters
    ("经典纯棉T恤") gets none."""
    runs = [m.group(0) for m in _CJK_RUN.finditer(_BRACKETED.sub(" ", name))]
    while runs and (
        any(char.isdigit() for char in runs[-1])
        or runs[-1][0] in _CJK_NUMERALS
        or (len(runs) > 1 and runs[-2].isdigit() and len(runs[-1]) <= 2)  # 10片装, not 30升登山背包
    ):
        runs.pop()
    if not runs or not CJK.match(runs[-1]):
        return []
    whole = "".join(name.split())
    run = runs[-1]
    return [run[-n:] for n in (2, 3) if len(run) >= n and run[-n:] != whole and run[-n] not in _CJK_NUMERALS]


def hard_to_type(name: str) -> bool:
    """A name customers do not type as such: long, or made of codes ("BG-80 Mk II")."""
    if CJK.search(name):
        return len(name.replace(" ", "")) > 4
    words = _WORD.findall(name)
    return len(words) > 2 or any(any(char.isdigit() for char in word) for word in words)


@dataclass(frozen=True, slots=True)
class ProductProbe:
    """One way to name a product in one language, and every product that way fits."""

    form: str
    language: str
    kind: str  # name | alias | sku | short name
    owner: str | None  # the sku whose name or alias it is; None for a short name nobody declared
    fits: tuple[str, ...]  # skus it may mean: the owner, then each product it is the short name of


class CatalogView:
    """The catalog seen from the customer's side: the forms they type and what each may mean."""

    def __init__(self, catalog: Catalog, languages: Sequence[str]) -> None:
        self.catalog = catalog
        self.languages = [lang for lang in catalog_languages(catalog) if lang in languages]
        self.declared: dict[str, tuple[str, str]] = {}  # folded form -> (sku, kind)
        self.shortened: dict[str, list[str]] = {}  # folded short name -> skus
        for product in catalog.products:
            self.declared[fold_text(product.sku)] = (product.sku, "sku")
            for name in product.name.values():
                self.declared.setdefault(fold_text(name), (product.sku, "name"))
            for aliases in product.aliases.values():
                for alias in aliases:
                    self.declared.setdefault(fold_text(alias), (product.sku, "alias"))
            for name in product.name.values():
                for short in short_names(name):
                    skus = self.shortened.setdefault(fold_text(short), [])
                    if product.sku not in skus:
                        skus.append(product.sku)

    def probe(self, form: str, language: str) -> ProductProbe:
        key = fold_text(form)
        owner, kind = self.declared.get(key, (None, "short name"))
        fits = ([owner] if owner else []) + [sku for sku in self.shortened.get(key, []) if sku != owner]
        return ProductProbe(form, language, kind, owner, tuple(fits))

    def forms(self, product: Product, language: str) -> list[str]:
        """The product's name in ``language`` (English when it has none), aliases, short names."""
        name = product.name.get(language) or product.name_for(language)
        forms = [name, *product.aliases.get(language, [])]
        if language in product.name:
            forms += [short.lower() for short in short_names(name)]  # as customers type them
        unique: dict[str, str] = {}
        for form in forms:
            unique.setdefault(fold_text(form), form)
        return list(unique.values())

    def probes(self) -> list[ProductProbe]:
        """Each distinct (form, language) once, in catalog order."""
        seen: set[tuple[str, str]] = set()
        probes: list[ProductProbe] = []
        for language in self.languages:
            for product in self.catalog.products:
                for form in self.forms(product, language):
                    key = (fold_text(form), language)
                    if key not in seen:
                        seen.add(key)
                        probes.append(self.probe(form, language))
        return probes

    def label(self, sku: str) -> str:
        product = self.catalog.find_by_value(sku)
        return f"{sku} ({product.name_for('en')})" if product else sku


# -- the FAQ ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FaqProbe:
    entry: str
    language: str
    kind: str  # phrasing | paraphrase
    text: str
    keywords: tuple[str, ...] = ()
    shared_with: tuple[str, ...] = ()  # other entries whose texts hold every keyword too


def faq_probes(faq: Faq, languages: Sequence[str]) -> list[FaqProbe]:
    """Each entry by each phrasing, and by a paraphrase of its answer, per language it has."""
    probes: list[FaqProbe] = []
    for entry in faq.entries:
        for language, questions in entry.questions.items():
            if language not in languages:
                continue
            probes += [FaqProbe(entry.id, language, "phrasing", q) for q in questions]
            if language not in entry.answer or language not in ASK:
                continue
            keywords = answer_keywords(entry, faq, language)
            if not keywords:
                continue
            text = ASK[language]["about"].format(topics=ASK[language]["and"].join(keywords))
            folded = [fold_text(k) for k in keywords]
            shared = tuple(
                other.id for other in faq.entries
                if other.id != entry.id and all(k in _entry_text(other, language) for k in folded)
            )
            probes.append(FaqProbe(entry.id, language, "paraphrase", text, keywords, shared))
    return probes


def _entry_text(entry: FaqEntry, language: str) -> str:
    return fold_text(" ".join([*entry.questions_for(language), entry.answer_for(language)]))


def answer_keywords(entry: FaqEntry, faq: Faq, language: str, count: int = KEYWORDS) -> tuple[str, ...]:
    """The answer's most distinctive words that its own phrasings do not use, in answer order.

    Distinctive: in the fewest other answers of the FAQ, so a question built from them can
    only mean this entry — unless the shop's data says otherwise, which is what the check is
    for. Chinese has no spaces, so there the units are the answer's short clauses, scored by
    their character pairs.
    """
    answer = entry.answer[language]
    others = [e.answer_for(language) for e in faq.entries if e.id != entry.id]
    asked = " ".join(entry.questions.get(language, []))
    if CJK.search(answer):
        return _clause_keywords(answer, others, asked, count)
    return _word_keywords(answer, others, asked, language, count)


def _stem(word: str) -> str:
    word = fold_text(word)
    for ending in ("ies", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)] + ("y" if ending == "ies" else "")
    return word


def _word_keywords(answer: str, others: list[str], asked: str, language: str, count: int) -> tuple[str, ...]:
    """The answer's rarest noun phrases: runs of content words after a determiner, a
    preposition or a number ("two spoons of *citric acid*", "in *hard-water areas*"), and
    runs of names ("*American Express*"). A word scores by how few other answers use it, and
    nothing when the entry's phrasings already do; a phrase by the sum of its words. Highest
    first, then earliest; single words when the answer has no such phrase."""
    stop = _stopwords(language)
    used = {_stem(w) for w in _LETTERS.findall(asked)}
    df: Counter[str] = Counter()
    for text in others:
        df.update({_stem(w) for w in _LETTERS.findall(text)})
    # Addresses are no topic ("hello@…"): blanked, so positions still match the answer.
    words = list(_LETTERS.finditer(_ADDRESS.sub(lambda m: " " * len(m.group(0)), answer)))
    texts = [m.group(0) for m in words]

    def gap(i: int) -> str:  # the text before word i
        return answer[words[i - 1].end() if i else 0 : words[i].start()]

    def content(i: int) -> bool:
        word = fold_text(texts[i])
        return len(word) >= 3 and word not in stop and word not in _PHRASE_STARTERS and not word.endswith("ly")

    def name(i: int) -> bool:
        return len(texts[i]) > 1 and texts[i][0].isupper() and not _opens_sentence(answer, words[i].start())

    def starts(i: int) -> bool:
        before = gap(i)
        if i == 0 or any(char.isdigit() for char in before) or before.rstrip()[-1:] in (".", "!", "?", ":", ";", "("):
            return True
        return before.strip() == "" and fold_text(texts[i - 1]) in _PHRASE_STARTERS

    def score(i: int) -> float:
        stem = _stem(texts[i])
        return 0.0 if stem in used else 1.0 / (1 + df[stem])

    def verb_like(i: int) -> bool:
        """Followed by a number, a determiner, a pronoun or a name: "delivery *takes* 1–3 days"."""
        if i + 1 >= len(words):
            return False
        after = gap(i + 1)
        return any(char.isdigit() for char in after) or (
            after.strip() == "" and (fold_text(texts[i + 1]) in _OBJECT_WORDS or name(i + 1))
        )

    phrases: list[tuple[float, int, int]] = []  # (-score, first, last)
    taken: set[int] = set()
    for i in range(len(words)):
        if i in taken or not content(i) or not (starts(i) or name(i)):
            continue
        last = i
        while (last + 1 < len(words) and last - i < 2 and gap(last + 1).strip() == "" and content(last + 1)
               and name(last + 1) == name(i) and not (verb_like(last + 1) and not name(i))):
            last += 1
        taken.update(range(i, last + 1))
        if last == i and not name(i) and (_opens_sentence(answer, words[i].start()) or len(texts[i]) < 4):
            continue  # a lone first word of a sentence is mostly an imperative or "Yes"; "new" says little
        total = sum(score(j) for j in range(i, last + 1))
        if total > 0:
            phrases.append((-total, i, last))
    if not phrases:  # no phrase: the rarest single words
        phrases = sorted((-score(i), i, i) for i in range(len(words)) if content(i) and score(i) > 0)
    best: list[tuple[int, int]] = []
    seen: set[tuple[str, ...]] = set()
    for _score, first, last in sorted(phrases):
        key = tuple(_stem(texts[j]) for j in range(first, last + 1))
        if key not in seen:  # "business day" and "business days" are one phrase
            seen.add(key)
            best.append((first, last))
        if len(best) == count:
            break
    return tuple(answer[words[a].start() : words[b].end()] for a, b in sorted(best))


def _opens_sentence(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return not before or before[-1] in ".!?:;"


def _bigrams(text: str) -> set[str]:
    chars = "".join(CJK.findall(text))
    return {chars[i : i + 2] for i in range(len(chars) - 1)}


def _clause_keywords(answer: str, others: list[str], asked: str, count: int) -> tuple[str, ...]:
    """Clauses whose character pairs the other answers use least; among equals the short ones
    (up to 8 characters a clause is usually one thing: "万事达卡", "原路退回"), then earliest."""
    used = _bigrams(asked)
    df: Counter[str] = Counter()
    for text in others:
        df.update(_bigrams(text))
    ranked: dict[str, tuple[float, int, int]] = {}
    for position, raw in enumerate(_CLAUSE_BREAK.split(answer)):
        clause = _CLAUSE_EDGE.sub("", raw)
        own = _bigrams(clause) - used
        size = len(clause.replace(" ", ""))
        if len(own) < 2 or size > 16 or clause in ranked:
            continue
        ranked[clause] = (sum(df[b] for b in own) / len(own), (size > 8) + (size > 12), position)
    best = sorted(ranked.items(), key=lambda item: item[1])[:count]
    return tuple(clause for clause, _rank in sorted(best, key=lambda item: item[1][2]))


def _stopwords(language: str) -> frozenset[str]:
    if language != "en":
        return frozenset()
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS) | _MODALS


# -- orders -------------------------------------------------------------------------------
def return_orders(orders: Sequence[Order], count: int = RETURN_ORDERS) -> list[Order]:
    """A few orders spread over the file (first, middle, last)."""
    if len(orders) <= count:
        return list(orders)
    step = (len(orders) - 1) / (count - 1)
    return [orders[round(i * step)] for i in range(count)]


_RUN = re.compile(r"[A-Za-z]+|\d+|[^A-Za-z\d]+")


def suggest_pattern(order_ids: Sequence[str]) -> str | None:
    """A regular expression for ``shop.order_id_pattern`` when every id has the same shape
    (letters, digits and separators in the same order), e.g. ``KX-\\d{5}``; else None."""
    runs = [_RUN.findall(order_id) for order_id in order_ids]
    if not runs or len({len(r) for r in runs}) != 1:
        return None
    pieces: list[str] = []
    for column in zip(*runs, strict=True):
        sizes = sorted({len(run) for run in column})
        count = f"{{{sizes[0]}}}" if len(sizes) == 1 else f"{{{sizes[0]},{sizes[-1]}}}"
        if all(run.isdigit() for run in column):
            pieces.append(rf"\d{count}")
        elif all(run.isalpha() for run in column):
            same = {run.upper() for run in column}
            pieces.append(same.pop() if len(same) == 1 else f"[A-Z]{count}")
        elif len(set(column)) == 1:
            pieces.append(re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", column[0]))
        else:
            return None
    return "".join(pieces)
