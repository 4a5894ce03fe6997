"""The FAQ index deskbot used before knowledge/faq_search.py, kept as bench/faq.py's baseline.

TF-IDF over character n-grams of the question phrasings only (answers not indexed), an
entry's score blending its best phrasing with all its phrasings pooled, abstaining below a
cosine of 0.25. Copied unchanged from knowledge/shop.py so that the comparison runs both in
one process; nothing outside bench/ uses it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from knowledge.shop import _CJK_RANGES, DEFAULT_LANGUAGE, TOPICS, Faq, FaqEntry, fold_text, normalise_language

# Character n-grams: Latin words are padded with spaces and cut into 3–5-grams (stems match:
# "deliver" in "delivery"; shorter grams are shared by too many words to mean anything);
# CJK runs into 1–2-grams, the usual size of Chinese words. Both ranges won on held-out
# paraphrases of the demo FAQ (tests/handlers/test_knowledge.py keeps a set of them).
_RUNS = re.compile(f"([{_CJK_RANGES}]+)|([^\\W_{_CJK_RANGES}]+)")
_LATIN_NGRAMS = (3, 5)
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


def _normalised(weights: Mapping[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    return {gram: w / norm for gram, w in weights.items()}


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class _View:
    """What a query in one language is compared with: which phrasing rows take part
    (1.0/0.0) and, per entry, the id of its pooled vector."""

    row_mask: FloatArray
    pooled_ids: IntArray


class FaqIndex:
    """TF-IDF retrieval over every question phrasing of the FAQ.

    Built once per FAQ, then shared by all conversations. Vectors are sublinear TF-IDF over
    character n-grams, which needs no word segmentation for Chinese and tolerates typos and
    inflections in English. An entry's score blends its best single phrasing (a near-exact
    match wins) with all its phrasings pooled into one vector (a message that borrows words
    from several phrasings still finds it). Answers are not indexed: on held-out paraphrases
    they changed no result at any weight, and their long text only adds noise.

    The index is an inverted list per n-gram, so a query costs a few array operations over
    the vectors sharing its n-grams: about 110 µs for a 50-character English message on the
    demo FAQ, where scikit-learn's ``TfidfVectorizer.transform`` plus the product took about
    490 µs (mostly per-call input checks) and its import about 0.9 s.
    """

    def __init__(self, faq: Faq, *, min_score: float = 0.25, pooled_weight: float = 0.6) -> None:
        """Index ``faq``.

        ``min_score``: entries below it are not returned, so an off-topic message gets no
        answer rather than the least bad one (0.25 kept every off-topic test message out of
        the demo FAQ). ``pooled_weight`` is the share of the pooled phrasings in the blend,
        0 meaning best phrasing only.
        """
        self.faq = faq
        self.min_score = min_score
        self._pooled_weight = pooled_weight
        self._entries = entries = faq.entries

        # Rows (phrasings) are grouped by entry so that search() takes each entry's best
        # row with one np.maximum.reduceat.
        texts: list[str] = []
        row_entry: list[int] = []
        row_lang: list[str] = []
        entry_starts: list[int] = []
        for index, entry in enumerate(entries):
            entry_starts.append(len(texts))
            for lang, questions in entry.questions.items():
                texts.extend(questions)
                row_entry.extend([index] * len(questions))
                row_lang.extend([lang] * len(questions))

        counts = [Counter(_ngrams(text)) for text in texts]
        document_frequency: Counter[str] = Counter()
        for row_counts in counts:
            document_frequency.update(row_counts.keys())
        # Smoothed idf as in scikit-learn; an n-gram the FAQ never uses gets the df = 0 value.
        self._idf = {
            gram: math.log((1 + len(texts)) / (1 + df)) + 1.0
            for gram, df in document_frequency.items()
        }
        self._unseen_idf = math.log(1 + len(texts)) + 1.0
        vectors = [
            _normalised({gram: (1.0 + math.log(tf)) * self._idf[gram] for gram, tf in c.items()})
            for c in counts
        ]

        # Pooled vectors follow the rows: one per entry and language, and one per entry over
        # all its languages for a query whose language is not known.
        pooled: dict[tuple[int, str | None], dict[str, float]] = {}
        for row, (index, lang) in enumerate(zip(row_entry, row_lang, strict=True)):
            keys: tuple[tuple[int, str | None], ...] = ((index, lang), (index, None))
            for key in keys:
                summed = pooled.setdefault(key, {})
                for gram, weight in vectors[row].items():
                    summed[gram] = summed.get(gram, 0.0) + weight
        pooled_id: dict[tuple[int, str | None], int] = {}
        for key, pool in pooled.items():
            pooled_id[key] = len(vectors)
            vectors.append(_normalised(pool))

        postings: dict[str, tuple[list[int], list[float]]] = {}
        for vector_id, vector in enumerate(vectors):
            for gram, weight in vector.items():
                ids, values = postings.setdefault(gram, ([], []))
                ids.append(vector_id)
                values.append(weight)
        self._postings: dict[str, tuple[IntArray, FloatArray]] = {
            gram: (np.asarray(ids, dtype=np.intp), np.asarray(values, dtype=np.float64))
            for gram, (ids, values) in postings.items()
        }
        self._n_vectors = len(vectors)
        self._n_rows = len(texts)
        self._entry_starts = np.asarray(entry_starts, dtype=np.intp)
        self._entry_topics = np.asarray([entry.topic for entry in entries])

        # Per query language, each entry is compared with its phrasings in that language,
        # or with its English ones when it has none (the same fallback as answer_for).
        langs = np.asarray(row_lang)
        owners = np.asarray(row_entry, dtype=np.intp)
        self._views: dict[str | None, _View] = {
            None: _View(
                np.ones(len(texts)),
                np.asarray([pooled_id[(i, None)] for i in range(len(entries))], dtype=np.intp),
            )
        }
        for lang in sorted(set(row_lang)):
            own = [lang if lang in entry.questions else DEFAULT_LANGUAGE for entry in entries]
            self._views[lang] = _View(
                (langs == np.asarray(own)[owners]).astype(np.float64),
                np.asarray([pooled_id[(i, own[i])] for i in range(len(entries))], dtype=np.intp),
            )

    def search(
        self, text: str, language: str | None = None, topic: str | None = None, k: int = 3
    ) -> list[tuple[FaqEntry, float]]:
        """The ``k`` best entries for a message with their scores (0–1), best first.

        ``language`` picks the phrasings compared against (per entry, English where the
        entry lacks that language; all languages when None); ``topic`` restricts to one of
        :data:`TOPICS`. Entries under ``min_score`` are left out, so the list may be empty.
        """
        if topic is not None and topic not in TOPICS:
            raise ValueError(f"unknown FAQ topic {topic!r}; expected one of {TOPICS}")
        query = Counter(_ngrams(text))
        if not query or k <= 0:
            return []
        id_chunks: list[IntArray] = []
        value_chunks: list[FloatArray] = []
        norm_sq = 0.0
        for gram, tf in query.items():
            weight = (1.0 + math.log(tf)) * self._idf.get(gram, self._unseen_idf)
            # Unseen n-grams still count in the norm: a message that is mostly about
            # something else must not score high on the few n-grams it shares.
            norm_sq += weight * weight
            posting = self._postings.get(gram)
            if posting is not None:
                id_chunks.append(posting[0])
                value_chunks.append(posting[1] * weight)
        if not id_chunks:
            return []
        cosine = np.bincount(
            np.concatenate(id_chunks), weights=np.concatenate(value_chunks), minlength=self._n_vectors
        ) / math.sqrt(norm_sq)
        # A language the FAQ does not have is searched in English, as answer_for answers.
        lang = normalise_language(language) if language else None
        view = self._views.get(lang) or self._views[DEFAULT_LANGUAGE]
        best_row = np.maximum.reduceat(cosine[: self._n_rows] * view.row_mask, self._entry_starts)
        scores = (1.0 - self._pooled_weight) * best_row + self._pooled_weight * cosine[view.pooled_ids]
        if topic is not None:
            scores[self._entry_topics != topic] = 0.0
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self._entries[i], float(scores[i])) for i in order if scores[i] >= self.min_score]


