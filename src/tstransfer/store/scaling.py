"""Per-instance min-max scaling of waveform blocks, and the stream_max the store keeps."""

from __future__ import annotations

import numpy as np


def scale_instances(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-instance stream_max and min-max scaling of a (n, time, channel) block.

    Returns ``(scaled float32, stream_max float32)``. A constant instance scales to zeros.
    """
    return scale(*instance_range(raw))


def instance_range(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, lo, hi)``: the block as a float array and each instance's min and max
    (float64, shape (n, 1, 1)); NaN or inf in an instance makes its min or max non-finite."""
    x = np.asarray(raw)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    # min and max are exact in the input's own float type; the arithmetic is float64.
    lo = x.min(axis=(1, 2), keepdims=True).astype(np.float64)
    hi = x.max(axis=(1, 2), keepdims=True).astype(np.float64)
    return x, lo, hi


def scale(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(scaled float32, stream_max float32)`` of a block from :func:`instance_range`'s output."""
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
