"""Rule-based entity extraction for English and Chinese, without a word segmenter.

Why rules and not a learnt tagger: the entities a shop bot acts on (order ids, ticket
numbers, e-mail, phone, quantities, sizes, colours) are closed sets or regular patterns,
and a wrong id is worse than none. Rules are exact, explainable and take microseconds. What
only a shop can know (its products, its order ids) is not found here: the shop's own finders
pass it in as ``known`` spans, and this extractor fills in the rest around them.

Matching works on the original text's offsets. English terms need ASCII word boundaries;
Chinese terms match anywhere, since Chinese has no spaces. When candidates overlap, e-mail
addresses win first (they contain id-like pieces), then the data's regex entities (order
ids and ticket numbers must never be read as a phone number or quantity), then the longest
match among the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from intents.base import Entity
from intents.nlu_data import NluData

BUILTIN_TYPES = frozenset({"email", "phone", "quantity"})
SHOP_ENTITY_TYPES = frozenset({"product", "order_id"})
"""Entities only the shop's own data can recognise (its catalog, its order ids): annotated in
the NLU data so training can put a placeholder there, but never learnt as lookup terms, so
the extractor knows no shop's nouns or id format."""

# Words that make a bare number a quantity ("2 pieces", "3 more"): units and containers that
# any trade sells by, never one shop's goods; words that are also common verbs or pronouns
# ("can", "one") only in the plural. A number before a product the shop found (a ``known``
# span) is a quantity too, whatever the product is called.
DEFAULT_ITEM_WORDS = frozenset(
    """item items piece pieces pc pcs unit units pair pairs set sets pack packs packet packets box
    boxes bottle bottles bag bags jar jars tube tubes roll rolls tin tins carton cartons cans bars
    copies more extra""".split()
)
# Words after a number that say it is not a quantity of goods ("2 days", "3 weeks ago").
_NOT_ITEMS = frozenset(
    """day days week weeks month months year years hour hours minute minutes min mins second seconds
    business working time times percent euro euros dollar dollars pound pounds usd eur gbp rmb yuan
    am pm""".split()
)
_EN_NUMBERS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_EN_NUMBERS.update({"a dozen": 12, "dozen": 12, "a couple of": 2})

_ZH_DIGITS = dict(zip("零〇一二两俩三四五六七八九", (0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
# Measure words used for goods; 个/只/份 are generic, hence the stop list below.
_ZH_MEASURES = "件个只双条套台顶副盒瓶包袋箱份支本把块张对部款"
_ZH_NOT_ITEMS = tuple(
    "问题 事情 事 月 星期 礼拜 小时 钟头 工作日 人 地址 订单 办法 意思".split()
    + "号码 电话 邮箱 消息 信息 短信 评论 快递 包裹 字 周 天".split()
)

_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_APOSTROPHES = frozenset("'’_")
# Around one-letter terms (sizes S/M/L) more characters glue the letter into a word:
# "T-shirt", "e-mail", "I'm", "A.B.".
_ONE_LETTER_LEFT = _ASCII_WORD | _APOSTROPHES | frozenset("-.@&")
_ONE_LETTER_RIGHT = _ASCII_WORD | _APOSTROPHES | frozenset("-@&")
_SIZE_WORD_BEFORE = re.compile(r"(?:size|sz)\s*[:=]?\s*$", re.IGNORECASE)

_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+"  # local part
    r"@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9\-])"  # domain
)
_PHONE_LEFT = r"(?<![A-Za-z0-9+\-#/.])"
_PHONE_RIGHT = r"(?![0-9A-Za-z])"
_PHONES = (
    # Chinese mobile: 11 digits starting 13–19, optionally +86 / 0086, in 3-4-4 groups.
    re.compile(_PHONE_LEFT + r"(?:(?:\+86|0086)[\s\-]?)?1[3-9]\d(?:[\s\-]?\d{4}){2}" + _PHONE_RIGHT),
    # International: +country code, then groups of digits.
    re.compile(_PHONE_LEFT + r"\+\d{1,3}(?:[\s.\-]?\(?\d{2,5}\)?){1,5}" + _PHONE_RIGHT),
    # North-American style (415) 555-2671 / 415-555-2671, Chinese landline 010-12345678.
    re.compile(_PHONE_LEFT + r"(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}" + _PHONE_RIGHT),
    re.compile(_PHONE_LEFT + r"0\d{2,3}-\d{7,8}" + _PHONE_RIGHT),
)
_EN_QTY = re.compile(
    r"(?<![A-Za-z0-9.,$€£¥#+\-/:])(?P<n>\d{1,4}|"
    + "|".join(sorted((re.escape(w) for w in _EN_NUMBERS), key=len, reverse=True))
    + r")(?=\s*[A-Za-z×])",
    re.IGNORECASE,
)
_EN_TOKEN = re.compile(r"\s*([A-Za-z][A-Za-z'’\-]*|×|\S)")
_ZH_QTY = re.compile(
    r"(?<![0-9A-Za-z第几零〇一二两俩三四五六七八九十百千])(?P<n>[0-9]{1,4}|[零〇一二两俩三四五六七八九十百千]{1,6})\s*(?P<m>["
    + _ZH_MEASURES
    + "])"
)
_QTY_LABEL = re.compile(r"(?:qty|quantity|数量)\s*[:：=]?\s*(?P<n>\d{1,4})(?![0-9])", re.IGNORECASE)


def fold_width(text: str) -> str:
    """Full-width ASCII (Ａ１０２３４, common in Chinese input methods) → ASCII, same length."""
    return text.translate(_FULLWIDTH)


def lower_same_length(text: str) -> str:
    """Lower-case without changing offsets (``"İ".lower()`` is two characters)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)


def parse_zh_number(text: str) -> int | None:
    """``"两"`` → 2, ``"十五"`` → 15, ``"一百二十"`` → 120, ``"12"`` → 12; None when not a number."""
    if text.isdigit():
        return int(text)
    total = 0
    current = 0
    previous_digit = False
    for ch in text:
        if ch in _ZH_DIGITS:
            current = current * 10 + _ZH_DIGITS[ch] if previous_digit else _ZH_DIGITS[ch]
            previous_digit = True
        elif ch in _ZH_UNITS:
            total += (current or 1) * _ZH_UNITS[ch]
            current = 0
            previous_digit = False
        else:
            return None
    value = total + current
    return value if value > 0 else None


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """What the extractor learns from NLU data; JSON-able so a saved model carries it."""

    regexes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lookups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)
    annotated: tuple[tuple[str, str, str], ...] = ()
    """(type, surface, value) of entities annotated in training examples."""

    @classmethod
    def from_nlu(cls, data: NluData) -> EntitySpec:
        """The data's entities, without the shop's: a ``regex: order_id`` or ``lookup: product``
        left in the data would teach one shop's format to every shop."""
        annotated = {
            (ent.type, ent.text, ent.value)
            for ex in data.examples
            for ent in ex.entities
            if ent.type not in BUILTIN_TYPES and ent.type not in SHOP_ENTITY_TYPES and ent.type not in data.regexes
        }
        return cls(
            regexes={name: patterns for name, patterns in data.regexes.items() if name not in SHOP_ENTITY_TYPES},
            lookups={name: values for name, values in data.lookups.items() if name not in SHOP_ENTITY_TYPES},
            synonyms=dict(data.synonyms),
            annotated=tuple(sorted(annotated)),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "regexes": self.regexes,
                "lookups": self.lookups,
                "synonyms": self.synonyms,
                "annotated": [list(item) for item in self.annotated],
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str) -> EntitySpec:
        tree = json.loads(raw)
        return cls(
            regexes={str(k): tuple(map(str, v)) for k, v in tree["regexes"].items()},
            lookups={str(k): tuple(map(str, v)) for k, v in tree["lookups"].items()},
            synonyms={str(k): str(v) for k, v in tree["synonyms"].items()},
            annotated=tuple((str(t), str(s), str(v)) for t, s, v in tree["annotated"]),
        )


@dataclass(frozen=True, slots=True)
class _Term:
    key: str
    type: str
    value: str
    rank: int
    plural: bool
    one_letter: bool
    left_bound: bool
    right_bound: bool


@dataclass(frozen=True, slots=True, order=True)
class _Candidate:
    start: int
    end: int
    tier: int
    rank: int
    type: str
    value: str


# Overlap resolution: a lower tier wins whatever its length; within a tier the longer span,
# then the lower rank.
_TIER_EMAIL, _TIER_REGEX, _TIER_REST = 0, 1, 2
_RANK_PHONE, _RANK_LOOKUP, _RANK_QUANTITY = 0, 1, 2


def _strip_anchors(pattern: str) -> str:
    """Drop ``^``/``$``/``\\b`` at the ends: ``\\b`` fails between 订单 and KX-20417."""
    changed = True
    while changed:
        changed = False
        for prefix in ("^", r"\b"):
            if pattern.startswith(prefix):
                pattern, changed = pattern[len(prefix) :], True
        for suffix in ("$", r"\b"):
            if pattern.endswith(suffix) and not pattern.endswith("\\" + suffix):
                pattern, changed = pattern[: -len(suffix)], True
    return pattern


class EntityExtractor:
    """Finds entities in one message; build once, call :meth:`extract` per message.

    It knows the NLU data's regexes, lookups, synonyms and annotated values (sizes, colours,
    refund or exchange), never a shop's products or order ids (:data:`SHOP_ENTITY_TYPES`).
    """

    def __init__(
        self,
        spec: EntitySpec | None = None,
        *,
        item_words: Iterable[str] = DEFAULT_ITEM_WORDS,
        max_chars: int = 2000,
    ) -> None:
        self.spec = spec or EntitySpec()
        self._max_chars = max_chars
        self._synonyms = {k.lower(): v for k, v in self.spec.synonyms.items()}
        self._regexes = [
            (
                name,
                re.compile(
                    r"(?<![A-Za-z0-9])(?:" + "|".join(_strip_anchors(p) for p in patterns) + r")(?![A-Za-z0-9])",
                    re.IGNORECASE,
                ),
            )
            for name, patterns in self.spec.regexes.items()
            if patterns
        ]
        self._index: dict[str, list[_Term]] = {}
        self._add_terms(self.spec)
        self._item_words = frozenset(w.lower() for w in item_words)

    @classmethod
    def from_nlu(cls, data: NluData, *, max_chars: int = 2000) -> EntityExtractor:
        return cls(EntitySpec.from_nlu(data), max_chars=max_chars)

    # -- building the term index -------------------------------------------------------
    def _add_terms(self, spec: EntitySpec) -> None:
        seen: set[str] = set()

        def add(surface: str, etype: str, value: str, rank: int = _RANK_LOOKUP) -> None:
            key = lower_same_length(fold_width(" ".join(surface.split())))
            if not key or key in seen:
                return  # the first source wins: lookup tables, then synonyms, then annotations
            seen.add(key)
            ascii_word = key[0] in _ASCII_WORD
            one_letter = len(key) == 1 and key.isascii() and key.isalpha()
            term = _Term(
                key=key,
                type=etype,
                value=value,
                rank=rank,
                plural=len(key) >= 3 and key.isascii() and key[-1].isalpha(),
                one_letter=one_letter,
                left_bound=ascii_word,
                right_bound=key[-1] in _ASCII_WORD,
            )
            self._index.setdefault(key[0], []).append(term)

        lookup_values: dict[str, str] = {}
        for etype, values in spec.lookups.items():
            for value in values:
                lookup_values.setdefault(value.lower(), etype)
                add(value, etype, self._synonyms.get(value.lower(), value))
        for surface, canonical in spec.synonyms.items():
            etype_or_none = lookup_values.get(canonical.lower())
            if etype_or_none is not None:
                add(surface, etype_or_none, canonical)
        for etype, surface, value in spec.annotated:
            add(surface, etype, self._synonyms.get(surface.lower(), value))
        for terms in self._index.values():
            terms.sort(key=lambda t: len(t.key), reverse=True)

    # -- extraction ----------------------------------------------------------------------
    def extract(self, text: str, known: Sequence[Entity] = ()) -> tuple[Entity, ...]:
        """Entities in ``text`` (only its first ``max_chars`` characters), in text order.

        ``known`` are the shop's entities already found in ``text``: a number just before a
        known product is a quantity ("2 wool scarves"). They are not returned; the caller
        merges them (:func:`intents.base.merge_entities`).
        """
        original = text[: self._max_chars]
        folded = fold_width(original)
        low = lower_same_length(folded)
        candidates: list[_Candidate] = []
        for match in _EMAIL.finditer(folded):
            address = match.group(0)
            local, _, domain = address.rpartition("@")
            candidates.append(
                _Candidate(match.start(), match.end(), _TIER_EMAIL, 0, "email", f"{local}@{domain.lower()}")
            )
        for name, pattern in self._regexes:
            for match in pattern.finditer(folded):
                if match.end() > match.start():
                    candidates.append(
                        _Candidate(match.start(), match.end(), _TIER_REGEX, 0, name, self._regex_value(match.group(0)))
                    )
        self._phones(folded, candidates)
        self._lookups(folded, low, candidates)
        products = frozenset(ent.start for ent in known if ent.type == "product")
        self._quantities(folded, low, candidates, products)
        chosen = self._resolve(candidates)
        return tuple(
            Entity(type=c.type, value=c.value, start=c.start, end=c.end, text=original[c.start : c.end]) for c in chosen
        )

    def _regex_value(self, surface: str) -> str:
        synonym = self._synonyms.get(surface.lower())
        if synonym is not None:
            return synonym
        # Ids are matched case-insensitively, so normalise them to one spelling.
        return surface.upper() if surface.isascii() else surface

    @staticmethod
    def _phones(folded: str, out: list[_Candidate]) -> None:
        for pattern in _PHONES:
            for match in pattern.finditer(folded):
                surface = match.group(0)
                digits = "".join(ch for ch in surface if ch.isdigit())
                if 7 <= len(digits) <= 15:
                    value = ("+" + digits) if surface.startswith("+") else digits
                    out.append(_Candidate(match.start(), match.end(), _TIER_REST, _RANK_PHONE, "phone", value))

    def _lookups(self, folded: str, low: str, out: list[_Candidate]) -> None:
        index = self._index
        if not index:
            return
        size = len(low)
        for i, ch in enumerate(low):
            terms = index.get(ch)
            if terms is None:
                continue
            for term in terms:
                if not low.startswith(term.key, i):
                    continue
                end = self._term_end(term, folded, low, i, size)
                if end is not None:
                    out.append(_Candidate(i, end, _TIER_REST, term.rank, term.type, term.value))
                    break

    @staticmethod
    def _term_end(term: _Term, folded: str, low: str, start: int, size: int) -> int | None:
        """Where a term found at ``start`` ends, honouring word boundaries; None if it may not match here."""
        if term.one_letter:
            if start > 0 and low[start - 1] in _ONE_LETTER_LEFT:
                return None
            end = start + 1
            if end < size and low[end] in _ONE_LETTER_RIGHT:
                return None
            # A lone lower-case "s"/"m" is usually typing ("i m fine"), unless it follows "size".
            if folded[start].islower() and not _SIZE_WORD_BEFORE.search(low, 0, start):
                nxt = low[end : end + 1]
                if nxt not in ("码", "号"):
                    return None
            return end
        if term.left_bound and start > 0 and (low[start - 1] in _ASCII_WORD or low[start - 1] in _APOSTROPHES):
            return None
        end = start + len(term.key)
        ends = []
        if term.plural:
            if low.startswith("es", end):
                ends.append(end + 2)
            if low.startswith("s", end):
                ends.append(end + 1)
        ends.append(end)
        for candidate in ends:
            if (
                not term.right_bound
                or candidate >= size
                or (low[candidate] not in _ASCII_WORD and low[candidate] != "_")
            ):
                return candidate
        return None

    def _quantities(self, folded: str, low: str, out: list[_Candidate], products: frozenset[int]) -> None:
        for match in _EN_QTY.finditer(folded):
            number = match.group("n").lower()
            if not number.isdigit() and folded[match.end() : match.end() + 1].isalpha():
                continue  # "tens", "ones": a number word must stand alone
            value = int(number) if number.isdigit() else _EN_NUMBERS.get(" ".join(number.split()))
            if value is None or value <= 0 or not self._item_follows(low, match.end(), products):
                continue
            out.append(_Candidate(match.start(), match.end(), _TIER_REST, _RANK_QUANTITY, "quantity", str(value)))
        for match in _ZH_QTY.finditer(folded):
            if folded.startswith(_ZH_NOT_ITEMS, match.end()):
                continue
            zh_value = parse_zh_number(match.group("n"))
            if zh_value is not None:
                out.append(
                    _Candidate(match.start(), match.end(), _TIER_REST, _RANK_QUANTITY, "quantity", str(zh_value))
                )
        for match in _QTY_LABEL.finditer(folded):
            n = int(match.group("n"))
            if n > 0:
                out.append(_Candidate(match.start("n"), match.end("n"), _TIER_REST, _RANK_QUANTITY, "quantity", str(n)))

    def _item_follows(self, low: str, position: int, products: frozenset[int]) -> bool:
        """Whether goods are named within the next few words ("2 black XL pieces", "2 ⟨product⟩")."""
        words = 0
        for match in _EN_TOKEN.finditer(low, position, min(len(low), position + 60)):
            if match.start(1) in products:
                return True
            token = match.group(1)
            if token in ("x", "×"):
                continue
            if not token[0].isalpha():
                return False
            if token in _NOT_ITEMS:
                return False
            if token in ("them", "these", "those") or self._is_item(token):
                return True
            words += 1
            if words >= 4:
                return False
        return False

    def _is_item(self, token: str) -> bool:
        items = self._item_words
        if token in items:
            return True
        if token.endswith("es") and token[:-2] in items:
            return True
        return token.endswith("s") and token[:-1] in items

    @staticmethod
    def _resolve(candidates: Sequence[_Candidate]) -> list[_Candidate]:
        ordered = sorted(candidates, key=lambda c: (c.tier, -(c.end - c.start), c.rank, c.start))
        chosen: list[_Candidate] = []
        for cand in ordered:
            if all(cand.end <= kept.start or cand.start >= kept.end for kept in chosen):
                chosen.append(cand)
        chosen.sort()
        return chosen
