"""Metrics against values computed by hand (no TensorFlow needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tstransfer.metrics import convergence_rate, is_better, lower_is_better, mae, weighted_f1


def test_mae_by_hand():
    # |1-1.5| + |2-2| + |3-1| = 0.5 + 0 + 2 = 2.5 over 3
    assert mae([1, 2, 3], [1.5, 2, 1]) == pytest.approx(2.5 / 3, abs=1e-15)
    # column vectors (model outputs are (n, 1)) are flattened
    assert mae(np.array([1.0, 2.0]), np.array([[0.0], [4.0]])) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="mae: 2 targets but 3 predictions"):
        mae([1, 2], [1, 2, 3])


def test_weighted_f1_by_hand():
    y = [0, 0, 0, 1, 1, 2]
    yhat = [0, 0, 1, 1, 2, 2]
    # class 0: TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 0.8, support 3
    # class 1: TP 1, FP 1, FN 1 -> P 1/2, R 1/2, F1 0.5, support 2
    # class 2: TP 1, FP 1, FN 0 -> P 1/2, R 1, F1 2/3, support 1
    expected = (3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6
    assert weighted_f1(y, yhat, 3) == pytest.approx(expected, abs=1e-12)


def test_weighted_f1_unpredicted_and_absent_classes():
    # class 0: TP 2, FP 2, FN 0 -> P 1/2, R 1, F1 2/3 (support 2)
    # class 1: never predicted -> F1 0 (support 2); class 2 absent -> weight 0
    assert weighted_f1([0, 0, 1, 1], [0, 0, 0, 0], 3) == pytest.approx((2 * 2 / 3) / 4, abs=1e-12)
    assert weighted_f1([2, 1, 0, 1], [2, 1, 0, 1], 3) == 1.0
    assert weighted_f1([0, 1], [1, 0], 2) == 0.0
    with pytest.raises(ValueError, match=r"weighted_f1: true labels outside 0\.\.2"):
        weighted_f1([0, 3], [0, 1], 3)


def test_weighted_f1_matches_definition_on_random_labels():
    # an independent per-class loop over the textbook definition
    rng = np.random.default_rng(7)
    y = rng.integers(0, 5, 400)
    yhat = np.where(rng.random(400) < 0.6, y, rng.integers(0, 5, 400))
    total = 0.0
    for c in range(5):
        tp = np.sum((y == c) & (yhat == c))
        fp = np.sum((y != c) & (yhat == c))
        fn = np.sum((y == c) & (yhat != c))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        total += f1 * np.sum(y == c)
    assert weighted_f1(y, yhat, 5) == pytest.approx(total / 400, abs=1e-12)


@pytest.mark.parametrize(
    "curve, task, expected",
    [
        # trapz = 0.4 + 0.7 + 0.8 = 1.9; (1.9 - 3*0.2) / (3*0.6) = 1.3/1.8
        ([0.2, 0.6, 0.8, 0.8], "classification", 1.3 / 1.8),
        # trapz = 0.5 + 0.7 = 1.2; (1.2 - 2*0.5) / (2*0.4) = 0.25 (slow start)
        ([0.5, 0.5, 0.9], "classification", 0.25),
        # trapz = 0.7 + 0.35 + 0.25 + 0.2 = 1.5; 1 - (1.5 - 4*0.2) / (4*0.8) = 1 - 0.21875
        ([1.0, 0.4, 0.3, 0.2, 0.2], "regression", 0.78125),
        # a straight line is half the rectangle either way
        ([3.0, 2.0, 1.0], "regression", 0.5),
        ([0.1, 0.5, 0.9], "classification", 0.5),
        # a regression curve that worsens after its best epoch (patience epochs):
        # trapz = 1.5 + 1.25 + 1.5 = 4.25; 1 - (4.25 - 3*1) / (3*1) = 1 - 1.25/3
        ([2.0, 1.0, 1.5, 1.5], "regression", 1 - 1.25 / 3),
    ],
)
def test_convergence_rate_by_hand(curve, task, expected):
    assert convergence_rate(curve, task) == pytest.approx(expected, abs=1e-12)


def test_convergence_rate_faster_curve_scores_higher():
    fast = [0.1, 0.8, 0.85, 0.9]
    slow = [0.1, 0.3, 0.6, 0.9]
    assert convergence_rate(fast, "classification") > convergence_rate(slow, "classification")
    assert convergence_rate([1 - f for f in fast], "regression") > convergence_rate(
        [1 - f for f in slow], "regression"
    )


@pytest.mark.parametrize(
    "curve", [[0.7], [0.3, 0.3, 0.3], [1.0, float("nan"), 0.5], [1.0, float("inf")], []]
)
def test_convergence_rate_degenerate_is_nan(curve):
    for task in ("classification", "regression"):
        assert math.isnan(convergence_rate(curve, task))


def test_is_better():
    assert is_better(0.1, 0.2, "mae") and not is_better(0.2, 0.1, "mae")
    assert is_better(0.9, 0.8, "f1_weighted") and not is_better(0.8, 0.9, "f1_weighted")
    assert not is_better(0.5, 0.5, "mae") and not is_better(0.5, 0.5, "f1_weighted")
    assert is_better(5.0, float("nan"), "mae") and not is_better(float("nan"), 5.0, "mae")
    assert is_better(0.0, None, "f1_weighted") and not is_better(None, 0.0, "f1_weighted")
    with pytest.raises(ValueError, match="unknown metric 'accuracy'; known: mae, f1_weighted"):
        is_better(1, 2, "accuracy")


def test_lower_is_better_is_the_one_direction_the_analysis_uses():
    """Pretraining selection, the grid search and the gains all take the direction from here."""
    from tstransfer.analysis import stats

    assert lower_is_better("mae") and not lower_is_better("f1_weighted")
    with pytest.raises(ValueError, match="accuracy"):
        lower_is_better("accuracy")
    np.testing.assert_array_equal(stats.better_sign(["mae", "f1_weighted", "mae"]), [-1.0, 1.0, -1.0])
    assert stats.better_sign("f1_weighted") == 1.0
