"""Products as customers name them: partial names, plurals, typos, skus, Chinese without spaces.

Customers rarely type a catalog name. They write "the wool scarf" for "Alpine Wool Scarf",
"trail shoes", "scarves", "alpine scraf", "rt220", "羊毛围巾" inside a sentence. Matching the
whole message against whole names with a fuzzy ratio finds those, and as readily finds
"Alpine" in "do you ship to the Alps" or a "delivery" bag in "how long is delivery". So the
matcher works on the words a name is made of:

1. **Terms.** A name or alias is cut into terms: Latin words (case- and width-folded) and,
   for Chinese/Japanese/Korean, character bigrams, so "羊毛围巾" is found inside
   "阿尔卑斯羊毛围巾" and inside a sentence without spaces. Connecting words ("for", "with")
   are not terms. Each term is weighted by its inverse document frequency over the catalog's
   products: a word every product has ("Nova") says little, one only one product has says
   a lot.
2. **Lookup.** A message word is a term when it is one, a plural or singular of one, or two
   words written as one ("head lamp"/"headlamp", "rt 220"). Otherwise a word of five letters
   or more that is no English word (pyspellchecker's list: "charge" is no typo of "charger")
   may be a typo of a term with the same first letter: rapidfuzz's optimal string alignment
   distance allows one edit (two from eight letters), a transposition counting as one
   ("scraf" → "scarf"). The sku is matched on its letters and digits ("RT-220", "rt220").
3. **Mentions.** Adjacent matched words form a mention as long as some product has all of
   them ("trail shoes": only "Ridge Trail Running Shoes"); a word no such product shares
   starts the next mention ("wool scarf and trail shoes" are two).
4. **What carries a product.** A modifier alone is no mention: a product is a candidate only
   when the mention has its head noun (the last word of a name or alias before any "for …",
   for Chinese a bigram of its last three characters: 围巾, 精华/华液), a model code with
   digits ("X2", "65W"), or at least two of its words covering half its weight ("halo mini").
   "Alps", "city", "running", "wool", "阿尔卑斯", "保湿" alone find nothing.
   A Chinese name's last character is a term of its own, its head character (桌 of 餐桌 and
   咖啡桌, 鞋 of 鞋子): "奥斯陆橡木桌", "奥斯陆橡木的桌子" and "桌子" fit every table and none
   tells them apart, so the bot asks which, as for "oak table". Customers add 子/儿 to a
   head character (桌子, 杯子, 椅子); alone, a head character is no mention ("发" of 沙发 in
   "发货"): it needs other words of the name before it, or that suffix.
5. **Ranking.** Each candidate scores the share of the mention it explains (typos count at
   their rapidfuzz similarity), times how little of its own name the customer left out —
   counting only the words that tell it apart from the other candidates — times a small
   bonus for coverage. An exact name, alias or sku scores 1 and wins alone. Candidates close
   to the best are all kept: the mention is ``ambiguous`` and the bot asks which one
   ("running shoes": City or Ridge Trail). Below ``min_confidence`` there is no mention.

The index is built once per catalog (:class:`~knowledge.bundle.ShopKnowledge.build`, off the
event loop); a lookup is dictionary hits plus a rapidfuzz scan of the few long unknown words
against the terms sharing their first letter: ``bench/products.py`` measures it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

from intents.base import Entity
from knowledge.shop import Catalog, Product, fold_text, normalise_language

# Scripts written without spaces (Han, kana, hangul): matched by character bigrams.
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# One CJK character, or a run of other letters/digits: the tokens of names and messages.
_TOKEN = re.compile(f"([{_CJK_RANGES}])|([^\\W_{_CJK_RANGES}]+)")
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
# What may stand between two words of one mention besides at most one other word.
_JOINING = re.compile(r"[\s\-'’&/+·・()（）\[\]]*")
# Where a name's main part ends: "Wool Scarf - Grey", "Sheet Mask (10 pack)", "面膜（10片装）".
_SEGMENT = re.compile(r"\s[-–—|/]\s|[,(\[（【]")
# Words that join the parts of a name ("Charging Case for X2", "Bag of Holding"): never
# terms, and the head noun comes before them. Name grammar of the languages shops write
# names in, not any shop's vocabulary.
CONNECTORS = frozenset(
    "a an and by for from in of on the to with & + "
    "für mit und von der die das "
    "de des du et la le les pour avec "
    "con del el para y per di e "
    "met van voor".split()
)

SKU_SEPARATORS = frozenset("-_ /.#")
SKU_MAX_TOKENS = 3  # "ab-12-x" is three words
FUZZY_MIN_LENGTH = 5  # shorter words must be spelt right: "shop" is not "shoe"
LONE_FUZZY_MIN_LENGTH = 6  # a mention that is only a misspelt word needs a longer one ("order" ≠ "folder")
# Suffixes Chinese adds to a one-character noun without changing it: 桌子 is 桌, 盒儿 is 盒.
NOUN_SUFFIXES = frozenset("子儿")


@functools.cache
def common_words() -> frozenset[str]:
    """English words (five letters or more, seen at least 100 times in pyspellchecker's
    subtitle-based frequency list): never taken for a misspelt product word, so "charge",
    "stock" and "packet" stay themselves instead of becoming "charger", "socks" and "jacket".
    Loaded once per process (about 0.2 s, 4 MB), when the first catalog is indexed."""
    from spellchecker import SpellChecker

    frequency = SpellChecker(language="en", distance=1).word_frequency
    return frozenset(
        word for word, count in frequency.items() if count >= 100 and len(word) >= FUZZY_MIN_LENGTH and word.isalpha()
    )


def _max_edits(length: int) -> int:
    return 1 if length < 8 else 2


def _is_cjk(text: str) -> bool:
    return _CJK_CHAR.match(text) is not None


def _is_code(term: str) -> bool:
    """A model code: letters and digits in one word ("x2", "65w", "spf50")."""
    return any(c.isdigit() for c in term) and any(c.isalpha() for c in term)


def _word_forms(word: str) -> set[str]:
    """The word with English plural and singular endings swapped, so "scarves" finds "scarf"
    and "shoe" finds "shoes". Over-generation ("shoes" → "sho") is harmless: nobody types it."""
    forms = {word}
    if len(word) < 3 or not word.isalpha():
        return forms
    forms |= {word + "s", word + "es"}
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        forms.add(word[:-1] + "ies")
    if word.endswith("f"):
        forms.add(word[:-1] + "ves")
    if word.endswith("fe"):
        forms.add(word[:-2] + "ves")
    if word.endswith("ies") and len(word) > 4:
        forms.add(word[:-3] + "y")
    if word.endswith("ves") and len(word) > 4:
        forms |= {word[:-3] + "f", word[:-3] + "fe"}
    if word.endswith("es") and len(word) > 3:
        forms.add(word[:-2])
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        forms.add(word[:-1])
    return forms


@dataclass(frozen=True, slots=True)
class ProductMention:
    """Where a message names a product, and which products it may mean, best first.

    ``start``/``end`` index the original message; ``candidates`` pairs each product with a
    confidence in 0–1 and holds only the products close to the best: more than one means
    the customer must say which (:attr:`ambiguous`).
    """

    start: int
    end: int
    text: str
    candidates: tuple[tuple[Product, float], ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    @property
    def best(self) -> Product:
        return self.candidates[0][0]

    @property
    def confidence(self) -> float:
        return self.candidates[0][1]


# --- the index -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Form:
    """One name or alias of a product, as terms."""

    terms: frozenset[str]
    weight: float
    language: str


@dataclass(slots=True)
class _Entry:
    """Everything the matcher knows about one product."""

    product: Product
    forms: list[_Form] = field(default_factory=list)
    terms: set[str] = field(default_factory=set)
    heads: set[str] = field(default_factory=set)
    head_chars: set[str] = field(default_factory=set)  # its names' head characters (桌 of 餐桌)


@dataclass(frozen=True, slots=True)
class _Fit:
    """How well one candidate product fits one mention."""

    index: int
    matched: dict[str, float]  # its terms the mention has → similarity (below 1 for a typo)
    form: _Form  # its name or alias the mention covers best
    coverage: float  # share of that form's weight the mention has
    complete: bool  # the mention has every word of that form and no other
    carrier: bool  # the mention has its head noun or a model code
    quality: float  # 0–1: share of the mention it explains, a little more for more coverage; 1 = exact


@dataclass(frozen=True, slots=True)
class _Piece:
    """A Latin word or a run of CJK characters in a name, and whether it touches the next."""

    text: str
    cjk: bool
    after: str  # what stands between it and the next piece ("\0" for the last)

    @property
    def joined_to_next(self) -> bool:  # one word with the next, written apart: "usb-c", "head lamp"
        return self.after in ("", " ", "-")

    @property
    def touches_next(self) -> bool:
        return self.after == ""


def _pieces(text: str) -> list[_Piece]:
    matches = list(_TOKEN.finditer(text))
    pieces: list[_Piece] = []
    run_start = -1
    for i, match in enumerate(matches):
        nxt = matches[i + 1] if i + 1 < len(matches) else None
        between = text[match.end() : nxt.start()] if nxt is not None else "\0"
        if match.group(1) is not None:  # CJK: one piece per run of characters
            if run_start < 0:
                run_start = match.start()
            if nxt is not None and nxt.group(1) is not None and between == "":
                continue
            pieces.append(_Piece(text[run_start : match.end()], True, between))
            run_start = -1
        else:
            pieces.append(_Piece(match.group(2), False, between))
    return pieces


def _bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)] if len(run) > 1 else [run]


def _piece_terms(pieces: Sequence[_Piece]) -> list[str]:
    terms: list[str] = []
    for i, piece in enumerate(pieces):
        if piece.cjk:
            terms.extend(_bigrams(piece.text))
        elif piece.text in CONNECTORS:
            continue
        elif len(piece.text) > 1:
            terms.append(piece.text)
        else:
            # A lone letter is a term only where it is part of a mixed word: "T恤", "维C".
            before = pieces[i - 1] if i > 0 else None
            after = pieces[i + 1] if i + 1 < len(pieces) else None
            if (before is not None and before.cjk and before.touches_next) or (
                after is not None and after.cjk and piece.touches_next
            ):
                terms.append(piece.text)
    return terms


def _head_terms(pieces: Sequence[_Piece]) -> tuple[list[str], list[str]]:
    """The head noun of a name: its last word (before any connector) that is no number or code.

    Returns the terms that are the head for sure and those that may be. Without a word
    segmenter the end of a Chinese name is the best guide: its last bigram is part of the
    head noun (巾 of 围巾, 液 of 精华液), the one before may be too (精华 of 精华液) or be a
    modifier (羊毛 of 羊毛袜); the caller decides from the rest of the catalog.
    """
    main = list(pieces)
    for i, piece in enumerate(main):
        if i > 0 and not piece.cjk and piece.text in CONNECTORS:
            main = main[:i]
            break
    for i in range(len(main) - 1, -1, -1):
        piece = main[i]
        if any(c.isdigit() for c in piece.text) or (not piece.cjk and len(piece.text) < 2):
            continue
        if i > 0 and main[i - 1].text.isdigit() and main[i - 1].after == "-":
            continue  # a count, not the product: "Crew Socks 3-Pack", "2-in-1"
        if not piece.cjk:
            return [piece.text], []
        tail = _bigrams(piece.text[-3:])
        return tail[-1:], tail[:-1]
    return [], []


def head_char(pieces: Sequence[_Piece]) -> str | None:
    """The head character of a name whose head noun is Chinese: its last character, or the one
    before a 子/儿 suffix (鞋 of 鞋子); None for a Latin head or a one-character name."""
    heads, maybe = _head_terms(pieces)
    if not heads or not _is_cjk(heads[0]):
        return None
    ending = "".join(t[0] for t in maybe) + heads[0]
    if len(ending) < 2:
        return None
    return ending[-2] if ending[-1] in NOUN_SUFFIXES else ending[-1]


class ProductMatcher:
    """Finds the catalog's products in a message (see the module docstring for how).

    Build once per catalog; :meth:`mentions` and :meth:`entities` are then cheap and
    thread-safe (the index is never changed after ``__init__``).
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        min_confidence: float = 0.5,
        margin: float = 0.3,
        max_candidates: int = 5,
        max_chars: int = 2000,
        known_words: Set[str] | None = None,
    ) -> None:
        """Index ``catalog``.

        ``min_confidence``: a mention whose best candidate scores less is dropped.
        ``margin``: candidates scoring more than this below the best are dropped; those kept
        make the mention ambiguous. ``max_candidates``: at most this many are kept (the
        buttons a customer chooses from). ``max_chars``: only the start of a long message
        is read, as the classifier reads it. ``known_words``: correctly spelt words, never
        corrected to a product word (default: :func:`common_words`).
        """
        self.catalog = catalog
        self.min_confidence = min_confidence
        self.margin = margin
        self.max_candidates = max_candidates
        self.max_chars = max_chars
        self._known_words = common_words() if known_words is None else known_words

        self._entries: list[_Entry] = []
        compounds: dict[str, set[str]] = {}
        maybe_heads: list[tuple[_Entry, list[str]]] = []
        modifiers: set[str] = set()  # terms some name uses before its head noun
        regular: set[str] = set()  # terms from the words of names (not only a head character)
        head_chars: set[str] = set()
        for product in catalog.products:
            entry = _Entry(product)
            forms = [(lang, name) for lang, name in product.name.items()]
            forms += [(lang, alias) for lang, aliases in product.aliases.items() for alias in aliases]
            for lang, text in forms:
                folded = fold_text(text)
                pieces = _pieces(folded)
                main = _pieces(_SEGMENT.split(folded, maxsplit=1)[0])
                heads, maybe = _head_terms(main)
                entry.heads.update(heads)
                maybe_heads.append((entry, maybe))
                words = frozenset(_piece_terms(pieces))
                regular |= words
                modifiers |= words.difference(heads, maybe)
                terms = words
                char = head_char(main)
                if char is not None:  # a pointer to the head noun, no extra weight: not a word of the form
                    entry.heads.add(char)
                    entry.terms.add(char)
                    entry.head_chars.add(char)
                    head_chars.add(char)
                if not terms:
                    continue
                entry.forms.append(_Form(terms, 0.0, lang))
                entry.terms |= terms
                for left, right in zip(pieces, pieces[1:], strict=False):
                    if not left.cjk and not right.cjk and left.joined_to_next:
                        parts = {part for part in (left.text, right.text) if part in terms}
                        if parts:
                            compounds.setdefault(left.text + right.text, set()).update(parts)
            self._entries.append(entry)
        # "精华" is the head of "精华液" unless another name uses it as a modifier, as "羊毛"
        # is in "羊毛围巾" (so "羊毛袜" is found by "毛袜", and "羊毛" alone names nothing).
        for entry, maybe in maybe_heads:
            entry.heads.update(term for term in maybe if term not in modifiers)
        # Characters that are terms only as the head of a name: 发 of 沙发 is no mention alone.
        self._head_chars = frozenset(head_chars - regular)

        # Which products have a term, and what the term is worth (idf over products).
        products_of: dict[str, set[int]] = {}
        for index, entry in enumerate(self._entries):
            for term in entry.terms:
                products_of.setdefault(term, set()).add(index)
        count = len(self._entries)
        self._products_of = {term: frozenset(owners) for term, owners in products_of.items()}
        self._idf = {term: math.log(1.0 + count / len(owners)) for term, owners in products_of.items()}
        for entry in self._entries:
            entry.forms = [
                _Form(form.terms, sum(self._idf[t] for t in form.terms), form.language) for form in entry.forms
            ]

        # Message word → the terms it stands for.
        lookup: dict[str, set[str]] = {}
        for term in self._products_of:
            for variant in _word_forms(term) if not _is_cjk(term) else {term}:
                lookup.setdefault(variant, set()).add(term)
        self._lookup = {key: frozenset(terms) for key, terms in lookup.items()}
        # Two words of a name written as one ("headlamp" for "head lamp", "usbc"): all their terms.
        self._compounds = {
            variant: tuple(sorted(parts))
            for joined, parts in compounds.items()
            for variant in _word_forms(joined)
            if variant not in self._lookup
        }
        # Typo candidates by first letter: only words long enough to be corrected.
        fuzzy: dict[str, list[str]] = {}
        for key in [*self._lookup, *self._compounds]:
            if key.isalpha() and not _is_cjk(key) and len(key) >= FUZZY_MIN_LENGTH:
                fuzzy.setdefault(key[0], []).append(key)
        self._fuzzy = fuzzy

        skus: dict[str, int] = {}
        for index, entry in enumerate(self._entries):
            compact = "".join(ch for ch in fold_text(entry.product.sku) if ch.isalnum())
            if len(compact) >= 4 or (len(compact) >= 3 and any(ch.isdigit() for ch in compact)):
                skus[compact] = index
        self._skus = skus

    # --- public API -------------------------------------------------------------------

    def mentions(self, text: str, language: str | None = None) -> list[ProductMention]:
        """Every product mention in ``text``, in text order, each with its ranked candidates."""
        text = text[: self.max_chars]
        tokens = _message_tokens(text)
        found: list[ProductMention] = []
        used = self._sku_mentions(text, tokens, found)
        units = self._units(text, tokens, used)
        lang = normalise_language(language) if language else None
        for span in self._spans(text, tokens, units):
            mention = self._score(text, span, lang)
            if mention is not None:
                found.append(mention)
        return sorted(found, key=lambda m: m.start)

    def entities(self, text: str, language: str | None = None) -> list[Entity]:
        """The mentions as ``product`` entities: the best candidate's sku at the mention's span."""
        return [
            Entity("product", m.best.sku, m.start, m.end, m.text, confidence=round(m.confidence, 4))
            for m in self.mentions(text, language)
        ]

    # --- steps ------------------------------------------------------------------------

    def _sku_mentions(self, text: str, tokens: Sequence[_Token], found: list[ProductMention]) -> set[int]:
        """Skus however written ("RT-220", "rt220", "rt 220"); returns the tokens they use."""
        used: set[int] = set()
        if not self._skus:
            return used
        i = 0
        while i < len(tokens):
            hit = None
            compact = ""
            for j in range(i, min(i + SKU_MAX_TOKENS, len(tokens))):
                if tokens[j].cjk or (j > i and not _sku_gap(fold_text(text[tokens[j - 1].end : tokens[j].start]))):
                    break
                compact += tokens[j].key
                if compact in self._skus:
                    hit = (j, self._skus[compact])
            if hit is None:
                i += 1
                continue
            last, index = hit
            start, end = tokens[i].start, tokens[last].end
            found.append(ProductMention(start, end, text[start:end], ((self._entries[index].product, 1.0),)))
            used.update(range(i, last + 1))
            i = last + 1
        return used

    def _units(self, text: str, tokens: Sequence[_Token], used: set[int]) -> list[_Unit]:
        """Matched pieces of the message: a word, two words written as one, or a CJK bigram."""
        units: list[_Unit] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if i in used:
                i += 1
                continue
            if token.cjk:
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                touching = nxt if nxt is not None and nxt.cjk and nxt.start == token.end and i + 1 not in used else None
                pair = self._lookup.get(token.key + touching.key) if touching is not None else None
                if touching is not None and pair:
                    units.append(self._unit(token.start, touching.end, i, i + 1, dict.fromkeys(pair, 1.0), False))
                terms = self._lookup.get(token.key)
                if terms and not terms <= self._head_chars:  # a single-character term ("T恤", "维C")
                    units.append(self._unit(token.start, token.end, i, i, dict.fromkeys(terms, 1.0), False))
                elif terms and not pair:  # a head character, not inside a word of a name (水 of 补水面膜)
                    if touching is not None and touching.key in NOUN_SUFFIXES:  # 桌子
                        units.append(self._unit(token.start, touching.end, i, i + 1, dict.fromkeys(terms, 1.0), False))
                    else:
                        units.append(self._unit(token.start, token.end, i, i, dict.fromkeys(terms, 1.0), False, True))
                i += 1
                continue
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if (
                nxt is not None
                and not nxt.cjk
                and i + 1 not in used
                and text[token.end : nxt.start] in (" ", "-")
                and not (token.key in self._lookup and nxt.key in self._lookup)
                and self._add_word(units, token.key + nxt.key, token.start, nxt.end, i, i + 1)
            ):
                i += 2
                continue
            if self._add_word(units, token.key, token.start, token.end, i, i):
                pass
            elif len(token.key) >= FUZZY_MIN_LENGTH and token.key.isalpha() and token.key not in self._known_words:
                corrected = self._correct(token.key)
                if corrected:
                    units.append(self._unit(token.start, token.end, i, i, corrected, True))
            i += 1
        units.sort(key=lambda u: (u.start, u.end))
        return units

    def _add_word(self, units: list[_Unit], key: str, start: int, end: int, first: int, last: int) -> bool:
        """A unit for a word that is a term (or a plural of one), or one per part of a compound."""
        terms = self._lookup.get(key)
        if terms:
            units.append(self._unit(start, end, first, last, dict.fromkeys(terms, 1.0), False))
            return True
        parts = self._compounds.get(key)
        if parts:
            units.extend(self._unit(start, end, first, last, {part: 1.0}, False) for part in parts)
            return True
        return False

    def _correct(self, word: str) -> dict[str, float]:
        """Terms ``word`` may be a typo of, with rapidfuzz's OSA similarity (closest only)."""
        choices = self._fuzzy.get(word[0])
        if not choices:
            return {}
        edits = _max_edits(len(word))
        hits = process.extract(word, choices, scorer=OSA.distance, score_cutoff=edits, limit=None)
        if not hits:
            return {}
        closest = min(distance for _, distance, _ in hits)
        corrected: dict[str, float] = {}
        for key, distance, _ in hits:
            if distance != closest:
                continue
            similarity = OSA.normalized_similarity(word, key)
            for term in self._lookup.get(key) or self._compounds[key]:
                corrected[term] = max(corrected.get(term, 0.0), similarity)
        return corrected

    def _unit(
        self, start: int, end: int, first: int, last: int, terms: dict[str, float], fuzzy: bool, bare: bool = False
    ) -> _Unit:
        owners: set[int] = set()
        for term in terms:
            owners |= self._products_of[term]
        weight = max(self._idf[t] for t in terms)
        return _Unit(start, end, first, last, terms, frozenset(owners), weight, fuzzy, bare)

    def _spans(self, text: str, tokens: Sequence[_Token], units: Sequence[_Unit]) -> Iterable[list[_Unit]]:
        """Adjacent units that some product has all of; a unit no such product shares starts
        the next span, taking along the end of the current one that fits it ("围巾和羊毛袜")."""
        current: list[_Unit] = []
        shared: frozenset[int] = frozenset()
        for unit in units:
            if unit.fuzzy and current and all(any(t in u.terms for u in current) for t in unit.terms):
                continue  # a near-miss of a word already there ("socks in stock") adds nothing
            adjacent = bool(current) and _adjacent(text, current[-1], unit)
            if unit.bare and (not adjacent or self._is_head(current[-1], shared)):
                continue  # a head character follows the other words of its name, not its head (沙发发货)
            if adjacent:
                together = shared & unit.owners
                if together:
                    current.append(unit)
                    shared = together
                    continue
                if unit.bare:  # a head character of another name ends nothing: 沙发套 is still 沙发
                    continue
                # Keep the longest tail of the current span that still fits with this unit.
                tail: list[_Unit] = []
                tail_shared = unit.owners
                for previous in reversed(current):
                    narrowed = tail_shared & previous.owners
                    if not narrowed:
                        break
                    tail.insert(0, previous)
                    tail_shared = narrowed
                head = current[: len(current) - len(tail)]
                if head:
                    yield head
                current, shared = [*tail, unit], tail_shared
                continue
            if current:
                yield current
            current, shared = [unit], unit.owners
        if current:
            yield current

    def _is_head(self, unit: _Unit, owners: Iterable[int]) -> bool:
        return any(term in self._entries[index].heads for index in owners for term in unit.terms)

    def _score(self, text: str, span: Sequence[_Unit], language: str | None) -> ProductMention | None:
        if all(u.fuzzy for u in span) and sum(u.end - u.start for u in span) < LONE_FUZZY_MIN_LENGTH:
            return None
        while span and span[0].bare:  # 发 of 发货 is not 沙发; "衣和卫衣" starts at 卫衣
            span = span[1:]
        if not span:
            return None
        owners = span[0].owners
        for unit in span[1:]:
            owners &= unit.owners
        fits = [fit for index in sorted(owners) if (fit := self._fit(span, index, language)) is not None]
        # The strongest kind of fit decides who stays: a whole name or alias (typos allowed)
        # over a partial one, a partial one with the head noun or a code over one without.
        if any(fit.complete for fit in fits):
            fits = [fit for fit in fits if fit.complete]
        if any(fit.carrier for fit in fits):
            fits = [fit for fit in fits if fit.carrier]
        if not fits or max(fit.quality for fit in fits) < self.min_confidence:
            return None

        candidates = frozenset(fit.index for fit in fits)
        ranked: list[tuple[float, _Fit]] = []
        for fit in fits:
            # A head character the customer wrote counts as found, though it is no word of the name.
            pointers = self._entries[fit.index].head_chars - fit.form.terms
            found = fit.coverage * fit.form.weight + sum(self._idf[t] for t in fit.matched if t in pointers)
            # Words of its name the customer left out count only where they tell this
            # candidate from the others: "x2 earbuds" fits the X2 better than the X2 Pro.
            missing = sum(
                self._idf[t] for t in fit.form.terms if t not in fit.matched and not candidates <= self._products_of[t]
            )
            ranked.append((fit.quality * (found / (found + missing)) ** 0.25, fit))
        ranked.sort(key=lambda r: (-r[0], r[1].form.language != language, r[1].index))
        top = ranked[0][0]
        # When every candidate fits by the very same words, the message holds nothing that tells
        # them apart ("耳机" of 无线耳机 and 降噪无线耳机): however much longer one name is, ask.
        alike = len({frozenset(fit.matched) for fit in fits}) == 1
        kept = [r for r in ranked if alike or r[0] >= top - self.margin][: self.max_candidates]
        # Confidence: how well the words fit, shared among the readings still open.
        total = sum(rank for rank, _ in kept)
        scored = sorted(
            ((fit.quality * rank / total, fit) for rank, fit in kept), key=lambda r: (-r[0], r[1].index)
        )
        start, end = span[0].start, max(u.end for u in span)
        return ProductMention(
            start,
            end,
            text[start:end],
            tuple((self._entries[fit.index].product, round(confidence, 4)) for confidence, fit in scored),
        )

    def _fit(self, span: Sequence[_Unit], index: int, language: str | None) -> _Fit | None:
        """How one product fits the span; None when the words cannot name it on their own."""
        entry = self._entries[index]
        matched: dict[str, float] = {}
        explained = 0.0
        for unit in span:
            best_term, best = "", 0.0
            for term, similarity in unit.terms.items():
                if term in entry.terms and similarity * self._idf[term] > best:
                    best_term, best = term, similarity * self._idf[term]
            explained += best
            matched[best_term] = max(matched.get(best_term, 0.0), unit.terms[best_term])
        best_form, coverage, complete = entry.forms[0], -1.0, False
        words = {t for t in matched if t not in entry.head_chars}
        for form in entry.forms:
            covered = sum(matched.get(t, 0.0) * self._idf[t] for t in form.terms) / form.weight
            whole = form.terms == words | (matched.keys() & form.terms)
            if (whole, covered, form.language == language) > (complete, coverage, best_form.language == language):
                best_form, coverage, complete = form, covered, whole
        carrier = any(term in entry.heads or _is_code(term) for term in matched)
        if not carrier and not (len(matched) >= 2 and coverage >= 0.5):
            return None
        precision = explained / sum(u.weight for u in span)
        exact = complete and all(similarity == 1.0 for similarity in matched.values())
        quality = 1.0 if exact else min(precision * (0.85 + 0.15 * coverage), 0.99)
        return _Fit(index, matched, best_form, coverage, complete, carrier, quality)


# --- message side --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    key: str
    cjk: bool


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    first: int  # token indices
    last: int
    terms: dict[str, float]  # term → similarity (1.0 unless a typo)
    owners: frozenset[int]
    weight: float
    fuzzy: bool
    bare: bool = False  # a head character alone, without 子/儿: a mention only after other words of a name


def _message_tokens(text: str) -> list[_Token]:
    """The message's words and CJK characters at their original offsets, each folded on its own
    (folding the whole text first would move offsets: "ß" → "ss", "ﬁ" → "fi")."""
    return [
        _Token(m.start(), m.end(), fold_text(m.group(0)), m.group(1) is not None) for m in _TOKEN.finditer(text)
    ]


def _sku_gap(between: str) -> bool:
    return len(between) <= 1 and all(ch in SKU_SEPARATORS for ch in between)


def _adjacent(text: str, before: _Unit, after: _Unit) -> bool:
    """Next to each other: overlapping bigrams, or at most one other word between, no punctuation."""
    if after.start <= before.end:
        return True
    if after.first - before.last - 1 > 1:
        return False
    between = text[before.end : after.start]
    return _JOINING.fullmatch(_TOKEN.sub("", between)) is not None
