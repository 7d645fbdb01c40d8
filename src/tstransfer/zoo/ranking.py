"""Rank a zoo's models for a target by LogME (:mod:`tstransfer.logme`) on frozen
penultimate-layer features, without fine-tuning any."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..channels import source_model_input
from ..logme import logme
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


def rank(zoo_dir: str | Path, store: str | Path, *, subset: str | Path | None = None, seed: int = 0,
         models: Sequence[Mapping[str, Any]] | None = None, check: bool = True) -> pd.DataFrame:
    """LogME of every compatible zoo model (or of ``models``) on the target's training
    set, best first. ``check``: check each model's sha256 as it is loaded (False: the
    caller has verified the zoo).

    Returns a DataFrame: name, arch, source, logme, rank (1 = best), n_features.
    """
    # TensorFlow lazily: the data env imports this package (`snakemake zoo`) without it.
    import keras

    attrs = store_attrs(store)
    if models is None:
        models, skipped = compatible_models(read_index(zoo_dir), attrs)
        for name, reason in skipped.items():
            log.info("rank: %s skipped: %s", name, reason)
    waveform, stream_max, labels = target_training_data(store, subset, seed=seed)
    n_classes = int(attrs["n_outputs"]) if attrs["task"] == "classification" else None
    rows = []
    for entry in models:
        model = load(entry["arch"], entry["source"], zoo_dir, check=check)
        features = penultimate_features(model, waveform, stream_max)
        rows.append({"name": entry["name"], "arch": entry["arch"], "source": entry["source"],
                     "logme": logme(features, labels, attrs["task"], n_classes), "n_features": features.shape[1]})
        del model
        keras.backend.clear_session()
    table = pd.DataFrame(rows, columns=["name", "arch", "source", "logme", "n_features"])
    table = table.sort_values("logme", ascending=False, ignore_index=True)
    table.insert(4, "rank", np.arange(1, len(table) + 1))
    return table


def rank_target(zoo_dir: str | Path, data: str | Path, work_dir: str | Path, *, size: int | None = None,
                seed: int | None = None) -> pd.DataFrame:
    """``rank`` for ``--data`` as ``transfer`` would see it: the same seed (``seed`` or
    the zoo's), the same store (converted into ``work_dir`` when it is not one), and with
    ``size`` the subset ``transfer``'s first run fine-tunes on (else the training split)."""
    seed = zoo_seed(read_index(zoo_dir)["protocol"], seed)
    store = target_store(data, work_dir, seed=seed)
    if size is None:
        return rank(zoo_dir, store, seed=seed)
    variant = variant_name(size, store_attrs(store)["split_counts"]["train"])
    with tempfile.TemporaryDirectory() as scratch:
        subset = run_subset(store, Path(scratch) / "run0.npz", variant=variant, size=int(size), run=0, seed=seed)
        return rank(zoo_dir, store, subset=subset, seed=seed)
