"""The built-in intent classifier: TF-IDF n-grams + multinomial logistic regression.

One model serves every language through one code path. Character n-grams inside word
boundaries need no Chinese word segmenter and shrug off English typos; word n-grams add
phrase cues ("money back"). Logistic regression gives probabilities that are calibrated
well enough to drive the out-of-scope threshold.

scikit-learn is used to *fit*; inference re-implements the fitted transform in a few numpy
lines, because sklearn's per-call input validation costs far more than the arithmetic for a
single short message. ``tests/intents/test_classifier.py`` checks both paths agree.

A saved model is an ``.npz`` of plain arrays (loaded with ``allow_pickle=False``, so a
tampered model file cannot execute code) plus a ``.meta.json`` with the fingerprint of the
training data and config that produced it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from intents.base import OUT_OF_SCOPE, Entity, IntentClassifier, Prediction, merge_entities
from intents.config import DEFAULT_THRESHOLD, ClassifierConfig
from intents.embeddings import ENCODERS, EmbeddingHead, EmbeddingsUnavailable, message_language, shared_encoder
from intents.entities import SHOP_ENTITY_TYPES, EntityExtractor, EntitySpec, fold_width, lower_same_length
from intents.language import detect_language, normalise_language_tag
from intents.nlu_data import NluData, NluDataError, TrainingExample, load_nlu_data, nlu_files

logger = logging.getLogger(__name__)

FORMAT_VERSION = 5
"""Bump when featurisation changes: it is part of the fingerprint, so old models retrain."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Analyzer = Callable[[str], list[str]]
TrainingProgress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while training, for a progress bar."""

_DIGITS = re.compile(r"\d")
_SPACES = re.compile(r"\s+")
PLACEHOLDER = "\ue000"
"""Marks an entity placeholder; a private-use character never typed by a customer."""
_WORD_TOKEN = re.compile(
    "\ue000[^\ue000 ]*\ue000|[^\\W\\d_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+(?:['’][^\\W\\d_]+)?|\\d+"
)


class ModelLoadError(ValueError):
    """A saved model is missing, unreadable, or from another format version."""

    def __init__(self, message: str, *, source: Path | str | None = None) -> None:
        self.source = str(source) if source is not None else None
        super().__init__(f"{source}: {message}" if source is not None else message)


# -- featurisation ------------------------------------------------------------------------
# Entity types whose *value* tells intents apart ("refund" vs "exchange"): their placeholder
# keeps the normalised value, where product or size placeholders keep only the type.
VALUE_BEARING_TYPES = frozenset({"resolution"})


def prepare_text(text: str, max_chars: int, entities: Sequence[Entity] = ()) -> str:
    """Normalise before featurising: entities → placeholders, fold width, lower-case, digits → 0.

    Entities become their type (``台灯有白色吗`` → ``⟨product⟩有⟨colour⟩吗``): the intent does not
    depend on which product or size, and the placeholder lets the model generalise to catalog
    items it never saw in training. On the project data this is worth 1–2 points of held-out accuracy.
    Digits are folded so that ``#100234`` and ``#998710`` look alike. Only the first
    ``max_chars`` characters count, so a pasted 100 kB text stays fast.
    """
    text = text[:max_chars].replace(PLACEHOLDER, " ")
    if entities:
        parts: list[str] = []
        cursor = 0
        for ent in entities:
            if ent.start < cursor or ent.end > len(text):
                continue
            parts.append(text[cursor : ent.start])
            label = f"{ent.type}:{ent.value}" if ent.type in VALUE_BEARING_TYPES else ent.type
            parts.append(f"{PLACEHOLDER}{label}{PLACEHOLDER}")
            cursor = ent.end
        parts.append(text[cursor:])
        text = "".join(parts)
    text = lower_same_length(fold_width(text))
    return _SPACES.sub(" ", _DIGITS.sub("0", text)).strip()


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams of each space-padded word, like sklearn's ``char_wb``.

    Chinese has no spaces, so a Chinese sentence is one "word" and yields all its 1–3
    character n-grams: segmentation without a segmenter.
    """
    grams: list[str] = []
    append = grams.append
    for word in text.split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            if n > length:
                break
            for i in range(length - n + 1):
                gram = padded[i : i + n]
                if gram != " ":
                    append(gram)
    return grams


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    """Word n-grams of Latin-script tokens (Chinese is left to the character n-grams)."""
    tokens = _WORD_TOKEN.findall(text)
    grams: list[str] = []
    for n in range(low, high + 1):
        for i in range(len(tokens) - n + 1):
            grams.append("w:" + " ".join(tokens[i : i + n]))
    return grams


def word_pairs(text: str, low: int = 1, high: int = 1) -> list[str]:
    """Unordered pairs of the distinct words of a message ("card"+"arrive").

    Short support messages often name their intent with two words far apart ("my *card*
    still hasn't *arrived*"); pairs let a linear model weigh such combinations, which
    adjacent word n-grams miss. Worth about a point of macro-F1 on BANKING77. ``low`` and
    ``high`` are unused: the signature matches the other analysers.
    """
    words = sorted(set(_WORD_TOKEN.findall(text)))
    return [f"p:{a}|{b}" for i, a in enumerate(words) for b in words[i + 1 :]]


_ANALYZERS: dict[str, Callable[..., list[str]]] = {
    "char_wb": char_wb_ngrams,
    "word": word_ngrams,
    "pairs": word_pairs,
}


def _analyzers(config: ClassifierConfig) -> list[tuple[str, tuple[int, int], Analyzer]]:
    blocks: list[tuple[str, tuple[int, int], Analyzer]] = [
        (
            "char_wb",
            config.char_ngram_range,
            partial(char_wb_ngrams, low=config.char_ngram_range[0], high=config.char_ngram_range[1]),
        )
    ]
    if config.use_word_ngrams:
        blocks.append(
            (
                "word",
                config.word_ngram_range,
                partial(word_ngrams, low=config.word_ngram_range[0], high=config.word_ngram_range[1]),
            )
        )
    if config.use_word_pairs:
        blocks.append(("pairs", (1, 1), word_pairs))
    return blocks


@dataclass(frozen=True, slots=True)
class FeatureBlock:
    """One fitted TF-IDF vectoriser: its vocabulary and idf weights, l2-normalised on its own."""

    kind: str
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: FloatArray
    offset: int
    analyze: Analyzer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        low, high = self.ngram_range
        function = _ANALYZERS.get(self.kind)
        if function is None:
            raise ModelLoadError(f"unknown feature block kind {self.kind!r}")
        object.__setattr__(self, "analyze", partial(function, low=low, high=high))


@dataclass(frozen=True, slots=True)
class LinearIntentModel:
    """The fitted model reduced to arrays: enough to predict, nothing sklearn-specific."""

    intents: tuple[str, ...]
    blocks: tuple[FeatureBlock, ...]
    weights: FloatArray
    """Shape (n_features, n_classes), row-major so one feature's weights are contiguous."""
    bias: FloatArray
    sublinear_tf: bool
    max_chars: int
    entity_placeholders: bool

    embeddings: tuple[EmbeddingHead, ...] = ()
    """The accurate model's second voters, one per encoder language (English MiniLM, and
    m3e-small for Chinese when enabled); empty in the fast model."""

    def ngram_scores(self, text: str, entities: Sequence[Entity] = ()) -> FloatArray:
        """Linear scores of the n-gram model for one message, before the softmax."""
        prepared = prepare_text(text, self.max_chars, entities if self.entity_placeholders else ())
        indices: list[IntArray] = []
        values: list[FloatArray] = []
        for block in self.blocks:
            counts: dict[int, int] = {}
            vocabulary = block.vocabulary
            for gram in block.analyze(prepared):
                j = vocabulary.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if self.sublinear_tf:
                tf = np.log(tf) + 1.0
            weighted = tf * block.idf[idx]
            norm = float(np.sqrt(weighted @ weighted))
            if norm > 0.0:
                weighted /= norm
            indices.append(idx + block.offset)
            values.append(weighted)
        if indices:
            idx_all = indices[0] if len(indices) == 1 else np.concatenate(indices)
            val_all = values[0] if len(values) == 1 else np.concatenate(values)
            scores: FloatArray = val_all @ self.weights[idx_all] + self.bias
            return scores
        return self.bias.copy()

    def with_vote_weight(self, weight: float) -> LinearIntentModel:
        """The same model with every embedding voter at ``weight`` (tuned on validation rows)."""
        return replace(self, embeddings=tuple(replace(head, weight=weight) for head in self.embeddings))

    def head_for(self, text: str) -> tuple[EmbeddingHead, float] | None:
        """The embedding voter that should hear ``text``, with its weight; ``None`` if none can."""
        language, share = message_language(text)
        for head in self.embeddings:
            if head.language == language:
                return head, head.weight * share
        return None

    def probabilities(
        self, text: str, entities: Sequence[Entity] = (), *, embedding: npt.NDArray[np.float32] | None = None
    ) -> FloatArray:
        """Class probabilities for one message.

        ``entities`` are the extractor's findings in ``text``; they are used only when the
        model was trained with entity placeholders. ``embedding`` lets a caller that has
        encoded many messages in one batch pass this one's embedding (from :meth:`embed_many`).
        """
        scores = self.ngram_scores(text, entities)
        scores -= scores.max()
        voter = self.head_for(text) if self.embeddings else None
        if voter is not None and voter[1] > 0.0:
            head, share = voter
            vector = embedding if embedding is not None else head.encoder.encode_one(text[: self.max_chars])
            log_ngram = scores - np.log(np.exp(scores).sum())
            scores = (1.0 - share) * log_ngram + share * head.log_probabilities(vector)
            scores -= scores.max()
        np.exp(scores, out=scores)
        scores /= scores.sum()
        return scores

    def embed_many(self, texts: Sequence[str]) -> list[npt.NDArray[np.float32] | None]:
        """Each text's embedding from the encoder that hears it, encoded in batches per encoder
        (much faster than one by one); ``None`` where no encoder votes (always, in the fast model)."""
        out: list[npt.NDArray[np.float32] | None] = [None] * len(texts)
        if not self.embeddings:
            return out
        by_head: dict[int, list[int]] = {}
        for i, text in enumerate(texts):
            voter = self.head_for(text)
            if voter is not None and voter[1] > 0.0:
                by_head.setdefault(id(voter[0]), []).append(i)
        for head in self.embeddings:
            rows = by_head.get(id(head), [])
            if rows:
                vectors = head.encoder.encode([texts[i][: self.max_chars] for i in rows])
                for row, i in enumerate(rows):
                    out[i] = vectors[row]
        return out


def shop_annotations(example: TrainingExample) -> tuple[Entity, ...]:
    """The example's annotated shop entities (products, order ids), as the shop finds them at run time.

    In training they come from the annotation, at prediction from the shop's own data
    (``known`` in :meth:`BuiltinClassifier.predict`): either way the model sees only the
    placeholder, never one shop's product names or order-id format.
    """
    return tuple(ent for ent in example.entities if ent.type in SHOP_ENTITY_TYPES and ent.end > ent.start)


def training_texts(
    examples: Sequence[TrainingExample], config: ClassifierConfig, extractor: EntityExtractor
) -> list[str]:
    """The featuriser's input for each example, exactly as :meth:`LinearIntentModel.probabilities` builds it."""
    if not config.entity_placeholders:
        return [prepare_text(ex.text, config.max_chars) for ex in examples]
    texts = []
    for ex in examples:
        known = shop_annotations(ex)
        texts.append(prepare_text(ex.text, config.max_chars, merge_entities(known, extractor.extract(ex.text, known))))
    return texts


def _logistic_regression(config: ClassifierConfig) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=config.C,
        max_iter=config.max_iter,
        class_weight="balanced" if config.class_weight_balanced else None,
    )


_CJK_CHAR = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _pruned(vectorizer: Any, texts: Sequence[str], min_df: int) -> Any:
    """The same vectoriser limited to features seen in ``min_df`` examples, or holding Chinese.

    A Latin character n-gram or a word pair seen in one example only is mostly a typo or a
    coincidence, and the rare features make up half the vocabulary (and training time).
    A Chinese character n-gram seen once is often a real word (a product, an app), so it
    stays: pruning it costs a point of macro-F1 on SMP2017.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    counts = vectorizer.fit_transform(texts)
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    kept = sorted(t for t, j in vectorizer.vocabulary_.items() if df[j] >= min_df or _CJK_CHAR.search(t))
    return TfidfVectorizer(
        analyzer=vectorizer.analyzer, sublinear_tf=vectorizer.sublinear_tf, dtype=np.float64, vocabulary=kept
    )


def _fit_sklearn(
    examples: Sequence[TrainingExample],
    config: ClassifierConfig,
    extractor: EntityExtractor,
    progress: TrainingProgress | None = None,
) -> tuple[list[Any], Any]:
    """Fit the vectorisers and the logistic regression with scikit-learn."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    labels = sorted({ex.intent for ex in examples})
    if len(labels) < 2:
        raise NluDataError(f"training needs at least two intents, got {labels}")
    report = progress or (lambda stage, done, total: None)
    report("n-gram features", 0, len(examples))
    texts = training_texts(examples, config, extractor)
    prune = len(examples) >= config.min_df_from and config.min_df > 1
    vectorizers = []
    for kind, _, analyze in _analyzers(config):
        vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=config.sublinear_tf, dtype=np.float64)
        if prune and kind != "word":
            vectorizer = _pruned(vectorizer, texts, config.min_df)
        vectorizers.append(vectorizer)
    matrix = hstack([vec.fit_transform(texts) for vec in vectorizers]).tocsr()
    report("n-gram features", len(examples), len(examples))
    report("fit n-gram model", 0, 1)
    model = _logistic_regression(config)
    model.fit(matrix, [ex.intent for ex in examples])
    report("fit n-gram model", 1, 1)
    return vectorizers, model


def _class_parameters(model: Any) -> tuple[FloatArray, FloatArray]:
    """A fitted logistic regression's weights as one row per class (n_classes, n_features) and biases.

    Binary logistic regression keeps one row; softmax over [0, z] equals sigmoid(z), so a
    zero row in front makes two intents look like any other number of them.
    """
    coef = np.asarray(model.coef_, dtype=np.float64)
    bias = np.asarray(model.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        bias = np.concatenate([[0.0], bias])
    return coef, bias


def _fit_embedding_head(
    examples: Sequence[TrainingExample],
    intents: Sequence[str],
    config: ClassifierConfig,
    encoder_name: str,
    progress: TrainingProgress | None = None,
) -> EmbeddingHead:
    """Encode the training texts and fit a logistic regression on the embeddings.

    Every example trains every head, whatever its language: an intent with only English
    examples still gets a (weak) column in the Chinese head, so the columns always align.
    """
    encoder = shared_encoder(encoder_name)
    total = len(examples)
    stage = f"{encoder_name} embeddings"
    report = progress or (lambda stage, done, total: None)
    report(stage, 0, total)
    vectors = encoder.encode(
        [ex.text[: config.max_chars] for ex in examples], progress=lambda done: report(stage, done, total)
    )
    report("fit embedding model", 0, 1)
    model = _logistic_regression(config)
    model.fit(vectors, [ex.intent for ex in examples])
    report("fit embedding model", 1, 1)
    # Align the columns with the n-gram model's intent order.
    column = {str(c): i for i, c in enumerate(model.classes_)}
    order = [column[intent] for intent in intents]
    coef, bias = _class_parameters(model)
    return EmbeddingHead(
        weights=np.ascontiguousarray(coef[order].T),
        bias=bias[order],
        weight=config.embedding_weight,
        encoder=encoder,
        language=ENCODERS[encoder_name].language,
    )


def _encoders_for(examples: Sequence[TrainingExample], config: ClassifierConfig) -> list[str]:
    """The accurate model's encoders: one per language that some training example is in.

    A Chinese-only training set gets no English head (it would never vote) and vice versa;
    examples without letters ("88", "#100234") say nothing about language.
    """
    wanted = ["all-MiniLM-L6-v2"]
    if config.chinese_encoder != "none":
        wanted.append(config.chinese_encoder)
    languages = {message_language(ex.text)[0] for ex in examples if any(ch.isalpha() for ch in ex.text)}
    return [name for name in wanted if ENCODERS[name].language in languages]


def _export(vectorizers: Sequence[Any], model: Any, config: ClassifierConfig) -> LinearIntentModel:
    blocks: list[FeatureBlock] = []
    offset = 0
    for (kind, ngram_range, _), vec in zip(_analyzers(config), vectorizers, strict=True):
        vocabulary = {str(term): int(index) for term, index in vec.vocabulary_.items()}
        blocks.append(FeatureBlock(kind, ngram_range, vocabulary, np.asarray(vec.idf_, dtype=np.float64), offset))
        offset += len(vocabulary)
    coef, bias = _class_parameters(model)
    return LinearIntentModel(
        intents=tuple(str(c) for c in model.classes_),
        blocks=tuple(blocks),
        weights=np.ascontiguousarray(coef.T),
        bias=bias,
        sublinear_tf=config.sublinear_tf,
        max_chars=config.max_chars,
        entity_placeholders=config.entity_placeholders,
    )


# -- fingerprint --------------------------------------------------------------------------
def fingerprint(data_path: Path | str, config: ClassifierConfig) -> str:
    """SHA-256 over the NLU files' bytes and names and the training-relevant config."""
    root = Path(data_path)
    digest = hashlib.sha256()
    digest.update(f"deskbot-intents/{FORMAT_VERSION}\n".encode())
    digest.update(json.dumps(config.training_fields(), sort_keys=True).encode())
    for file in nlu_files(root):
        name = file.relative_to(root).as_posix() if root.is_dir() else file.name
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def metadata_path(model_path: Path | str) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".meta.json")


# -- the classifier -----------------------------------------------------------------------
class BuiltinClassifier(IntentClassifier):
    """Intent + entities for any configured language, in-process, sub-millisecond."""

    def __init__(
        self,
        model: LinearIntentModel,
        extractor: EntityExtractor,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        fingerprint: str | None = None,
        train_seconds: float | None = None,
    ) -> None:
        self.model = model
        self.extractor = extractor
        self.threshold = threshold
        self.fingerprint = fingerprint
        self.train_seconds = train_seconds

    @property
    def intents(self) -> tuple[str, ...]:
        return self.model.intents

    @classmethod
    def train(
        cls,
        data: NluData,
        config: ClassifierConfig | None = None,
        *,
        fingerprint: str | None = None,
        progress: TrainingProgress | None = None,
    ) -> BuiltinClassifier:
        """Fit on all examples of ``data``; entities come from its regex/lookup/synonym entries.

        ``config.model == "accurate"`` adds a second model over sentence embeddings, one per
        encoder language (see :mod:`intents.embeddings`); it raises
        :class:`EmbeddingsUnavailable` when the optional dependencies are missing.
        """
        config = config or ClassifierConfig()
        started = time.perf_counter()
        # Training sees shop entities where the data annotates them; at run time the shop's own
        # finders (its catalog, its order ids) pass them in as ``known``: same placeholders.
        training_extractor = EntityExtractor(EntitySpec.from_nlu(data), max_chars=config.max_chars)
        vectorizers, model = _fit_sklearn(data.examples, config, training_extractor, progress)
        linear = _export(vectorizers, model, config)
        if config.model == "accurate":
            heads = tuple(
                _fit_embedding_head(data.examples, linear.intents, config, name, progress)
                for name in _encoders_for(data.examples, config)
            )
            linear = replace(linear, embeddings=heads)
        seconds = time.perf_counter() - started
        return cls(
            linear, training_extractor, threshold=config.threshold, fingerprint=fingerprint, train_seconds=seconds
        )

    async def predict(self, text: str, language: str | None = None, known: Sequence[Entity] = ()) -> Prediction:
        if self.model.embeddings:
            # ~10 ms of numpy (which releases the GIL): keep the event loop serving others.
            return await asyncio.to_thread(self.predict_sync, text, language, known=known)
        return self.predict_sync(text, language, known=known)

    def predict_sync(
        self,
        text: str,
        language: str | None = None,
        *,
        known: Sequence[Entity] = (),
        embedding: npt.NDArray[np.float32] | None = None,
    ) -> Prediction:
        """The work of :meth:`predict`, without the event loop (benchmarks, evaluation)."""
        lang = normalise_language_tag(language) if language else detect_language(text)
        if not text or text.isspace():
            return Prediction(intent=OUT_OF_SCOPE, confidence=0.0, language=lang)
        entities = merge_entities(known, self.extractor.extract(text, known))
        probs = self.model.probabilities(text, entities, embedding=embedding)
        order = np.argsort(-probs, kind="stable")
        intents = self.model.intents
        ranking = tuple((intents[i], float(probs[i])) for i in order)
        best, confidence = ranking[0]
        # Below the threshold the top intent is a guess: report out_of_scope, but keep the
        # ranking and the top probability so a handler can still offer "did you mean …".
        intent = best if confidence >= self.threshold else OUT_OF_SCOPE
        return Prediction(intent=intent, confidence=confidence, ranking=ranking, entities=entities, language=lang)

    def predict_many(
        self,
        texts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        known: Sequence[Sequence[Entity]] | None = None,
    ) -> list[Prediction]:
        """:meth:`predict_sync` for many messages (``known``: each one's shop entities); the
        accurate model embeds them in batches."""
        langs = list(languages) if languages is not None else [None] * len(texts)
        knowns = list(known) if known is not None else [()] * len(texts)
        vectors = self.model.embed_many(texts)
        return [
            self.predict_sync(text, lang, known=shop, embedding=vectors[i])
            for i, (text, lang, shop) in enumerate(zip(texts, langs, knowns, strict=True))
        ]

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: Path | str) -> None:
        """Write the model (``.npz``) then its metadata (``.meta.json``), each atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "intents": list(self.model.intents),
            "blocks": [
                {"kind": b.kind, "ngram_range": list(b.ngram_range), "offset": b.offset} for b in self.model.blocks
            ],
            "sublinear_tf": self.model.sublinear_tf,
            "max_chars": self.model.max_chars,
            "entity_placeholders": self.model.entity_placeholders,
            "embeddings": [
                {"model": head.encoder.name, "weight": head.weight, "language": head.language}
                for head in self.model.embeddings
            ],
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "header": np.array(json.dumps(header)),
            "entities": np.array(self.extractor.spec.to_json()),
            "weights": self.model.weights,
            "bias": self.model.bias,
        }
        for i, block in enumerate(self.model.blocks):
            terms = [""] * len(block.vocabulary)
            for term, index in block.vocabulary.items():
                terms[index] = term
            arrays[f"terms_{i}"] = np.array(terms, dtype=str)
            arrays[f"idf_{i}"] = block.idf
        for i, head in enumerate(self.model.embeddings):
            arrays[f"embedding_weights_{i}"] = head.weights
            arrays[f"embedding_bias_{i}"] = head.bias
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        _atomic_write(path, buffer.getvalue())
        meta = {
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "intents": list(self.model.intents),
            "features": int(self.model.weights.shape[0]),
            "train_seconds": self.train_seconds,
        }
        _atomic_write(metadata_path(path), json.dumps(meta, indent=2).encode())

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> BuiltinClassifier:
        """Read a model written by :meth:`save`; raises :class:`ModelLoadError` if it is unusable."""
        path = Path(path)
        try:
            # Open the file ourselves: np.load leaks its handle when the zip is corrupt.
            with path.open("rb") as handle, np.load(handle, allow_pickle=False) as npz:
                header = json.loads(str(npz["header"]))
                if header.get("format_version") != FORMAT_VERSION:
                    raise ModelLoadError(
                        f"format version {header.get('format_version')} is not {FORMAT_VERSION}", source=path
                    )
                spec = EntitySpec.from_json(str(npz["entities"]))
                blocks = []
                for i, info in enumerate(header["blocks"]):
                    terms = npz[f"terms_{i}"].tolist()
                    blocks.append(
                        FeatureBlock(
                            kind=str(info["kind"]),
                            ngram_range=(int(info["ngram_range"][0]), int(info["ngram_range"][1])),
                            vocabulary={str(t): j for j, t in enumerate(terms)},
                            idf=np.asarray(npz[f"idf_{i}"], dtype=np.float64),
                            offset=int(info["offset"]),
                        )
                    )
                weights = np.ascontiguousarray(npz["weights"], dtype=np.float64)
                bias = np.asarray(npz["bias"], dtype=np.float64)
                heads = tuple(
                    EmbeddingHead(
                        weights=np.ascontiguousarray(npz[f"embedding_weights_{i}"], dtype=np.float64),
                        bias=np.asarray(npz[f"embedding_bias_{i}"], dtype=np.float64),
                        weight=float(info["weight"]),
                        encoder=shared_encoder(str(info["model"])),
                        language=ENCODERS[str(info["model"])].language,
                    )
                    for i, info in enumerate(header["embeddings"])
                )
        except ModelLoadError:
            raise
        except EmbeddingsUnavailable as exc:
            raise ModelLoadError(str(exc), source=path) from exc
        except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, EOFError) as exc:
            raise ModelLoadError(f"cannot load model: {exc}", source=path) from exc
        intents = tuple(str(i) for i in header["intents"])
        n_features = sum(len(b.vocabulary) for b in blocks)
        if weights.shape != (n_features, len(intents)) or bias.shape != (len(intents),):
            raise ModelLoadError(f"inconsistent shapes {weights.shape}/{bias.shape}", source=path)
        for head in heads:
            if head.weights.shape != (head.encoder.dimension, len(intents)) or head.bias.shape != bias.shape:
                raise ModelLoadError(f"inconsistent {head.encoder.name} head shape {head.weights.shape}", source=path)
        model = LinearIntentModel(
            intents=intents,
            blocks=tuple(blocks),
            weights=weights,
            bias=bias,
            sublinear_tf=bool(header["sublinear_tf"]),
            max_chars=int(header["max_chars"]),
            entity_placeholders=bool(header["entity_placeholders"]),
            embeddings=heads,
        )
        extractor = EntityExtractor(spec, max_chars=model.max_chars)
        return cls(model, extractor, threshold=threshold, fingerprint=header.get("fingerprint"))


def _atomic_write(path: Path, payload: bytes) -> None:
    """Write via a temporary file and rename, so concurrent readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train(data: NluData, config: ClassifierConfig | None = None) -> BuiltinClassifier:
    """Train a classifier on ``data`` (see :meth:`BuiltinClassifier.train`)."""
    return BuiltinClassifier.train(data, config)


def load_or_train(
    data_dir: Path | str,
    model_path: Path | str,
    config: ClassifierConfig | None = None,
) -> tuple[BuiltinClassifier, bool]:
    """Load the cached model if it was trained from exactly this data and config, else retrain.

    Returns ``(classifier, retrained)``. A missing, corrupt or stale model file is
    replaced; if the new one cannot be written (read-only disk) the freshly trained model
    is still returned, and the failure logged.
    """
    config = config or ClassifierConfig()
    model_path = Path(model_path)
    expected = fingerprint(data_dir, config)
    try:
        meta = json.loads(metadata_path(model_path).read_text(encoding="utf-8"))
        if isinstance(meta, dict) and meta.get("fingerprint") == expected:
            classifier = BuiltinClassifier.load(model_path, threshold=config.threshold)
            if classifier.fingerprint == expected:
                return classifier, False
            logger.info("model %s does not match its metadata; retraining", model_path)
        else:
            logger.info("training data or classifier config changed; retraining %s", model_path)
    except FileNotFoundError:
        logger.info("no trained model at %s; training", model_path)
    except (OSError, ValueError) as exc:  # ModelLoadError and JSON errors are ValueErrors
        logger.warning("cannot use model %s (%s); retraining", model_path, exc)
    classifier = BuiltinClassifier.train(load_nlu_data(data_dir), config, fingerprint=expected)
    try:
        classifier.save(model_path)
    except OSError as exc:
        logger.warning("cannot save model to %s (%s); it will retrain at next start", model_path, exc)
    return classifier, True


async def load_or_train_async(
    data_dir: Path | str,
    model_path: Path | str,
    config: ClassifierConfig | None = None,
) -> tuple[BuiltinClassifier, bool]:
    """:func:`load_or_train` in a worker thread, so training never blocks the event loop."""
    return await asyncio.to_thread(load_or_train, data_dir, model_path, config)
