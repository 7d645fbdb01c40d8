"""SPEECH's audio, apart from the archive: WAV decoding, the 16 kHz -> ``sample_rate``
resamplers and the padding of short clips with background noise (a seeded segment, or the
authors' rotating buffer). :mod:`.speech` reads the archive and calls these."""

from __future__ import annotations

import functools
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..seeding import rng_for
from .base import DataError

DATASET = "speech"  # the name DataError gives (.speech imports this module, not the reverse)
SOURCE_RATE = 16_000  # Hz of every WAV in the archive


WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def _riff_chunks(data: bytes) -> tuple[tuple[int, int, int, int], bytes]:
    """``((format tag, channels, rate, bits), sample bytes)`` of a RIFF/WAVE file.

    A small reader of our own rather than :mod:`wave`: Python 3.11's ``wave`` rejects
    WAVE_FORMAT_EXTENSIBLE headers even when they hold plain PCM, and an exact reason
    (format, width, channels, rate, truncation) makes a better error message.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    position, fmt = 12, None
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        body = data[position + 8 : position + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise ValueError("fmt chunk shorter than 16 bytes")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID's tag
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("data chunk before the fmt chunk")
            if len(body) < size:
                raise ValueError(f"data chunk ends after {len(body)} of {size} bytes (truncated)")
            return fmt, body
        position += 8 + size + (size & 1)  # chunks are word-aligned
    raise ValueError("no data chunk" if fmt else "no fmt chunk")


def decode_wav(data: bytes, archive: Path, name: str) -> np.ndarray:
    """Samples of a 16-bit PCM mono 16 kHz WAV as float64 in [-1, 1)."""
    return np.frombuffer(_pcm16(data, archive, name), dtype="<i2").astype(np.float64) / 32768.0


def _pcm16(data: bytes, archive: Path, name: str) -> bytes:
    """The sample bytes of a WAV, checked to be 16-bit PCM mono 16 kHz."""
    try:
        (tag, channels, rate, bits), samples = _riff_chunks(data)
    except ValueError as exc:
        raise DataError(DATASET, archive, f"unreadable WAV ({exc})", trace=name) from None
    if (tag, channels, bits, rate) != (WAVE_FORMAT_PCM, 1, 16, SOURCE_RATE):
        kind = "PCM" if tag == WAVE_FORMAT_PCM else f"format tag {tag:#06x} (not PCM)"
        raise DataError(
            DATASET, archive,
            f"expected 16-bit PCM mono {SOURCE_RATE} Hz, got {bits}-bit {kind}, {channels} "
            f"channel(s), {rate} Hz", trace=name,
        )
    if len(samples) % 2:
        raise DataError(DATASET, archive, "odd number of bytes in 16-bit WAV data", trace=name)
    return samples


@functools.lru_cache(maxsize=8)
def _antialias_filter(up: int, down: int) -> np.ndarray:
    """The FIR low-pass ``resample_poly`` designs by default (Kaiser, beta 5, 10 zero
    crossings per side), designed once instead of once per clip (half its run time)."""
    # scipy.signal is imported here, not at module level: every training job imports this
    # package (through the store), and scipy.signal alone adds ~1 s to its start-up.
    from scipy.signal import firwin

    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))


# resampy 0.2's "kaiser_best" filter, what librosa 0.8.1 (the authors' loader) resamples
# with by default: a Kaiser-windowed sinc, 64 zero crossings a side, roll-off 0.9476,
# beta 14.77 (resampy/filters.py). Neither librosa nor resampy is installed here; the
# same filter is designed with scipy (firwin) and applied by resample_poly, which for
# the rational ratios SPEECH needs (16 kHz -> 8 kHz) is the same sum resampy computes
# from its interpolated table (resampy's 2**9-per-crossing table rounds a little).
KAISER_BEST = {"zeros": 64, "rolloff": 0.9475937167399596, "beta": 14.769656459379492}
RESAMPLERS = ("poly", "kaiser_best")


@functools.lru_cache(maxsize=8)
def _kaiser_best_filter(up: int, down: int) -> np.ndarray:
    """resampy's ``kaiser_best`` low-pass at ``max(up, down)`` times the slower rate."""
    from scipy.signal import firwin

    max_rate = max(up, down)
    return firwin(2 * KAISER_BEST["zeros"] * max_rate + 1, KAISER_BEST["rolloff"] / max_rate,
                  window=("kaiser", KAISER_BEST["beta"]))


def resample(samples: np.ndarray, rate: int, resampler: str = "poly") -> np.ndarray:
    """16 kHz -> ``rate`` with scipy's polyphase FIR: ``resample_poly``'s own anti-alias
    filter (``poly``, Kaiser beta 5, 10 zero crossings) or resampy's ``kaiser_best``
    (extract setting ``resampler``; switch ``authors_data_releases``)."""
    ratio = Fraction(rate, SOURCE_RATE)
    if ratio == 1:
        return samples
    up, down = ratio.numerator, ratio.denominator
    from scipy.signal import resample_poly

    design = _kaiser_best_filter if resampler == "kaiser_best" else _antialias_filter
    return resample_poly(samples, up, down, window=design(up, down))


def pad_with_noise(
    clip: np.ndarray, n_samples: int, noise: list[np.ndarray], key: str, noise_seed: int,
    archive: Path,
) -> np.ndarray:
    """``clip`` cut or padded to ``n_samples``; padding is one contiguous noise segment.

    The segment is drawn uniformly among all positions, in all noise recordings, where
    it fits without crossing a recording's end; the draw is seeded by ``key`` alone.
    """
    if len(clip) >= n_samples:
        return clip[:n_samples]
    need = n_samples - len(clip)
    starts_per_file = np.array([max(0, len(n) - need + 1) for n in noise])
    total = int(starts_per_file.sum())
    if total == 0:
        raise DataError(
            DATASET, archive,
            f"no background-noise recording is long enough to pad {need} samples "
            f"(longest: {max((len(n) for n in noise), default=0)})", trace=key,
        )
    position = int(rng_for(noise_seed, DATASET, "pad", key).integers(total))
    file = int(np.searchsorted(np.cumsum(starts_per_file), position, side="right"))
    start = position - int(starts_per_file[:file].sum())
    return np.concatenate([clip, noise[file][start : start + need]])


def resampled_length(n_in: int, rate: int) -> int:
    """Samples that :func:`resample` makes of ``n_in`` samples at 16 kHz (either filter):
    ``resample_poly``'s ceil(n_in * up / down), which is also the length librosa 0.8.1
    fixes its output to."""
    ratio = Fraction(rate, SOURCE_RATE)
    return -(-n_in * ratio.numerator // ratio.denominator)


def pad_offsets(keys: list[str], labels: np.ndarray, lengths: np.ndarray, n_samples: int) -> dict[str, int]:
    """Where each clip's padding starts in the authors' rotating noise buffer.

    ``preprocess_speech_commands_8khz.py`` (ecokeco/tstl) walks the word folders in the
    order of its list (alphabetical: :data:`WORDS`) and each folder in ``os.listdir``
    order, which the file system decides; here the clips' names, sorted. A clip shorter
    than ``n_samples`` (``lengths``: resampled) is padded with the buffer's first samples
    and the buffer is rotated left by as many, so a clip's padding starts at the padding
    length summed over the short clips before it (modulo the buffer's length).
    """
    order = sorted(range(len(keys)), key=lambda i: (int(labels[i]), keys[i]))
    offsets: dict[str, int] = {}
    position = 0
    for i in order:
        offsets[keys[i]] = position
        position += max(0, n_samples - int(lengths[i]))
    return offsets


def pad_from_buffer(clip: np.ndarray, n_samples: int, buffer: np.ndarray, offset: int, key: str,
                    archive: Path) -> np.ndarray:
    """``clip`` cut or padded to ``n_samples`` with the rotating buffer's samples from
    ``offset`` on (wrapping round its end, as the rotation does)."""
    if len(clip) >= n_samples:
        return clip[:n_samples]
    need = n_samples - len(clip)
    if need > len(buffer):
        raise DataError(DATASET, archive, f"the background-noise recordings hold {len(buffer)} samples "
                        f"in all, fewer than the {need} this clip's padding needs", trace=key)
    return np.concatenate([clip, np.take(buffer, np.arange(offset, offset + need), mode="wrap")])


def wav_samples(data: bytes, archive: Path, name: str) -> int:
    """Samples in a clip's WAV, checked as :func:`decode_wav` checks it but not converted
    (the listing pass for ``rotating_buffer`` needs only the lengths)."""
    return len(_pcm16(data, archive, name)) // 2
