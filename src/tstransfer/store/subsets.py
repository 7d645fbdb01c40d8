"""Each run's training subset of a store (the 1k5/9k variants) and its mask."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.base import SPLIT_CODES
from ..fsutil import atomic_path
from ..seeding import rng_for
from .splits import stratified_sample


def make_subset(
    store: str | Path,
    out: str | Path,
    *,
    variant: str,
    size: int,
    run: int,
    seed: int,
    stratified: bool = True,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Draw one run's training subset of ``size`` instances and compute its mask.

    A classification dataset's subset keeps the class proportions (the paper's text)
    unless ``stratified`` is false (switch ``unstratified_subsets``: the authors'
    resizeDataset.py shuffles the training set and takes the first ``size``).

    Writes ``out`` (.npz): ``indices`` (sorted store indices), ``mask`` (time, channel,
    float32, the subset's mean scaled waveform), and ``meta`` (JSON string).
    """
    import zarr

    log = log or logging.getLogger(__name__)
    root = zarr.open_group(store, mode="r")
    attrs = dict(root.attrs)
    split = root["split"][:]
    train = np.flatnonzero(split == SPLIT_CODES["train"])
    labels = root["label"][:][train] if attrs["task"] == "classification" and stratified else None
    requested = int(size)
    if size > len(train):
        # A small dataset of one's own (datasets.<name> with format:) has fewer training
        # instances than a variant asks for: the variant takes them all, and says so.
        size = len(train)
        log.warning(
            "%s: config variants.%s = %d exceeds its %d training instances; this variant uses "
            "all %d (%s)", attrs["dataset"], variant, requested, size, size, store,
        )
    rng = rng_for(seed, "subset", attrs["dataset"], variant, run)
    indices = stratified_sample(train, size, rng, labels)
    mask = mean_waveform(root["waveform"], indices)
    meta = {
        "dataset": attrs["dataset"], "variant": variant, "size": int(size), "run": int(run),
        "seed": seed, "stratified": labels is not None, "requested_size": requested,
    }
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, indices=indices.astype(np.int64), mask=mask, meta=json.dumps(meta))
    log.info("%s %s run %d: %d training instances", attrs["dataset"], variant, run, size)
    return meta


def mean_waveform(waveform, indices: np.ndarray) -> np.ndarray:
    """Mean over ``indices`` (sorted) of a zarr (instance, time, channel) array.

    Reads chunk by chunk (only chunks that hold selected instances), so memory stays at
    one chunk and reads stay sequential.
    """
    chunk = waveform.chunks[0]
    total = np.zeros(waveform.shape[1:], dtype=np.float64)
    for start in range(0, waveform.shape[0], chunk):
        stop = start + chunk
        lo, hi = np.searchsorted(indices, [start, stop])
        if lo == hi:
            continue
        block = waveform[start:stop]
        total += block[indices[lo:hi] - start].sum(axis=0, dtype=np.float64)
    return (total / len(indices)).astype(np.float32)


def load_subset(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(indices, mask, meta)`` from a subset file written by :func:`make_subset`."""
    with np.load(path, allow_pickle=False) as npz:
        return npz["indices"], npz["mask"], json.loads(str(npz["meta"]))
