"""Checks every estimator runs on its inputs: one-line ValueErrors that name the problem.

Estimators are computed on a target's training set, which on the study's few-shot targets
is small; a silent NaN or a singular matrix would rank sources by an artefact. So a
non-finite value, a single class, features without any variance and mismatched lengths
are refused here, before any arithmetic.
"""

from __future__ import annotations

import numpy as np

TASKS = ("classification", "regression")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def constant_features(features) -> bool:
    """Whether every instance has the same feature vector (the model maps all of them to one
    point). Per column constant features (dead units) are common and harmless."""
    f = np.asarray(features)
    return len(f) > 0 and bool(np.all(f == f[:1]))


def check_features(features, name: str = "features") -> np.ndarray:
    """``features`` as a float64 (n, d) array with finite values and some variance."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or not f.size:
        raise ValueError(f"{name} must be a non-empty (n, d) array, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{name} hold non-finite values (NaN or inf)")
    if len(f) < 2:
        raise ValueError(f"{name} have a single row; an estimator needs at least 2 instances")
    if constant_features(f):
        raise ValueError(f"{name} are constant: every instance has the same feature vector")
    return f


def check_classes(labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, counts)``: the labels as codes 0..C-1 over the classes present, C >= 2."""
    labels = np.asarray(labels)
    if labels.ndim != 1 and not (labels.ndim == 2 and labels.shape[1] == 1):
        raise ValueError(f"classification labels must be one column, got shape {labels.shape}")
    labels = labels.reshape(-1)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} feature rows")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        raise ValueError("labels hold non-finite values (NaN or inf)")
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"labels hold a single class ({classes[0]!r}); an estimator needs at least 2")
    return codes.reshape(-1), counts


def check_targets(labels, n: int) -> np.ndarray:
    """Regression targets as a float64 (n, outputs) array with finite, non-constant columns."""
    y = np.asarray(labels, dtype=np.float64)
    if len(y) != n:
        raise ValueError(f"{len(y)} targets for {n} feature rows")
    y = y.reshape(n, -1)
    if not np.all(np.isfinite(y)):
        raise ValueError("regression targets hold non-finite values (NaN or inf)")
    if np.any(np.all(y == y[0], axis=0)):
        raise ValueError("a regression target column is constant: nothing to predict")
    return y


def check_probabilities(source_probs, n: int) -> np.ndarray:
    """The source head's predicted class probabilities on the target instances, (n, Z)."""
    if source_probs is None:
        raise ValueError("source_probs is required: this estimator needs the source model's "
                         "predicted class probabilities (a classification head)")
    p = np.asarray(source_probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != n:
        raise ValueError(f"source_probs must be ({n}, source classes), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("source_probs hold negative or non-finite values")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("source_probs rows do not sum to 1 (pass softmax outputs, not logits)")
    return p


def class_means(features: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(C, d) per-class mean feature vectors."""
    one_hot = np.zeros((len(codes), len(counts)))
    one_hot[np.arange(len(codes)), codes] = 1.0
    return one_hot.T @ features / counts[:, None]
