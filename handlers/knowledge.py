"""Shop knowledge: the product catalog and the FAQ, loaded from YAML and searched.

A shop swaps in its own ``catalog.yml`` and ``faq.yml`` (formats in ``docs/shop-data.md``),
so loading is strict — unknown fields, a size without stock, an alias shared by two products
are errors that name the file and the entry — and the bot never answers from a silently
half-read file. Nothing here reads a file or builds an index at import time: ``bot/app.py``
calls the loaders and builds one :class:`FaqIndex`, then hands them to the handlers.

Text is compared after :func:`fold_text` (NFKC + casefold), so full-width ``ＸＬ`` and ``xl``
or ``T恤`` and ``t恤`` are the same to every lookup here and to the entity extractor that
uses :meth:`Catalog.lookup_table`.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    model_validator,
)

DEFAULT_LANGUAGE = "en"

Topic = Literal["shipping", "payment", "returns", "product", "general"]
TOPICS: tuple[str, ...] = get_args(Topic)

# Han, kana and hangul: scripts written without spaces, so words are found by substring
# and FAQ text is cut into character n-grams without word boundaries.
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK = re.compile(f"[{_CJK_RANGES}]")
# Letters and digits of space-separated scripts; a Latin product word must not touch one.
_WORD_CHAR = "0-9a-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"
# Runs the FAQ analyser treats separately: a CJK run, or a run of other letters/digits.
_RUNS = re.compile(f"([{_CJK_RANGES}]+)|([^\\W_{_CJK_RANGES}]+)")


class KnowledgeError(Exception):
    """A catalog or FAQ file that cannot be read or does not validate.

    ``entry`` names the first bad entry (``products[2] (sku HD-001)``) when one is to blame,
    so the shop owner goes straight to the line to fix.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, entry: str | None = None) -> None:
        self.path = Path(path)
        self.entry = entry
        super().__init__(f"{self.path}: {message}")


def fold_text(text: str) -> str:
    """The comparable form of a text: NFKC (full-width → ASCII) then casefold."""
    return unicodedata.normalize("NFKC", text).casefold()


def normalise_language(language: str | None) -> str:
    """Primary language subtag: ``zh-CN``/``zh_Hans``/``ZH`` → ``zh``; None → English.

    Channels report locales (Telegram sends ``zh-hans``), the data is keyed by language.
    """
    if not language:
        return DEFAULT_LANGUAGE
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower() or DEFAULT_LANGUAGE


def _pick(mapping: Mapping[str, Any], language: str | None) -> Any:
    """The value for a language, else English, else None (the caller picks the default)."""
    lang = normalise_language(language)
    if lang in mapping:
        return mapping[lang]
    return mapping.get(DEFAULT_LANGUAGE)


# --- field types ---------------------------------------------------------------------

def _require_english(value: dict[str, Any]) -> dict[str, Any]:
    # English is what every other language falls back to, so it must be there.
    if DEFAULT_LANGUAGE not in value:
        raise ValueError(f"an '{DEFAULT_LANGUAGE}' text is required (other languages fall back to it)")
    return value


def _unique_folded(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        key = fold_text(value)
        if key in seen:
            raise ValueError(f"'{value}' is listed twice")
        seen.add(key)
    return values


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Lang = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
LocalisedText = Annotated[dict[Lang, Text], AfterValidator(_require_english)]
LocalisedList = dict[Lang, list[Text]]


class _Model(BaseModel):
    # Unknown keys are typos ("colors", "answers") that would otherwise vanish silently;
    # numbers are accepted where text is expected because YAML reads `sizes: [38, 39]` and
    # `stock: {32: 4}` as integers.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


# --- catalog -------------------------------------------------------------------------

class Product(_Model):
    """One catalog entry; text fields are keyed by language code (``en`` required)."""

    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    name: LocalisedText
    aliases: LocalisedList = {}
    price: Annotated[Decimal, Field(ge=0, decimal_places=2)]
    sizes: Annotated[list[Text], AfterValidator(_unique_folded)] | None = None
    colours: LocalisedList = {}
    stock: Annotated[int, Field(ge=0)] | dict[Text, Annotated[int, Field(ge=0)]]
    description: LocalisedText | None = None
    specs: dict[Lang, dict[Text, Text]] = {}

    @model_validator(mode="after")
    def _stock_matches_sizes(self) -> Product:
        # Per-size stock is the only kind that answers "do you have it in M?", so a sized
        # product must give it for exactly its sizes.
        if isinstance(self.stock, dict):
            if not self.sizes:
                raise ValueError("stock is given per size but the product has no sizes")
            listed = {fold_text(size) for size in self.sizes}
            stocked = {fold_text(size) for size in self.stock}
            if len(stocked) != len(self.stock):
                raise ValueError("stock lists a size twice")
            if listed != stocked:
                missing = sorted(listed - stocked)
                unknown = sorted(stocked - listed)
                raise ValueError(
                    f"stock must give every size once: missing {missing or 'none'}, "
                    f"not in sizes {unknown or 'none'}"
                )
        elif self.sizes:
            raise ValueError("a product with sizes needs stock per size, e.g. {S: 3, M: 0}")
        return self

    def has_size(self, size: str) -> bool:
        """Whether the product comes in ``size`` (case-insensitive); never for one-size items."""
        return self._stock_key(size) is not None

    def stock_count(self, size: str | None = None) -> int:
        """Units in stock: in one size, or all sizes together when ``size`` is None.

        A size the product does not come in has 0 — including any size of a product without
        sizes; check :attr:`sizes` first to tell "one size" from "sold out".
        """
        if size is None:
            return self.stock if isinstance(self.stock, int) else sum(self.stock.values())
        key = self._stock_key(size)
        if key is None or isinstance(self.stock, int):
            return 0
        return self.stock[key]

    def in_stock(self, size: str | None = None) -> bool:
        """Whether at least one unit is available (in ``size``, or in any size)."""
        return self.stock_count(size) > 0

    def sizes_in_stock(self) -> list[str]:
        """The sizes with stock, in catalog order (for "we have S, L and XL")."""
        if isinstance(self.stock, int):
            return []
        return [size for size in self.stock if self.stock[size] > 0]

    def name_for(self, language: str | None) -> str:
        """The product name in ``language``, falling back to English."""
        return str(_pick(self.name, language))

    def description_for(self, language: str | None) -> str | None:
        """The description in ``language`` (English fallback), None if the shop gave none."""
        return None if self.description is None else str(_pick(self.description, language))

    def colours_for(self, language: str | None) -> list[str]:
        """Colour names in ``language`` (English fallback); empty when not listed."""
        return list(_pick(self.colours, language) or [])

    def specs_for(self, language: str | None) -> dict[str, str]:
        """Specification label → value in ``language`` (English fallback)."""
        return dict(_pick(self.specs, language) or {})

    def surface_forms(self) -> dict[str, str]:
        """Folded sku, names and aliases → the language they belong to (``""`` for the sku)."""
        forms: dict[str, str] = {fold_text(self.sku): ""}
        for lang, name in self.name.items():
            forms.setdefault(fold_text(name), lang)
        for lang, aliases in self.aliases.items():
            for alias in aliases:
                forms.setdefault(fold_text(alias), lang)
        return forms

    def _stock_key(self, size: str) -> str | None:
        if isinstance(self.stock, int):
            return None
        wanted = fold_text(size).strip()
        for key in self.stock:
            if fold_text(key) == wanted:
                return key
        return None


@dataclass(frozen=True, slots=True)
class _Matcher:
    """One surface form and how to spot it in a message."""

    form: str
    sku: str
    language: str
    pattern: re.Pattern[str] | None  # None: CJK, matched as a plain substring

    def position(self, folded: str) -> int:
        if self.pattern is None:
            return folded.find(self.form)
        found = self.pattern.search(folded)
        return -1 if found is None else found.start()


def _matcher(form: str, sku: str, language: str) -> _Matcher:
    if _CJK.search(form):
        return _Matcher(form, sku, language, None)
    # Latin words: whole words only ("cap" not in "capital"), any of space/hyphen/nothing
    # between parts ("t-shirt", "t shirt", "tshirt") and a plural ending ("hoodies").
    parts = [re.escape(part) for part in re.split(r"[\s\-]+", form) if part]
    body = r"[\s\-]*".join(parts)
    pattern = re.compile(f"(?<![{_WORD_CHAR}]){body}(?:e?s)?(?![{_WORD_CHAR}])")
    return _Matcher(form, sku, language, pattern)


class Catalog(_Model):
    """The shop's products and the currency their prices are in."""

    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    products: Annotated[list[Product], Field(min_length=1)]

    _by_sku: dict[str, Product] = PrivateAttr(default_factory=dict)
    _lookup: dict[str, str] = PrivateAttr(default_factory=dict)
    _matchers: tuple[_Matcher, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _forms_are_unambiguous(self) -> Catalog:
        # A form that names two products ("jacket") cannot be resolved by a lookup table;
        # the shop must either drop it or say which product it means.
        owner: dict[str, str] = {}
        for product in self.products:
            for form in product.surface_forms():
                other = owner.setdefault(form, product.sku)
                if other != product.sku:
                    what = "sku" if form == fold_text(product.sku) else "name or alias"
                    raise ValueError(f"{what} '{form}' is used by both {other} and {product.sku}")
        return self

    def model_post_init(self, context: Any, /) -> None:
        # Built once per catalog so find() does no set-up work per message.
        self._by_sku = {fold_text(p.sku): p for p in self.products}
        matchers: list[_Matcher] = []
        for product in self.products:
            for form, lang in product.surface_forms().items():
                self._lookup[form] = product.sku
                matchers.append(_matcher(form, product.sku, lang))
        self._matchers = tuple(matchers)

    def find(self, text: str, language: str | None = None) -> Product | None:
        """The product a message talks about, by sku, name or alias in any language.

        The longest form found wins ("rain jacket" over a hypothetical "jacket"), then one in
        the message's language, then the earliest. Forms of every language are tried because
        customers mix them ("我想买 hoodie").
        """
        folded = fold_text(text)
        lang = normalise_language(language)
        best: _Matcher | None = None
        best_rank: tuple[int, bool, int] = (0, False, 0)
        for matcher in self._matchers:
            position = matcher.position(folded)
            if position < 0:
                continue
            rank = (len(matcher.form), matcher.language == lang, -position)
            if best is None or rank > best_rank:
                best, best_rank = matcher, rank
        return None if best is None else self._by_sku[fold_text(best.sku)]

    def find_by_value(self, sku: str) -> Product | None:
        """The product with this sku (case-insensitive) — the value of a ``product`` entity."""
        return self._by_sku.get(fold_text(sku.strip()))

    def lookup_table(self) -> dict[str, str]:
        """Every folded surface form (sku, names, aliases, all languages) → sku.

        Keys are :func:`fold_text` forms; fold the message the same way before matching.
        """
        return dict(self._lookup)


# --- FAQ -----------------------------------------------------------------------------

def _english_questions(value: dict[str, list[str]]) -> dict[str, list[str]]:
    if not value.get(DEFAULT_LANGUAGE):
        raise ValueError(f"at least one '{DEFAULT_LANGUAGE}' question is required")
    for lang, questions in value.items():
        if not questions:
            raise ValueError(f"'{lang}' has no questions")
        _unique_folded(questions)
    return value


class FaqEntry(_Model):
    """One question with its phrasings per language and one answer per language."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    topic: Topic
    questions: Annotated[LocalisedList, AfterValidator(_english_questions)]
    answer: LocalisedText

    def answer_for(self, language: str | None) -> str:
        """The answer in ``language``, falling back to English."""
        return str(_pick(self.answer, language))

    def questions_for(self, language: str | None) -> list[str]:
        """The phrasings in ``language``, falling back to English."""
        return list(_pick(self.questions, language))


class Faq(_Model):
    """All FAQ entries of a shop (the ``faq:`` list of ``faq.yml``)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    entries: Annotated[list[FaqEntry], Field(alias="faq", min_length=1)]

    @model_validator(mode="after")
    def _ids_are_unique(self) -> Faq:
        seen: set[str] = set()
        for entry in self.entries:
            if entry.id in seen:
                raise ValueError(f"FAQ id '{entry.id}' is used twice")
            seen.add(entry.id)
        return self

    def get(self, entry_id: str) -> FaqEntry | None:
        """The entry with this id, or None."""
        return next((entry for entry in self.entries if entry.id == entry_id), None)


# Character n-grams: Latin words are padded with spaces and cut into 2–4-grams (so stems
# match: "deliver" in "delivery"); CJK runs into 1–2-grams, which are the usual word sizes.
_LATIN_NGRAMS = (2, 4)
_CJK_NGRAMS = (1, 2)


def _ngrams(text: str) -> list[str]:
    grams: list[str] = []
    for cjk, other in _RUNS.findall(fold_text(text)):
        if cjk:
            token, (low, high) = cjk, _CJK_NGRAMS
        else:
            token, (low, high) = f" {other} ", _LATIN_NGRAMS
        for n in range(low, high + 1):
            grams.extend(token[i : i + n] for i in range(len(token) - n + 1))
    return grams


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


class FaqIndex:
    """TF-IDF retrieval over every question phrasing (and, weighted lower, the answers).

    Built once per FAQ, then shared by all conversations. Scores are cosine similarities of
    sublinear TF-IDF vectors of character n-grams, which needs no word segmentation for
    Chinese and tolerates typos and inflections in English. An entry scores as its best
    matching phrasing. The index is an inverted list per n-gram, so a query costs a few
    array operations over the rows that share its n-grams (tens of microseconds), with no
    per-call library set-up.
    """

    def __init__(self, faq: Faq, *, min_score: float = 0.3, answer_weight: float = 0.6) -> None:
        """``min_score``: below it nothing is returned, so an off-topic message gets no
        answer rather than the least bad one. ``answer_weight`` scales matches against answer
        text, which helps questions phrased around the answer's words ("Alipay") but is long
        and less precise than a question."""
        self.faq = faq
        self.min_score = min_score
        entries = faq.entries
        texts: list[str] = []
        row_entry: list[int] = []
        row_lang: list[str] = []
        row_base: list[float] = []
        for index, entry in enumerate(entries):
            # Rows are grouped by entry, which lets search() take each entry's best row
            # with one np.maximum.reduceat.
            for lang, questions in entry.questions.items():
                for question in questions:
                    texts.append(question)
                    row_entry.append(index)
                    row_lang.append(lang)
                    row_base.append(1.0)
            for lang, answer in entry.answer.items():
                texts.append(answer)
                row_entry.append(index)
                row_lang.append(lang)
                row_base.append(answer_weight)

        counts = [Counter(_ngrams(text)) for text in texts]
        document_frequency: Counter[str] = Counter()
        for row_counts in counts:
            document_frequency.update(row_counts.keys())
        n_rows = len(texts)
        # Smoothed idf as in scikit-learn; an unseen n-gram gets the value of df = 0.
        self._idf = {
            gram: math.log((1 + n_rows) / (1 + df)) + 1.0 for gram, df in document_frequency.items()
        }
        self._unseen_idf = math.log(1 + n_rows) + 1.0

        postings: dict[str, tuple[list[int], list[float]]] = {}
        for row, row_counts in enumerate(counts):
            weights = {gram: (1.0 + math.log(tf)) * self._idf[gram] for gram, tf in row_counts.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for gram, weight in weights.items():
                rows, values = postings.setdefault(gram, ([], []))
                rows.append(row)
                values.append(weight / norm)
        self._postings: dict[str, tuple[IntArray, FloatArray]] = {
            gram: (np.asarray(rows, dtype=np.intp), np.asarray(values, dtype=np.float64))
            for gram, (rows, values) in postings.items()
        }
        self._n_rows = n_rows
        self._entries = entries
        self._entry_starts = np.asarray(
            [row_entry.index(i) for i in range(len(entries))], dtype=np.intp
        )
        self._entry_topics = np.asarray([entry.topic for entry in entries])
        base = np.asarray(row_base, dtype=np.float64)
        langs = np.asarray(row_lang)
        # Rows of the message's language only: other languages' rows add n-gram noise and
        # never share vocabulary, except brand words that the FAQ repeats per language.
        self._row_weights = {lang: base * (langs == lang) for lang in set(row_lang)}
        self._all_rows = base

    def search(
        self, text: str, language: str | None = None, topic: str | None = None, k: int = 3
    ) -> list[tuple[FaqEntry, float]]:
        """The ``k`` best entries for a message with their scores (0–1), best first.

        ``language`` selects the phrasings and answers compared against (all of them when
        None or when the FAQ has nothing in that language); ``topic`` restricts to one of
        :data:`TOPICS`. Entries under ``min_score`` are left out, so the list may be empty.
        """
        if topic is not None and topic not in TOPICS:
            raise ValueError(f"unknown FAQ topic {topic!r}; expected one of {TOPICS}")
        query = Counter(_ngrams(text))
        if not query or k <= 0:
            return []
        row_chunks: list[IntArray] = []
        value_chunks: list[FloatArray] = []
        norm_sq = 0.0
        for gram, tf in query.items():
            weight = (1.0 + math.log(tf)) * self._idf.get(gram, self._unseen_idf)
            # Unseen n-grams still count in the norm: a message that is mostly about
            # something else should not score high on the few n-grams it shares.
            norm_sq += weight * weight
            posting = self._postings.get(gram)
            if posting is not None:
                row_chunks.append(posting[0])
                value_chunks.append(posting[1] * weight)
        if not row_chunks:
            return []
        scores = np.bincount(
            np.concatenate(row_chunks), weights=np.concatenate(value_chunks), minlength=self._n_rows
        ) / math.sqrt(norm_sq)
        lang = normalise_language(language) if language else None
        scores *= self._row_weights.get(lang, self._all_rows) if lang else self._all_rows
        best = np.maximum.reduceat(scores, self._entry_starts)
        if topic is not None:
            best[self._entry_topics != topic] = 0.0
        order = np.argsort(-best, kind="stable")[:k]
        return [
            (self._entries[i], float(best[i])) for i in order if best[i] >= self.min_score
        ]


# --- loading -------------------------------------------------------------------------

def _read_yaml(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise KnowledgeError(path, f"cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, f"is not valid YAML: {exc}") from exc


def _entry_label(data: Any, list_key: str, id_key: str, index: int) -> str:
    label = f"{list_key}[{index}]"
    try:
        ident = data[list_key][index][id_key]
    except (KeyError, IndexError, TypeError):
        return label
    return f"{label} ({id_key} {ident})"


def _validation_error(
    path: str | os.PathLike[str], data: Any, list_key: str, id_key: str, exc: ValidationError
) -> KnowledgeError:
    """One message naming each bad entry by position and id, and the field at fault."""
    lines: list[str] = []
    first_entry: str | None = None
    for error in exc.errors(include_url=False):
        loc: Sequence[int | str] = error["loc"]
        if len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
            entry = _entry_label(data, list_key, id_key, loc[1])
            field = ".".join(str(part) for part in loc[2:]) or "entry"
            lines.append(f"{entry}: {field}: {error['msg']}")
            first_entry = first_entry or entry
        else:
            where = ".".join(str(part) for part in loc) or "file"
            lines.append(f"{where}: {error['msg']}")
    return KnowledgeError(path, "invalid entries:\n  " + "\n  ".join(lines), first_entry)


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read and validate a ``catalog.yml``; :class:`KnowledgeError` names what is wrong."""
    data = _read_yaml(path)
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, data, "products", "sku", exc) from exc


def load_faq(path: str | os.PathLike[str]) -> Faq:
    """Read and validate a ``faq.yml``; :class:`KnowledgeError` names what is wrong."""
    data = _read_yaml(path)
    try:
        return Faq.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, data, "faq", "id", exc) from exc
