"""TransRate (Huang et al., "Frustratingly easy transferability estimation", ICML 2022).

The coding rate ``R(Z, eps) = 1/2 log det(I_d + Z^T Z / (n eps))`` of the centred features
Z (n, d) estimates the bits needed to encode them up to a distortion eps; TransRate is
``R(Z, eps) - mean_c R(Z_c, eps)``, the rate of all features minus the mean over classes
of the rate of each class's own features: large where the classes occupy different
directions. As in the authors' code, the class term is the plain mean over classes and
``eps`` is 1e-4. Classification targets only; higher is better.

``log det(I_d + A^T A) = log det(I_n + A A^T)`` (Sylvester), so each rate is computed on
the smaller of the two Gram matrices: a class with 20 instances costs a 20 x 20
determinant rather than a d x d one.
"""

from __future__ import annotations

import numpy as np

from .inputs import check_classes, check_features

EPSILON = 1e-4


def coding_rate(z: np.ndarray, eps: float = EPSILON) -> float:
    """``1/2 log det(I_d + z^T z / (n eps))`` of the rows ``z`` (n, d)."""
    n, d = z.shape
    gram = z.T @ z if d <= n else z @ z.T
    sign, log_det = np.linalg.slogdet(np.eye(len(gram)) + gram / (n * eps))
    if sign <= 0:
        raise ValueError("coding rate: the determinant is not positive (features too large to represent)")
    return 0.5 * float(log_det)


def transrate(features, labels, *, eps: float = EPSILON) -> float:
    """TransRate of ``features`` (n, d) for class ``labels`` (n,)."""
    f = check_features(features)
    codes, counts = check_classes(labels, len(f))
    z = f - f.mean(axis=0)
    per_class = [coding_rate(z[codes == c], eps) for c in range(len(counts))]
    return coding_rate(z, eps) - float(np.mean(per_class))


__all__ = ["transrate", "coding_rate", "EPSILON"]
