"""The target of a transfer: ``--data`` as a converted store, its runs' training subsets
and the training data its LogME features are computed on."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
import zarr

from .. import datasets
from .. import store as stores
from ..datasets.base import SPLIT_CODES
from ..seeding import rng_for
from .cards import ZooError

FEATURE_LIMIT = 5000  # most target instances LogME is computed on (a seeded sample beyond)

log = logging.getLogger(__name__)

# File suffixes (and UCR/UEA folders) whose format ``--data`` can tell without an entry.
_FORMAT_BY_SUFFIX = {".ts": "ts", ".npz": "numpy", ".npy": "numpy", ".h5": "hdf5", ".hdf5": "hdf5",
                     ".csv": "csv", ".nc": "xarray", ".zarr": "xarray"}


def _yaml_entry(path: Path) -> tuple[str, dict[str, Any]]:
    """``(name, entry)`` from a YAML file holding one dataset entry."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(loaded, Mapping) and "format" in loaded:
        name, entry = path.stem, dict(loaded)
    elif isinstance(loaded, Mapping) and len(loaded) == 1 and isinstance(next(iter(loaded.values())), Mapping):
        name, entry = next(iter(loaded.items()))
        entry = dict(entry)
    else:
        raise ZooError(f"{path}: expected one dataset entry, {{name: {{format: ..., path: ...}}}} "
                       "as under the config's datasets:")
    if "path" in entry and not Path(entry["path"]).is_absolute():
        entry["path"] = str((path.parent / entry["path"]).resolve())
    return name, entry


def _file_entry(path: Path) -> tuple[str, dict[str, Any]]:
    """``(name, entry)`` for a data file or folder whose suffix tells its format."""
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None and path.is_dir() and any(path.glob("*_TRAIN.ts")):
        fmt = "ts"
    if fmt is None:
        raise ZooError(f"--data {path}: not a converted store (no zarr.json), a dataset entry "
                       f"(.yaml) or a file of a known format ({', '.join(sorted(_FORMAT_BY_SUFFIX))})")
    name = path.stem if path.is_file() else path.name
    if fmt == "ts" and path.is_file() and name.upper().endswith(("_TRAIN", "_TEST")):
        path, name = path.parent, name.rsplit("_", 1)[0]  # the archive's train and test files
    return name, {"format": fmt, "path": str(path.resolve())}


def data_entry(data: str | Path) -> tuple[str, dict[str, Any]]:
    """``(name, dataset entry)`` for a ``--data`` that is not a converted store.

    ``data`` is either a YAML file holding one dataset entry (``{name: {format: ...}}``,
    the config's ``datasets.<name>`` form, or the entry itself, named after the file),
    or a data file or folder whose format its suffix tells (``.ts``, ``.npz``, ``.h5``,
    ``.csv``, ``.nc``; a UCR/UEA folder with ``<Problem>_TRAIN.ts``), read with that
    format's defaults (:mod:`tstransfer.datasets.readers`). An entry without ``domain``
    gets ``user``: an "other domain" for the statistics.
    """
    path = Path(data)
    if not path.exists():
        raise ZooError(f"--data {path}: no such file or folder")
    name, entry = _yaml_entry(path) if path.suffix in (".yaml", ".yml") else _file_entry(path)
    entry.setdefault("domain", "user")
    name = "".join(c if c.isalnum() else "_" for c in str(name).lower()).strip("_") or "data"
    if name[0].isdigit():
        name = f"d_{name}"
    return name, entry


def target_store(data: str | Path, work_dir: str | Path | None = None, *, seed: int = 0) -> Path:
    """The converted store of ``--data``.

    A converted store (``results/data/<name>.zarr``) is used as it is. Anything else
    (a dataset entry, or a data file or folder, :func:`data_entry`) is registered as a
    dataset given by ``format:`` and converted with the study's preprocessing into
    ``<work_dir>/data/<name>.zarr`` (once: a store already there is reused), seeded
    with ``seed`` as the pipeline seeds its own conversions.
    """
    path = Path(data)
    if (path / "zarr.json").is_file():
        return path
    name, entry = data_entry(path)
    if name in datasets.BUILTIN:
        name = f"{name}_user"
    if work_dir is None:
        raise ZooError(f"--data {path}: converting a dataset needs a folder for its store (--out)")
    out = Path(work_dir) / "data" / f"{name}.zarr"
    module = datasets.register(name, entry)
    if not (out / "zarr.json").is_file():
        log.info("converting %s (%s) into %s", path, entry["format"], out)
        stores.convert(module, Path(entry["path"]), out, {}, seed=seed, log=log)
    return out


# --------------------------------------------------------------------------- the runs' subsets
def zoo_seed(protocol: Mapping[str, Any], seed: int | None = None) -> int:
    """The seed of every draw: ``seed`` when given, else the zoo's (its index's protocol)."""
    return int(protocol["seed"] if seed is None else seed)


def variant_name(size: int, n_train: int) -> str:
    """The subset variant's name for ``size`` of a target's ``n_train`` training
    instances: its seed (make_subset) and its folder under ``transfer``'s output, so
    that ``rank --size`` draws what ``transfer --size`` fine-tunes on."""
    return "all" if int(size) == int(n_train) else f"n{int(size)}"


def _subset_drawn(path: Path, *, size: int, seed: int) -> bool:
    """Whether ``path`` holds the subset this call would draw (same size and seed; the
    folder already names the target and variant)."""
    if not path.is_file():
        return False
    meta = stores.load_subset(path)[2]
    # The size asked for: make_subset records a size above the training split as capped.
    return meta.get("requested_size", meta.get("size")) == size and meta.get("seed") == seed


def run_subset(store: str | Path, path: str | Path, *, variant: str, size: int, run: int, seed: int) -> Path:
    """Run ``run``'s training set at ``path``: ``size`` instances drawn as the pipeline
    draws its subsets (:func:`tstransfer.store.make_subset`); a file there that holds
    this draw is kept. ``transfer`` draws every run's, ``rank --size`` run 0's."""
    path = Path(path)
    if not _subset_drawn(path, size=size, seed=seed):
        stores.make_subset(store, path, variant=variant, size=size, run=run, seed=seed, log=log)
    return path


# --------------------------------------------------------------------------- LogME's data
def _chunkwise_mean(rows: np.ndarray, indices: np.ndarray, chunk: int) -> np.ndarray:
    """The float32 mean of ``rows`` (the store's instances ``indices``, sorted), summed
    in float64 per store chunk of ``chunk`` instances as
    :func:`tstransfer.store.mean_waveform` sums them: the same mask, from rows in memory."""
    total = np.zeros(rows.shape[1:], dtype=np.float64)
    bounds = [0, *(np.flatnonzero(np.diff(indices // chunk)) + 1), len(indices)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        total += rows[lo:hi].sum(axis=0, dtype=np.float64)
    return (total / len(indices)).astype(np.float32)


def target_training_data(store: str | Path, subset: str | Path | None = None, *, seed: int = 0,
                         limit: int = FEATURE_LIMIT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(waveform - mask, stream_max, labels)`` of the target's training set (a subset
    file of the pipeline, or the store's training split), at most ``limit`` instances
    (a seeded sample). The sampled rows are read once."""
    root = zarr.open_group(str(store), mode="r")
    if subset is not None:
        indices, mask, _ = stores.load_subset(subset)
    else:
        indices = np.flatnonzero(np.asarray(root["split"][:]) == SPLIT_CODES["train"])
        mask = None
    if len(indices) > limit:
        # Seeded by the dataset, not the store's path: the same sample wherever the store is.
        dataset = root.attrs.get("dataset", "")
        indices = np.sort(rng_for(seed, "logme-sample", dataset).choice(indices, limit, replace=False))
    waveform = np.asarray(root["waveform"].get_orthogonal_selection((indices, slice(None), slice(None))))
    if mask is None:
        # The sample's mean, not the whole training split's as fine-tuning subtracts: on
        # STEAD that would read the whole store, and the mean of thousands of instances
        # is the split's mean to well within the traces' noise.
        mask = _chunkwise_mean(waveform, indices, root["waveform"].chunks[0])
    return (waveform - mask, np.asarray(root["stream_max"][:])[indices], np.asarray(root["label"][:])[indices])
