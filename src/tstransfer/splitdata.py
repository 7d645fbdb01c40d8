"""One split of a store (train, val or test) for a :class:`~tstransfer.feed.Feed`: in
memory or streamed chunk by chunk.

Reads are whole chunks (only those that hold selected instances): whole-chunk reads are
~100x faster than per-instance ones (REFERENCE.md section 7). ``READ_THREADS`` chunks are
read at a time, in order, so memory stays at a few chunks however many are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

READ_THREADS = 4  # parallel chunk reads (zarr decompression releases the GIL)


@dataclass(frozen=True)
class ChunkSpan:
    """The selected instances of one store chunk: store rows ``start:stop``, picking ``rows``."""

    start: int
    stop: int
    rows: np.ndarray  # positions inside the chunk
    first: int  # position of the chunk's first selected instance in the split's order


def chunk_spans(indices: np.ndarray, chunk: int, total: int) -> list[ChunkSpan]:
    """The chunks (of ``chunk`` rows, ``total`` in all) that hold the sorted store ``indices``."""
    spans = []
    for start in range(0, total, chunk):
        lo, hi = np.searchsorted(indices, [start, start + chunk])
        if lo < hi:
            spans.append(ChunkSpan(start, min(start + chunk, total), indices[lo:hi] - start, int(lo)))
    return spans


def read_span(waveform, span: ChunkSpan) -> np.ndarray:
    """The selected instances of one chunk of a zarr waveform array, as float32 (one read)."""
    block = np.asarray(waveform[span.start : span.stop], dtype=np.float32)
    return block if len(span.rows) == len(block) else block[span.rows]


def ordered_reads(read: Callable[[Any], Any], items: Sequence[Any], pool) -> Iterator[tuple[Any, Any]]:
    """``(item, read(item))`` in order, with at most ``READ_THREADS`` reads in flight
    (so memory stays at a few chunks however many are read)."""
    pending: list = []
    upcoming = iter(items)
    for item in upcoming:
        pending.append((item, pool.submit(read, item)))
        if len(pending) >= READ_THREADS:
            break
    while pending:
        item, future = pending.pop(0)
        nxt = next(upcoming, None)
        if nxt is not None:
            pending.append((nxt, pool.submit(read, nxt)))
        yield item, future.result()


def load_in_memory(splits: Sequence[SplitData]) -> None:
    """Fill ``waveform`` of every in-memory split, reading each needed chunk ONCE.

    Validation and test instances are spread over the same chunks as the training
    instances (the split is random), so reading per split would decompress each chunk
    up to three times.
    """
    splits = [split for split in splits if split.in_memory]
    if not splits:
        return
    array = splits[0].waveform_array
    users: dict[int, list[tuple[SplitData, ChunkSpan]]] = {}
    for split in splits:
        split.waveform = np.empty((len(split), *split.mask.shape), dtype=np.float32)
        for span in split.spans:
            users.setdefault(span.start, []).append((split, span))
    chunk = int(array.chunks[0])

    def read(start: int) -> np.ndarray:
        return np.asarray(array[start : start + chunk], dtype=np.float32)

    with ThreadPoolExecutor(READ_THREADS) as pool:
        for start, block in ordered_reads(read, sorted(users), pool):
            for split, span in users[start]:
                rows = block if len(span.rows) == len(block) else block[span.rows]
                split.waveform[span.first : span.first + len(span.rows)] = rows - split.mask


class SplitData:
    """One split of a store (its instances in store order), in memory or streamed.

    ``labels`` and ``stream_max`` (one number per instance) are always in memory;
    ``waveform`` (mask already subtracted, data channels) only when ``in_memory``.
    """

    def __init__(
        self,
        root,
        name: str,
        indices: np.ndarray,
        mask: np.ndarray,
        *,
        memory_limit_bytes: int,
        force_stream: bool = False,
    ):
        self.name = name
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.size == 0:
            raise ValueError(f"the {name} split has no instances")
        if np.any(np.diff(self.indices) <= 0):
            raise ValueError(f"{name} indices must be sorted and unique")
        self.waveform_array = root["waveform"]
        self.mask = np.asarray(mask, dtype=np.float32)
        if self.mask.shape != tuple(self.waveform_array.shape[1:]):
            raise ValueError(
                f"mask shape {self.mask.shape} does not match the waveforms' "
                f"{tuple(self.waveform_array.shape[1:])}"
            )
        self.labels = np.asarray(root["label"][:])[self.indices]
        self.stream_max = np.asarray(root["stream_max"][:], dtype=np.float32)[self.indices]
        self.spans = chunk_spans(
            self.indices, int(self.waveform_array.chunks[0]), int(self.waveform_array.shape[0])
        )
        self.nbytes = int(self.indices.size * np.prod(self.mask.shape) * 4)
        self.in_memory = self.nbytes <= memory_limit_bytes and not force_stream
        self.waveform: np.ndarray | None = None  # filled by load_in_memory when in_memory

    def __len__(self) -> int:
        return int(self.indices.size)

    def read_span(self, span: ChunkSpan) -> np.ndarray:
        """The selected, mask-subtracted waveforms of one chunk."""
        return read_span(self.waveform_array, span) - self.mask

    def stream_in_order(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(waveform, stream_max, label)`` blocks, chunk by chunk, in store order."""
        with ThreadPoolExecutor(READ_THREADS) as pool:
            for span, block in ordered_reads(self.read_span, self.spans, pool):
                rows = slice(span.first, span.first + len(span.rows))
                yield block, self.stream_max[rows], self.labels[rows]
