"""The preprocessed zarr store of one dataset, and the per-run training subsets.

Layout (an xarray Dataset with named dimensions, Zarr v3):

* ``waveform``  (instance, time, channel) float32 -- each instance min-max scaled to
  [0, 1] with its own min and max over all channels (a constant instance gives zeros);
  the training mask is *not* subtracted here, because every 1k5/9k subset has its own;
* ``label``     (instance,) float32 (regression) or int16 (classification);
* ``stream_max`` (instance,) float32 -- ``max(|min|, |max|)`` of the raw instance;
* ``split``     (instance,) int8 -- 0 train, 1 val, 2 test (``split_codes`` attr);
* ``key``       (instance,) str -- the raw trace / file / window id;
* ``raw_index`` (instance,) int64 -- the instance's position in the extraction's (raw) order;
* ``mask``      (time, channel) float32 -- mean scaled waveform of the full training split.

Instances are stored in a seeded random order (``rng_for(seed, "store-order", dataset)``),
not in the raw files' order, where neighbouring traces share station, time and magnitude:
a training split too big for memory is streamed a few chunks at a time (``feed.Feed``), and
its batches are close to draws from a full permutation only if every chunk is a random
sample of the split (bench/stream_order.py). ``key`` identifies each instance and
``raw_index`` restores the raw order (``np.argsort(raw_index)``).

Attributes record the dataset, task, classes, sampling rate, units, extraction
parameters, raw file checksums, split seed and fractions, counts, and what the extraction
dropped. See REFERENCE.md section 3 for the preprocessing this implements.

Conversion streams: one cheap pass lists the instances (``list_instances``), the split is
drawn (per raw instance, so it does not depend on the store order), then waveforms flow
chunk by chunk from the raw files -- read in the raw order, sequentially, by a read-ahead
thread (:func:`_read_ahead`) -- into the store. The random store order costs a second
pass over the waveforms, through uncompressed scratch files beside the store
(:class:`_Stager`: temporary disk space up to the waveforms' uncompressed size, and page
cache rather than process memory for the region being ordered).

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
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .background import read_ahead
from .datasets.base import SPLIT_CODES, TRAIN_OR_VAL, DataError, DatasetModule, InstanceIndex
from .fsutil import atomic_path, sha256_file
from .seeding import rng_for

INSTANCE_CHUNK = 256  # instances per zarr chunk: whole-chunk reads are ~100x faster than random ones
READ_AHEAD = 2  # chunks the reader thread may have read before the conversion takes them
# Most waveform bytes in one region of the random store order (_Stager): a region is read
# at random in pass 2, so it (and the next, read ahead) should fit in the page cache.
REGION_BYTES = 512 * 1024**2
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


# --------------------------------------------------------------------------- splits
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


# --------------------------------------------------------------------------- scaling
def scale_instances(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-instance stream_max and min-max scaling of a (n, time, channel) block.

    Returns ``(scaled float32, stream_max float32)``. A constant instance scales to zeros.
    """
    return _scale(*_instance_range(raw))


def _instance_range(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, lo, hi)``: the block as a float array and each instance's min and max
    (float64, shape (n, 1, 1)); NaN or inf in an instance makes its min or max non-finite."""
    x = np.asarray(raw)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    # min and max are exact in the input's own float type; the arithmetic is float64.
    lo = x.min(axis=(1, 2), keepdims=True).astype(np.float64)
    hi = x.max(axis=(1, 2), keepdims=True).astype(np.float64)
    return x, lo, hi


def _scale(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stream_max = np.maximum(np.abs(lo), np.abs(hi)).reshape(-1)
    span = hi - lo
    inverse = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)  # 0: constant -> zeros
    scaled = np.empty(x.shape, dtype=np.float32)
    # A few instances at a time, in place: the float64 temporaries stay small and
    # cache-resident (2-4x faster than whole-block expressions on STEAD-sized chunks).
    step = 16
    for start in range(0, len(x), step):
        block = x[start : start + step].astype(np.float64)
        block -= lo[start : start + step]
        block *= inverse[start : start + step]
        scaled[start : start + step] = block
    return scaled, stream_max.astype(np.float32)


# --------------------------------------------------------------------------- convert
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


def _file_checksums(files: Sequence[Path], log: logging.Logger) -> dict[str, str]:
    """sha256 per raw file; reuses the ``<file>.sha256`` recorded by the download rule."""
    from .download import read_recorded_sha256  # here: requests is not a training job's import

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


def _progress(desc: str, total: int, unit: str = "instance"):
    """A progress bar on stderr when it is a terminal; a no-op bar otherwise (logs get the
    log lines only). Updated per chunk, never per instance."""
    from tqdm import tqdm

    stream = sys.stderr
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=stream, mininterval=0.5,
                disable=not (hasattr(stream, "isatty") and stream.isatty()), leave=True, dynamic_ncols=True)


class _Stager:
    """Writes waveforms that arrive in raw order to their random store positions, with
    sequential raw reads, chunk-aligned store writes and bounded memory.

    A store position's *region* is ``position // region_size``: ``region_size`` is a
    whole number of chunks, ``sqrt(n_chunks)`` of them but at most ``region_bytes`` of
    waveforms (set by the first :meth:`add`, which knows an instance's size). Pass 1
    (:meth:`add`): each region's instances are appended, in arrival order, to the
    region's file in the scratch folder ``folder``, uncompressed, straight from the
    chunk (one ``writev`` per region and chunk). Pass 2 (:meth:`finish`): region by
    region, each store chunk is filled by reading its rows from the region's file at
    their offsets (the file read ahead into the page cache) and written to the store;
    the file is then deleted. The regions only group the work: the store is the same
    whatever their size.

    Memory: pass 1 holds the chunk being appended, pass 2 one chunk per writing thread
    (4 x 18 MB for STEAD). A region (STEAD: 29 chunks, 0.53 GB, where ``sqrt(n_chunks)``
    would be ~64 chunks, 1.2 GB; LEN-DB: 50 chunks, 83 MB) and the next one sit in the
    page cache, not in the process (reading the region into one array first cost a
    region of memory and a copy of every instance: peak RSS 674 -> 546 MB, CPU
    5.34 -> 4.90 s per GB in bench/convert.py on a loaded machine).
    Disk: until pass 2 has written a region, its waveforms sit in the scratch folder
    uncompressed, so a conversion needs up to the store's compression ratio times the
    store's waveforms (Blosc-lz4 with byte shuffle on scaled float32 waveforms: 1.14 on
    the Gaussian noise of bench/convert.py, 1.35 on integer-count-like synthetic traces).
    Staging in the store's own chunks instead (before) compressed every instance twice,
    decompressed it once and paid zarr's per-chunk overhead twice: 6.1 s of CPU time
    per GB against 4.4 s (bench/convert.py, STEAD format). Writing each instance
    straight to its final chunk would rewrite (decompress, recompress) a whole chunk per
    instance; reading the raw files in the store order would seek per trace.
    """

    def __init__(self, position: np.ndarray, chunk: int, folder: Path, region_bytes: int = REGION_BYTES):
        self.position = position
        self.chunk = chunk
        self.folder = folder
        self.region_bytes = region_bytes
        self.region_size = 0  # instances per region, and
        self.regions = 0  # regions: both set by the first add
        self.staged = np.zeros(0, dtype=np.int64)  # rows appended per region
        self._files: dict[int, Any] = {}

    def _set_regions(self, instance_bytes: int) -> None:
        n_chunks = -(-len(self.position) // self.chunk)
        chunks = min(int(np.ceil(np.sqrt(n_chunks))), self.region_bytes // (self.chunk * instance_bytes))
        self.region_size = max(1, chunks) * self.chunk
        self.regions = -(-len(self.position) // self.region_size)
        self.staged = np.zeros(self.regions, dtype=np.int64)

    def _path(self, r: int) -> Path:
        return self.folder / f"region-{r:06d}.f32"

    def add(self, rows: np.ndarray, first: int) -> None:
        """Append ``rows`` (raw instances ``first``, ``first + 1``, ...) to their regions' files."""
        if not self.regions:
            self._set_regions(rows[0].nbytes)
        region = self.position[first : first + len(rows)] // self.region_size
        by_region = np.argsort(region, kind="stable")  # stable: arrival order within a region
        for members in np.split(by_region, np.flatnonzero(np.diff(region[by_region])) + 1):
            r = int(region[members[0]])
            if r not in self._files:
                self._files[r] = open(self._path(r), "wb", buffering=0)  # noqa: SIM115 (closed by close)
            # The rows straight from the chunk (one gathered write, no copy of them first).
            _write_all(self._files[r].fileno(), [rows[i] for i in members])
            self.staged[r] += len(members)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def _prefetch(self, r: int) -> None:
        """Ask the kernel to read region ``r``'s file into the page cache, sequentially and
        in the background (pass 2 then reads its rows in the store order, i.e. at random)."""
        if not hasattr(os, "posix_fadvise") or r >= self.regions:
            return
        try:
            fd = os.open(self._path(r), os.O_RDONLY)
        except FileNotFoundError:  # nothing staged: finish reports it when it gets there
            return
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)

    def finish(self, waveform, threads: int = 4, progress: Callable[[int], Any] | None = None) -> None:
        """Pass 2: write every staged region's rows to their final positions.

        The store's chunks of a region are filled and written by ``threads`` threads
        (compression and file reads release the GIL), each with its own chunk buffer into
        which it reads the chunk's rows straight from the region's file, one read per row
        at its offset. The region itself is not held in memory: it is read ahead into the
        page cache (the next region while this one is written). ``progress(k)``: k more
        instances written.
        """
        self.close()
        n = len(self.position)
        raw_of = np.argsort(self.position)  # store position -> raw index
        shape, dtype = waveform.shape[1:], np.dtype(waveform.dtype)
        row_bytes = int(np.prod(shape)) * dtype.itemsize
        local = threading.local()
        self._prefetch(0)
        with ThreadPoolExecutor(threads) as pool:
            for r in range(self.regions):
                start, stop = r * self.region_size, min(n, (r + 1) * self.region_size)
                path = self._path(r)
                if self.staged[r] != stop - start:
                    raise RuntimeError(f"region {r}: staged {self.staged[r]} of {stop - start} rows")
                if path.stat().st_size != (stop - start) * row_bytes:
                    raise RuntimeError(f"region {r}: scratch file {path} has the wrong size")
                self._prefetch(r + 1)
                # staged row s is the region's s-th instance in raw order
                members = np.sort(raw_of[start:stop])
                source = np.empty(stop - start, dtype=np.int64)
                source[self.position[members] - start] = np.arange(stop - start)

                def write(lo: int) -> int:
                    hi = min(stop - start, lo + self.chunk)
                    if getattr(local, "rows", None) is None:
                        local.rows = np.empty((self.chunk, *shape), dtype=dtype)
                    rows = local.rows[: hi - lo]
                    with open(path, "rb", buffering=0) as handle:
                        for row, staged_row in zip(rows, source[lo:hi].tolist()):
                            handle.seek(staged_row * row_bytes)
                            if handle.readinto(memoryview(row).cast("B")) != row_bytes:
                                raise RuntimeError(f"region {r}: short read from scratch file {path}")
                    waveform[start + lo : start + hi] = rows
                    return hi - lo

                for count in pool.map(write, range(0, stop - start, self.chunk)):
                    if progress is not None:
                        progress(count)
                path.unlink()


try:  # buffers per writev call
    _IOV_MAX = max(16, os.sysconf("SC_IOV_MAX"))
except (AttributeError, ValueError, OSError):
    _IOV_MAX = 16  # POSIX's least IOV_MAX


def _write_all(fd: int, buffers: list[np.ndarray]) -> None:
    """Write C-contiguous arrays back to back to ``fd``: one ``writev`` per IOV_MAX of them,
    without concatenating them first (a short write goes on where it stopped)."""
    views = [memoryview(b).cast("B") for b in buffers]
    if not hasattr(os, "writev"):  # (not POSIX)
        for view in views:
            while view:
                view = view[os.write(fd, view):]
        return
    while views:
        batch = views[:_IOV_MAX]
        written = os.writev(fd, batch)
        if written <= 0:
            raise OSError(f"writev wrote nothing to file descriptor {fd}")
        done = 0
        while done < len(batch) and written >= len(batch[done]):
            written -= len(batch[done])
            done += 1
        views = views[done:]
        if written:
            views[0] = views[0][written:]


def _index_and_split(
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


PER_INSTANCE = ("label", "stream_max", "split", "key", "raw_index")  # the (instance,) arrays


def _encoding(chunk_size: int, shape: tuple) -> dict[str, dict]:
    import zarr

    return {
        # Blosc-lz4 with byte shuffle instead of zarr's default Zstd: on seismic
        # waveforms it writes 1.7x and reads 2.8x faster (training reads these
        # chunks every epoch) and compresses about as well (bench/convert.py).
        # Other settings on scaled float32 STEAD-sized chunks, one core (this one:
        # ratio 1.14 on Gaussian noise to 1.33 on integer-count-like traces, encodes
        # ~2 GB/s, decodes 3.5-4.4 GB/s): clevel 1 is no faster and compresses less;
        # bitshuffle compresses more (1.27-1.50) but decodes slower (3.2-3.4 GB/s);
        # no compression would save ~0.5 s of CPU per GB converted for 1.1-1.35x bytes.
        "waveform": {
            "chunks": (chunk_size, *shape),
            "compressors": [zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
        },
        **{name: {"chunks": (chunk_size * 16,)} for name in PER_INSTANCE},
    }


class _StoreWriter:
    """Builds the store in ``path`` from scaled chunks that arrive in the raw order.

    :meth:`add` creates the store at the first chunk (every array sized to all ``n``
    instances at once), sends each chunk's waveforms to their store positions (through
    the :class:`_Stager` when shuffled) and gathers the per-instance values and the
    training split's waveform sum; :meth:`finish` completes the waveforms and writes the
    per-instance arrays (in the store order) and the mask.

    One background thread writes chunk k (compressed to the store, or appended to the
    stager's scratch files) while chunk k+1 is scaled and chunk k+2 read (by
    :func:`_read_ahead`; Blosc, file writes and numpy release the GIL); at most one write
    is in flight, so memory stays at a few chunks (plus the stager's pass 2). Used as a
    context manager, it waits for that write on the way out, also on an error (before
    the temporary store is removed).
    """

    def __init__(self, path: Path, split: np.ndarray, label_dtype, chunk_size: int,
                 stager: _Stager | None):
        n = len(split)
        self.path = path
        self.split = split
        self.label_dtype = label_dtype
        self.chunk_size = chunk_size
        self.stager = stager
        self.root = None  # the zarr group, once the first chunk created it
        self.waveform = None  # its waveform array, for writing
        self.written = 0  # instances received
        self.shape: tuple | None = None  # one instance's (time, channel)
        self.train_sum: np.ndarray | None = None
        # Per-instance values are gathered here and written once at the end (finish).
        self.labels = np.empty(n, dtype=label_dtype)
        self.stream_max = np.empty(n, dtype=np.float32)
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending = None  # the write in flight

    def __enter__(self) -> _StoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True)
        if self.stager is not None:
            self.stager.close()

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def _background(self, write: Callable, *args) -> None:
        """``write(*args)`` in the background thread, after the write in flight."""
        self._wait()
        self._pending = self._pool.submit(write, *args)

    def add(self, scaled: np.ndarray, stream_max: np.ndarray, labels, keys) -> None:
        """The next chunk (raw order): scaled waveforms, stream_max, labels and keys."""
        count = len(scaled)
        rows = slice(self.written, self.written + count)
        in_train = self.split[rows] == SPLIT_CODES["train"]
        part = scaled[in_train].sum(axis=0, dtype=np.float64)
        self.train_sum = part if self.train_sum is None else self.train_sum + part
        labels = np.asarray(labels, dtype=self.label_dtype)
        first_chunk = self.root is None
        if first_chunk:
            self._create(scaled, stream_max, labels, keys)
        if self.stager is not None:
            # (the first chunk's rows written by _create are overwritten in pass 2)
            self._background(self.stager.add, scaled, self.written)
        elif not first_chunk:
            self._background(self.waveform.__setitem__, rows, scaled)
        self.labels[rows] = labels
        self.stream_max[rows] = stream_max
        self.written += count

    def _create(self, scaled: np.ndarray, stream_max: np.ndarray, labels: np.ndarray, keys) -> None:
        """The store, from the first chunk, with every array resized to all instances."""
        import xarray as xr
        import zarr

        count = len(scaled)
        self.shape = scaled.shape[1:]
        first = {
            "waveform": (("instance", "time", "channel"), scaled),
            "label": (("instance",), labels),
            "stream_max": (("instance",), stream_max),
            "split": (("instance",), self.split[:count]),
            # Variable-length UTF-8: fixed-width strings have no Zarr v3 spec yet.
            "key": (("instance",), np.asarray(list(map(str, keys)), dtype=object)),
            "raw_index": (("instance",), np.arange(count, dtype=np.int64)),
        }
        xr.Dataset(first).to_zarr(self.path, mode="w", encoding=_encoding(self.chunk_size, self.shape),
                                  consolidated=False, zarr_format=3)
        self.root = zarr.open_group(self.path, mode="r+")
        # Size every array to the whole index once. Appending per chunk rewrote each
        # array's metadata and the last partial chunk of the four small arrays every
        # time: 60% of the store's cost in bench/convert.py (LEN-DB). Waveforms are
        # written in place, chunk-aligned; the per-instance arrays are written whole by
        # finish. (xarray's append_dim is slower still: it re-reads and re-validates the
        # store per call.)
        n = len(self.split)
        for name in first:
            self.root[name].resize((n, *self.root[name].shape[1:]))
        # Without zarr's test of every chunk written for "all fill value (0), then store
        # nothing" (write_empty_chunks false): a comparison of every byte in zarr's one
        # event-loop thread, about a quarter of the CPU time of writing a STEAD-sized
        # chunk. An all-zero chunk (256 constant instances) is then stored instead of
        # left implicit: the same values either way.
        self.waveform = self.root["waveform"].with_config({"write_empty_chunks": True})

    def finish(self, raw_of: np.ndarray, keys: np.ndarray, dataset: str, raw: Path) -> None:
        """After the last chunk: the waveforms' final positions, the per-instance arrays in
        the store order (``raw_of[p]``: the raw instance at store position p) and the mask."""
        import xarray as xr

        self._wait()
        if self.stager is not None:  # pass 2 (pass 1 is written: _wait)
            with _progress(f"{dataset}: store order", len(raw_of)) as bar:
                self.stager.finish(self.waveform, progress=bar.update)
        self.root["label"][:] = self.labels[raw_of]
        self.root["stream_max"][:] = self.stream_max[raw_of]
        self.root["split"][:] = self.split[raw_of]
        self.root["key"][:] = keys[raw_of]
        self.root["raw_index"][:] = raw_of.astype(np.int64)
        n_train = int((self.split == SPLIT_CODES["train"]).sum())
        if n_train == 0:
            raise DataError(dataset, raw, "the training split is empty")
        mask = (self.train_sum / n_train).astype(np.float32)
        xr.Dataset({"mask": (("time", "channel"), mask)}).to_zarr(
            self.path, mode="a", consolidated=False, zarr_format=3
        )


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
    in the store's attributes.
    """
    import zarr

    log = log or logging.getLogger(__name__)
    info = module.INFO
    raw = Path(raw)
    started = time.perf_counter()
    index, table, split = _index_and_split(module, raw, params, seed, fractions, log)
    n = len(table)
    index_keys = table["key"].tolist()

    # position[i]: where raw instance i is stored; raw_of[p]: the raw instance at position p
    if shuffle:
        position = rng_for(seed, "store-order", info.name).permutation(n)
        raw_of = np.argsort(position)
    else:
        raw_of = np.arange(n)

    label_dtype = np.int16 if info.task == "classification" else np.float32
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out, directory=True))
        stager = None
        if shuffle:  # its scratch folder beside the store: same file system, removed at the end
            scratch = stack.enter_context(tempfile.TemporaryDirectory(
                prefix=f".{Path(out).name}.", suffix=".staging", dir=tmp.parent))
            stager = _Stager(position, chunk_size, Path(scratch))
        writer = stack.enter_context(_StoreWriter(tmp, split, label_dtype, chunk_size, stager))
        # Entered last, so left first: an error stops the reader thread (and closes the
        # raw files) before the writer and the temporary store are cleaned up.
        chunks = stack.enter_context(contextlib.closing(
            _read_ahead(module.read_chunks(raw, params, index, chunk_size))))
        with _progress(f"{info.name}: convert", n) as bar:
            for chunk in chunks:
                expected = index_keys[writer.written : writer.written + len(chunk.keys)]
                waveforms = _checked_waveforms(info.name, chunk, expected, writer.shape)
                x, lo, hi = _instance_range(waveforms)
                _check_finite(info.name, lo, hi, chunk.keys, chunk.file)
                writer.add(*_scale(x, lo, hi), chunk.labels, chunk.keys)
                bar.update(len(chunk.keys))
        if writer.written != n:
            raise DataError(info.name, raw, f"reader produced {writer.written} instances, index lists {n}")
        if stager is not None:
            log.info("%s: instances stored in a seeded random order (%d regions of %d instances)",
                     info.name, stager.regions, stager.region_size)
        # The readers' keys equal the index's (checked chunk by chunk above).
        keys = np.asarray(table["key"].astype(str).tolist(), dtype=object)
        writer.finish(raw_of, keys, info.name, raw)
        seconds = time.perf_counter() - started
        summary = _summary(module, params, index, table, split, writer.shape, seed=seed,
                           fractions=fractions, shuffle=shuffle, seconds=seconds, log=log)
        zarr.open_group(tmp, mode="r+").attrs.update(summary)
    log.info("%s: wrote %s in %.1f s", info.name, out, seconds)
    return summary


# --------------------------------------------------------------------------- reading
def open_store(path: str | Path):
    """Open a converted store lazily as an xarray Dataset (nothing is read yet)."""
    import xarray as xr

    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"{path}: not a converted dataset store (no zarr.json)")
    # Written without consolidated metadata (not part of the Zarr v3 specification).
    return xr.open_zarr(path, consolidated=False)


def store_attrs(path: str | Path) -> dict[str, Any]:
    """The store's attributes (cheap: reads only metadata)."""
    import zarr

    return dict(zarr.open_group(path, mode="r").attrs)


# --------------------------------------------------------------------------- subsets
def make_subset(
    store: str | Path,
    out: str | Path,
    *,
    variant: str,
    size: int,
    run: int,
    seed: int,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Draw one run's training subset of ``size`` instances and compute its mask.

    Writes ``out`` (.npz): ``indices`` (sorted store indices), ``mask`` (time, channel,
    float32, the subset's mean scaled waveform), and ``meta`` (JSON string).
    """
    import zarr

    log = log or logging.getLogger(__name__)
    root = zarr.open_group(store, mode="r")
    attrs = dict(root.attrs)
    split = root["split"][:]
    train = np.flatnonzero(split == SPLIT_CODES["train"])
    labels = root["label"][:][train] if attrs["task"] == "classification" else None
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


__all__ = [
    "assign_splits", "stratified_sample", "scale_instances", "convert", "open_store",
    "store_attrs", "make_subset", "mean_waveform", "load_subset",
]
