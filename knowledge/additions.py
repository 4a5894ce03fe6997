"""What admins teach the bot after going live: FAQ phrasings and product aliases, merged in.

The shop's files stay the shop owner's (they may be replaced at any time); what an admin adds
from the missed-questions list lives in the ticket store (``storage.missed``) and is merged
over the files at every load (``bot.app.load_shop``), so it survives a new catalog and
reaches every process. Catalog and FAQ are frozen pydantic models: the merge builds new ones
and re-validates them, so an addition obeys the rules of the files — an alias that already
names another product is refused, like in ``catalog.yml``.

Two callers, two tempers: :func:`check` refuses a new addition with an error that says why
(409 for a clash with what exists, 422 for text that cannot be a phrasing or alias, 404 for
an unknown entry or product); :func:`merge` applies stored ones and *skips* those the
current files contradict (a product removed, an alias the file now gives another product),
so a changed file never stops start-up — the skipped ones are reported, not lost.

Also here, because they read the same data: suggestions of which FAQ entry or product a
missed question is about (to preselect in the workspace), and :func:`known_question`, the
near-verbatim lookup that lets the bot answer a taught question even when the intent
classifier does not recognise it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from rapidfuzz import fuzz, process

from common.errors import Conflict, DeskbotError, NotFound
from knowledge.shop import Catalog, Faq, FaqEntry, Product, fold_text
from storage.models import AdditionKind, KnowledgeAddition

MAX_PHRASING_CHARS = 300
MAX_ALIAS_CHARS = 60
MAX_ALIAS_WORDS = 6
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
# A message at least this similar (rapidfuzz ratio, 0–100, on normalised text) to one of an
# entry's phrasings is that question: a typo or punctuation apart, not a paraphrase.
KNOWN_QUESTION_CUTOFF = 90.0
# A product is suggested for a missed question from this similarity (token-set ratio) on:
# a question naming it scores 100 ("the wool hat" for "Knit Beanie" with alias "wool hat"),
# questions about something else 30–50 on the demo catalog.
PRODUCT_SUGGESTION_MIN = 60.0

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_NOT_WORD = re.compile(r"[\W_]+")
_WORD = re.compile(r"[^\W_]+")


class UnknownTarget(NotFound):
    """The FAQ entry or product the addition is for does not exist."""


class AdditionConflict(Conflict):
    """The addition clashes with what the shop's data already says."""


class InvalidAddition(DeskbotError):
    """Text that cannot be a phrasing or alias (empty, too long, a sentence as an alias)."""


@dataclass(frozen=True, slots=True)
class Addition:
    """A phrasing (``target``: FAQ entry id) or an alias (``target``: product sku)."""

    kind: AdditionKind
    target: str
    language: str
    text: str
    id: int | None = None  # the stored row's id; None for one not stored yet

    @property
    def folded(self) -> str:
        return folded(self.text)


def from_rows(rows: Iterable[KnowledgeAddition]) -> list[Addition]:
    """Stored additions (``storage.missed.additions``) as merge input, in their order."""
    return [Addition(row.kind, row.target, row.language, row.text, row.id) for row in rows]


@dataclass(frozen=True, slots=True)
class Merged:
    catalog: Catalog
    faq: Faq
    applied: tuple[Addition, ...] = ()
    skipped: tuple[tuple[Addition, str], ...] = field(default=())  # (addition, why)


def clean(text: str) -> str:
    """The text as stored: surrounding space dropped, runs of whitespace made one space."""
    return " ".join(text.split())


def folded(text: str) -> str:
    """The comparable form (as ``Catalog`` compares names and aliases)."""
    return fold_text(clean(text)).strip()


# -- checking one addition ------------------------------------------------------------------
class _State:
    """What the additions are checked against: forms per product, phrasings per entry.

    Updated as additions are accepted, so a batch is checked in one pass instead of
    re-validating the whole catalog per addition.
    """

    def __init__(self, catalog: Catalog, faq: Faq) -> None:
        self.products = {fold_text(p.sku): p for p in catalog.products}
        self.entries = {entry.id: entry for entry in faq.entries}
        self.owner: dict[str, Product] = {}
        for product in catalog.products:
            for form in product.surface_forms():
                self.owner.setdefault(form, product)
        self.phrasings: dict[tuple[str, str], set[str]] = {}
        for entry in faq.entries:
            for lang, questions in entry.questions.items():
                self.phrasings[(entry.id, lang)] = {folded(q) for q in questions}

    def check(self, addition: Addition) -> None:
        text = clean(addition.text)
        if not text:
            raise InvalidAddition("the text is empty")
        if not LANGUAGE.fullmatch(addition.language):
            raise InvalidAddition(f"'{addition.language}' is not a language code (e.g. en, zh)")
        if addition.kind is AdditionKind.FAQ_PHRASING:
            self._check_phrasing(addition, text)
        else:
            self._check_alias(addition, text)

    def _check_phrasing(self, addition: Addition, text: str) -> None:
        if len(text) > MAX_PHRASING_CHARS:
            raise InvalidAddition(f"a phrasing has at most {MAX_PHRASING_CHARS} characters")
        if addition.target not in self.entries:
            raise UnknownTarget(f"the FAQ has no entry '{addition.target}'")
        if addition.folded in self.phrasings.get((addition.target, addition.language), set()):
            raise AdditionConflict(f"'{text}' is already a phrasing of {addition.target} ({addition.language})")

    def _check_alias(self, addition: Addition, text: str) -> None:
        if len(text) > MAX_ALIAS_CHARS:
            raise InvalidAddition(f"an alias has at most {MAX_ALIAS_CHARS} characters: the words customers use "
                                  "for the product, not their whole question")
        words = len(_WORD.findall(_CJK_CHAR.sub(" ", text)))
        if words > MAX_ALIAS_WORDS:
            raise InvalidAddition(f"an alias has at most {MAX_ALIAS_WORDS} words: the words customers use for "
                                  "the product, not their whole question")
        product = self.products.get(fold_text(addition.target.strip()))
        if product is None:
            raise UnknownTarget(f"the catalog has no product with sku '{addition.target}'")
        owner = self.owner.get(addition.folded)
        if owner is not None and owner.sku == product.sku:
            raise AdditionConflict(f"'{text}' already names {product.sku}")
        if owner is not None:
            raise AdditionConflict(
                f"'{text}' already names another product ({owner.sku}, {owner.name_for(addition.language)}); "
                "a name or alias must belong to one product"
            )

    def accept(self, addition: Addition) -> None:
        if addition.kind is AdditionKind.FAQ_PHRASING:
            self.phrasings.setdefault((addition.target, addition.language), set()).add(addition.folded)
        else:
            self.owner[addition.folded] = self.products[fold_text(addition.target.strip())]


def check(catalog: Catalog, faq: Faq, addition: Addition) -> None:
    """Refuse an addition that cannot be merged into ``catalog``/``faq`` (see module docstring)."""
    _State(catalog, faq).check(addition)
    # The rules of the files themselves (a product's or an entry's validators) have the last word.
    try:
        _build(catalog, faq, [addition])
    except ValidationError as exc:
        raise InvalidAddition(_reason(exc)) from exc


def in_use(catalog: Catalog, faq: Faq, addition: Addition) -> bool:
    """Whether the merged ``catalog``/``faq`` contain the addition (False once skipped)."""
    if addition.kind is AdditionKind.FAQ_PHRASING:
        entry = faq.get(addition.target)
        questions = entry.questions.get(addition.language, []) if entry is not None else []
        return addition.folded in {folded(q) for q in questions}
    product = catalog.find_by_value(addition.target)
    return product is not None and addition.folded in product.surface_forms()


# -- merging stored additions ---------------------------------------------------------------
def merge(catalog: Catalog, faq: Faq, additions: Iterable[Addition]) -> Merged:
    """The catalog and FAQ with ``additions`` merged in, in order; contradicted ones skipped.

    CPU work proportional to the data: call it off the event loop.
    """
    state = _State(catalog, faq)
    applied: list[Addition] = []
    skipped: list[tuple[Addition, str]] = []
    for addition in additions:
        try:
            state.check(addition)
        except DeskbotError as exc:
            skipped.append((addition, str(exc)))
            continue
        state.accept(addition)
        applied.append(addition)
    try:
        new_catalog, new_faq = _build(catalog, faq, applied)
    except (ValidationError, DeskbotError):
        # Something the quick checks do not know about: find the culprits one at a time.
        new_catalog, new_faq, applied, late = _build_one_by_one(catalog, faq, applied)
        skipped += late
    return Merged(new_catalog, new_faq, tuple(applied), tuple(skipped))


def _build_one_by_one(
    catalog: Catalog, faq: Faq, additions: Sequence[Addition]
) -> tuple[Catalog, Faq, list[Addition], list[tuple[Addition, str]]]:
    kept: list[Addition] = []
    skipped: list[tuple[Addition, str]] = []
    for addition in additions:
        try:
            _build(catalog, faq, [*kept, addition])
        except (ValidationError, DeskbotError) as exc:
            skipped.append((addition, _reason(exc)))
            continue
        kept.append(addition)
    new_catalog, new_faq = _build(catalog, faq, kept)
    return new_catalog, new_faq, kept, skipped


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors(include_url=False))
    return str(exc)


def _build(catalog: Catalog, faq: Faq, additions: Sequence[Addition]) -> tuple[Catalog, Faq]:
    """New, re-validated models with ``additions`` appended (ValidationError if the rules refuse)."""
    phrasings: dict[str, dict[str, list[str]]] = {}
    aliases: dict[str, dict[str, list[str]]] = {}
    for addition in additions:
        if addition.kind is AdditionKind.FAQ_PHRASING:
            phrasings.setdefault(addition.target, {}).setdefault(addition.language, []).append(clean(addition.text))
        else:
            sku = fold_text(addition.target.strip())
            aliases.setdefault(sku, {}).setdefault(addition.language, []).append(clean(addition.text))
    new_faq = faq
    if phrasings:
        entries = [_with_phrasings(entry, phrasings.get(entry.id)) for entry in faq.entries]
        new_faq = Faq.model_validate({"faq": entries})
    new_catalog = catalog
    if aliases:
        products = [_with_aliases(product, aliases.get(fold_text(product.sku))) for product in catalog.products]
        new_catalog = Catalog.model_validate({"currency": catalog.currency, "products": products})
    return new_catalog, new_faq


def _with_phrasings(entry: FaqEntry, extra: dict[str, list[str]] | None) -> FaqEntry:
    if not extra:
        return entry
    questions = {lang: list(texts) for lang, texts in entry.questions.items()}
    for lang, texts in extra.items():
        questions.setdefault(lang, []).extend(texts)
    return FaqEntry.model_validate(entry.model_copy(update={"questions": questions}).model_dump())


def _with_aliases(product: Product, extra: dict[str, list[str]] | None) -> Product:
    if not extra:
        return product
    aliases = {lang: list(texts) for lang, texts in product.aliases.items()}
    for lang, texts in extra.items():
        aliases.setdefault(lang, []).extend(texts)
    return Product.model_validate(product.model_copy(update={"aliases": aliases}).model_dump())


# -- answering a taught question ------------------------------------------------------------
def normalised(text: str) -> str:
    """Folded, punctuation dropped, one space between words: how questions are compared."""
    return " ".join(_NOT_WORD.sub(" ", fold_text(text)).split())


class _Questions:
    """Every phrasing of one FAQ, normalised once, for :func:`known_question`."""

    def __init__(self, faq: Faq) -> None:
        self.faq = faq
        self.entries: list[FaqEntry] = []
        self.texts: list[str] = []
        for entry in faq.entries:
            for questions in entry.questions.values():
                for question in questions:
                    self.entries.append(entry)
                    self.texts.append(normalised(question))


_questions: _Questions | None = None
_questions_lock = threading.Lock()


def known_question(faq: Faq, text: str, cutoff: float = KNOWN_QUESTION_CUTOFF) -> FaqEntry | None:
    """The entry one of whose phrasings (any language) ``text`` is, near verbatim; else None.

    What an admin taught ("this question is that entry") must be answered even when the intent
    classifier does not recognise the question; a paraphrase is left to the FAQ search.
    """
    global _questions
    wanted = normalised(text)
    if not wanted:
        return None
    with _questions_lock:
        # One FAQ per process at a time: the index is rebuilt when the FAQ is replaced.
        if _questions is None or _questions.faq is not faq:
            _questions = _Questions(faq)
        questions = _questions
    found = process.extractOne(wanted, questions.texts, scorer=fuzz.ratio, processor=None, score_cutoff=cutoff)
    return None if found is None else questions.entries[found[2]]


# -- suggestions for the workspace ----------------------------------------------------------
def tokens(text: str) -> str:
    """Words for token-based similarity: Latin words as they are, CJK characters one by one."""
    return " ".join(_CJK_CHAR.sub(lambda m: f" {m.group(0)} ", normalised(text)).split())


class Suggestions:
    """Which FAQ entry or product a missed question may be about, to preselect in the workspace.

    rapidfuzz's token-set ratio (0–100) between the question and each entry's phrasings and
    answer (in the question's language and English), or each product's names and aliases: a
    preselection for the admin to confirm, never an answer. Built once per listing (the
    texts are tokenised here), then asked per group.
    """

    def __init__(self, catalog: Catalog, faq: Faq) -> None:
        self.catalog = catalog
        self.faq = faq
        self._entries: dict[str | None, list[tuple[FaqEntry, list[str]]]] = {}
        self._products = [(p, [tokens(form) for form in p.surface_forms()]) for p in catalog.products]

    def _entry_texts(self, language: str | None) -> list[tuple[FaqEntry, list[str]]]:
        if language not in self._entries:
            prepared = []
            for entry in self.faq.entries:
                texts = entry.questions_for(language) + [entry.answer_for(language)]
                if language and language != "en":
                    texts += entry.questions_for("en")
                prepared.append((entry, [tokens(text) for text in texts]))
            self._entries[language] = prepared
        return self._entries[language]

    def faq_entries(self, text: str, language: str | None = None, k: int = 3) -> list[tuple[FaqEntry, float]]:
        """Up to ``k`` entries, most similar first, with their similarity."""
        query = tokens(text)
        if not query:
            return []
        scored = []
        for entry, texts in self._entry_texts(language):
            best = process.extractOne(query, texts, scorer=fuzz.token_set_ratio, processor=None)
            if best is not None:
                scored.append((entry, float(best[1])))
        scored.sort(key=lambda pair: -pair[1])
        return scored[:k]

    def products(
        self, text: str, k: int = 3, min_score: float = PRODUCT_SUGGESTION_MIN
    ) -> list[tuple[Product, float, str]]:
        """Up to ``k`` (product, similarity, suggested alias) at ``min_score`` or more, most
        similar first; the alias is the part of ``text`` that resembles the product
        (:func:`alias_from`). Most missed questions name no product: then there is none."""
        query = tokens(text)
        if not query:
            return []
        scored = []
        for product, forms in self._products:
            best = process.extractOne(query, forms, scorer=fuzz.token_set_ratio, processor=None)
            if best is not None and best[1] >= min_score:
                scored.append((product, float(best[1])))
        scored.sort(key=lambda pair: -pair[1])
        return [(product, score, alias_from(text, product)) for product, score in scored[:k]]


def alias_from(text: str, product: Product) -> str:
    """The stretch of ``text`` that names ``product``: from its first to its last word that
    resembles a word of the product's forms (Latin), or the longest run of characters that
    all occur in one of its forms (CJK: "运动耳塞" for 运动无线耳塞). Empty when nothing in the
    text resembles the product."""
    forms = [fold_text(form) for form in product.surface_forms()]
    if _CJK_CHAR.search(text):
        folded_text = fold_text(text)
        best = ""
        for form in forms:
            chars = set(form) - {" "}
            for run in re.findall(f"[{re.escape(''.join(sorted(chars)))}]+", folded_text) if chars else ():
                if len(run) > len(best) and _CJK_CHAR.search(run):
                    best = run
        if len(best) >= 2:
            return best
    vocabulary = {word for form in forms for word in _WORD.findall(form) if len(word) >= 3}
    spans = [m for m in _WORD.finditer(text) if len(m.group(0)) >= 3]
    hits = [
        m for m in spans
        if process.extractOne(fold_text(m.group(0)), vocabulary, scorer=fuzz.ratio, score_cutoff=80) is not None
    ]
    if not hits:
        return ""
    return clean(text[hits[0].start() : hits[-1].end()])
