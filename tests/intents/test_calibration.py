"""Out-of-scope threshold: the trade-off curve and the choice made on validation rows."""

from __future__ import annotations

import pytest

from intents.calibration import choose_threshold, has_out_of_scope, tradeoff_curve

OOS = "out_of_scope"
# Four in-scope rows (one wrongly ranked) and three off-topic rows, with their top intent
# and its probability as a classifier would give them.
TRUTH = ["a", "a", "b", "b", OOS, OOS, OOS]
TOP = ["a", "a", "b", "a", "a", "b", OOS]
CONF = [0.9, 0.6, 0.7, 0.8, 0.3, 0.5, 0.9]


def test_curve_by_hand() -> None:
    curve = tradeoff_curve(TRUTH, TOP, CONF, thresholds=(0.0, 0.4, 0.55, 0.65, 0.95))
    figures = [(p.threshold, p.in_scope_accuracy, round(p.oos_recall, 3)) for p in curve]
    assert figures == [
        (0.0, 0.75, 0.333),  # only the row whose top intent is out_of_scope itself is rejected
        (0.4, 0.75, 0.667),
        (0.55, 0.75, 1.0),
        (0.65, 0.5, 1.0),
        (0.95, 0.0, 1.0),
    ]


def test_curve_trades_one_axis_for_the_other() -> None:
    curve = tradeoff_curve(TRUTH, TOP, CONF)
    in_scope = [p.in_scope_accuracy for p in curve]
    recall = [p.oos_recall for p in curve]
    assert in_scope == sorted(in_scope, reverse=True)
    assert recall == sorted(recall)


def test_choice_maximises_the_balanced_score_and_prefers_answering() -> None:
    point = choose_threshold(TRUTH, TOP, CONF)
    # Every threshold in (0.5, 0.6] keeps 3/4 in scope right and rejects all off-topic rows.
    assert (point.in_scope_accuracy, point.oos_recall) == (0.75, 1.0)
    assert point.threshold == pytest.approx(0.51)
    assert point.balanced == pytest.approx(0.875)


def test_curve_needs_both_kinds_of_rows() -> None:
    assert has_out_of_scope(TRUTH)
    assert not has_out_of_scope(["a", "b"]) and not has_out_of_scope([OOS])
    with pytest.raises(ValueError, match="both"):
        tradeoff_curve(["a", "b"], ["a", "b"], [0.9, 0.9])
