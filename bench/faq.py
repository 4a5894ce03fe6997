"""FAQ retrieval on FAQs written with ONE phrasing per entry: the old index against the new.

For each shop, each held-out customer question is searched with k=1 and counted as
- answered correctly, answered wrongly, or not answered (answerable questions),
- answered (wrongly: the FAQ has no answer) or not answered (unanswerable questions).
Printed per shop and method: top-1 (ranking without the threshold), precision (of the answers
given, how many are right), recall (of the answerable questions, how many are answered
right) and abstention (of the unanswerable questions, how many get no answer), then the
query latency p50/p99 on a 50-entry FAQ (the shops' FAQs merged).

Shops:
- ``demo``: examples/shop/faq.yml cut to its first phrasing per entry and language, with
  tests/knowledge/faq_shops/demo/queries.yml, and ``demo, all phrasings``: the same questions
  on the whole file. **The tuning sets**: ``--fit`` picks the weights, rivalries and thresholds
  of knowledge/faq_search.py on these two, and only on these (one threshold for both, so it
  holds whether a shop writes one phrasing per entry or six; the phrasings/answer weight on the
  one-phrasing FAQ). Where settings are within two wrong answers of the best (NOISE), it takes
  the answer-heavier weight and the larger rivalry: the tuning sets cannot tell them apart, and
  a score measured against the runner-up carries over to other FAQs better.
- ``voltwerk`` (electronics, English first) and ``huajian`` (cosmetics, Chinese first):
  tests/knowledge/faq_shops/*/ — FAQ and questions written for this bench, never tuned on.
- ``shops/<name>`` (electronics, cosmetics, furniture …): tests/shops/*/faq.yml with the ``faq:`` probes
  of their probes.yml, written by someone else for the conversation tests, when present.

Methods: ``old`` is the TF-IDF index over question phrasings that deskbot used before
(bench/faq_baseline.py, its shipped threshold 0.25); ``fast`` is knowledge.faq_search
lexical only (the default); ``accurate`` adds the encoders (needs the ``accurate`` extra; left
out when they are not installed, or with ``--fast-only``).

``--sweep`` shows how the tuning sets' utility moves with each unit weight of the lexical score
(knowledge/faq_search.py's SYNONYM_WEIGHT, GRAM_WEIGHT, FUNCTION_WORD_WEIGHT,
UNSEEN_BIGRAM_WEIGHT), each at its best threshold, the others as shipped: how they were chosen.

Run: ``.venv/bin/python bench/faq.py [--fit] [--sweep] [--fast-only] [--errors]`` (about a minute
with the encoders, a few seconds without).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Protocol  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not shadow the standard library (it did: queue.py): import from the project root only.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench.faq_baseline import FaqIndex  # noqa: E402
from knowledge import faq_search  # noqa: E402
from knowledge.faq_search import FaqSearch, FloatArray, TextEncoder  # noqa: E402
from knowledge.shop import Faq, FaqEntry, load_faq  # noqa: E402

FAQ_SHOPS = ROOT / "tests" / "knowledge" / "faq_shops"
TEST_SHOPS = ROOT / "tests" / "shops"
WRONG_COST = 2.0
"""In --fit, a wrong answer (or an answer to an unanswerable question) costs two right ones:
a confident wrong answer misleads, no answer hands over to a person."""


class Index(Protocol):
    def search(
        self, text: str, language: str | None = None, topic: str | None = None, k: int = 3
    ) -> list[tuple[FaqEntry, float]]: ...


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    language: str
    entry: str | None  # None: the FAQ has no answer


@dataclass(frozen=True, slots=True)
class Shop:
    name: str
    faq: Faq
    questions: tuple[Question, ...]
    tuning: bool = False


def first_phrasing(faq: Faq) -> Faq:
    """The FAQ as an owner who writes one question per entry would have written it."""
    entries = [
        entry.model_copy(update={"questions": {lang: qs[:1] for lang, qs in entry.questions.items()}})
        for entry in faq.entries
    ]
    return Faq(entries=entries)


def _queries(path: Path) -> tuple[Question, ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    answerable = [Question(str(t), str(lang), str(entry)) for t, lang, entry in data["answerable"]]
    unanswerable = [Question(str(t), str(lang), None) for t, lang in data["unanswerable"]]
    return tuple(answerable + unanswerable)


def _probes(path: Path) -> tuple[Question, ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(Question(str(p["text"]), str(p["language"]), p["entry"]) for p in data.get("faq", []))


def shops() -> list[Shop]:
    demo_faq = load_faq(ROOT / "examples" / "shop" / "faq.yml")
    demo_questions = _queries(FAQ_SHOPS / "demo" / "queries.yml")
    found = [
        Shop("demo", first_phrasing(demo_faq), demo_questions, tuning=True),
        Shop("demo, all phrasings", demo_faq, demo_questions, tuning=True),
    ]
    for name in ("voltwerk", "huajian"):
        found.append(Shop(name, load_faq(FAQ_SHOPS / name / "faq.yml"), _queries(FAQ_SHOPS / name / "queries.yml")))
    for folder in sorted(TEST_SHOPS.glob("*/")):
        if (folder / "faq.yml").exists() and (folder / "probes.yml").exists():
            found.append(Shop(f"shops/{folder.name}", load_faq(folder / "faq.yml"), _probes(folder / "probes.yml")))
    return found


@dataclass(slots=True)
class Outcome:
    top1: int = 0
    right: int = 0
    wrong: int = 0
    answered_unanswerable: int = 0
    answerable: int = 0
    unanswerable: int = 0

    def add(self, question: Question, best: FaqEntry | None, answered: bool) -> None:
        if question.entry is None:
            self.unanswerable += 1
            self.answered_unanswerable += answered
            return
        self.answerable += 1
        correct = best is not None and best.id == question.entry
        self.top1 += correct
        if answered:
            self.right += correct
            self.wrong += not correct

    @property
    def given(self) -> int:
        return self.right + self.wrong + self.answered_unanswerable

    def utility(self) -> float:
        return self.right - WRONG_COST * (self.wrong + self.answered_unanswerable)

    def row(self) -> str:
        precision = self.right / self.given if self.given else float("nan")
        recall = self.right / self.answerable if self.answerable else float("nan")
        abstain = 1 - self.answered_unanswerable / self.unanswerable if self.unanswerable else float("nan")
        top1 = self.top1 / self.answerable if self.answerable else float("nan")
        return (
            f"top-1 {top1:5.1%}  precision {precision:5.1%} ({self.right}/{self.given})  "
            f"recall {recall:5.1%} ({self.right}/{self.answerable})  "
            f"abstention {abstain:5.1%} ({self.unanswerable - self.answered_unanswerable}/{self.unanswerable})"
        )


def ranker(index: Index, faq: Faq) -> Callable[[str, str], FaqEntry | None]:
    """The best entry whatever its score: what top-1 counts."""
    if isinstance(index, FaqSearch):
        def best(text: str, language: str) -> FaqEntry | None:
            scores, _ = index.scores(text, language)
            return faq.entries[int(np.argmax(scores))] if scores.any() else None
        return best
    loose = FaqIndex(faq, min_score=0.0)
    return lambda text, language: next((entry for entry, _ in loose.search(text, language, k=1)), None)


def evaluate(index: Index, shop: Shop, errors: list[str] | None = None) -> Outcome:
    outcome = Outcome()
    rank = ranker(index, shop.faq)
    for question in shop.questions:
        hits = index.search(question.text, question.language, k=1)
        outcome.add(question, rank(question.text, question.language), bool(hits))
        if errors is None:
            continue
        if hits and hits[0][0].id != question.entry:
            entry, score = hits[0]
            errors.append(f"    answered {entry.id!r} ({score:.2f}) to {question.text!r}, want {question.entry}")
        elif not hits and question.entry is not None:
            errors.append(f"    no answer to {question.text!r}, want {question.entry}")
    return outcome


# --- fitting on the tuning set -----------------------------------------------------------

def _best_threshold(tops: Sequence[tuple[float, bool | None]]) -> tuple[float, float]:
    """The threshold with the best utility; ``tops`` are (top score, right? / None if unanswerable)."""
    best = (float("-inf"), 0.0)
    for threshold in sorted({score for score, _ in tops}):
        right = sum(1 for score, ok in tops if score >= threshold and ok)
        bad = sum(1 for score, ok in tops if score >= threshold and not ok)
        utility = right - WRONG_COST * bad
        if utility > best[0]:
            best = (utility, threshold)
    # Halfway down to the next lower score, so a threshold is not a tuning question's exact score.
    lower = [score for score, _ in tops if score < best[1]]
    return (best[1] + max(lower)) / 2 if lower else best[1], best[0]


def _shares(build: Callable[[Faq], FaqSearch], shops: Sequence[Shop]) -> list[tuple[FloatArray, bool | None]]:
    """Per tuning question, every entry's score and whether the best is right (None: unanswerable)."""
    rows: list[tuple[FloatArray, bool | None]] = []
    for shop in shops:
        index = build(shop.faq)
        for question in shop.questions:
            scores, _ = index.scores(question.text, question.language)
            i = int(np.argmax(scores))
            right = None if question.entry is None else shop.faq.entries[i].id == question.entry
            rows.append((scores, right))
    return rows


def _tops(rows: Sequence[tuple[FloatArray, bool | None]], rivalry: float) -> list[tuple[float, bool | None]]:
    return [(faq_search._lead(np.sort(scores)[::-1], rivalry), right) for scores, right in rows]


RIVALRIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
"""At most half: a runner-up as good as the best then still leaves half the best's score."""
NOISE = 2 * WRONG_COST
"""Utility differences up to two wrong answers are not told apart (of ~200 tuning questions)."""


def _fit_rivalry(rows: Sequence[tuple[FloatArray, bool | None]], label: str) -> tuple[float, float, float]:
    """(utility, rivalry, threshold): the most rivalry whose utility is within :data:`NOISE` of the
    best. A score measured against the other entries' carries over to FAQs more or less crowded
    than the tuning shop's better than an absolute one, so where the tuning sets cannot tell,
    the more relative wins."""
    fitted = []
    for rivalry in RIVALRIES:
        threshold, utility = _best_threshold(_tops(rows, rivalry))
        print(f"    {label}, rivalry {rivalry:.1f}: threshold {threshold:.3f}, utility {utility:g}")
        fitted.append((utility, rivalry, threshold))
    best = max(utility for utility, _, _ in fitted)
    return max((row for row in fitted if row[0] >= best - NOISE), key=lambda row: row[1])


def _middle_of_best(results: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Of (utility, weight, threshold) rows in grid order, the middle one among those tied best:
    a plateau's edge is where the next question tips it."""
    top = max(utility for utility, _, _ in results)
    tied = [row for row in results if row[0] == top]
    return tied[(len(tied) - 1) // 2]


def _one_phrasing(faq: Faq) -> bool:
    return all(len(questions) == 1 for entry in faq.entries for questions in entry.questions.values())


def fit(tuning: Sequence[Shop], encoders: dict[str, TextEncoder] | None) -> None:
    names = ", ".join(f"{shop.name} ({len(shop.questions)} questions)" for shop in tuning)
    print(f"fitting on {names}; utility = right - {WRONG_COST:g} x wrong, one threshold for all")
    # The phrasings/answer balance on the one-phrasing FAQ, the case: with six phrasings
    # an entry's phrasings carry a message whatever the balance. Where the tuning set cannot tell
    # (within NOISE), the answer-heavier weight: in a one-phrasing FAQ the answer holds the facts.
    # Never under 0.4: with BM25's length normalisation (phrasings are short, answers long) a
    # word matched in a phrasing then still counts more than one matched in the answer.
    one = [shop for shop in tuning if _one_phrasing(shop.faq)]
    lexical: list[tuple[float, float, float]] = []
    for question_weight in (0.4, 0.5, 0.6, 0.7):
        rows = _shares(lambda faq, w=question_weight: FaqSearch(faq, question_weight=w), one)
        utility, rivalry, threshold = max(
            (_best_threshold(_tops(rows, rivalry))[1], rivalry, 0.0) for rivalry in RIVALRIES
        )
        print(f"  lexical  question_weight {question_weight:.2f} on {', '.join(s.name for s in one)}: "
              f"utility {utility:g} (rivalry {rivalry:.1f})")
        lexical.append((utility, question_weight, threshold))
    best = max(utility for utility, _, _ in lexical)
    question_weight = min(weight for utility, weight, _ in lexical if utility >= best - NOISE)
    rows = _shares(lambda faq: FaqSearch(faq, question_weight=question_weight), tuning)
    _, rivalry, threshold = _fit_rivalry(rows, f"lexical  question_weight {question_weight:.2f}")
    print(f"  -> QUESTION_WEIGHT = {question_weight}, LEXICAL_RIVALRY = {rivalry}, LEXICAL_MIN_SCORE = {threshold:.3f}")
    if encoders is not None:
        # The blend's own phrasings/answer balance: the encoders already hear the phrasings.
        blended: list[tuple[float, tuple[float, float], float]] = []
        for blended_weight in (0.4, 0.5, 0.6):
            for dense_weight in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0):
                rows = _shares(
                    lambda faq, q=blended_weight, w=dense_weight: FaqSearch(
                        faq, encoders, blended_question_weight=q, dense_weight=w
                    ),
                    tuning,
                )
                threshold, utility = _best_threshold(_tops(rows, 0.0))
                print(f"  blended  question_weight {blended_weight:.1f}, dense_weight {dense_weight:.1f}: "
                      f"threshold {threshold:.3f}, utility {utility:g}")
                blended.append((utility, (blended_weight, dense_weight), threshold))
        top = max(utility for utility, _, _ in blended)
        tied = [row for row in blended if row[0] == top]
        _, (blended_weight, dense_weight), _ = tied[(len(tied) - 1) // 2]
        rows = _shares(
            lambda faq: FaqSearch(faq, encoders, blended_question_weight=blended_weight, dense_weight=dense_weight),
            tuning,
        )
        _, rivalry, threshold = _fit_rivalry(rows, f"blended  dense_weight {dense_weight:.1f}")
        print(f"  -> BLENDED_QUESTION_WEIGHT = {blended_weight}, DENSE_WEIGHT = {dense_weight}, "
              f"BLENDED_RIVALRY = {rivalry}, BLENDED_MIN_SCORE = {threshold:.3f}")
    print(
        f"  shipped: QUESTION_WEIGHT {faq_search.QUESTION_WEIGHT}, LEXICAL_RIVALRY {faq_search.LEXICAL_RIVALRY}, "
        f"LEXICAL_MIN_SCORE {faq_search.LEXICAL_MIN_SCORE}, BLENDED_QUESTION_WEIGHT "
        f"{faq_search.BLENDED_QUESTION_WEIGHT}, DENSE_WEIGHT {faq_search.DENSE_WEIGHT}, "
        f"BLENDED_RIVALRY {faq_search.BLENDED_RIVALRY}, BLENDED_MIN_SCORE {faq_search.BLENDED_MIN_SCORE}"
    )


@contextmanager
def unit_weights(**weights: float) -> Iterator[None]:
    """knowledge.faq_search's unit weights set to ``weights`` for the duration (the sweep only)."""
    shipped = {name: getattr(faq_search, name) for name in weights}
    for name, value in weights.items():
        setattr(faq_search, name, value)
    try:
        yield
    finally:
        for name, value in shipped.items():
            setattr(faq_search, name, value)


SWEEP: dict[str, tuple[float, ...]] = {
    "SYNONYM_WEIGHT": (0.0, 0.6, 0.7, 0.8, 0.9, 1.0),
    "GRAM_WEIGHT": (0.0, 0.1, 0.15, 0.25, 0.5, 1.0),
    "FUNCTION_WORD_WEIGHT": (0.0, 0.15, 0.3, 0.5, 1.0),
    "UNSEEN_BIGRAM_WEIGHT": (0.15, 0.3, 0.5, 1.0),
}


def sweep(tuning: Sequence[Shop]) -> None:
    print(f"tuning-set utility (right - {WRONG_COST:g} x wrong) of the fast path, each at its best threshold:")
    for name, values in SWEEP.items():
        cells = []
        for value in values:
            with unit_weights(**{name: value}):
                rows = _shares(FaqSearch, tuning)
                threshold, utility = _best_threshold(_tops(rows, faq_search.LEXICAL_RIVALRY))
            mark = "*" if value == getattr(faq_search, name) else " "
            cells.append(f"{value:g}{mark}: {utility:g} @ {threshold:.3f}")
        print(f"  {name:22s} " + "   ".join(cells))


# --- latency -----------------------------------------------------------------------------

def merged(shop_list: Sequence[Shop]) -> Faq:
    entries = [
        entry.model_copy(update={"id": f"{shop.name.replace('/', '_')}__{entry.id}"})
        for shop in shop_list
        for entry in shop.faq.entries
    ]
    return Faq(entries=entries)


def latency(search: Callable[[str, str], Any], questions: Sequence[Question], rounds: int) -> tuple[float, float]:
    timings: list[float] = []
    for _ in range(rounds):
        for question in questions:
            start = time.perf_counter()
            search(question.text, question.language)
            timings.append(time.perf_counter() - start)
    values = np.asarray(timings) * 1e6
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", action="store_true", help="pick weights and thresholds on the tuning set")
    parser.add_argument("--sweep", action="store_true", help="tuning-set utility per unit weight (fast path)")
    parser.add_argument("--fast-only", action="store_true", help="leave out the encoders")
    parser.add_argument("--errors", action="store_true", help="list every wrong or missing answer")
    parser.add_argument("--rounds", type=int, default=20, help="latency rounds over all questions")
    args = parser.parse_args()
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # one "Building index" line per field otherwise
    if args.sweep:
        sweep([shop for shop in shops() if shop.tuning])
        return

    encoders: dict[str, TextEncoder] | None = None
    if not args.fast_only:
        try:
            encoders = faq_search.bundled_encoders()
        except Exception as exc:  # noqa: BLE001 - any missing piece of the extra: report fast only
            print(f"(accurate left out: {exc})")
    shop_list = shops()
    if args.fit:
        fit([shop for shop in shop_list if shop.tuning], encoders)
        return

    methods: dict[str, Callable[[Faq], Index]] = {
        "old": lambda faq: FaqIndex(faq),
        "fast": lambda faq: FaqSearch(faq),
    }
    if encoders is not None:
        methods["accurate"] = lambda faq: FaqSearch(faq, encoders)
    for shop in shop_list:
        answerable = sum(q.entry is not None for q in shop.questions)
        label = "TUNING SET" if shop.tuning else "report set"
        print(f"{shop.name}: {len(shop.faq.entries)} entries, {answerable} answerable + "
              f"{len(shop.questions) - answerable} unanswerable questions ({label})")
        for name, build in methods.items():
            errors: list[str] | None = [] if args.errors else None
            print(f"  {name:9s}{evaluate(build(shop.faq), shop, errors).row()}")
            for line in errors or []:
                print(line)

    faq = merged(shop_list)
    questions = [q for shop in shop_list for q in shop.questions]
    print(f"latency of one search (k=1), {len(faq.entries)}-entry FAQ, {len(questions)} questions:")
    for name, build in methods.items():
        index = build(faq)
        rounds = args.rounds if name != "accurate" else 1
        if name == "accurate":
            # Each question once, on an index whose query cache starts empty: the encoder runs.
            index = FaqSearch(faq, encoders, query_cache=0)
        p50, p99 = latency(lambda text, lang, i=index: i.search(text, lang, k=1), questions, rounds)
        print(f"  {name:9s}p50 {p50:8.1f} µs   p99 {p99:8.1f} µs")


if __name__ == "__main__":
    main()
