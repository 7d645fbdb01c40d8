"""The random store order: waveforms that arrive in raw order, staged to their store positions."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

# Most waveform bytes in one region of the random store order (Stager): a region is read
# at random in pass 2, so it (and the next, read ahead) should fit in the page cache.
REGION_BYTES = 512 * 1024**2


class Stager:
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
