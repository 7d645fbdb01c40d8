"""Rank a zoo's models for a target by source-selection estimators (:mod:`tstransfer.selection`;
LogME by default) on frozen penultimate-layer features, without fine-tuning any."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..channels import source_model_input
from .. import selection
from ..selection.inputs import constant_features
from ..store import store_attrs
from .folder import compatible_models, load, read_index
from .target import run_subset, target_store, target_training_data, variant_name, zoo_seed

log = logging.getLogger(__name__)


def adapt_input(waveform: np.ndarray, length: int, channels: int) -> np.ndarray:
    """Target waveforms (n, time, k) as input of a model built for (length, channels).

    Channels as fine-tuning adapts them (:func:`tstransfer.channels.source_model_input`),
    so that the frozen source model sees what the fine-tuned model's first layer
    computes at the start. Length: linear interpolation in time to the model's length
    (only for the features: fine-tuning works at the target's).
    """
    x = source_model_input(np.asarray(waveform, dtype=np.float32), channels)
    if x.shape[1] != length:
        old = np.linspace(0.0, 1.0, x.shape[1])
        new = np.linspace(0.0, 1.0, length)
        x = np.stack([np.stack([np.interp(new, old, series[:, c]) for c in range(x.shape[-1])], axis=-1)
                      for series in x]).astype(np.float32)
    return x


def penultimate_features(model, waveform: np.ndarray, stream_max: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The input of the model's head (its penultimate layer's output) for target data."""
    # TensorFlow lazily: the data env imports this package (`snakemake zoo`) without it.
    import keras

    from ..models.common import HEAD_LAYER, STREAM_MAX_INPUT, WAVEFORM_INPUT

    extractor = keras.Model(model.inputs, model.get_layer(HEAD_LAYER).input)
    shape = model.get_layer(WAVEFORM_INPUT).output.shape
    inputs = {WAVEFORM_INPUT: adapt_input(waveform, int(shape[1]), int(shape[2]))}
    if STREAM_MAX_INPUT in [layer.name for layer in model.layers]:
        inputs[STREAM_MAX_INPUT] = np.asarray(stream_max, dtype=np.float32).reshape(-1, 1)
    features = extractor.predict(inputs, batch_size=batch_size, verbose=0)
    return np.asarray(features, dtype=np.float64).reshape(len(waveform), -1)


def source_head_probabilities(model, features: np.ndarray) -> np.ndarray:
    """The source head's class probabilities (softmax of its logits) on ``features``."""
    from ..models.common import HEAD_LAYER

    kernel, bias = model.get_layer(HEAD_LAYER).get_weights()
    logits = features @ kernel + bias
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def model_inputs(model, entry: Mapping[str, Any], waveform: np.ndarray, stream_max: np.ndarray,
                 labels: np.ndarray, task: str) -> selection.Inputs:
    """What the estimators read of one zoo model on the target: its features and, for a
    classification source, its head's probabilities (LEEP, NCE)."""
    features = penultimate_features(model, waveform, stream_max)
    probs = source_head_probabilities(model, features) if entry["output"]["task"] == "classification" else None
    return selection.Inputs(task=task, labels=labels, features=features, source_probs=probs)


def rank(zoo_dir: str | Path, store: str | Path, *, subset: str | Path | None = None, seed: int = 0,
         models: Sequence[Mapping[str, Any]] | None = None, check: bool = True,
         methods: Sequence[str] = ("logme",)) -> pd.DataFrame:
    """Every compatible zoo model (or ``models``) scored by each estimator of ``methods``
    (names of :mod:`tstransfer.selection`, or ``all``) on the target's training set, best
    first by the first method. ``check``: check each model's sha256 as it is loaded (False:
    the caller has verified the zoo). An estimator that cannot score a model (a regression
    source for LEEP, the series for DTW) leaves its cell empty and says why in the log.

    Returns a DataFrame: name, arch, source, one column per method, rank (1 = best),
    n_features.
    """
    # TensorFlow lazily: the data env imports this package (`snakemake zoo`) without it.
    import keras

    estimators = selection.resolve(methods)
    attrs = store_attrs(store)
    if models is None:
        models, skipped = compatible_models(read_index(zoo_dir), attrs)
        for name, reason in skipped.items():
            log.info("rank: %s skipped: %s", name, reason)
    waveform, stream_max, labels = target_training_data(store, subset, seed=seed)
    rows = []
    for entry in models:
        model = load(entry["arch"], entry["source"], zoo_dir, check=check)
        inputs = model_inputs(model, entry, waveform, stream_max, labels, attrs["task"])
        rows.append({"name": entry["name"], "arch": entry["arch"], "source": entry["source"],
                     **estimator_scores(estimators, inputs, model=entry["name"]), "n_features": inputs.features.shape[1]})
        del model
        keras.backend.clear_session()
    names = [e.name for e in estimators]
    table = pd.DataFrame(rows, columns=["name", "arch", "source", *names, "n_features"])
    table = table.sort_values(names[0], ascending=False, ignore_index=True, na_position="last")
    table.insert(3 + len(names), "rank", np.arange(1, len(table) + 1))
    return table


# The estimator that compares raw series, not one model's features: its callers give its
# score (minus the DTW distance of the class averages), computed once per source.
DTW = "dtw_dba"


def estimator_scores(estimators, inputs: selection.Inputs, *, dtw_score: float | None = None,
                     model: str = "") -> dict[str, float]:
    """Each estimator's score of ``inputs``, for those that can score them (the others are
    left out, and why is logged); ``dtw_dba`` takes ``dtw_score`` where one is given.

    A model that maps every target instance to one feature vector (dead units throughout:
    a real study's ConvNetQuake_INGV on a short regression target did) gives the feature
    estimators nothing to score: they leave a gap, with a warning, rather than stopping
    the ranking of every other model."""
    scores = {}
    dead = inputs.features is not None and constant_features(inputs.features)
    if dead:
        log.warning("%s maps every target instance to the same features: no feature-based score",
                    model or "this model")
    for estimator in estimators:
        reason = estimator.unavailable(inputs)
        if reason is None and dead and "features" in estimator.needs:
            reason = "constant features"
        if estimator.name == DTW and dtw_score is not None:
            scores[DTW] = float(dtw_score)
        elif reason is None:
            scores[estimator.name] = estimator(inputs)
        else:
            log.info("no %s for %s: %s", estimator.name, model or "this model", reason)
    return scores


def rank_target(zoo_dir: str | Path, data: str | Path, work_dir: str | Path, *, size: int | None = None,
                seed: int | None = None, methods: Sequence[str] = ("logme",)) -> pd.DataFrame:
    """``rank`` for ``--data`` as ``transfer`` would see it: the same seed (``seed`` or
    the zoo's), the same store (converted into ``work_dir`` when it is not one), and with
    ``size`` the subset ``transfer``'s first run fine-tunes on (else the training split)."""
    seed = zoo_seed(read_index(zoo_dir)["protocol"], seed)
    store = target_store(data, work_dir, seed=seed)
    if size is None:
        return rank(zoo_dir, store, seed=seed, methods=methods)
    variant = variant_name(size, store_attrs(store)["split_counts"]["train"])
    with tempfile.TemporaryDirectory() as scratch:
        subset = run_subset(store, Path(scratch) / "run0.npz", variant=variant, size=int(size), run=0, seed=seed)
        return rank(zoo_dir, store, subset=subset, seed=seed, methods=methods)
