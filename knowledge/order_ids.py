"""Order ids as the shop writes them, recognised however the customer types them.

Every shop numbers its orders its own way (``KX-20417``, ``100234``, ``DD20261123001``,
``ORD/2026/0042``) and every customer types them their own way (``kx 20417``, ``#100234``,
``订单号KX-20417``), so no single regex serves. The shop's imported ids say what its ids look
like: grouped by their letter/digit/separator signature, each large enough group becomes a
:class:`Shape` (the letters the group shares, such as a ``KX`` prefix, stay literal; digits
keep their count range), so an id that is not in the store yet (``KX-99999``) is still an
order id, spelled as the shop would spell it, and the bot can say it couldn't find it.
Irregular ids stay known one by one. Known ids live in a set of normalised keys (letters and
digits, upper-cased), so even 500,000 orders cost one hash lookup per candidate: nothing
compiles a regex of all ids.

Never an order id (unless the store has exactly that id): e-mail addresses, URLs, phone
numbers, prices, quantities, dates, times and the bot's own ticket numbers (``T-1001``). A
shape made only of digits is too common a sight to be trusted on its own: an unknown id of
that shape needs a cue ("order", "订单号", a leading ``#``) or a question that asked for it, and
so does a short known id (a small shop's order ``2`` or ``2019``: "2 shirts", "since 2019"),
unless the shop groups its digits with written separators into a long id (``2026-11-000402``):
no date, price or phone number looks like that. After a cue, the serial alone ("order no.
000402") stands for the one known id that ends in it.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from intents.base import Entity
from intents.entities import fold_width

ENTITY = "order_id"
MAX_SHAPES = 8
MIN_SHARE = 0.02
"""A signature shared by fewer of the shop's ids than this is irregular: those ids are known one by one."""
MAX_LITERALS = 8
MAX_ATOMS = 6
MIN_BARE = 4
MIN_BARE_DIGITS = 6
"""Known ids shorter than this (in letters/digits; in digits for digits-only ids) need a cue."""

MIN_TAIL_DIGITS = 3
"""A serial shorter than this ("order 7") never stands for a whole id."""
MIN_STRUCTURED_DIGITS = 8
"""A digits-only shape with two written separators is trusted without a cue from this many digits on."""

_TOKEN = re.compile(r"[A-Za-z]+|[0-9]+|[^A-Za-z0-9]+")
_ATOM = re.compile(r"[A-Za-z0-9]+")
_RUNS = re.compile(r"[A-Za-z]+|[0-9]+")
_NOT_KEY = re.compile(r"[\W_]+")
_GAP = re.compile(r"[\s\-_./\\:#·]{1,3}")
_MAX_SEPARATOR = 3

# What the customer writes right before an id when they mean an order ("order no.", "订单号：", "#").
_CUE_WORDS = (
    r"(?:\border(?:\s*(?:no|nr|number|num|id|code|ref(?:erence)?)\b\.?)?|"
    r"订单(?:号码?|编号)?|訂單(?:號碼?|編號)?|单号|單號)"
)
_CUE = _CUE_WORDS + r"\s*(?:is\s+|was\s+|=|是|为|為|:|：)?\s*#?|(?<![A-Za-z0-9])#"
_CUE_END = re.compile(r"(?:" + _CUE + r")\s*", re.I)
_ID_PATTERN = r"(?P<id>[A-Za-z0-9]+(?:[\-_./][A-Za-z0-9]+)*)"
_CUED_TOKEN = re.compile(r"(?:" + _CUE + r")\s*" + _ID_PATTERN, re.I)
_ANY_TOKEN = re.compile(r"(?<![A-Za-z0-9])" + _ID_PATTERN)

_PROTECTED = re.compile(
    "|".join(
        (
            r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*",  # e-mail
            r"(?:https?://|www\.)\S+",  # URL
            r"\+\d{1,3}(?:[\s.\-]?\(?\d{2,5}\)?){1,5}",  # international phone
            r"(?<![0-9])(?:(?:\+86|0086)[\s\-]?)?1[3-9]\d(?:[\s\-]?\d{4}){2}(?![0-9])",  # Chinese mobile
            r"(?<![A-Za-z0-9])(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}(?![A-Za-z0-9])",  # (415) 555-2671
            r"(?<![A-Za-z0-9])0\d{2,3}-\d{7,8}(?![A-Za-z0-9])",  # landline 010-12345678
            r"(?<![A-Za-z0-9])[Tt]-?\d{3,}(?![A-Za-z0-9])",  # the bot's ticket numbers
            r"(?<![A-Za-z0-9])\d{4}[\-/.年]\d{1,2}[\-/.月]\d{1,2}(?![0-9])日?",  # 2026-11-23, 2026年11月23
            r"(?<![A-Za-z0-9])\d{1,2}[\-/.]\d{1,2}[\-/.]\d{2,4}(?![A-Za-z0-9])",  # 23/11/2026
            r"\d{1,2}月\d{1,2}[日号號]?",
            r"(?<![0-9])\d{1,2}:\d{2}(?![0-9])",  # 10:30
            r"[$€£¥￥]\s?\d[\d,]*(?:\.\d+)?",  # €49.90
            r"(?<![A-Za-z0-9])\d[\d,]*\.\d{1,2}(?![0-9])",  # 49.90
            r"(?<![A-Za-z0-9])\d[\d,.]*\s?(?:eur|euros?|usd|dollars?|gbp|pounds?|rmb|cny|yuan|元|块|%|percent)"
            r"(?![A-Za-z])",
            r"(?<![A-Za-z0-9])\d+\s?(?:x|pcs|pieces?|units?|items?|pairs?|days?|weeks?|months?|years?|hours?|"
            r"minutes?|件|个|個|双|雙|条|條|套|只|天|周|小时|分钟)(?![A-Za-z])",
        )
    ),
    re.I,
)


def order_key(raw: str) -> str:
    """The comparable form of an id: its letters and digits, upper-cased (``#kx-20417`` → ``KX20417``)."""
    return _NOT_KEY.sub("", fold_width(raw)).upper()


# -- shapes ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Run:
    """One run of letters (``L``) or digits (``D``) in an id, e.g. ``KX`` or ``20417`` in ``KX-20417``."""

    kind: str
    min_len: int
    max_len: int
    literals: dict[str, str] = field(default_factory=dict)
    """Letters every id of the shape shares (upper-case → as the shop writes them), e.g. ``{"KX": "KX"}``."""
    upper: bool = True
    """How the shop writes letters that are not literal."""

    def pattern(self) -> str:
        if self.literals:
            return "(" + "|".join(re.escape(v) for v in sorted(self.literals, key=len, reverse=True)) + ")"
        chars = "A-Z" if self.kind == "L" else "0-9"
        return f"([{chars}]{{{self.min_len},{self.max_len}}})"

    def spell(self, value: str) -> str:
        if self.kind == "D":
            return value
        return self.literals.get(value) or (value if self.upper else value.lower())

    def describe(self) -> str:
        if self.literals:
            return "|".join(sorted(self.literals.values()))
        letter = "A" if self.kind == "L" else "9"
        span = str(self.min_len) if self.min_len == self.max_len else f"{self.min_len}-{self.max_len}"
        return letter * self.min_len if self.min_len == self.max_len else f"{letter}{{{span}}}"


class Shape:
    """The form of one group of the shop's ids: runs of letters/digits with the shop's separators."""

    def __init__(
        self, lead: str, runs: Sequence[Run], seps: Sequence[str], trail: str, count: int = 0, example: str = ""
    ) -> None:
        self.lead, self.runs, self.seps, self.trail = lead, tuple(runs), tuple(seps), trail
        self.count, self.example = count, example
        self._key = re.compile("".join(run.pattern() for run in self.runs))
        self._shortest = sum(min(map(len, r.literals), default=r.min_len) for r in self.runs)
        self._longest = sum(max(map(len, r.literals), default=r.max_len) for r in self.runs)
        literal_letters = sum(min(map(len, r.literals)) for r in self.runs if r.literals)
        letters = sum(r.min_len for r in self.runs if r.kind == "L")
        digits = sum(r.min_len for r in self.runs if r.kind == "D")
        # Trusted without a cue: a literal prefix or separator structure a stray word or number
        # would not have. Digits alone (``100234``) could be a postcode or an amount.
        lettered = digits >= 3 and (literal_letters >= 1 or letters >= 2)
        self.distinctive = lettered or self._structured(digits)
        self.written = self.distinctive and not lettered
        """Trusted by its separators alone: without a cue, only as the shop writes them (not ``2026 11 000998``)."""

    def __repr__(self) -> str:
        return f"Shape({self.describe()!r}, count={self.count})"

    def _structured(self, digits: int) -> bool:
        """Digits the shop always groups with two or more written separators into a long id
        (``2026-11-000402``): a stray number would not have that structure. Not when the
        groups read as a date (``2026-11-23``), an amount (``1,234,567``) or a phone number
        (spaces, or the 3-3-4 of ``415-555-2671``); the text's dates, prices and phones stay
        protected anyway."""
        seps = [sep for sep in self.seps if sep]
        if digits < MIN_STRUCTURED_DIGITS or len(seps) < 2 or any(c.isspace() for sep in seps for c in sep):
            return False
        highs = [run.max_len for run in self.runs]
        if all(sep in ",." for sep in seps) and all(high == 3 for high in highs[1:]):
            return False  # 1,234,567 or 1.234.567
        if len(highs) == 3 and ((highs[0] == 4 and max(highs[1:]) <= 2) or (highs[2] == 4 and max(highs[:2]) <= 2)):
            return False  # 2026-11-23, 23.11.2026
        return highs != [3, 3, 4]

    def describe(self) -> str:
        """A readable form, e.g. ``KX-99999`` or ``DD9{11}``."""
        parts = [self.lead]
        for i, run in enumerate(self.runs):
            parts.append(run.describe())
            if i < len(self.seps):
                parts.append(self.seps[i])
        return "".join(parts) + self.trail

    def render(self, key: str) -> str | None:
        """The shop's spelling of a normalised key that fits this shape, else None."""
        match = self._key.fullmatch(key)
        return self._spell(match) if match else None

    def fits_length(self, key: str) -> bool:
        return self._shortest <= len(key) <= self._longest

    def fit(self, atoms: Sequence[str], gaps: Sequence[str], *, strict: bool = True) -> str | None:
        """The shop's spelling when the customer's pieces (``kx``, ``20417``) form an id of this shape.

        The customer may leave out or change separators, but may only split the id where
        the shape has a boundary; with ``strict``, a space splits it only where the shop
        writes a separator or after a literal run (``kx 20417``), never between two runs
        of arbitrary letters and digits (``to 123456``).
        """
        key = "".join(atoms).upper()
        match = self._key.fullmatch(key)
        if match is None:
            return None
        ends = {match.end(i + 1): i for i in range(len(self.runs) - 1)}
        position = 0
        for atom, gap in zip(atoms, gaps, strict=False):
            position += len(atom)
            boundary = ends.get(position)
            if boundary is None:
                return None
            if strict and any(c.isspace() for c in gap) and not (self.seps[boundary] or self.runs[boundary].literals):
                return None
        return self._spell(match)

    def complete(self, atoms: Sequence[str], gaps: Sequence[str]) -> str | None:
        """The id with the shape's literal prefix the customer left out (``20417`` → ``KX-20417``)."""
        first = self.runs[0]
        if len(first.literals) != 1 or len(self.runs) < 2:
            return None
        return self.fit([next(iter(first.literals)), *atoms], ["", *gaps], strict=False)

    def _spell(self, match: re.Match[str]) -> str:
        parts = [self.lead]
        for i, run in enumerate(self.runs):
            parts.append(run.spell(match.group(i + 1)))
            if i < len(self.seps):
                parts.append(self.seps[i])
        return "".join(parts) + self.trail


Signature = tuple[str, tuple[str, ...], tuple[str, ...], str]


def _parse(spelling: str) -> tuple[Signature, list[str]] | None:
    """``KX-20417`` → ((lead, kinds, separators, trail), [run values]); None for an irregular id."""
    tokens = _TOKEN.findall(spelling)
    lead = tokens.pop(0) if tokens and not tokens[0][0].isalnum() else ""
    trail = tokens.pop() if tokens and not tokens[-1][0].isalnum() else ""
    if not tokens or len(lead) > _MAX_SEPARATOR or len(trail) > _MAX_SEPARATOR:
        return None
    kinds: list[str] = []
    seps: list[str] = []
    values: list[str] = []
    pending = ""
    for token in tokens:
        if token[0].isascii() and token[0].isalnum():
            if kinds:
                seps.append(pending)
            kinds.append("L" if token[0].isalpha() else "D")
            values.append(token)
            pending = ""
        else:
            if len(token) > _MAX_SEPARATOR or any(ch.isalnum() for ch in token):
                return None  # letters outside A-Z (一, é) or a long gap: irregular
            pending = token
    if len(kinds) > MAX_ATOMS:
        return None
    return (lead, tuple(kinds), tuple(seps), trail), values


class _Group:
    """What the ids of one signature have in common."""

    __slots__ = ("count", "example", "lengths", "lower", "spellings", "upper", "values")

    def __init__(self, runs: int) -> None:
        self.count = 0
        self.example = ""
        self.lengths = [[10**9, 0] for _ in range(runs)]
        self.values: list[Counter[str] | None] = [Counter() for _ in range(runs)]
        self.spellings: list[dict[str, str]] = [{} for _ in range(runs)]
        self.upper = [True] * runs
        self.lower = [True] * runs

    def add(self, example: str, values: list[str], count: int) -> None:
        self.count += count
        if not self.example or example < self.example:
            self.example = example
        for i, value in enumerate(values):
            span = self.lengths[i]
            span[0], span[1] = min(span[0], len(value)), max(span[1], len(value))
            if not value[0].isalpha():
                continue
            self.upper[i] = self.upper[i] and value.isupper()
            self.lower[i] = self.lower[i] and value.islower()
            seen = self.values[i]
            if seen is not None:
                seen[value.upper()] += count
                self.spellings[i].setdefault(value.upper(), value)
                if len(seen) > MAX_LITERALS:
                    self.values[i] = None  # too many different letters: a class, not literals

    def shape(self, signature: Signature) -> Shape:
        lead, kinds, seps, trail = signature
        runs = []
        for i, kind in enumerate(kinds):
            low, high = self.lengths[i]
            literals: dict[str, str] = {}
            seen = self.values[i]
            if kind == "L" and seen is not None and len(seen) <= max(1, self.count // 3):
                literals = {value: self.spellings[i][value] for value in seen}
            runs.append(Run(kind, low, high, literals, upper=self.upper[i] or not self.lower[i]))
        return Shape(lead, runs, seps, trail, self.count, self.example)


_FORM = str.maketrans(string.ascii_uppercase + string.ascii_lowercase + string.digits, "A" * 26 + "a" * 26 + "9" * 10)
_NO_DIGITS = str.maketrans("", "", string.digits)


def _form(spelling: str) -> tuple[str, str]:
    """``KX-20417`` → (``AA-99999``, ``KX-``): ids of one form differ only in their digits."""
    return spelling.translate(_FORM), spelling.translate(_NO_DIGITS)


class _Census:
    """The ids counted by form, so 500,000 ids of a few forms cost a few parses, not 500,000."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.forms: dict[tuple[str, str], list[Any]] = {}  # form -> [count, smallest id]
        for spelling in ids:
            entry = self.forms.get(form := _form(spelling))
            if entry is None:
                self.forms[form] = [1, spelling]
            else:
                entry[0] += 1
                if spelling < entry[1]:
                    entry[1] = spelling

    def shapes(self) -> list[Shape]:
        groups: dict[Signature, _Group] = {}
        total = 0
        for count, example in self.forms.values():
            parsed = _parse(example)
            if parsed is None:
                continue
            total += count
            signature, values = parsed
            group = groups.get(signature)
            if group is None:
                group = groups[signature] = _Group(len(values))
            group.add(example, values, count)
        ranked = sorted(groups.items(), key=lambda item: (-item[1].count, item[1].example))
        return [group.shape(sig) for sig, group in ranked[:MAX_SHAPES] if group.count >= max(1, MIN_SHARE * total)]


def infer_shapes(ids: Iterable[str]) -> list[Shape]:
    """The shapes of a collection of ids, most common first (ids of rare signatures left out)."""
    return _Census(spelling.strip() for spelling in ids if spelling.strip()).shapes()


# -- finding ids in text -------------------------------------------------------------------
class OrderIds:
    """Recognises the shop's order ids in messages and spells them as the shop does.

    ``known_ids``: every id in the store, as the shop writes them. ``pattern``: the shop's
    own regular expression for its ids (``shop.order_id_pattern``), matched case-insensitively,
    for when the imported ids do not show the format well enough (before the first import).
    Building reads every id twice (census, then keys): call it off the event loop.
    """

    def __init__(self, known_ids: Iterable[str] = (), pattern: str | None = None) -> None:
        ids = [spelling.strip() for spelling in known_ids if spelling and spelling.strip()]
        census = _Census(ids)
        self.shapes: tuple[Shape, ...] = tuple(census.shapes())
        self.pattern = re.compile(r"(?<![A-Za-z0-9])(?:" + pattern + r")(?![A-Za-z0-9])", re.I) if pattern else None
        # The shapes spell every id of a form alike (only digits differ): one check per form.
        regular = {form: self._render(order_key(example)) == example for form, (_, example) in census.forms.items()}
        self._keys: set[str] = set()
        self._spelled: dict[str, str] = {}  # ids the shapes do not spell back exactly
        # The last run of each regular form ("000402" of 2026-11-000402), when the runs before
        # it are not one literal prefix (those ids are completed by their shape).
        tail_of = {form: self._tail_length(example) if regular[form] else 0
                   for form, (_, example) in census.forms.items()}
        self._tails: dict[str, str | None] = {}  # serial -> the one known key ending in it, None when shared
        for spelling in ids:
            key = order_key(spelling)
            if not key or key in self._keys or key in self._spelled:
                continue
            form = _form(spelling)
            if regular[form]:
                self._keys.add(key)
                if tail := tail_of[form]:
                    serial = key[-tail:]
                    self._tails[serial] = key if serial not in self._tails else None
            else:
                self._spelled[key] = spelling
        runs = [len(shape.runs) for shape in self.shapes] + [len(_RUNS.findall(s)) for s in self._spelled.values()]
        self._window = min(MAX_ATOMS, max(runs, default=1)) + 1  # a customer may split one run ("100 234")
        self._example = self.shapes[0].example if self.shapes else min(self._spelled.values(), default=None)

    def __len__(self) -> int:
        return len(self._keys) + len(self._spelled)

    def __contains__(self, raw: object) -> bool:
        return isinstance(raw, str) and self.spelling(raw) is not None

    # -- spelling -----------------------------------------------------------------------
    def _render(self, key: str) -> str | None:
        for shape in self.shapes:
            spelled = shape.render(key)
            if spelled is not None:
                return spelled
        return None

    def spelling(self, raw: str) -> str | None:
        """The shop's spelling of an id in the store however it is typed; None when it is not in the store."""
        key = order_key(raw)
        if key in self._spelled:
            return self._spelled[key]
        return self._render(key) if key in self._keys else None

    def canonical(self, raw: str) -> str:
        """The shop's spelling of an id the customer typed: the stored id when known, else as
        the shop's shape would write it, else the customer's id upper-cased without spaces or ``#``."""
        cleaned = fold_width(raw).strip().lstrip("#").strip()
        known = self.spelling(cleaned)
        if known is not None:
            return known
        atoms = _ATOM.findall(cleaned)
        gaps = re.split(r"[A-Za-z0-9]+", cleaned)[1:-1]
        if atoms and "".join(atoms).upper() == order_key(cleaned):
            for shape in self.shapes:
                spelled = shape.fit(atoms, gaps, strict=False)
                if spelled is not None:
                    return spelled
            completed = self._complete(atoms, gaps)
            if completed is not None:
                return completed
        return re.sub(r"\s+", "", cleaned).upper()

    def _tail_length(self, example: str) -> int:
        """How long the serial of ids of this form is, when one may stand for the whole id."""
        runs = _RUNS.findall(example)
        shape = next((s for s in self.shapes if s.render(order_key(example)) == example), None)
        if shape is None or len(runs) < 2 or not runs[-1].isdigit() or len(runs[-1]) < MIN_TAIL_DIGITS:
            return 0
        return 0 if len(shape.runs[0].literals) == 1 and len(runs) == 2 else len(runs[-1])

    def _complete(self, atoms: Sequence[str], gaps: Sequence[str]) -> str | None:
        """A known id the customer gave part of: its literal prefix left out ("order 20417" for
        ``KX-20417``), or only its serial when exactly one known id ends in it ("order no. 000402"
        for ``2026-11-000402``; a serial two ids share stays as typed)."""
        for shape in self.shapes:
            spelled = shape.complete(atoms, gaps)
            if spelled is not None and self.spelling(spelled) is not None:
                return spelled
        if len(atoms) == 1:
            key = self._tails.get(atoms[0].upper())
            if key is not None:
                return self._render(key)
        return None

    def example(self) -> str | None:
        """One of the shop's ids, to show in a question ("for example …"); None without orders."""
        return self._example

    # -- finding ------------------------------------------------------------------------
    def find(self, text: str, *, expect: bool = False) -> list[Entity]:
        """Order-id entities in ``text``, in text order (value: the id as the shop writes it).

        ``expect``: the customer was just asked for an order id, so an id-like token counts
        even without a cue or a shape (``A99998`` in a shop without orders yet).
        """
        folded = fold_width(text)
        protected = [m.span() for m in _PROTECTED.finditer(folded)]
        found: list[tuple[int, int, str]] = []
        self._scan(folded, protected, expect, found)
        if self.pattern is not None:
            for match in self.pattern.finditer(folded):
                self._take(found, protected, match.start(), match.end(), self.canonical(match.group()), known=False)
        for match in _CUED_TOKEN.finditer(folded):
            self._take_token(found, protected, match)
        if expect and not found:
            for match in _ANY_TOKEN.finditer(folded):
                if self._take_token(found, protected, match):
                    break
        return [Entity(ENTITY, value, start, end, text[start:end]) for start, end, value in sorted(found)]

    def _scan(
        self, text: str, protected: list[tuple[int, int]], expect: bool, found: list[tuple[int, int, str]]
    ) -> None:
        """Walk the text's runs of ASCII letters/digits: at each, the longest window of runs
        joined by short separators that is a known id, else one that fits a shape."""
        spans = [m.span() for m in _ATOM.finditer(text)]
        words = [text[a:b].upper() for a, b in spans]
        gaps = [text[spans[k][1] : spans[k + 1][0]] for k in range(len(spans) - 1)]
        joinable = [_GAP.fullmatch(gap) is not None for gap in gaps]
        cue_ends = {m.end() for m in _CUE_END.finditer(text)}
        i = 0
        while i < len(spans):
            last = i
            while last + 1 < len(spans) and last + 1 < i + self._window and joinable[last]:
                last += 1
            window = _Window(spans, words, gaps, i, last + 1)
            cued = expect or spans[i][0] in cue_ends
            taken = self._known_window(window, protected, found, cued)
            if taken is None and self.shapes:
                taken = self._shaped_window(window, protected, found, cued)
            i = taken if taken is not None else i + 1

    def _known_window(
        self, window: _Window, protected: list[tuple[int, int]], found: list[tuple[int, int, str]], cued: bool
    ) -> int | None:
        for end in window.ends():
            key = window.key(end)
            if not cued and (len(key) < MIN_BARE or (key.isdigit() and len(key) < MIN_BARE_DIGITS)):
                continue  # "2 shirts", "since 2019": a small shop's order 2 or 2019 needs "order"/"#"
            spelled = self._spelled.get(key) or (self._render(key) if key in self._keys else None)
            if spelled is not None and self._take(found, protected, *window.span(end), spelled, known=True):
                return end
        return None

    def _shaped_window(
        self, window: _Window, protected: list[tuple[int, int]], found: list[tuple[int, int, str]], cued: bool
    ) -> int | None:
        for end in window.ends():
            atoms, gaps = window.pieces(end)
            for shape in self.shapes:
                if not (shape.distinctive or cued) or not shape.fits_length(window.key(end)):
                    continue
                if shape.written and not cued and any(gap.isspace() or not gap for gap in gaps):
                    continue
                spelled = shape.fit(atoms, gaps)
                if spelled is not None and self._take(found, protected, *window.span(end), spelled, known=False):
                    return end
            if cued:
                completed = self._complete(atoms, gaps)
                if completed is not None and self._take(found, protected, *window.span(end), completed, known=True):
                    return end
        return None

    def _take_token(
        self, found: list[tuple[int, int, str]], protected: list[tuple[int, int]], match: re.Match[str]
    ) -> bool:
        """A cued (or expected) token is an id when it has a digit and at least four letters/digits."""
        token = match.group("id")
        if not any(ch.isdigit() for ch in token) or sum(ch.isalnum() for ch in token) < 4 or len(token) > 64:
            return False
        return self._take(found, protected, *match.span("id"), self.canonical(token), known=False)

    @staticmethod
    def _take(
        found: list[tuple[int, int, str]],
        protected: list[tuple[int, int]],
        start: int,
        stop: int,
        value: str,
        *,
        known: bool,
    ) -> bool:
        """Keep a candidate unless it overlaps one already found or a protected span (an id in
        the store may cover a protected span whole: the shop's ids may look like anything)."""
        if any(start < b and a < stop for a, b, _ in found):
            return False
        for a, b in protected:
            if start < b and a < stop and not (known and start <= a and b <= stop):
                return False
        found.append((start, stop, value))
        return True


@dataclass(frozen=True, slots=True)
class _Window:
    """Runs ``first`` … ``last - 1`` of a text's letter/digit runs, which may join into one id."""

    spans: list[tuple[int, int]]
    words: list[str]
    gaps: list[str]
    first: int
    last: int

    def ends(self) -> range:
        """End indexes (exclusive), the longest window first."""
        return range(self.last, self.first, -1)

    def key(self, end: int) -> str:
        return "".join(self.words[self.first : end])

    def pieces(self, end: int) -> tuple[list[str], list[str]]:
        return self.words[self.first : end], self.gaps[self.first : end - 1]

    def span(self, end: int) -> tuple[int, int]:
        return self.spans[self.first][0], self.spans[end - 1][1]
