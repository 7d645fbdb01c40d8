"""Train/val/test split codes and stratified draws (for the store and the per-run subsets),
and the checked instance index of a conversion with its split codes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.base import SPLIT_CODES, TRAIN_OR_VAL, DataError, DatasetModule, InstanceIndex
from ..seeding import rng_for

DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


def _split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    n_val = min(n_val, n - n_train)
    return n_train, n_val, n - n_train - n_val


def assign_splits(
    n: int,
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> np.ndarray:
    """Random train/val/test codes (int8) for ``n`` instances, stratified by ``labels``.

    Stratified: each class is split 70/15/15 on its own (rounded per class), so class
    proportions agree across splits up to one instance per class.
    """
    codes = np.empty(n, dtype=np.int8)
    groups = [np.arange(n)] if labels is None else [
        np.flatnonzero(labels == value) for value in np.unique(labels)
    ]
    for members in groups:
        order = rng.permutation(members)
        n_train, n_val, _ = _split_counts(len(order), fractions)
        codes[order[:n_train]] = SPLIT_CODES["train"]
        codes[order[n_train : n_train + n_val]] = SPLIT_CODES["val"]
        codes[order[n_train + n_val :]] = SPLIT_CODES["test"]
    return codes


def stratified_sample(
    candidates: np.ndarray, size: int, rng: np.random.Generator, labels: np.ndarray | None = None
) -> np.ndarray:
    """``size`` of ``candidates`` drawn without replacement, sorted.

    With ``labels`` (aligned with ``candidates``) the draw keeps the class proportions:
    each class gets ``floor(size * share)`` and the remaining places go to the classes
    with the largest remainders (ties broken at random), so the total is exactly ``size``.
    """
    if size > len(candidates):
        raise ValueError(f"asked for {size} instances but only {len(candidates)} are available")
    if labels is None:
        return np.sort(rng.choice(candidates, size=size, replace=False))
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / counts.sum()
    take = np.floor(exact).astype(int)
    short = size - take.sum()
    if short:
        remainder = exact - take + rng.random(len(classes)) * 1e-9  # random tie-break
        take[np.argsort(-remainder)[:short]] += 1
    chosen = [
        rng.choice(candidates[labels == value], size=k, replace=False)
        for value, k in zip(classes, take)
    ]
    return np.sort(np.concatenate(chosen))



def index_and_split(
    module: DatasetModule, raw: Path, params: Mapping[str, Any], seed: int,
    fractions: Sequence[float], log: logging.Logger,
) -> tuple[InstanceIndex, Any, np.ndarray]:
    """The instance index (checked: non-empty, unique keys), its table and the split codes.

    The split is drawn per raw instance (given by the dataset where it has one), so it
    does not depend on the store order.
    """
    info = module.INFO
    index: InstanceIndex = module.list_instances(raw, params, log)
    table = index.table.reset_index(drop=True)
    n = len(table)
    if n == 0:
        raise DataError(info.name, raw, "the extraction kept no instances")
    if table["key"].duplicated().any():
        dup = table.loc[table["key"].duplicated(), "key"].iloc[0]
        raise DataError(info.name, raw, "duplicate instance key in the index", trace=str(dup))
    for reason, count in index.dropped.items():
        log.info("%s: dropped %d instance(s): %s", info.name, count, reason)

    if "split" in table:
        split = _given_split(table, info, seed, fractions)
    else:
        labels = table["label"].to_numpy() if info.task == "classification" else None
        split = assign_splits(n, rng_for(seed, "split", info.name), labels, fractions)
    log.info(
        "%s: %d instances -> train %d / val %d / test %d", info.name, n,
        *(int((split == c).sum()) for c in (0, 1, 2)),
    )
    return index, table, split


def _given_split(table, info, seed: int, fractions: Sequence[float]) -> np.ndarray:
    """Split codes from the index's ``split`` column; TRAIN_OR_VAL instances are drawn
    into train and val in the ratio of the first two ``fractions``, seeded and (for
    classification) stratified, the test set kept as given."""
    values = table["split"].astype(str)
    unknown = sorted(set(values) - set(SPLIT_CODES) - {TRAIN_OR_VAL})
    if unknown:
        raise DataError(info.name, "index", f"unknown split value(s) {unknown}")
    split = values.map(SPLIT_CODES).fillna(-1).to_numpy(dtype=np.int8)  # TRAIN_OR_VAL: -1 until drawn
    open_ = np.flatnonzero(values.to_numpy() == TRAIN_OR_VAL)
    if len(open_):
        labels = table["label"].to_numpy()[open_] if info.task == "classification" else None
        train_share = fractions[0] / (fractions[0] + fractions[1])
        codes = assign_splits(len(open_), rng_for(seed, "split", info.name), labels,
                              (train_share, 1.0 - train_share, 0.0))
        codes[codes == SPLIT_CODES["test"]] = SPLIT_CODES["val"]  # a rounding remainder
        split[open_] = codes
    return split
