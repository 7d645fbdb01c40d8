"""Time of every source-selection estimator (tstransfer.selection), median of 3 runs.

    python bench/estimators.py [N D]   # default 5000 x 512 features

The feature and source-head estimators run on random data of N instances x D features
(10 target classes, a source head of 10 classes; a regression target for linear MSE and
for LogME's regression form). The DTW/DBA similarity reads series, not features: it runs
on two datasets of 5 classes x 40 series of 300 points (UCR-sized). The fine-tuning
proxy trains and is not timed here.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from tstransfer import selection

REPEATS = 3


def timed(estimator, inputs) -> tuple[float, float]:
    """(median seconds over REPEATS calls, the score)."""
    seconds, score = [], float("nan")
    for _ in range(REPEATS):
        start = time.perf_counter()
        score = estimator(inputs)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), score


def feature_inputs(n: int, d: int, seed: int = 0) -> dict[str, selection.Inputs]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    # Correlated features, as a network's are (isotropic noise would make Ledoit-Wolf
    # shrink all the way, and the shrinkage H-score 0).
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    features = (rng.normal(size=(n, d)) + 0.5 * np.eye(10, d)[labels]) @ mixing
    logits = rng.normal(size=(n, 10)) + np.eye(10)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    targets = features[:, :8] @ rng.normal(size=8) + rng.normal(size=n)
    return {"classification": selection.Inputs(task="classification", labels=labels, features=features,
                                               source_probs=probs),
            "regression": selection.Inputs(task="regression", labels=targets, features=features)}


def series_inputs(seed: int = 0, classes: int = 5, per_class: int = 40, length: int = 300) -> selection.Inputs:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    shapes = rng.normal(size=(classes, length)).cumsum(axis=1)
    target = shapes[labels] + rng.normal(size=(len(labels), length))
    source = shapes[::-1][labels] + rng.normal(size=(len(labels), length))
    return selection.Inputs(task="classification", labels=labels, series=target, source_series=source,
                            source_labels=labels)


def main(n: int = 5000, d: int = 512) -> None:
    by_task = feature_inputs(n, d)
    print(f"{'estimator':<18} {'task':<15} {'inputs':<32} {'median s':>9} {'score':>12}")
    for estimator in selection.resolve([selection.ALL]):
        if estimator.name == "finetune_proxy":
            continue
        if estimator.name == "dtw_dba":
            cases = {"classification": (series_inputs(), "2 sets of 5 x 40 series x 300")}
        else:
            cases = {task: (inputs, f"{n} x {d} features") for task, inputs in by_task.items()
                     if estimator.unavailable(inputs) is None}
        for task, (inputs, size) in cases.items():
            seconds, score = timed(estimator, inputs)
            print(f"{estimator.name:<18} {task:<15} {size:<32} {seconds:>9.3f} {score:>12.5g}", flush=True)
    logme_spectrum(by_task["classification"].features, by_task["classification"].labels)


def logme_spectrum(features: np.ndarray, labels: np.ndarray) -> None:
    """LogME's spectrum (tstransfer.logme._spectrum: the Gram matrix's eigendecomposition
    where n >= 2d) against the thin SVD it replaced, in turns, and the LogME each gives."""
    from tstransfer import logme

    def svd(f):
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        keep = s > s.max(initial=0.0) * max(f.shape) * np.finfo(float).eps
        return u[:, keep], s[keep] ** 2

    seconds = {"gram": [], "svd": []}
    for _ in range(REPEATS):
        for name, spectrum in (("gram", logme._spectrum), ("svd", svd)):
            start = time.perf_counter()
            spectrum(features)
            seconds[name].append(time.perf_counter() - start)
    gram, full = (statistics.median(seconds[name]) for name in ("gram", "svd"))
    with_gram = logme.logme(features, labels, "classification")
    logme._spectrum, gram_spectrum = svd, logme._spectrum
    try:
        with_svd = logme.logme(features, labels, "classification")
    finally:
        logme._spectrum = gram_spectrum
    print(f"logme spectrum, {features.shape[0]} x {features.shape[1]}: gram {gram:.3f} s, svd {full:.3f} s, "
          f"ratio {full / gram:.2f}; LogME {with_gram:.10f} (gram) vs {with_svd:.10f} (svd), "
          f"difference {abs(with_gram - with_svd):.1e}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:3]))
