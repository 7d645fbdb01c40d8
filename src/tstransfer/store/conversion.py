"""``convert``: one dataset's raw files into its zarr store (layout: :mod:`tstransfer.store`).

Conversion streams: one cheap pass lists the instances (``list_instances``), the split is
drawn (per raw instance, so it does not depend on the store order), then waveforms flow
chunk by chunk from the raw files -- read in the raw order, sequentially, by a read-ahead
thread (:func:`_read_ahead`) -- into the store. The random store order costs a second
pass over the waveforms, through uncompressed scratch files beside the store
(:class:`~tstransfer.store.staging.Stager`: temporary disk space up to the waveforms'
uncompressed size, and page cache rather than process memory for the region being
ordered).

Speed (``bench/convert.py --format stead --size-gb 1.0 --repeats 5``, 2 cores, a quiet
machine, 2026-12-01): 0.59-0.60x a plain h5py read of the same traces (378-383 MB/s against
644-646 MB/s; 4.1 CPU-s per GB), peak RSS 560-600 MB; the code before the read-ahead thread
and the row-wise pass 2, run back to back with it: 0.51x (325 MB/s, 4.4 CPU-s, 757 MB).
Under load (both cores busy with other jobs) the ratio follows the CPU time, 0.37-0.42x:
the read-ahead thread only pays where a core is free.
Memory: the index (per-instance keys, labels, split: ~0.65 GB for STEAD's 1.2 M traces),
a few chunks in flight (read ahead, scaled, staged; in pass 2 one per writing thread);
nothing grows with the waveforms' total size.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..background import read_ahead
from ..datasets.base import SPLIT_CODES, TRAIN_OR_VAL, DataError, DatasetModule, InstanceIndex
from ..fsutil import atomic_path, is_full_disk, no_space_error, sha256_file
from ..progressbar import terminal_bar
from ..seeding import rng_for
from .scaling import instance_range, scale
from .splits import DEFAULT_FRACTIONS, index_and_split
from .staging import Stager
from .writer import StoreWriter

INSTANCE_CHUNK = 256  # instances per zarr chunk: whole-chunk reads are ~100x faster than random ones
READ_AHEAD = 2  # chunks the reader thread may have read before the conversion takes them


def convert(
    module: DatasetModule,
    raw: str | Path,
    out: str | Path,
    params: Mapping[str, Any],
    *,
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    chunk_size: int = INSTANCE_CHUNK,
    shuffle: bool = True,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Convert one dataset's raw files into its zarr store at ``out`` (atomically).

    ``shuffle``: store the instances in a seeded random order (see the module docstring);
    ``False`` keeps the raw order (benchmarks that measure what the random order buys).

    Returns a summary (counts per split, dropped counts, seconds) that is also stored
    in the store's attributes. A file system that fills up (or a quota) raises
    :class:`tstransfer.fsutil.NoSpaceError`, one line naming the dataset, ``out`` and the
    room left, once the partial store is removed.
    """
    log = log or logging.getLogger(__name__)
    info = module.INFO
    raw = Path(raw)
    started = time.perf_counter()
    index, table, split = index_and_split(module, raw, params, seed, fractions, log)
    position, raw_of = _store_order(len(table), seed, info.name, shuffle)

    label_dtype = np.int16 if info.task == "classification" else np.float32
    try:
        summary, seconds = _write_store(module, raw, params, out, index, table, split, position, raw_of,
                                        label_dtype, chunk_size, fractions, seed, shuffle, started, log)
    except OSError as error:
        if is_full_disk(error):  # the partial store and its scratch are gone (atomic_path)
            raise no_space_error(info.name, out, error) from error
        raise
    log.info("%s: wrote %s in %.1f s", info.name, out, seconds)
    return summary


def _write_store(module, raw, params, out, index, table, split, position, raw_of, label_dtype, chunk_size,
                 fractions, seed, shuffle, started, log) -> tuple[dict[str, Any], float]:
    """The store's writing, under a temporary name renamed to ``out`` at the end; returns
    the summary and the seconds since ``started``."""
    import zarr

    info = module.INFO
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out, directory=True))
        stager = None
        if shuffle:  # its scratch folder beside the store: same file system, removed at the end
            scratch = stack.enter_context(tempfile.TemporaryDirectory(
                prefix=f".{Path(out).name}.", suffix=".staging", dir=tmp.parent))
            stager = Stager(position, chunk_size, Path(scratch))
        writer = stack.enter_context(StoreWriter(tmp, split, label_dtype, chunk_size, stager))
        _write_chunks(module, raw, params, index, table["key"].tolist(), chunk_size, writer)
        if stager is not None:
            log.info("%s: instances stored in a seeded random order (%d regions of %d instances)",
                     info.name, stager.regions, stager.region_size)
        # The readers' keys equal the index's (checked chunk by chunk in _write_chunks).
        keys = np.asarray(table["key"].astype(str).tolist(), dtype=object)
        writer.finish(raw_of, keys, info.name, raw)
        seconds = time.perf_counter() - started
        summary = _summary(module, params, index, table, split, writer.shape, seed=seed,
                           fractions=fractions, shuffle=shuffle, seconds=seconds, log=log)
        zarr.open_group(tmp, mode="r+").attrs.update(summary)
    return summary, seconds


def _store_order(n: int, seed: int, dataset: str, shuffle: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """``(position, raw_of)``: ``position[i]`` is where raw instance i is stored (None in
    the raw order) and ``raw_of[p]`` the raw instance at store position p."""
    if not shuffle:
        return None, np.arange(n)
    position = rng_for(seed, "store-order", dataset).permutation(n)
    return position, np.argsort(position)


def _write_chunks(module: DatasetModule, raw: Path, params: Mapping[str, Any], index: InstanceIndex,
                  index_keys: list, chunk_size: int, writer: StoreWriter) -> None:
    """Every raw chunk, read ahead, checked (order, shape, finiteness) and scaled, into
    ``writer`` in the raw order; raises unless the reader produced every indexed instance."""
    info = module.INFO
    # Left before the writer: an error stops the reader thread (and closes the raw files)
    # before the writer and the temporary store are cleaned up.
    with contextlib.closing(_read_ahead(module.read_chunks(raw, params, index, chunk_size))) as chunks, \
            terminal_bar(f"{info.name}: convert", len(index_keys)) as bar:
        for chunk in chunks:
            expected = index_keys[writer.written : writer.written + len(chunk.keys)]
            waveforms = _checked_waveforms(info.name, chunk, expected, writer.shape)
            x, lo, hi = instance_range(waveforms)
            _check_finite(info.name, lo, hi, chunk.keys, chunk.file)
            writer.add(*scale(x, lo, hi), chunk.labels, chunk.keys)
            bar.update(len(chunk.keys))
    if writer.written != len(index_keys):
        raise DataError(info.name, raw,
                        f"reader produced {writer.written} instances, index lists {len(index_keys)}")


def _check_finite(dataset: str, lo: np.ndarray, hi: np.ndarray, keys: Sequence[str], file: str) -> None:
    """Raise if an instance holds NaN or inf (its min ``lo`` or max ``hi`` then is not
    finite: min and max propagate NaN), without another pass over the samples."""
    finite = (np.isfinite(lo) & np.isfinite(hi)).reshape(-1)
    if not finite.all():
        bad = [keys[i] for i in np.flatnonzero(~finite)[:5]]
        raise DataError(
            dataset, file, f"non-finite samples (NaN or inf) in {int((~finite).sum())} "
            f"instance(s) of this chunk, first: {', '.join(bad)}", trace=bad[0]
        )


def _checked_waveforms(dataset: str, chunk, expected_keys: list, shape: tuple | None) -> np.ndarray:
    """The chunk's waveforms as an (n, time, channel) array, after checking that the reader
    kept the index order and the shape (``shape``: the first chunk's instance shape, or
    ``None`` for the first chunk). Finiteness: :func:`_check_finite`."""
    count = len(chunk.keys)
    if list(map(str, chunk.keys)) != expected_keys:
        raise DataError(dataset, chunk.file, "reader returned instances out of index order")
    waveforms = np.asarray(chunk.waveforms)
    if waveforms.ndim != 3 or waveforms.shape[0] != count:
        raise DataError(
            dataset, chunk.file, f"expected (n, time, channel) waveforms, got {waveforms.shape}",
            trace=str(chunk.keys[0]),
        )
    if shape is not None and waveforms.shape[1:] != shape:
        raise DataError(
            dataset, chunk.file,
            f"instance shape {waveforms.shape[1:]} differs from the first instance's {shape}",
            trace=str(chunk.keys[0]),
        )
    return waveforms


def _file_checksums(files: Sequence[Path], log: logging.Logger) -> dict[str, str]:
    """sha256 per raw file; reuses the ``<file>.sha256`` recorded by the download rule."""
    from ..download import read_recorded_sha256  # here: requests is not a training job's import

    sums = {}
    for file in files:
        file = Path(file)
        recorded = read_recorded_sha256(file)
        if recorded is not None:
            sums[file.name] = recorded
        elif file.is_file():
            log.info("hashing %s (no recorded checksum beside it)", file)
            sums[file.name] = sha256_file(file)
    return sums


def _read_ahead(chunks: Iterable, depth: int = READ_AHEAD) -> Iterator:
    """The raw chunks, read by a background thread up to ``depth`` ahead.

    The raw readers (h5py) hold the GIL while they read; everything after them (numpy,
    Blosc, file writes) mostly releases it, so reading chunk k+1 overlaps scaling and
    writing chunk k on a second core. A reader's :class:`DataError` (naming the raw file)
    is raised in the conversion unchanged; a failed conversion stops the reader and
    closes its raw files (:func:`tstransfer.background.read_ahead`).
    """
    return read_ahead(chunks, depth, name="convert-read-ahead")


def _summary(module: DatasetModule, params: Mapping[str, Any], index: InstanceIndex, table,
             split: np.ndarray, shape: tuple, *, seed: int, fractions: Sequence[float],
             shuffle: bool, seconds: float, log: logging.Logger) -> dict[str, Any]:
    """The store's attributes (and ``convert``'s return value)."""
    info = module.INFO
    return {
        "dataset": info.name,
        "title": info.title,
        "domain": info.domain,
        "task": info.task,
        "class_names": list(info.class_names),
        "n_outputs": info.n_outputs,
        "channels": int(shape[1]),
        "length": int(shape[0]),
        # A dataset may resample (SPEECH: extract.sample_rate); the store records the rate it holds.
        "sampling_rate": float(params.get("sample_rate", info.sampling_rate)),
        "units": info.units,
        "n_instances": len(table),
        "split_counts": {name: int((split == code).sum()) for name, code in SPLIT_CODES.items()},
        "split_codes": SPLIT_CODES,
        "split_method": ("given" if not (table["split"].astype(str) == TRAIN_OR_VAL).any()
                         else "test given, train/val seeded") if "split" in table else
        ("stratified random" if info.task == "classification" else "random"),
        "split_fractions": list(fractions),
        # how to read the order: see the module docstring (raw_index restores the raw one)
        "instance_order": "shuffled" if shuffle else "raw",
        "seed": seed,
        "dropped": dict(index.dropped),
        "extraction": json.loads(json.dumps(dict(params), default=str)),
        "raw_sha256": _file_checksums(index.files, log),
        "convert_seconds": round(seconds, 3),
    }
