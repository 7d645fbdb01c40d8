"""Source-selection estimators (tstransfer.selection) against closed forms and independent
computations, their refusal of degenerate input, and the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from tstransfer import selection
from tstransfer.logme import logme
from tstransfer.selection.coding_rate import transrate
from tstransfer.selection.gaussian import gbc, hscore, ledoit_wolf, shrinkage_hscore
from tstransfer.selection.linear import linear_mse
from tstransfer.selection.proxy import finetune_proxy
from tstransfer.selection.source_head import leep, nce


def _classes(seed, n=120, d=6, n_classes=3, shift=1.5):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    features = rng.normal(size=(n, d)) + shift * np.eye(n_classes, d)[labels]
    return features, labels


# --------------------------------------------------------------------------- H-score
def test_hscore_of_a_hand_case():
    # f = 0, 2, 4, 6 in classes 0, 0, 1, 1: var f = 5, E[f | y] = 1, 1, 5, 5 with var 4.
    assert hscore(np.array([[0.0], [2.0], [4.0], [6.0]]), [0, 0, 1, 1]) == pytest.approx(0.8)


def test_hscore_is_the_trace_formula_with_numpys_covariances():
    features, labels = _classes(1)
    conditional = np.stack([features[labels == c].mean(axis=0) for c in labels])
    expected = np.trace(np.linalg.inv(np.cov(features, rowvar=False)) @ np.cov(conditional, rowvar=False))
    assert hscore(features, labels) == pytest.approx(expected, rel=1e-10)


def test_hscore_is_zero_when_the_classes_hold_the_same_data():
    rng = np.random.default_rng(2)
    block = rng.normal(size=(30, 4))
    assert hscore(np.vstack([block, block]), np.repeat([0, 1], 30)) == pytest.approx(0.0, abs=1e-12)


def _ledoit_wolf_by_outer_products(x):
    """Ledoit and Wolf's (2004) shrinkage from its definition, one outer product per row."""
    n, d = x.shape
    cov = x.T @ x / n
    mu = np.trace(cov) / d
    delta = np.sum((cov - mu * np.eye(d)) ** 2) / d
    beta = sum(np.sum((np.outer(row, row) - cov) ** 2) for row in x) / (n**2 * d)
    return min(beta, delta) / delta, mu, cov


def test_ledoit_wolf_shrinkage_matches_its_definition():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(15, 8)) @ rng.normal(size=(8, 8))
    x -= x.mean(axis=0)
    shrunk, shrinkage = ledoit_wolf(x)
    expected, mu, cov = _ledoit_wolf_by_outer_products(x)
    assert 0 < shrinkage < 1
    assert shrinkage == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(shrunk, (1 - expected) * cov + expected * mu * np.eye(8), rtol=1e-10)


def test_shrinkage_hscore_is_the_shrunk_trace_formula_and_tames_a_near_singular_covariance():
    features, labels = _classes(4, n=12, d=10)
    centred = features - features.mean(axis=0)
    shrinkage, mu, cov = _ledoit_wolf_by_outer_products(centred)
    shrunk = (1 - shrinkage) * cov + shrinkage * mu * np.eye(10)
    conditional = np.stack([centred[labels == c].mean(axis=0) for c in labels])
    expected = (1 - shrinkage) * np.trace(np.linalg.inv(shrunk) @ (conditional.T @ conditional / 12))
    assert shrinkage_hscore(features, labels) == pytest.approx(expected, rel=1e-9)
    # With n barely above d the plain H-score's inverse inflates it; the shrunk one stays
    # below it (it is bounded by the between-class share of the variance).
    assert shrinkage_hscore(features, labels) < hscore(features, labels)


# --------------------------------------------------------------------------- GBC
def _gaussian_fit(x):
    return x.mean(), x.var()


def test_gbc_is_minus_twice_the_integrated_bhattacharyya_coefficient_of_two_classes():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0.0, 1.0, 40), rng.normal(1.2, 0.6, 40)
    (m1, v1), (m2, v2) = _gaussian_fit(a), _gaussian_fit(b)
    density = scipy.stats.norm.pdf
    coefficient, _ = scipy.integrate.quad(
        lambda x: math.sqrt(density(x, m1, math.sqrt(v1)) * density(x, m2, math.sqrt(v2))), -20, 20)
    score = gbc(np.concatenate([a, b])[:, None], np.repeat([0, 1], 40), pca_dims=None)
    assert score == pytest.approx(-2 * coefficient, rel=1e-8)


def test_gbc_matches_the_closed_form_bhattacharyya_distance_with_determinants():
    features, labels = _classes(6, n=90, d=3)
    fits = [(features[labels == c].mean(axis=0), np.diag(features[labels == c].var(axis=0))) for c in range(3)]
    total = 0.0
    for i, (m1, s1) in enumerate(fits):
        for j, (m2, s2) in enumerate(fits):
            if i != j:
                s = (s1 + s2) / 2
                distance = ((m1 - m2) @ np.linalg.inv(s) @ (m1 - m2) / 8
                            + 0.5 * np.log(np.linalg.det(s) / np.sqrt(np.linalg.det(s1) * np.linalg.det(s2))))
                total += np.exp(-distance)
    # gbc centres the features; PCA to all 3 directions would rotate them, so none here.
    assert gbc(features, labels, pca_dims=None) == pytest.approx(-total, rel=1e-10)


def test_gbc_prefers_separated_classes_and_is_rotation_invariant_after_pca():
    near, labels = _classes(7, shift=0.3)
    far, _ = _classes(7, shift=4.0)
    assert gbc(far, labels) > gbc(near, labels)
    rotation, _ = np.linalg.qr(np.random.default_rng(8).normal(size=(6, 6)))
    assert gbc(far @ rotation, labels) == pytest.approx(gbc(far, labels), rel=1e-8)


# --------------------------------------------------------------------------- TransRate
def _rate(z, eps=1e-4):
    n, d = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]


@pytest.mark.parametrize("n, d", [(60, 5), (12, 20)])
def test_transrate_is_the_direct_log_det_difference(n, d):
    features, labels = _classes(9, n=n, d=d)
    z = features - features.mean(axis=0)
    expected = _rate(z) - np.mean([_rate(z[labels == c]) for c in range(3)])
    assert transrate(features, labels) == pytest.approx(expected, rel=1e-10)


# --------------------------------------------------------------------------- LEEP, NCE
PROBS = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5]])
TARGET = np.array([0, 0, 1, 1, 0])


def test_leep_from_a_hand_computed_empirical_joint():
    n = len(TARGET)
    joint = np.zeros((2, 2))
    for i in range(n):
        for z in range(2):
            joint[TARGET[i], z] += PROBS[i, z] / n
    conditional = joint / joint.sum(axis=0)
    expected = np.mean([np.log(sum(conditional[TARGET[i], z] * PROBS[i, z] for z in range(2))) for i in range(n)])
    # by hand: P(y=0, z=0) = (0.9 + 0.6 + 0.5) / 5 = 0.4
    assert joint[0, 0] == pytest.approx(0.4)
    assert leep(TARGET, PROBS) == pytest.approx(expected, rel=1e-12)


def test_leep_is_zero_for_a_source_head_that_determines_the_labels():
    assert leep([0, 1, 1, 0], np.eye(2)[[1, 0, 0, 1]]) == pytest.approx(0.0, abs=1e-12)


def test_nce_is_minus_the_conditional_entropy_from_counts():
    rng = np.random.default_rng(10)
    probs = rng.dirichlet(np.ones(4), size=200)
    labels = rng.integers(0, 3, 200)
    predicted = probs.argmax(axis=1)
    conditional_entropy = sum(
        np.mean(predicted == z) * scipy.stats.entropy(np.bincount(labels[predicted == z], minlength=3))
        for z in np.unique(predicted))
    assert nce(labels, probs) == pytest.approx(-conditional_entropy, rel=1e-12)
    assert nce(labels, np.eye(3)[labels]) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- linear MSE
def test_linear_mse_is_minus_the_residual_of_numpys_least_squares_with_a_bias():
    rng = np.random.default_rng(11)
    features = rng.normal(size=(50, 4))
    targets = np.column_stack([features @ rng.normal(size=4) + 3 + rng.normal(size=50),
                               rng.normal(size=50)])
    design = np.column_stack([features, np.ones(50)])
    weights, *_ = np.linalg.lstsq(design, targets, rcond=None)
    assert linear_mse(features, targets) == pytest.approx(-np.mean((design @ weights - targets) ** 2), rel=1e-10)
    collinear = np.column_stack([features, features[:, :2] @ [1.0, -1.0]])  # a rank-deficient design
    design = np.column_stack([collinear, np.ones(50)])
    weights, *_ = np.linalg.lstsq(design, targets, rcond=None)
    assert linear_mse(collinear, targets) == pytest.approx(-np.mean((design @ weights - targets) ** 2), rel=1e-9)
    exact = features @ [1.0, -2.0, 0.5, 0.0] + 7.0
    assert linear_mse(features, exact) == pytest.approx(0.0, abs=1e-20)


# --------------------------------------------------------------------------- degenerate input
FEATURE_ESTIMATORS = [hscore, shrinkage_hscore, gbc, transrate]


@pytest.mark.parametrize("estimator", FEATURE_ESTIMATORS)
def test_feature_estimators_refuse_degenerate_input(estimator):
    features, labels = _classes(12)
    with pytest.raises(ValueError, match="single class"):
        estimator(features, np.zeros(len(features), dtype=int))
    with pytest.raises(ValueError, match="constant"):
        estimator(np.ones_like(features), labels)
    broken = features.copy()
    broken[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        estimator(broken, labels)
    with pytest.raises(ValueError, match="labels for"):
        estimator(features, labels[:-1])


def test_source_head_and_regression_estimators_refuse_degenerate_input():
    with pytest.raises(ValueError, match="single class"):
        leep([1, 1, 1, 1, 1], PROBS)
    with pytest.raises(ValueError, match="sum to 1"):
        nce(TARGET, PROBS * 3)
    with pytest.raises(ValueError, match="source_probs is required"):
        leep(TARGET, None)
    features, _ = _classes(13)
    with pytest.raises(ValueError, match="constant"):
        linear_mse(features, np.full(len(features), 2.0))
    with pytest.raises(ValueError, match="non-finite"):
        linear_mse(features, np.r_[np.nan, np.ones(len(features) - 1)])
    with pytest.raises(ValueError, match="2 instances per class"):
        gbc(features[:4], [0, 0, 0, 1])


# --------------------------------------------------------------------------- registry
def test_registry_holds_every_estimator_and_logme_is_the_packages_own():
    assert set(selection.ESTIMATORS) == {"logme", "hscore", "shrinkage_hscore", "gbc", "transrate", "leep", "nce",
                                         "linear_mse", "dtw_dba", "finetune_proxy"}
    features, labels = _classes(14)
    inputs = selection.Inputs(task="classification", labels=labels, features=features)
    assert selection.ESTIMATORS["logme"](inputs) == logme(features, labels, "classification")
    assert selection.ESTIMATORS["hscore"](inputs) == hscore(features, labels)
    assert [e.name for e in selection.resolve(["gbc", "leep", "gbc"])] == ["gbc", "leep"]
    assert len(selection.resolve(["all"])) == len(selection.ESTIMATORS)
    with pytest.raises(ValueError, match="unknown estimator"):
        selection.resolve(["hscroe"])


def test_estimators_say_why_they_cannot_score_given_inputs():
    features, labels = _classes(15)
    classification = selection.Inputs(task="classification", labels=labels, features=features)
    assert "needs source_probs" in selection.ESTIMATORS["leep"].unavailable(classification)
    assert "regression targets, not classification" in selection.ESTIMATORS["linear_mse"].unavailable(classification)
    with pytest.raises(ValueError, match="needs series, source_series"):
        selection.ESTIMATORS["dtw_dba"](classification)
    regression = selection.Inputs(task="regression", labels=features[:, 0] * 2 + 1, features=features)
    assert selection.ESTIMATORS["linear_mse"](regression) == pytest.approx(0.0, abs=1e-20)
    with pytest.raises(ValueError, match="task must be"):
        selection.ESTIMATORS["logme"](selection.Inputs(task="ranking", labels=labels, features=features))


def test_finetune_proxy_trains_the_given_epochs_and_orients_the_metric():
    epochs_trained = []

    def train_for(epochs):
        epochs_trained.append(epochs)
        return 0.25

    assert finetune_proxy(train_for, task="regression", epochs=3) == -0.25  # MAE: lower is better
    assert finetune_proxy(train_for, task="classification", epochs=2) == 0.25  # F1
    assert epochs_trained == [3, 2]
    with pytest.raises(ValueError, match="non-finite"):
        finetune_proxy(lambda epochs: float("nan"), task="regression")
    inputs = selection.Inputs(task="classification", labels=[0, 1], train_for=lambda epochs: 0.5 + epochs / 100)
    assert selection.ESTIMATORS["finetune_proxy"](inputs) == pytest.approx(0.55)
