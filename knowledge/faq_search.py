"""FAQ retrieval over what the shop wrote: each entry's questions AND its answer.

Shop owners write one question per entry ("Which payment methods do you accept?") and put the
facts in the answer ("… PayPal, Alipay …"), so a customer asking "is PayPal fine?" is only
answered when the answer text is searched too. Every entry is read in the customer's language
(English where the entry lacks it, as :meth:`FaqEntry.answer_for` answers).

Two scores, blended:

- **Lexical, always**: BM25 (bm25s) per language over three fields of every entry: each
  phrasing, the phrasings pooled, and the answer. The texts are indexed as folded, lightly
  stemmed words with their character 4-grams, and Chinese as character unigrams and bigrams
  (no segmenter needed). A message is read as *units*: its words (a Chinese run as its
  characters and bigrams), each covered by the best of its forms — as written, or a synonym
  from :mod:`knowledge.faq_lexicon` at :data:`SYNONYM_WEIGHT` ("guarantee" for "warranty",
  "微信付款" for "微信支付"); a word's 4-grams add a little (:data:`GRAM_WEIGHT`). Per field an
  entry's score is the share of the message's weight that the field covers: each unit weighs
  its BM25 idf in the field; a word the field never uses weighs the highest idf (a message
  mostly about something else covers little), unless it is known through a synonym; function
  words ("your", "do", "吗" bigrams) and Chinese bigrams that are only a word boundary weigh
  less (:data:`FUNCTION_WORD_WEIGHT`, :data:`UNSEEN_BIGRAM_WEIGHT`), so a customer's natural
  extra words do not sink an answer. The fields are blended with :data:`PHRASING_WEIGHT` and
  :data:`QUESTION_WEIGHT`. Raw BM25 grows with the query's length and rarity, so it cannot be
  compared across queries; this share is in [0, 1] for every query, and one threshold can say
  "no answer".
- **Dense, with** ``classifier.model: accurate``: the encoders the classifier already ships
  (MiniLM hears English messages, multilingual-e5-small Chinese ones) embed every phrasing and
  answer once at build time; a query's cosine to its best phrasing and to the answer is
  blended, then measured against the FAQ's background: ``(cos − mean) / (1 − mean)`` over the
  entries, so the two encoders (e5's cosines all sit near 0.85, MiniLM's near 0.2) speak on
  one scale.

Weights and thresholds come from ``python bench/faq.py --fit`` on the demo shop's FAQ (cut to
one phrasing per entry, and whole) with its held-out questions (the tuning sets); the unit
weights were chosen on the same sets (``--sweep``). bench/faq.py reports on other shops' FAQs,
never tuned against. The fast path imports no encoder.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import bm25s
import numpy as np
import numpy.typing as npt
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS

from knowledge import faq_lexicon
from knowledge.shop import DEFAULT_LANGUAGE, TOPICS, Faq, FaqEntry, fold_text, normalise_language

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Float32Array = npt.NDArray[np.float32]

# Fitted by `python bench/faq.py --fit` on the tuning set (see the module docstring); where
# rivalries are within two wrong answers of the best, the largest wins (see bench/faq.py).
QUESTION_WEIGHT = 0.4
"""Share of the phrasings in the lexical score (the answer has the rest). Each field's score is
already a 0–1 share, so this is the whole weighting; heavier phrasings lose answers found only
in the answer text."""
BLENDED_QUESTION_WEIGHT = 0.4
""":data:`QUESTION_WEIGHT` of the lexical score in the blend: the encoders already hear how a
message resembles a phrasing, the words matter most for the facts in the answer."""
PHRASING_WEIGHT = 0.5
"""Share of the best single phrasing in the question score (the phrasings pooled have the rest)."""
DENSE_WEIGHT = 0.3
"""Share of the dense score in the blend when encoders are given."""
LEXICAL_MIN_SCORE = 0.098
"""Abstention threshold of the lexical score alone (the fast path)."""
LEXICAL_RIVALRY = 0.4
"""How much of the runner-up's lexical score is taken off the best entry's before the threshold
decides: a message whose words two entries fit about equally ("how long does express take":
delivery time or express delivery?) answers neither with confidence, one that fits one entry
far better is an answer even when it also says things the FAQ never does."""
BLENDED_MIN_SCORE = 0.114
"""Abstention threshold of the lexical + dense blend (the accurate path)."""
BLENDED_RIVALRY = 0.5
""":data:`LEXICAL_RIVALRY` of the blend."""

# Chosen on the tuning set with bench/faq.py (not fitted per shop).
SYNONYM_WEIGHT = 0.8
"""How much of a word a synonym from :mod:`knowledge.faq_lexicon` covers ("guarantee" for
"warranty"): less than the word itself, so a shop's own wording still ranks first."""
GRAM_WEIGHT = 0.15
"""Weight of each character 4-gram of a query word, against 1 for the word: enough for an
inflection or a typo ("delivered"/"delivery") to count a little, too little for a short word
inside a longer one ("turn" in "return") to answer."""
FUNCTION_WORD_WEIGHT = 0.3
"""Weight of words that carry little meaning ("your", "do", "have"; a Chinese bigram with 的/吗):
a message's extra words must not sink an answer, yet "do you …" alone answers nothing."""
UNSEEN_BIGRAM_WEIGHT = 0.3
"""Weight of a Chinese bigram the FAQ never writes although it writes both characters: mostly a
word boundary ("能用微信付款" → "用微", "信付"), not a topic the FAQ lacks."""

# BM25 parameters: bm25s's defaults (k1 1.5, b 0.75, Lucene idf); nothing here was tuned.
_K1 = 1.5
_B = 0.75


_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# A CJK run, or a run of other letters/digits (a word).
_RUNS = re.compile(f"([{_CJK_RANGES}]+)|([^\\W_{_CJK_RANGES}]+)")
_STOPWORDS = frozenset(STOPWORDS_EN)
"""Dropped from texts and messages alike (bm25s's English list: "the", "is", "to" …)."""
_QUESTION_WORDS = frozenset({"how", "what", "when", "where", "which", "who", "why", "can"})
_QUESTION_FRAME = frozenset({"ok", "okay", "fine", "possible", "please", "thanks", "thank", "hi", "hello", "hey"})
_LIGHT_VERBS = frozenset(
    {"take", "get", "make", "go", "come", "give", "want", "need", "know", "like", "would", "could", "tell", "let",
     "use", "see", "look"}
)
_FUNCTION_WORDS = (frozenset(STOPWORDS_EN_PLUS) | _QUESTION_FRAME | _LIGHT_VERBS) - _STOPWORDS - _QUESTION_WORDS
"""Kept, at :data:`FUNCTION_WORD_WEIGHT` in a message: NLTK's longer list (as bm25s ships it),
the words a question is wrapped in ("is PayPal ok?", "hi, …") and light verbs ("how long does
it take", "can I get"). Question words keep their full weight against the phrasings: "when"
and "where" ask different things."""
_CHINESE_FUNCTION_CHARS = frozenset("的了吗呢吧啊呀哦嘛是有在我你您他她它们么这那个也都就还又很好请谢")
"""Characters a Chinese message wraps a question in ("…吗", "…呢"); alone they are no topic
("你好")."""
_NOT_IN_ANSWERS = frozenset(_QUESTION_WORDS | {"many", "much"})
"""Question words ("how", "how many") weigh :data:`FUNCTION_WORD_WEIGHT` against the answers:
an answer says "2 years", never "how long"."""
_GRAM = 4
_GRAM_MARK = "#"  # n-grams and words share one vocabulary: "#pay" is never the word "pay"


def _stem(word: str) -> str:
    """Light English stemming: plurals only ("batteries" → "battery", "cards" → "card").

    Anything heavier is left to the character n-grams, which match "deliver" in "delivery"
    without a language-specific stemmer.
    """
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _grams(stem: str) -> list[str]:
    if len(stem) < _GRAM:
        return []
    padded = f"<{stem}>"
    return [_GRAM_MARK + padded[i : i + _GRAM] for i in range(len(padded) - _GRAM + 1)]


def _cjk_terms(run: str) -> list[str]:
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def _runs(text: str) -> list[tuple[str, str]]:
    """(CJK run, "") or ("", word) in order, folded."""
    runs: list[tuple[str, str]] = _RUNS.findall(fold_text(text))
    return runs


def analyse(text: str) -> list[str]:
    """The BM25 terms of a text: folded, stemmed words and their 4-grams; CJK 1- and 2-grams."""
    terms: list[str] = []
    for cjk, word in _runs(text):
        if cjk:
            terms.extend(_cjk_terms(cjk))
        elif word not in _STOPWORDS:
            stem = _stem(word)
            terms.append(stem)
            terms.extend(_grams(stem))
    return terms


# --- a message: words, each with its synonyms ------------------------------------------

@dataclass(frozen=True, slots=True)
class _Form:
    """One way of writing a word: its BM25 terms with their weights, and the terms whose
    presence in a field says the field uses that word (its stems, a Chinese word's bigrams)."""

    terms: tuple[str, ...]
    weights: tuple[float, ...]
    heads: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Unit:
    """One word (or phrase, or Chinese character or bigram) of a message: as written, then its
    synonyms; a field covers it by the best of them."""

    forms: tuple[_Form, ...]
    weight: float = 1.0
    chars: tuple[str, str] | None = None  # a lone CJK bigram: its characters (see UNSEEN_BIGRAM_WEIGHT)
    question: bool = False  # a question word (see _NOT_IN_ANSWERS)


def _english_form(stems: Sequence[str]) -> _Form:
    terms: list[str] = []
    weights: list[float] = []
    for stem in stems:
        grams = _grams(stem)
        terms += [stem, *grams]
        weights += [1.0] + [GRAM_WEIGHT] * len(grams)
    return _Form(tuple(terms), tuple(weights), tuple(stems))


def _chinese_form(word: str) -> _Form:
    terms = _cjk_terms(word)
    heads = tuple(word[i : i + 2] for i in range(len(word) - 1)) or (word,)
    return _Form(tuple(terms), (1.0,) * len(terms), heads)


def _english_key(phrase: str) -> tuple[str, ...]:
    return tuple(_stem(word) for _, word in _runs(phrase) if word and word not in _STOPWORDS)


@dataclass(frozen=True, slots=True)
class _Synonyms:
    """:mod:`knowledge.faq_lexicon` as lookups: stems (or a phrase's stems) → the other members."""

    english: Mapping[tuple[str, ...], tuple[tuple[str, ...], ...]]
    longest_english: int
    chinese: Mapping[str, tuple[str, ...]]
    longest_chinese: int


@cache
def _synonyms() -> _Synonyms:
    english: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for group in faq_lexicon.ENGLISH:
        keys = list(dict.fromkeys(_english_key(member) for member in group))
        for key in keys:
            english.setdefault(key, []).extend(other for other in keys if other != key)
    chinese: dict[str, list[str]] = {}
    for words in faq_lexicon.CHINESE:
        for word in words:
            chinese.setdefault(word, []).extend(other for other in words if other != word)
    return _Synonyms(
        {key: tuple(dict.fromkeys(others)) for key, others in english.items()},
        max(map(len, english)),
        {word: tuple(dict.fromkeys(others)) for word, others in chinese.items()},
        max(map(len, chinese)),
    )


def _english_units(words: Sequence[str]) -> Iterator[_Unit]:
    synonyms = _synonyms()
    kept = [word for word in words if word not in _STOPWORDS]
    stems = [_stem(word) for word in kept]
    i = 0
    while i < len(stems):
        # The longest lexicon phrase starting here ("send back"), else the word alone.
        for n in range(min(synonyms.longest_english, len(stems) - i), 0, -1):
            key = tuple(stems[i : i + n])
            others = synonyms.english.get(key)
            if others is not None or n == 1:
                break
        weight = FUNCTION_WORD_WEIGHT if n == 1 and kept[i] in _FUNCTION_WORDS else 1.0
        forms = (_english_form(key), *(_english_form(other) for other in others or ()))
        yield _Unit(forms, weight, question=n == 1 and kept[i] in _NOT_IN_ANSWERS)
        i += n


def _chinese_units(run: str) -> Iterator[_Unit]:
    synonyms = _synonyms()
    word_at = [-1] * len(run)  # per character: which lexicon word of the run holds it
    found = 0
    i = 0
    while i < len(run):
        longest = min(synonyms.longest_chinese, len(run) - i)
        n = next((n for n in range(longest, 0, -1) if run[i : i + n] in synonyms.chinese), 0)
        if not n:
            i += 1
            continue
        word = run[i : i + n]
        yield _Unit((_chinese_form(word), *(_chinese_form(other) for other in synonyms.chinese[word])))
        word_at[i : i + n] = [found] * n
        found += 1
        i += n
    # The rest as characters and bigrams, as the FAQ's texts are indexed; a lexicon word's own
    # characters and bigrams are its forms' terms already.
    for j, char in enumerate(run):
        if word_at[j] < 0 and char not in _CHINESE_FUNCTION_CHARS:
            yield _Unit((_chinese_form(char),))
    for j in range(len(run) - 1):
        if word_at[j] >= 0 and word_at[j] == word_at[j + 1]:
            continue
        bigram = run[j : j + 2]
        weight = FUNCTION_WORD_WEIGHT if _CHINESE_FUNCTION_CHARS.intersection(bigram) else 1.0
        yield _Unit((_Form((bigram,), (1.0,), (bigram,)),), weight, (bigram[0], bigram[1]))


def _query(text: str) -> tuple[_Unit, ...]:
    """A message's units, in order: English words (a lexicon phrase as one), Chinese lexicon
    words, then the remaining Chinese characters and bigrams."""
    units: list[_Unit] = []
    words: list[str] = []
    for cjk, word in _runs(text):
        if word:
            words.append(word)
            continue
        units.extend(_english_units(words))
        words = []
        units.extend(_chinese_units(cjk))
    units.extend(_english_units(words))
    return tuple(units)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A message's units as arrays, the same for every field: scoring is a few matrix products."""

    terms: tuple[str, ...]  # every term of every form, then the lone bigrams' characters
    forms: FloatArray  # form × term: the term's weight in the form
    heads: FloatArray  # form × term: 1 where the term is one of the form's heads
    starts: IntArray  # first form of each unit (forms are grouped by unit, as written first)
    synonym: npt.NDArray[np.bool_]  # per form: not the unit as written
    weights: FloatArray  # per unit
    chars: IntArray  # per unit: the term index of a lone bigram's two characters, or -1
    question: npt.NDArray[np.bool_]  # per unit


def _plan(units: Sequence[_Unit]) -> _Plan:
    index: dict[str, int] = {}
    for unit in units:
        for form in unit.forms:
            for term in form.terms:
                index.setdefault(term, len(index))
    for unit in units:
        for char in unit.chars or ():
            index.setdefault(char, len(index))
    n_forms = sum(len(unit.forms) for unit in units)
    forms = np.zeros((n_forms, len(index)))
    heads = np.zeros((n_forms, len(index)))
    synonym = np.zeros(n_forms, dtype=bool)
    starts: list[int] = []
    chars = np.full((len(units), 2), -1, dtype=np.intp)
    row = 0
    for u, unit in enumerate(units):
        starts.append(row)
        for f, form in enumerate(unit.forms):
            for term, weight in zip(form.terms, form.weights, strict=True):
                forms[row, index[term]] += weight
            for term in form.heads:
                heads[row, index[term]] = 1.0
            synonym[row] = f > 0
            row += 1
        if unit.chars is not None:
            chars[u] = [index[unit.chars[0]], index[unit.chars[1]]]
    return _Plan(
        tuple(index),
        forms,
        heads,
        np.asarray(starts, dtype=np.intp),
        synonym,
        np.asarray([unit.weight for unit in units]),
        chars,
        np.asarray([unit.question for unit in units], dtype=bool),
    )


class TextEncoder(Protocol):
    """A sentence encoder: l2-normalised embeddings, one row per text (``intents.embeddings.BertEncoder``)."""

    def encode(self, texts: Sequence[str]) -> Float32Array: ...


def bundled_encoders(chinese_encoder: str = "multilingual-e5-small") -> dict[str, TextEncoder]:
    """The accurate classifier's encoders, keyed by the language whose messages they hear.

    Loads weights (about a second each, shared with the classifier): call it off the event
    loop. ``chinese_encoder`` is ``classifier.chinese_encoder``; ``"none"`` leaves Chinese
    messages to the lexical score.
    """
    from intents.embeddings import shared_encoder

    encoders: dict[str, TextEncoder] = {"en": shared_encoder("all-MiniLM-L6-v2")}
    if chinese_encoder != "none":
        encoders["zh"] = shared_encoder(chinese_encoder)
    return encoders


# --- what one language sees ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Texts:
    """Per entry, the phrasings and answers a query in one language is compared with."""

    questions: tuple[tuple[str, ...], ...]
    answers: tuple[tuple[str, ...], ...]


def _texts_for(entries: Sequence[FaqEntry], language: str | None) -> _Texts:
    # None (language unknown): every language of the entry counts.
    if language is None:
        return _Texts(
            tuple(tuple(q for qs in e.questions.values() for q in qs) for e in entries),
            tuple(tuple(e.answer.values()) for e in entries),
        )
    return _Texts(
        tuple(tuple(e.questions_for(language)) for e in entries),
        tuple((e.answer_for(language),) for e in entries),
    )


class _Field:
    """One BM25 index (bm25s) over one kind of document, scoring a message's share of its weight."""

    def __init__(self, documents: Sequence[list[str]], answers: bool = False) -> None:
        self._answers = answers
        bm25 = bm25s.BM25(k1=_K1, b=_B, method="lucene")
        bm25.index(list(documents), show_progress=False)
        self._vocab: dict[str, int] = {str(term): int(i) for term, i in bm25.vocab_dict.items()}
        self._n = len(documents)
        # bm25s keeps term × document scores compressed by term: per term, its documents and scores.
        matrix = bm25.scores
        self._indptr = np.asarray(matrix["indptr"], dtype=np.intp)
        self._documents = np.asarray(matrix["indices"], dtype=np.intp)
        self._scores = np.asarray(matrix["data"], dtype=np.float64)
        n_terms = len(self._indptr) - 1
        # The same idf as bm25s's Lucene variant: the most a term can add to a document's score.
        frequency = np.zeros(n_terms)
        for document in documents:
            for term in set(document):
                frequency[self._vocab[term]] += 1
        self._idf = np.log(1 + (self._n - frequency + 0.5) / (frequency + 0.5))
        self._unseen_idf = math.log(1 + (self._n + 0.5) / 0.5)

    def _rows(self, ids: IntArray, present: npt.NDArray[np.bool_]) -> FloatArray:
        """term × document BM25 scores of the message's terms (rows of zeros for unseen ones)."""
        rows = np.zeros((len(ids), self._n))
        starts = self._indptr[ids[present]]
        lengths = self._indptr[ids[present] + 1] - starts
        # Every stored (term, document) score of those terms, gathered in one pass.
        positions = np.arange(int(lengths.sum())) + np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        terms = np.repeat(np.flatnonzero(present), lengths)
        rows[terms, self._documents[positions]] = self._scores[positions]
        return rows

    def scores(self, plan: _Plan) -> FloatArray:
        """Per document, the share of the message's weight it covers (0–1).

        Each unit weighs its idf (a word the field never uses: the highest idf) and is covered
        by its best form: as written, or a synonym at :data:`SYNONYM_WEIGHT`. A word the field
        only knows through a synonym weighs what the synonym weighs; an unknown word counts in
        full, so a message mostly about something else covers little. Against the answers,
        question words weigh :data:`FUNCTION_WORD_WEIGHT`.
        """
        ids = np.asarray([self._vocab.get(term, -1) for term in plan.terms], dtype=np.intp)
        present = ids >= 0
        if not present.any():
            return np.zeros(self._n)
        idf = np.full(len(ids), self._unseen_idf)
        idf[present] = self._idf[ids[present]]
        rows = self._rows(ids, present)
        form_weight = plan.forms @ idf
        # Per form, the share of its weight a document covers: below 1, as bm25s's Lucene
        # scores stay below the idf.
        cover = (plan.forms @ rows) / form_weight[:, None]
        known = plan.heads @ (~present).astype(np.float64) == 0
        usable = known | ~plan.synonym
        cover = np.where(usable[:, None], cover, 0.0) * np.where(plan.synonym, SYNONYM_WEIGHT, 1.0)[:, None]
        unit_cover = np.maximum.reduceat(cover, plan.starts, axis=0)
        written = plan.starts
        synonym_weight = np.maximum.reduceat(np.where(plan.synonym & known, form_weight, 0.0), plan.starts)
        weight = np.where(known[written], form_weight[written], synonym_weight)
        unknown = weight == 0.0
        if unknown.any():
            # Unknown in every form: the weight as written, a lone bigram's boundary discount aside.
            boundary = (plan.chars[:, 0] >= 0) & present[plan.chars[:, 0]] & present[plan.chars[:, 1]]
            weight = np.where(
                unknown, form_weight[written] * np.where(boundary, UNSEEN_BIGRAM_WEIGHT, 1.0), weight
            )
        weight = weight * plan.weights
        if self._answers:
            weight = np.where(plan.question, weight * FUNCTION_WORD_WEIGHT, weight)
        total = float(weight.sum())
        if total <= 0.0:
            return np.zeros(self._n)
        scores: FloatArray = (weight @ unit_cover) / total
        return scores


class _Lexical:
    """An entry's phrasings, its phrasings pooled, and its answer, as three BM25 fields.

    Separate indexes keep each field's idf and length normalisation to itself, so the answers'
    scale does not move when a shop adds phrasings. The question score blends the entry's
    best phrasing (a near-verbatim message wins) with its phrasings pooled (a message that
    borrows words from several still finds it).
    """

    def __init__(self, texts: _Texts) -> None:
        self._phrasings = _Field([analyse(q) for qs in texts.questions for q in qs])
        self._starts = np.cumsum([0] + [len(qs) for qs in texts.questions[:-1]]).astype(np.intp)
        self._pooled = _Field([analyse(" ".join(qs)) for qs in texts.questions])
        self._answers = _Field([analyse(" ".join(answers)) for answers in texts.answers], answers=True)

    def scores(self, plan: _Plan, question_weight: float) -> FloatArray:
        """Per entry, the share of the message's weight its question and answer cover (0–1),
        the question weighing ``question_weight``."""
        best = np.maximum.reduceat(self._phrasings.scores(plan), self._starts)
        question = PHRASING_WEIGHT * best + (1.0 - PHRASING_WEIGHT) * self._pooled.scores(plan)
        answer = self._answers.scores(plan)
        blended: FloatArray = question_weight * question + (1.0 - question_weight) * answer
        return blended


@dataclass(frozen=True, slots=True)
class _Rows:
    """Which embedding rows belong to which entry (grouped, for np.maximum.reduceat)."""

    rows: IntArray
    starts: IntArray


def _rows(groups: Sequence[Sequence[str]], row_of: Mapping[str, int]) -> _Rows:
    rows: list[int] = []
    starts: list[int] = []
    for texts in groups:
        starts.append(len(rows))
        rows.extend(row_of[text] for text in texts)
    return _Rows(np.asarray(rows, dtype=np.intp), np.asarray(starts, dtype=np.intp))


class _Dense:
    """One encoder's embeddings of every phrasing and answer, and the per-language row groups."""

    def __init__(self, encoder: TextEncoder, views: Mapping[str | None, _Texts], cache_size: int = 256) -> None:
        distinct: dict[str, int] = {}
        for texts in views.values():
            for group in (*texts.questions, *texts.answers):
                for text in group:
                    distinct.setdefault(text, len(distinct))
        self._encoder = encoder
        self._matrix = np.asarray(encoder.encode(list(distinct)), dtype=np.float32)
        self._views = {
            lang: (_rows(texts.questions, distinct), _rows(texts.answers, distinct)) for lang, texts in views.items()
        }
        self._cache: OrderedDict[str, Float32Array] = OrderedDict()
        self._cache_size = cache_size

    def _embed(self, text: str) -> Float32Array:
        vector = self._cache.get(text)
        if vector is None:
            vector = np.asarray(self._encoder.encode([text])[0], dtype=np.float32)
            self._cache[text] = vector
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(text)
        return vector

    def scores(self, text: str, view: str | None) -> FloatArray:
        """Per entry, how far its cosine stands above the FAQ's mean, toward 1 (may be < 0)."""
        cosine = (self._matrix @ self._embed(text)).astype(np.float64)
        questions, answers = self._views[view]
        best_question = np.maximum.reduceat(cosine[questions.rows], questions.starts)
        best_answer = np.maximum.reduceat(cosine[answers.rows], answers.starts)
        blended: FloatArray = 0.5 * best_question + 0.5 * best_answer
        mean = float(blended.mean())
        return (blended - mean) / max(1.0 - mean, 1e-6)


def _lead(ranked: FloatArray, rivalry: float) -> float:
    """The best score (of ``ranked``, best first) less ``rivalry`` times the runner-up's: what
    the two best entries both cover does not tell them apart."""
    runner_up = float(ranked[1]) if len(ranked) > 1 else 0.0
    return float(ranked[0]) - rivalry * runner_up


# --- the index -------------------------------------------------------------------------

class FaqSearch:
    """The shop's FAQ, searchable by what customers write; built once, shared by all turns.

    ``search`` is what handlers call (``turn.services.faq.search(text, lang, topic=..., k=1)``).
    Building costs a few milliseconds per entry lexically, and with ``encoders`` one encoder
    pass per phrasing and answer (seconds): build it off the event loop. A query costs well
    under a millisecond on the fast path, one encoder pass (a few ms) more on the accurate one.
    """

    def __init__(
        self,
        faq: Faq,
        encoders: Mapping[str, TextEncoder] | None = None,
        *,
        question_weight: float = QUESTION_WEIGHT,
        blended_question_weight: float = BLENDED_QUESTION_WEIGHT,
        dense_weight: float = DENSE_WEIGHT,
        lexical_min_score: float = LEXICAL_MIN_SCORE,
        blended_min_score: float = BLENDED_MIN_SCORE,
        lexical_rivalry: float = LEXICAL_RIVALRY,
        blended_rivalry: float = BLENDED_RIVALRY,
        query_cache: int = 256,
    ) -> None:
        """Index ``faq``; ``encoders`` (language → encoder, see :func:`bundled_encoders`) add
        the dense score for messages in those languages. ``query_cache``: how many recent
        messages keep their embedding (presale searches a message twice: its topic, then any)."""
        self.faq = faq
        self._entries = tuple(faq.entries)
        self._topics = np.asarray([entry.topic for entry in self._entries])
        self._dense_weight = dense_weight
        self._lexical_min_score = lexical_min_score
        self._blended_min_score = blended_min_score
        self._lexical_rivalry = lexical_rivalry
        self._blended_rivalry = blended_rivalry
        languages = sorted({lang for entry in self._entries for lang in (*entry.questions, *entry.answer)})
        views: dict[str | None, _Texts] = {lang: _texts_for(self._entries, lang) for lang in languages}
        views[None] = _texts_for(self._entries, None)
        self._question_weight = question_weight
        self._blended_question_weight = blended_question_weight
        self._fields = {lang: _Lexical(texts) for lang, texts in views.items()}
        self._dense = {lang: _Dense(encoder, views, query_cache) for lang, encoder in (encoders or {}).items()}

    @property
    def dense(self) -> bool:
        """Whether an encoder takes part (``classifier.model: accurate``)."""
        return bool(self._dense)

    @property
    def min_score(self) -> float:
        """The score an answer must reach: the blend's threshold when encoders are given."""
        return self._blended_min_score if self._dense else self._lexical_min_score

    def scores(self, text: str, language: str | None = None) -> tuple[FloatArray, float]:
        """Every entry's score for ``text`` (in FAQ order) and the threshold that applies to it.

        The threshold depends on whether an encoder heard the message (a Chinese message
        without a Chinese encoder is scored lexically only).
        """
        scores, threshold, _ = self._shares(text, language)
        return scores, threshold

    def search(
        self, text: str, language: str | None = None, topic: str | None = None, k: int = 3
    ) -> list[tuple[FaqEntry, float]]:
        """The ``k`` best entries for a message with their scores, best first; empty when the
        best entry's score, less :data:`LEXICAL_RIVALRY` times the runner-up's, does not reach
        the threshold (the FAQ has no answer to it, or cannot tell which), else every entry of
        the ``k`` whose score does.

        ``language`` picks the texts compared against (per entry, English where the entry
        lacks that language; every language when None); ``topic`` restricts to one of
        :data:`TOPICS`, and the runner-up is then that topic's (the customer's intent already
        chose the topic: "how long does it take?" asked of returns is the refund time, however
        well it fits the delivery time).
        """
        if topic is not None and topic not in TOPICS:
            raise ValueError(f"unknown FAQ topic {topic!r}; expected one of {TOPICS}")
        if k <= 0:
            return []
        shares, threshold, rivalry = self._shares(text, language)
        candidates = np.flatnonzero(self._topics == topic) if topic is not None else np.arange(len(shares))
        scores = shares[candidates]
        order = np.argsort(-scores, kind="stable")
        if not len(order) or _lead(scores[order], rivalry) < threshold:
            return []
        return [(self._entries[candidates[i]], float(scores[i])) for i in order[:k] if scores[i] >= threshold]

    def _shares(self, text: str, language: str | None) -> tuple[FloatArray, float, float]:
        """Every entry's share of the message, and the threshold and rivalry that apply."""
        units = _query(text)
        if not units:
            return np.zeros(len(self._entries)), self._lexical_min_score, self._lexical_rivalry
        # A language the FAQ does not have is searched in English, as answer_for answers.
        view = normalise_language(language) if language else None
        if view not in self._fields:
            view = DEFAULT_LANGUAGE
        plan = _plan(units)
        dense = self._dense.get(self._hearer(text)) if self._dense else None
        if dense is None:
            lexical = self._fields[view].scores(plan, self._question_weight)
            return lexical, self._lexical_min_score, self._lexical_rivalry
        lexical = self._fields[view].scores(plan, self._blended_question_weight)
        blended = (1.0 - self._dense_weight) * lexical + self._dense_weight * dense.scores(text, view)
        return blended, self._blended_min_score, self._blended_rivalry

    def _hearer(self, text: str) -> str:
        from intents.embeddings import message_language

        return message_language(text)[0]
