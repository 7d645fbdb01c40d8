"""LogME: the log of the maximum evidence of a linear model on frozen features.

You, Liu, Wang and Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021. A target's labels ``y`` are modelled as ``y = F w + noise`` on the
features ``F`` (n x d) that a pretrained model gives the target's training instances,
with the prior ``w ~ N(0, I / alpha)`` and the noise ``N(0, I / beta)``. The evidence
``p(y | F, alpha, beta) = N(y; 0, F F^T / alpha + I / beta)`` is maximised over ``alpha``
and ``beta`` by the paper's fixed-point iteration (its Algorithm 1), and LogME is the
maximum log evidence divided by ``n``. Classification labels are one-hot columns;
regression labels are their own column(s); the score is the mean over columns. Higher is
better: features from which a linear model explains the labels well.

Why our own implementation: no package on PyPI ships LogME (the ``logme`` there is a
logging library); the authors' reference (github.com/thuml/LogME) is a script needing
numba, not a package. This is ~60 lines of NumPy from the paper's equations, with one
difference from the reference's newer fixed-point variant: the ``d - k`` zero singular
values of a rank-``k`` feature matrix enter ``log |A|`` (as the paper's evidence
requires; the variant drops them when n < d). tests/test_zoo.py checks the result
against the evidence computed directly from its Gaussian density, and that the fixed
point is its maximum.
"""

from __future__ import annotations

import numpy as np

MAX_ITERATIONS = 1000  # each is O(rank); slow only where n <= d (beta grows without bound)
TOLERANCE = 1e-6  # relative change of alpha / beta at which the iteration stops
_GUARD = 1e-12  # keeps the updates finite on perfectly fitting or all-zero features


def _spectrum(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(u, sigma)``: left singular vectors and squared singular values of rank > 0.

    With many more instances than features (the usual case: 5,000 x 512) the thin SVD of
    F costs ~8x the eigendecomposition of the d x d Gram matrix F^T F, whose eigenvalues
    are the squared singular values; U = F V / s. The Gram route loses the directions
    below sqrt(eps) of the largest, which the cut-off drops anyway (they carry no evidence
    a float64 fit can resolve).
    """
    n, d = features.shape
    if n >= 2 * d:
        sigma, v = np.linalg.eigh(features.T @ features)
        keep = sigma > sigma.max(initial=0.0) * max(n, d) * np.sqrt(np.finfo(float).eps)
        sigma, v = sigma[keep], v[:, keep]
        return (features @ v) / np.sqrt(sigma), sigma
    u, s, _ = np.linalg.svd(features, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(features.shape) * np.finfo(float).eps
    return u[:, keep], s[keep] ** 2


def evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """``log p(y | F, alpha, beta) / n`` for one label column (also used by the tests)."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    u, sigma = _spectrum(f)
    return _evidence(u.T @ y, float(y @ y), sigma, f.shape, alpha, beta)


def _fit_terms(x, yy, sigma, alpha, beta) -> tuple[float, float]:
    """``(residual, weight_norm)`` of the posterior mean weights m at (alpha, beta):
    ||F m - y||^2 and ||m||^2, from y's coordinates ``x`` on the spectrum."""
    shrink = alpha / (alpha + beta * sigma)  # how far each direction's fit falls short of y
    residual = float(np.sum((shrink * x) ** 2) + yy - x @ x)
    weight_norm = float(np.sum(beta**2 * sigma * x**2 / (alpha + beta * sigma) ** 2))
    return residual, weight_norm


def _evidence(x, yy, sigma, shape, alpha, beta) -> float:
    n, d = shape
    residual, weight_norm = _fit_terms(x, yy, sigma, alpha, beta)
    log_det = float(np.sum(np.log(alpha + beta * sigma)) + (d - sigma.size) * np.log(alpha))
    value = (d * np.log(alpha) + n * np.log(beta) - log_det - beta * residual
             - alpha * weight_norm - n * np.log(2 * np.pi)) / 2
    return value / n


def _maximise(x, yy, sigma, n) -> tuple[float, float]:
    """The fixed point of the paper's Algorithm 1 for one label column: ``(alpha, beta)``."""
    alpha, beta = 1.0, 1.0
    for _ in range(MAX_ITERATIONS):
        gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
        residual, weight_norm = _fit_terms(x, yy, sigma, alpha, beta)
        new_alpha = max(gamma, _GUARD) / (weight_norm + _GUARD)
        new_beta = max(n - gamma, _GUARD) / (max(residual, 0.0) + _GUARD)
        done = abs(new_alpha / new_beta - alpha / beta) <= TOLERANCE * alpha / beta
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return alpha, beta


def logme(features: np.ndarray, labels: np.ndarray, task: str, n_classes: int | None = None) -> float:
    """LogME of ``features`` (n x d) for ``labels``: class indices (``task="classification"``,
    one-hot over ``n_classes``, default ``max + 1``) or values, (n,) or (n, outputs)
    (``"regression"``). The mean over label columns of the maximum log evidence / n."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or not len(f):
        raise ValueError(f"features must be a non-empty (n, d) array, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features hold non-finite values")
    labels = np.asarray(labels)
    if len(labels) != len(f):
        raise ValueError(f"{len(labels)} labels for {len(f)} feature rows")
    if task == "classification":
        classes = np.asarray(labels, dtype=np.int64).reshape(-1)
        n_classes = int(classes.max()) + 1 if n_classes is None else int(n_classes)
        columns = np.eye(n_classes)[classes]
    elif task == "regression":
        columns = np.asarray(labels, dtype=np.float64).reshape(len(f), -1)
    else:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    u, sigma = _spectrum(f)
    scores = []
    for y in columns.T:
        x, yy = u.T @ y, float(y @ y)
        alpha, beta = _maximise(x, yy, sigma, len(f))
        scores.append(_evidence(x, yy, sigma, f.shape, alpha, beta))
    return float(np.mean(scores))


__all__ = ["logme", "evidence"]
