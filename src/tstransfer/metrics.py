"""Performance metrics and the convergence rate (paper section 2.4.4, REFERENCE.md section 5).

Plain numpy, so the analysis can use them without importing TensorFlow.

* ``mae``: mean absolute error (regression performance).
* ``weighted_f1``: one-vs-rest F1 per class, averaged with weights proportional to each
  class's support in ``y`` -- the same number as scikit-learn's
  ``f1_score(y, yhat, average="weighted")`` (classes absent from ``y`` weigh 0; a class
  never predicted has precision 0 and hence F1 0, sklearn's ``zero_division`` default).
* ``convergence_rate``: eqs. 7-8, the area under the per-epoch metric curve (trapezoid
  rule on x = 0..E-1) as a share of the rectangle spanned by the curve's range and the
  E-1 epoch intervals; for regression the curve is inverted (``1 - share``) so that
  higher always means faster convergence.
* ``lower_is_better`` / ``is_better``: which direction is better for a metric name, and
  which of two values is; the one place that says so (pretraining-seed selection, the
  grid search and the gains of :mod:`tstransfer.analysis.stats` all ask here).
"""

from __future__ import annotations

import math

import numpy as np

METRIC_FOR_TASK = {"regression": "mae", "classification": "f1_weighted"}
# Metric name -> whether a lower value is better. Read it through lower_is_better().
LOWER_IS_BETTER = {"mae": True, "f1_weighted": False}


def mae(y, yhat) -> float:
    """Mean absolute error over all elements of ``y`` and ``yhat`` (same shape after squeeze)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    yhat = np.asarray(yhat, dtype=np.float64).reshape(-1)
    if y.shape != yhat.shape:
        raise ValueError(f"mae: {y.shape[0]} targets but {yhat.shape[0]} predictions")
    if y.size == 0:
        raise ValueError("mae of an empty set")
    return float(np.mean(np.abs(y - yhat)))


def weighted_f1(y, yhat_labels, n_classes: int) -> float:
    """Support-weighted mean of the per-class one-vs-rest F1 scores (integer labels)."""
    y = np.asarray(y).reshape(-1).astype(np.int64)
    yhat = np.asarray(yhat_labels).reshape(-1).astype(np.int64)
    if y.shape != yhat.shape:
        raise ValueError(f"weighted_f1: {y.shape[0]} labels but {yhat.shape[0]} predictions")
    if y.size == 0:
        raise ValueError("weighted_f1 of an empty set")
    for name, labels in (("true", y), ("predicted", yhat)):
        if labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(f"weighted_f1: {name} labels outside 0..{n_classes - 1}")
    # confusion[i, j]: true class i predicted as j
    confusion = np.bincount(y * n_classes + yhat, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    true_pos = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (support + predicted); 0 where both are 0
    denominator = support + predicted
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros(n_classes), where=denominator > 0)
    return float(np.sum(f1 * support) / support.sum())


def convergence_rate(curve, task: str) -> float:
    """Convergence rate of a per-epoch metric curve (eqs. 7-8), in [0, 1], higher = faster.

    ``curve`` is the per-epoch metric (weighted F1 for classification, MAE for regression)
    over every epoch trained, early-stopping patience epochs included.

    Degenerate cases, where the rectangle of eqs. 7-8 has zero area, return NaN
    ("undefined"; written as null in result JSON):

    * a single epoch (E == 1): no interval to integrate over;
    * a flat curve (max == min): the metric never changed, so there is no convergence to
      measure -- e.g. a classifier stuck predicting one class.

    A curve holding NaN/inf (a diverged run) also gives NaN.
    """
    f = np.asarray(curve, dtype=np.float64).reshape(-1)
    if task not in METRIC_FOR_TASK:
        raise ValueError(f"unknown task {task!r}")
    n_epochs = f.size
    if n_epochs < 2 or not np.all(np.isfinite(f)):
        return math.nan
    lo, hi = f.min(), f.max()
    if hi == lo:
        return math.nan
    width = n_epochs - 1  # x = 0..E-1
    # trapezoid rule with unit spacing, written out (np.trapz was renamed across numpy versions)
    area = float(np.sum((f[1:] + f[:-1]) / 2.0))
    share = (area - width * lo) / (width * (hi - lo))
    return float(share if task == "classification" else 1.0 - share)


def lower_is_better(metric: str) -> bool:
    """True for a metric where lower is better (MAE), False where higher is (weighted F1).

    An unknown metric name is a ValueError.
    """
    try:
        return LOWER_IS_BETTER[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(LOWER_IS_BETTER)}") from None


def is_better(a: float, b: float, metric: str) -> bool:
    """True when value ``a`` is strictly better than ``b`` for ``metric`` ("mae"|"f1_weighted").

    NaN (or None) is never better than anything, and any finite value beats NaN/None.
    """
    lower = lower_is_better(metric)
    a_missing = a is None or math.isnan(a)
    b_missing = b is None or math.isnan(b)
    if a_missing:
        return False
    if b_missing:
        return True
    return a < b if lower else a > b


__all__ = [
    "METRIC_FOR_TASK", "LOWER_IS_BETTER", "mae", "weighted_f1", "convergence_rate",
    "lower_is_better", "is_better",
]
