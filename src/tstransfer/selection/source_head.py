"""Estimators that read the source model's own classification head on the target's
instances: LEEP and NCE. Classification targets, sources with a classification head
(a regression source predicts no source classes); higher is better.

- LEEP (Nguyen, Hassner, Seeger and Archambeau, "LEEP: a new measure to evaluate
  transferability of learned representations", ICML 2020): with ``theta(x)`` the source
  head's class probabilities, the empirical joint ``P(y, z) = 1/n sum_i theta(x_i)_z
  [y_i = y]``, ``P(y | z) = P(y, z) / P(z)``, and LEEP = ``1/n sum_i log sum_z
  P(y_i | z) theta(x_i)_z``: the mean log likelihood of the target labels under the
  classifier that maps source classes to target classes by that conditional.
- NCE (Tran, Nguyen and Hassner, "Transferability and hardness of supervised
  classification tasks", ICCV 2019): ``-H(Y | Z)``, the negative conditional entropy of
  the target labels given the source labels, here the source head's predicted class
  (its argmax), as LEEP's authors use NCE when the target instances carry no source label.
"""

from __future__ import annotations

import numpy as np

from .inputs import check_classes, check_probabilities


def _joint(codes: np.ndarray, n_classes: int, weights: np.ndarray) -> np.ndarray:
    """(Y, Z) empirical joint: ``1/n sum_i weights[i, z] [y_i = y]``."""
    one_hot = np.zeros((len(codes), n_classes))
    one_hot[np.arange(len(codes)), codes] = 1.0
    return one_hot.T @ weights / len(codes)


def leep(labels, source_probs) -> float:
    """LEEP of the source head's probabilities ``source_probs`` (n, Z) for ``labels`` (n,)."""
    probs = check_probabilities(source_probs, len(np.asarray(labels).reshape(-1)))
    codes, counts = check_classes(labels, len(probs))
    joint = _joint(codes, len(counts), probs)
    marginal = joint.sum(axis=0)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    likelihood = np.sum(probs * conditional[codes], axis=1)
    return float(np.mean(np.log(likelihood)))


def nce(labels, source_probs) -> float:
    """NCE of the source head's predicted classes (argmax of ``source_probs``, (n, Z))
    for ``labels`` (n,)."""
    probs = check_probabilities(source_probs, len(np.asarray(labels).reshape(-1)))
    codes, counts = check_classes(labels, len(probs))
    predicted = np.zeros_like(probs)
    predicted[np.arange(len(probs)), np.argmax(probs, axis=1)] = 1.0
    joint = _joint(codes, len(counts), predicted)
    marginal = joint.sum(axis=0)
    seen = joint > 0
    conditional = joint[seen] / np.broadcast_to(marginal, joint.shape)[seen]
    return float(np.sum(joint[seen] * np.log(conditional)))


__all__ = ["leep", "nce"]
