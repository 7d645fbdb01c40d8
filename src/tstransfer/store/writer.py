"""Writing a store: the zarr arrays, created at the first chunk and filled chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..datasets.base import SPLIT_CODES, DataError
from ..progressbar import terminal_bar
from .staging import Stager


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


class StoreWriter:
    """Builds the store in ``path`` from scaled chunks that arrive in the raw order.

    :meth:`add` creates the store at the first chunk (every array sized to all ``n``
    instances at once), sends each chunk's waveforms to their store positions (through
    the :class:`~tstransfer.store.staging.Stager` when shuffled) and gathers the
    per-instance values and the training split's waveform sum; :meth:`finish` completes
    the waveforms and writes the per-instance arrays (in the store order) and the mask.

    One background thread writes chunk k (compressed to the store, or appended to the
    stager's scratch files) while chunk k+1 is scaled and chunk k+2 read (by the
    conversion's read-ahead thread; Blosc, file writes and numpy release the GIL); at most
    one write is in flight, so memory stays at a few chunks (plus the stager's pass 2).
    Used as a context manager, it waits for that write on the way out, also on an error
    (before the temporary store is removed).
    """

    def __init__(self, path: Path, split: np.ndarray, label_dtype, chunk_size: int,
                 stager: Stager | None):
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

    def __enter__(self) -> StoreWriter:
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
            with terminal_bar(f"{dataset}: store order", len(raw_of)) as bar:
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
