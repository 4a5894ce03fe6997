"""Shop knowledge: the product catalog and the FAQ, loaded from YAML and searched.

A shop swaps in its own ``catalog.yml`` and ``faq.yml`` (formats in ``docs/shop-data.md``),
so loading is strict — unknown fields, a size without stock, an alias shared by two products
are errors that name the file and the entry — and the bot never answers from a silently
half-read file. Nothing here reads a file or builds an index at import time: ``bot/app.py``
calls the loaders and builds the search indexes (``knowledge.bundle``), then hands them to the handlers.

Text is compared after :func:`fold_text` (NFKC + casefold), so full-width ``ＸＬ`` and ``xl``
or ``T恤`` and ``t恤`` are the same to every lookup here and to the entity extractor that
uses :meth:`Catalog.lookup_table`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

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

from common.errors import DeskbotError
from common.yaml_files import safe_load

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


class KnowledgeError(DeskbotError):
    """A catalog or FAQ file that cannot be read or does not validate.

    The message lists every problem, each prefixed with its entry (``products[2] (sku
    HD-001)``) so the shop owner goes straight to the line to fix. ``entry`` is the first
    entry with a bad field; None when the file itself is unreadable or the problem lies
    between entries (an alias or id used twice — the message names both).
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


_T = TypeVar("_T")


def _pick(mapping: Mapping[str, _T], language: str | None) -> _T | None:
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
        return _pick(self.name, language) or self.name[DEFAULT_LANGUAGE]

    def description_for(self, language: str | None) -> str | None:
        """The description in ``language`` (English fallback), None if the shop gave none."""
        return None if self.description is None else _pick(self.description, language)

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
    product: Product
    language: str
    pattern: re.Pattern[str] | None  # None: CJK, matched as a plain substring

    def position(self, folded: str) -> int:
        if self.pattern is None:
            return folded.find(self.form)
        found = self.pattern.search(folded)
        return -1 if found is None else found.start()


def _matcher(form: str, product: Product, language: str) -> _Matcher:
    if _CJK.search(form):
        return _Matcher(form, product, language, None)
    # Latin words: whole words only ("cap" not in "capital"), any of space/hyphen/nothing
    # between parts ("t-shirt", "t shirt", "tshirt") and a plural ending ("hoodies").
    parts = [re.escape(part) for part in re.split(r"[\s\-]+", form) if part]
    body = r"[\s\-]*".join(parts)
    pattern = re.compile(f"(?<![{_WORD_CHAR}]){body}(?:e?s)?(?![{_WORD_CHAR}])")
    return _Matcher(form, product, language, pattern)


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
        owner: dict[str, int] = {}
        for index, product in enumerate(self.products):
            for form in product.surface_forms():
                first = owner.setdefault(form, index)
                if first == index:
                    continue
                other = self.products[first]
                entry = f"products[{index}] (sku {product.sku})"
                if fold_text(other.sku) == fold_text(product.sku):
                    raise ValueError(f"{entry}: the sku is already used by products[{first}]")
                raise ValueError(
                    f"{entry}: '{form}' already names products[{first}] (sku {other.sku}); "
                    "a name or alias must belong to one product"
                )
        return self

    def model_post_init(self, context: Any, /) -> None:
        # Built once per catalog so find() does no set-up work per message.
        self._by_sku = {fold_text(p.sku): p for p in self.products}
        matchers: list[_Matcher] = []
        for product in self.products:
            for form, lang in product.surface_forms().items():
                self._lookup[form] = product.sku
                matchers.append(_matcher(form, product, lang))
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
        return None if best is None else best.product

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
        return _pick(self.answer, language) or self.answer[DEFAULT_LANGUAGE]

    def questions_for(self, language: str | None) -> list[str]:
        """The phrasings in ``language``, falling back to English."""
        return list(_pick(self.questions, language) or self.questions[DEFAULT_LANGUAGE])


class Faq(_Model):
    """All FAQ entries of a shop (the ``faq:`` list of ``faq.yml``)."""

    # populate_by_name: `Faq(entries=[...])` in code, `faq:` in the file.
    model_config = ConfigDict(populate_by_name=True)

    entries: Annotated[list[FaqEntry], Field(alias="faq", min_length=1)]

    @model_validator(mode="after")
    def _ids_are_unique(self) -> Faq:
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.entries):
            first = seen.setdefault(entry.id, index)
            if first != index:
                raise ValueError(f"faq[{index}] (id {entry.id}): the id is already used by faq[{first}]")
        return self

    def get(self, entry_id: str) -> FaqEntry | None:
        """The entry with this id, or None."""
        return next((entry for entry in self.entries if entry.id == entry_id), None)


# --- loading -------------------------------------------------------------------------

def _read_yaml(path: str | os.PathLike[str], content: bytes | None = None) -> Any:
    try:
        if content is None:
            with open(path, encoding="utf-8") as handle:
                data = safe_load(handle)
        else:
            data = safe_load(content.decode("utf-8"))
    except OSError as exc:
        raise KnowledgeError(path, f"cannot read the file ({exc.strerror})") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KnowledgeError(path, f"is not valid UTF-8 YAML: {exc}") from exc
    if data is None:
        raise KnowledgeError(path, "is empty")
    return data


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
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_type" and isinstance(error["input"], bool):
            message += " (YAML reads unquoted yes/no/on/off as true/false: put the text in quotes)"
        if len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
            entry = _entry_label(data, list_key, id_key, loc[1])
            field = ".".join(str(part) for part in loc[2:])
            lines.append(f"{entry}: {field}: {message}" if field else f"{entry}: {message}")
            first_entry = first_entry or entry
        else:
            where = ".".join(str(part) for part in loc)
            lines.append(f"{where}: {message}" if where else message)
    return KnowledgeError(path, "invalid entries:\n  " + "\n  ".join(lines), first_entry)


def load_catalog(path: str | os.PathLike[str], content: bytes | None = None) -> Catalog:
    """Read and validate a ``catalog.yml`` (``content``: its bytes, when already read);
    :class:`KnowledgeError` names what is wrong."""
    data = _read_yaml(path, content)
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, data, "products", "sku", exc) from exc


def load_faq(path: str | os.PathLike[str], content: bytes | None = None) -> Faq:
    """Read and validate a ``faq.yml`` (``content``: its bytes, when already read);
    :class:`KnowledgeError` names what is wrong."""
    data = _read_yaml(path, content)
    try:
        return Faq.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, data, "faq", "id", exc) from exc
