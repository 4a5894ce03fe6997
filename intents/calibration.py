"""Choosing the out-of-scope threshold on validation data, and the curve behind the choice.

A message is answered when its top intent's probability reaches the threshold, otherwise
it is out of scope. Raising the threshold trades in-scope accuracy (correct answers
turned into "sorry, I did not get that") for out-of-scope recall (off-topic messages not
answered with a wrong intent). :func:`choose_threshold` picks the point that maximises the
mean of the two, treating both mistakes as equally bad, on validation rows only, never on
the test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from intents.base import OUT_OF_SCOPE

DEFAULT_GRID = tuple(round(i * 0.01, 2) for i in range(100))
"""Thresholds tried: 0.00, 0.01, …, 0.99."""


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    threshold: float
    in_scope_accuracy: float
    """Share of in-scope rows answered with the right intent (a rejection counts as wrong)."""
    oos_recall: float
    """Share of out-of-scope rows rejected."""

    @property
    def balanced(self) -> float:
        return (self.in_scope_accuracy + self.oos_recall) / 2


def tradeoff_curve(
    truth: Sequence[str],
    top_intents: Sequence[str],
    confidences: Sequence[float],
    thresholds: Sequence[float] = DEFAULT_GRID,
) -> list[OperatingPoint]:
    """In-scope accuracy and out-of-scope recall at each threshold.

    ``top_intents``/``confidences`` are the classifier's top-ranked intent and its
    probability, before any threshold. Needs rows of both kinds in ``truth``.
    """
    rows = list(zip(truth, top_intents, confidences, strict=True))
    in_scope = [(t, p, c) for t, p, c in rows if t != OUT_OF_SCOPE]
    oos = [(p, c) for t, p, c in rows if t == OUT_OF_SCOPE]
    if not in_scope or not oos:
        raise ValueError("a trade-off curve needs both in-scope and out_of_scope rows")
    curve: list[OperatingPoint] = []
    for threshold in thresholds:
        correct = sum(t == p and c >= threshold for t, p, c in in_scope)
        rejected = sum(p == OUT_OF_SCOPE or c < threshold for p, c in oos)
        curve.append(OperatingPoint(threshold, correct / len(in_scope), rejected / len(oos)))
    return curve


def choose_threshold(
    truth: Sequence[str],
    top_intents: Sequence[str],
    confidences: Sequence[float],
    thresholds: Sequence[float] = DEFAULT_GRID,
) -> OperatingPoint:
    """The operating point with the best mean of in-scope accuracy and out-of-scope recall.

    Ties go to the lowest threshold: of equally good points, the one that answers most.
    """
    curve = tradeoff_curve(truth, top_intents, confidences, thresholds)
    return max(curve, key=lambda point: (round(point.balanced, 9), -point.threshold))


def has_out_of_scope(truth: Sequence[str]) -> bool:
    """Whether rows of both kinds are present, so that a threshold can be tuned on them."""
    return any(t == OUT_OF_SCOPE for t in truth) and any(t != OUT_OF_SCOPE for t in truth)
