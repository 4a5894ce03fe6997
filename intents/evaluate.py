"""Measure the built-in classifier: accuracy, macro-F1, confusions, speed.

Backs ``deskbot test-nlu``. Without a test file it holds out a stratified 20% of the
project's own data, so every change to the data or the model can be checked in seconds.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from intents.base import OUT_OF_SCOPE
from intents.classifier import BuiltinClassifier
from intents.config import ClassifierConfig
from intents.language import detect_language
from intents.nlu_data import NluData, TrainingExample, load_examples, load_nlu_data

_MIN_LATENCY_SAMPLES = 2000
_TOP_CONFUSIONS = 10


@dataclass(frozen=True, slots=True)
class IntentScores:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class GroupScores:
    """Scores of one slice of the test set (one language)."""

    n: int
    accuracy: float
    macro_f1: float
    top1_accuracy: float


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    n_train: int
    n_test: int
    accuracy: float
    """Share of test rows whose predicted intent (after the threshold) is right."""
    macro_f1: float
    top1_accuracy: float
    """Share of in-scope rows whose top-ranked intent is right, threshold ignored: the model's own quality."""
    rejected: float
    """Share of test rows predicted ``out_of_scope``."""
    per_intent: tuple[IntentScores, ...]
    confusions: tuple[tuple[str, str, int], ...]
    """(true, predicted, count), most frequent first."""
    train_seconds: float
    p50_ms: float
    p99_ms: float
    threshold: float
    in_scope_accuracy: float | None = None
    """Only when the test set has ``out_of_scope`` rows: accuracy over the other rows."""
    oos_recall: float | None = None
    """Only when the test set has ``out_of_scope`` rows: share of them rejected."""
    by_language: dict[str, GroupScores] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["confusions"] = [{"true": t, "predicted": p, "count": n} for t, p, n in self.confusions]
        return data

    def to_text(self) -> str:
        lines = [
            f"trained on {self.n_train} examples in {self.train_seconds:.2f} s, tested on {self.n_test}",
            f"accuracy {self.accuracy:.3f}   macro-F1 {self.macro_f1:.3f}   threshold {self.threshold:.2f}",
            f"top-1 accuracy (threshold ignored) {self.top1_accuracy:.3f}   predicted out_of_scope {self.rejected:.3f}",
            f"predict latency p50 {self.p50_ms:.3f} ms   p99 {self.p99_ms:.3f} ms",
        ]
        if self.oos_recall is not None:
            in_scope = "n/a" if self.in_scope_accuracy is None else f"{self.in_scope_accuracy:.3f}"
            lines.append(f"in-scope accuracy {in_scope}   out-of-scope recall {self.oos_recall:.3f}")
        for language, scores in sorted(self.by_language.items()):
            lines.append(
                f"  [{language}] n={scores.n}  accuracy {scores.accuracy:.3f}  macro-F1 {scores.macro_f1:.3f}"
                f"  top-1 {scores.top1_accuracy:.3f}"
            )
        width = max([len("intent")] + [len(s.intent) for s in self.per_intent])
        lines += ["", f"{'intent':<{width}}  precision  recall     f1  support"]
        for s in self.per_intent:
            lines.append(f"{s.intent:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  {s.f1:5.3f}  {s.support:7d}")
        if self.confusions:
            lines += ["", "most confused (true → predicted: count)"]
            lines += [f"  {t} → {p}: {n}" for t, p, n in self.confusions]
        if self.notes:
            lines += [""] + [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def stratified_split(
    examples: Sequence[TrainingExample], test_fraction: float = 0.2, seed: int = 13
) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """Split per (intent, language) so every intent of every language is tested in proportion.

    A group of one example stays in training; otherwise at least one goes to the test set.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    groups: dict[tuple[str, str], list[TrainingExample]] = defaultdict(list)
    for ex in examples:
        groups[(ex.intent, _language(ex))].append(ex)
    rng = random.Random(seed)
    train: list[TrainingExample] = []
    test: list[TrainingExample] = []
    for key in sorted(groups):
        members = list(groups[key])
        rng.shuffle(members)
        n_test = 0 if len(members) < 2 else max(1, round(len(members) * test_fraction))
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return train, test


def _language(example: TrainingExample) -> str:
    return example.language or detect_language(example.text)


def _scores(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, float, list[IntentScores]]:
    """Accuracy, macro-F1 and per-intent scores over the intents present in ``truth``.

    Labels that are only ever predicted (``out_of_scope`` when the test set has none) are
    not averaged in; they still cost the true intents their recall.
    """
    if not truth:
        return 0.0, 0.0, []
    pairs = list(zip(truth, predicted, strict=True))
    accuracy = sum(t == p for t, p in pairs) / len(pairs)
    per_intent: list[IntentScores] = []
    for intent in sorted(set(truth)):
        tp = sum(t == intent and p == intent for t, p in pairs)
        support = sum(t == intent for t in truth)
        predicted_n = sum(p == intent for p in predicted)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent.append(IntentScores(intent, precision, recall, f1, support))
    macro_f1 = sum(s.f1 for s in per_intent) / len(per_intent)
    return accuracy, macro_f1, per_intent


def _top1(truth: Sequence[str], top1: Sequence[str]) -> float:
    pairs = [(t, p) for t, p in zip(truth, top1, strict=True) if t != OUT_OF_SCOPE]
    return sum(t == p for t, p in pairs) / len(pairs) if pairs else 0.0


def _latencies_ms(classifier: BuiltinClassifier, texts: Sequence[str]) -> tuple[float, float]:
    if not texts:
        return 0.0, 0.0
    for text in texts[:50]:
        classifier.predict_sync(text)  # warm caches before timing
    timings: list[int] = []
    while len(timings) < _MIN_LATENCY_SAMPLES:
        for text in texts:
            started = time.perf_counter_ns()
            classifier.predict_sync(text)
            timings.append(time.perf_counter_ns() - started)
    values = np.asarray(timings, dtype=np.float64) / 1e6
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def evaluate(
    train_examples: Sequence[TrainingExample],
    test_examples: Sequence[TrainingExample],
    config: ClassifierConfig | None = None,
    *,
    train_data: NluData | None = None,
) -> EvaluationReport:
    """Train on ``train_examples``, predict ``test_examples``, and score the predictions.

    ``train_data`` supplies the regex/lookup/synonym entries for entities; intent scores
    do not depend on it.
    """
    config = config or ClassifierConfig()
    base = train_data or NluData()
    data = NluData(examples=tuple(train_examples), regexes=base.regexes, lookups=base.lookups, synonyms=base.synonyms)
    started = time.perf_counter()
    classifier = BuiltinClassifier.train(data, config)
    train_seconds = time.perf_counter() - started

    truth = [ex.intent for ex in test_examples]
    predictions = [classifier.predict_sync(ex.text, ex.language) for ex in test_examples]
    predicted = [p.intent for p in predictions]
    top1 = [p.ranking[0][0] if p.ranking else OUT_OF_SCOPE for p in predictions]
    accuracy, macro_f1, per_intent = _scores(truth, predicted)
    n = max(len(truth), 1)
    confusions = Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p)

    in_scope_accuracy: float | None = None
    oos_recall: float | None = None
    if OUT_OF_SCOPE in truth:
        pairs = list(zip(truth, predicted, strict=True))
        in_scope = [(t, p) for t, p in pairs if t != OUT_OF_SCOPE]
        oos = [p for t, p in pairs if t == OUT_OF_SCOPE]
        in_scope_accuracy = sum(t == p for t, p in in_scope) / len(in_scope) if in_scope else None
        oos_recall = sum(p == OUT_OF_SCOPE for p in oos) / len(oos)

    by_language: dict[str, GroupScores] = {}
    languages = [_language(ex) for ex in test_examples]
    for language in sorted(set(languages)):
        rows = [i for i, lang in enumerate(languages) if lang == language]
        acc, f1, _ = _scores([truth[i] for i in rows], [predicted[i] for i in rows])
        top1_acc = _top1([truth[i] for i in rows], [top1[i] for i in rows])
        by_language[language] = GroupScores(len(rows), acc, f1, top1_acc)

    p50, p99 = _latencies_ms(classifier, [ex.text for ex in test_examples])
    train_texts = {" ".join(ex.text.lower().split()) for ex in train_examples}
    leaked = sum(" ".join(ex.text.lower().split()) in train_texts for ex in test_examples)
    notes = (f"{leaked} test texts also occur in the training data",) if leaked else ()
    return EvaluationReport(
        n_train=len(train_examples),
        n_test=len(test_examples),
        accuracy=accuracy,
        macro_f1=macro_f1,
        top1_accuracy=_top1(truth, top1),
        rejected=sum(p == OUT_OF_SCOPE for p in predicted) / n,
        per_intent=tuple(per_intent),
        confusions=tuple((t, p, n) for (t, p), n in confusions.most_common(_TOP_CONFUSIONS)),
        train_seconds=train_seconds,
        p50_ms=p50,
        p99_ms=p99,
        threshold=config.threshold,
        in_scope_accuracy=in_scope_accuracy,
        oos_recall=oos_recall,
        by_language=by_language,
        notes=notes,
    )


def run_test_nlu(
    train_path: Path | str | None,
    test_path: Path | str | None,
    config: ClassifierConfig | None = None,
    as_json: bool = False,
    *,
    test_fraction: float = 0.2,
) -> str:
    """What ``deskbot test-nlu`` prints.

    ``train_path`` defaults to ``config.data_dir``; it may be a data folder, an NLU YAML file
    or a CSV. Without ``test_path`` a stratified ``test_fraction`` of the training data is
    held out (seeded by ``config.seed``, so runs are comparable).
    """
    config = config or ClassifierConfig()
    source = Path(train_path) if train_path is not None else config.data_dir
    if source.suffix.lower() == ".csv":
        train_data = NluData(examples=tuple(load_examples(source)))
    else:
        train_data = load_nlu_data(source)
    if test_path is None:
        train, test = stratified_split(train_data.examples, test_fraction, seed=config.seed)
    else:
        train, test = list(train_data.examples), load_examples(test_path)
    report = evaluate(train, test, config, train_data=train_data)
    if as_json:
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
    return report.to_text()
