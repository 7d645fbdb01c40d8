"""Estimators from the class-conditional second moments of the features: H-score, its
shrinkage form, and GBC. All three are for classification targets; higher is better.

- H-score (Bao et al., "An information-theoretic approach to transferability in task
  transfer learning", ICIP 2019): ``tr(cov(f)^+ cov(E[f | y]))``, how much of the
  features' variance lies between the classes' means.
- Shrinkage H-score (Ibrahim, Ponomareva and Mazumder, "Newer is not always better:
  rethinking transferability metrics, their peculiarities, stability and performance",
  ECML PKDD 2022): ``tr(cov_a(f)^-1 (1 - a) cov(E[f | y]))`` with ``cov_a`` the
  Ledoit-Wolf shrunk covariance ``(1 - a) S + a (tr S / d) I``. The plain H-score's
  pseudo-inverse of a nearly singular covariance (n barely above d, as on few-shot
  targets) is what the shrinkage stabilises.
- GBC (Pandy et al., "Transferability estimation using Bhattacharyya class separability",
  CVPR 2022): minus the sum over ordered pairs of distinct classes of the Bhattacharyya
  coefficient ``exp(-D_B)`` between per-class Gaussians with diagonal covariance, in the
  features' top principal components (64 in the paper).

Covariances are the maximum-likelihood ones (divided by n), as Ledoit-Wolf's are; the
H-score is a ratio of two covariances and does not depend on that choice.
"""

from __future__ import annotations

import numpy as np

from .inputs import check_classes, check_features, class_means

GBC_PCA_DIMS = 64  # Pandy et al.'s projection
# A class's variance along a direction where its instances coincide is 0, and D_B's log
# would be infinite; floored at this share of the features' mean variance instead.
VARIANCE_FLOOR = 1e-9


def _between_class(f: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """``(centred features, weighted class means)``: rows ``sqrt(n_c / n) (mu_c - mu)``,
    whose Gram ``M^T M`` is cov(E[f | y])."""
    codes, counts = check_classes(labels, len(f))
    centred = f - f.mean(axis=0)
    means = class_means(centred, codes, counts)
    return centred, means * np.sqrt(counts / len(f))[:, None]


def hscore(features, labels) -> float:
    """H-score of ``features`` (n, d) for class ``labels`` (n,)."""
    f = check_features(features)
    centred, between = _between_class(f, labels)
    cov_f = centred.T @ centred / len(f)
    return float(np.sum((between @ np.linalg.pinv(cov_f, hermitian=True)) * between))


def ledoit_wolf(centred: np.ndarray) -> tuple[np.ndarray, float]:
    """``(shrunk covariance, shrinkage a)`` of centred rows, Ledoit and Wolf (2004):
    ``a = min(b, delta) / delta`` with ``delta = ||S - mu I||_F^2 / d`` and
    ``b = sum_i ||x_i x_i^T - S||_F^2 / (n^2 d)``, computed without the n outer products
    (``sum_i ||x_i x_i^T - S||^2 = sum_i ||x_i||^4 - n ||S||^2``)."""
    n, d = centred.shape
    cov = centred.T @ centred / n
    mu = np.trace(cov) / d
    cov_norm = float(np.sum(cov**2))
    delta = (cov_norm - 2 * mu * np.trace(cov) + d * mu**2) / d
    beta = (float(np.sum(np.sum(centred**2, axis=1) ** 2)) / n - cov_norm) / (n * d)
    shrinkage = 0.0 if delta <= 0 else min(max(beta, 0.0), delta) / delta
    return (1 - shrinkage) * cov + shrinkage * mu * np.eye(d), shrinkage


def shrinkage_hscore(features, labels) -> float:
    """Shrinkage-regularized H-score of ``features`` (n, d) for class ``labels`` (n,)."""
    f = check_features(features)
    centred, between = _between_class(f, labels)
    cov, shrinkage = ledoit_wolf(centred)
    return float((1 - shrinkage) * np.sum((between @ np.linalg.pinv(cov, hermitian=True)) * between))


def principal_components(f: np.ndarray, dims: int | None) -> np.ndarray:
    """``f`` centred and projected on its ``dims`` leading principal directions (all
    directions of non-zero variance when fewer; unchanged when ``dims`` is None)."""
    centred = f - f.mean(axis=0)
    if dims is None:
        return centred
    values, vectors = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(values)[::-1]
    kept = order[values[order] > values.max() * max(f.shape) * np.finfo(float).eps][:dims]
    return centred @ vectors[:, kept]


def bhattacharyya_coefficients(means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """(C, C) ``exp(-D_B)`` between Gaussians with the given (C, k) means and diagonal
    variances: ``D_B = 1/8 sum (m1 - m2)^2 / v + 1/2 sum log(v / sqrt(v1 v2))``,
    ``v = (v1 + v2) / 2``."""
    pooled = (variances[:, None, :] + variances[None, :, :]) / 2
    log_v = np.log(variances)
    distance = (np.sum((means[:, None, :] - means[None, :, :]) ** 2 / pooled, axis=2) / 8
                + np.sum(np.log(pooled) - (log_v[:, None, :] + log_v[None, :, :]) / 2, axis=2) / 2)
    return np.exp(-distance)


def gbc(features, labels, *, pca_dims: int | None = GBC_PCA_DIMS) -> float:
    """GBC of ``features`` (n, d) for class ``labels`` (n,); every class needs 2 instances
    (a Gaussian fitted to one point has no variance)."""
    f = check_features(features)
    codes, counts = check_classes(labels, len(f))
    if counts.min() < 2:
        raise ValueError(f"GBC needs at least 2 instances per class, a class has {counts.min()}")
    projected = principal_components(f, pca_dims)
    means = class_means(projected, codes, counts)
    deviations = projected - means[codes]
    variances = class_means(deviations**2, codes, counts)
    variances = np.maximum(variances, VARIANCE_FLOOR * max(float(np.mean(projected**2)), np.finfo(float).tiny))
    coefficients = bhattacharyya_coefficients(means, variances)
    return -float(np.sum(coefficients) - np.trace(coefficients))


__all__ = ["hscore", "shrinkage_hscore", "ledoit_wolf", "gbc", "bhattacharyya_coefficients",
           "principal_components"]
