"""Linear MSE for regression targets (Nguyen et al., "Simple transferability estimation for
regression tasks", UAI 2023): minus the mean squared error of the least-squares fit of
the targets from the features with a bias, ``min_{w, b} ||F w + b - y||^2 / n``, averaged
over target columns. Higher (closer to 0) is better.

The bias is fitted by centring F and y (the least-squares bias is ``mean(y) - mean(F) w``),
and the fit is one least-squares solve for all target columns. Where ``n <= rank(F) + 1``
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
    weights, *_ = np.linalg.lstsq(centred_f, centred_y, rcond=None)
    residual = centred_y - centred_f @ weights
    return -float(np.mean(residual**2))


__all__ = ["linear_mse"]
