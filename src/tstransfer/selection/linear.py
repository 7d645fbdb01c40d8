"""Linear MSE for regression targets (Nguyen et al., "Simple transferability estimation for
regression tasks", UAI 2023): minus the mean squared error of the least-squares fit of
the targets from the features with a bias, ``min_{w, b} ||F w + b - y||^2 / n``, averaged
over target columns. Higher (closer to 0) is better.

The bias is fitted by centring F and y (the least-squares bias is ``mean(y) - mean(F) w``).
The weights come from the eigendecomposition of the d x d Gram matrix ``F^T F`` (its
pseudo-inverse, so dead or collinear features are harmless), several times faster on
5000 x 512 features than the SVD of F that ``numpy.linalg.lstsq`` computes; the residual
is then computed from the data, ``y - F w``, not from the Gram matrix, so it does not
lose precision by cancellation. Where ``n <= rank(F) + 1``
the fit is exact and every source scores 0: the estimator cannot tell sources apart on
fewer instances than feature dimensions (the training-set MSE, as the paper defines it).
"""

from __future__ import annotations

import numpy as np

from .inputs import check_features, check_targets


def linear_mse(features, targets) -> float:
    """Minus the least-squares MSE of ``targets`` (n,) or (n, outputs) from ``features`` (n, d)."""
    f = check_features(features)
    y = check_targets(targets, len(f))
    centred_f, centred_y = f - f.mean(axis=0), y - y.mean(axis=0)
    values, vectors = np.linalg.eigh(centred_f.T @ centred_f)
    kept = values > values.max() * max(f.shape) * np.finfo(float).eps
    weights = vectors[:, kept] @ ((vectors[:, kept].T @ (centred_f.T @ centred_y)) / values[kept, None])
    residual = centred_y - centred_f @ weights
    return -float(np.mean(residual**2))


__all__ = ["linear_mse"]
