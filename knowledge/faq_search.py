"""FAQ retrieval over what the shop wrote: each entry's questions AND its answer.

Shop owners write one question per entry ("Which payment methods do you accept?") and put the
facts in the answer ("… PayPal, Alipay …"), so a customer asking "is PayPal fine?" is only
answered when the answer text is searched too. Every entry is read in the customer's language
(English where the entry lacks it, as :meth:`FaqEntry.answer_for` answers).

Two scores, blended:

- **Lexical, always**: BM25 (bm25s) per language over three fields of every entry: each
  phrasing, the phrasings pooled, and the answer. Latin words are folded, lightly
  stemmed and also cut into character 4-grams (typos, inflections: "deliver"/"delivery");
  Chinese runs into character unigrams and bigrams (no segmenter needed). Per field (each
  phrasing, the phrasings pooled, the answer) an entry's score is the share of the query's
  BM25 weight (the sum of its terms' idf, a term the field never uses counting at the highest
  idf) that the field covers; the fields are blended with :data:`PHRASING_WEIGHT` and
  :data:`QUESTION_WEIGHT`. Raw BM25 grows with the query's length and rarity, so it
  cannot be compared across queries; this share is in [0, 1] for every query, and one
  threshold can say "no answer".
- **Dense, with** ``classifier.model: accurate``: the encoders the classifier already ships
  (MiniLM hears English messages, multilingual-e5-small Chinese ones) embed every phrasing and
  answer once at build time; a query's cosine to its best phrasing and to the answer is
  blended, then measured against the FAQ's background: ``(cos − mean) / (1 − mean)`` over the
  entries, so the two encoders (e5's cosines all sit near 0.85, MiniLM's near 0.2) speak on
  one scale.

Weights and thresholds come from ``python bench/faq.py --fit`` on the demo shop's FAQ (cut to
one phrasing per entry, and whole) with its held-out questions (the tuning sets); bench/faq.py reports on
other shops' FAQs, never tuned against. The fast path imports no encoder.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import bm25s
import numpy as np
import numpy.typing as npt
from bm25s.stopwords import STOPWORDS_EN

from knowledge.shop import DEFAULT_LANGUAGE, TOPICS, Faq, FaqEntry, fold_text, normalise_language

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Float32Array = npt.NDArray[np.float32]

# Fitted by `python bench/faq.py --fit` on the tuning set (see the module docstring).
QUESTION_WEIGHT = 0.4
"""Share of the phrasings in the lexical score (the answer has the rest). Each field's score is
already a 0–1 share, so this is the whole weighting; on the tuning sets 0.4 and 0.5 tie (the
grid starts at 0.4), heavier phrasings lose answers found only in the answer text."""
PHRASING_WEIGHT = 0.5
"""Share of the best single phrasing in the question score (the phrasings pooled have the rest)."""
DENSE_WEIGHT = 0.4
"""Share of the dense score in the blend when encoders are given."""
LEXICAL_MIN_SCORE = 0.113
"""Abstention threshold of the lexical score alone (the fast path)."""
BLENDED_MIN_SCORE = 0.164
"""Abstention threshold of the lexical + dense blend (the accurate path)."""

# BM25 parameters: bm25s's defaults (k1 1.5, b 0.75, Lucene idf); nothing here was tuned.
_K1 = 1.5
_B = 0.75

_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# A CJK run, or a run of other letters/digits (a word).
_RUNS = re.compile(f"([{_CJK_RANGES}]+)|([^\\W_{_CJK_RANGES}]+)")
_STOPWORDS = frozenset(STOPWORDS_EN)
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


def analyse(text: str) -> list[str]:
    """The BM25 terms of a text: folded, stemmed words and their 4-grams; CJK 1- and 2-grams."""
    terms: list[str] = []
    for cjk, word in _RUNS.findall(fold_text(text)):
        if cjk:
            terms.extend(cjk)
            terms.extend(cjk[i : i + 2] for i in range(len(cjk) - 1))
        elif word not in _STOPWORDS:
            stem = _stem(word)
            terms.append(stem)
            if len(stem) >= _GRAM:
                padded = f"<{stem}>"
                terms.extend(_GRAM_MARK + padded[i : i + _GRAM] for i in range(len(padded) - _GRAM + 1))
    return terms


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
    """One BM25 index (bm25s) over one kind of document, scoring a query's share of its weight."""

    def __init__(self, documents: Sequence[list[str]]) -> None:
        self._bm25 = bm25s.BM25(k1=_K1, b=_B, method="lucene")
        self._bm25.index(list(documents), show_progress=False)
        self._vocab: dict[str, int] = {str(term): int(i) for term, i in self._bm25.vocab_dict.items()}
        self._n = len(documents)
        # The same idf as bm25s's Lucene variant: the most a term can add to a document's score.
        frequency: dict[str, int] = {}
        for document in documents:
            for term in set(document):
                frequency[term] = frequency.get(term, 0) + 1
        self._idf = {term: math.log(1 + (self._n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}
        self._unseen_idf = math.log(1 + (self._n + 0.5) / 0.5)

    def scores(self, terms: Sequence[str]) -> FloatArray:
        """Per document, its BM25 score over the most any document could score (0–1).

        That most is the sum of the query terms' idf, a term no document has counting at the
        highest idf: a message mostly about something else covers little of it.
        """
        ids = [self._vocab[term] for term in terms if term in self._vocab]
        if not ids:
            return np.zeros(self._n)
        weight = sum(self._idf.get(term, self._unseen_idf) for term in terms)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float64) / weight


class _Lexical:
    """An entry's phrasings, its phrasings pooled, and its answer, as three BM25 fields.

    Separate indexes keep each field's idf and length normalisation to itself, so the answers'
    scale does not move when a shop adds phrasings. The question score blends the entry's
    best phrasing (a near-verbatim message wins) with its phrasings pooled (a message that
    borrows words from several still finds it).
    """

    def __init__(self, texts: _Texts, question_weight: float) -> None:
        self._phrasings = _Field([analyse(q) for qs in texts.questions for q in qs])
        self._starts = np.cumsum([0] + [len(qs) for qs in texts.questions[:-1]]).astype(np.intp)
        self._pooled = _Field([analyse(" ".join(qs)) for qs in texts.questions])
        self._answers = _Field([analyse(" ".join(answers)) for answers in texts.answers])
        self._question_weight = question_weight

    def scores(self, terms: Iterable[str]) -> FloatArray:
        """Per entry, the share of the query's weight its question and answer cover (0–1)."""
        unique = list(dict.fromkeys(terms))
        best = np.maximum.reduceat(self._phrasings.scores(unique), self._starts)
        question = PHRASING_WEIGHT * best + (1.0 - PHRASING_WEIGHT) * self._pooled.scores(unique)
        answer = self._answers.scores(unique)
        blended: FloatArray = self._question_weight * question + (1.0 - self._question_weight) * answer
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
        dense_weight: float = DENSE_WEIGHT,
        lexical_min_score: float = LEXICAL_MIN_SCORE,
        blended_min_score: float = BLENDED_MIN_SCORE,
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
        languages = sorted({lang for entry in self._entries for lang in (*entry.questions, *entry.answer)})
        views: dict[str | None, _Texts] = {lang: _texts_for(self._entries, lang) for lang in languages}
        views[None] = _texts_for(self._entries, None)
        self._lexical = {lang: _Lexical(texts, question_weight) for lang, texts in views.items()}
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
        terms = analyse(text)
        if not terms:
            return np.zeros(len(self._entries)), self._lexical_min_score
        # A language the FAQ does not have is searched in English, as answer_for answers.
        view = normalise_language(language) if language else None
        if view not in self._lexical:
            view = DEFAULT_LANGUAGE
        lexical = self._lexical[view].scores(terms)
        dense = self._dense.get(self._hearer(text)) if self._dense else None
        if dense is None:
            return lexical, self._lexical_min_score
        blended = (1.0 - self._dense_weight) * lexical + self._dense_weight * dense.scores(text, view)
        return blended, self._blended_min_score

    def search(
        self, text: str, language: str | None = None, topic: str | None = None, k: int = 3
    ) -> list[tuple[FaqEntry, float]]:
        """The ``k`` best entries for a message with their scores, best first; empty when no
        entry reaches the threshold (the FAQ has no answer to it).

        ``language`` picks the texts compared against (per entry, English where the entry
        lacks that language; every language when None); ``topic`` restricts to one of
        :data:`TOPICS`.
        """
        if topic is not None and topic not in TOPICS:
            raise ValueError(f"unknown FAQ topic {topic!r}; expected one of {TOPICS}")
        if k <= 0:
            return []
        scores, threshold = self.scores(text, language)
        if topic is not None:
            scores = np.where(self._topics == topic, scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self._entries[i], float(scores[i])) for i in order if scores[i] >= threshold]

    def _hearer(self, text: str) -> str:
        from intents.embeddings import message_language

        return message_language(text)[0]
