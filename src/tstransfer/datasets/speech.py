"""SPEECH (Google Speech Commands v0.02): 35-word spoken-word classification.

Raw file: ``speech_commands_v0.02.tar.gz`` (2.4 GB). Members start with ``./``: one
folder per word (``./<word>/<8hex>_nohash_<n>.wav``), ``./_background_noise_/`` with a
few long noise recordings, ``./validation_list.txt``, ``./testing_list.txt`` and some
text files. Every WAV is 16-bit PCM, mono, 16 kHz.

Extraction (paper section 2.1.4): label = the word folder's index in the alphabetical
list :data:`WORDS`; each clip (scaled to full scale, int16 / 32768, as librosa loads
it) is resampled 16 kHz -> ``sample_rate`` with a polyphase anti-aliasing resampler
(:func:`scipy.signal.resample_poly`), then cut to ``n_samples``; a shorter clip is
padded at its end with background-noise audio resampled the same way. The padding
segment is drawn from a random stream seeded by the clip's path (``noise_seed`` and the
key through :func:`tstransfer.seeding.rng_for`), so it does not depend on the order,
the chunking or anything else in the run. Extract setting ``padding: rotating_buffer``
(switch ``authors_data_releases``) pads as the authors' ``preprocess_speech_commands_8khz.py``
does instead: every noise recording concatenated into one buffer, each short clip padded
with the buffer's first samples, and the buffer then rotated by as many, clip after clip
in word order; :func:`pad_offsets` turns that into a position per clip. The paper splits SPEECH 70/15/15 at random
per class, not by the archive's official lists, so the index carries no ``split``
(the store draws a stratified one); the official lists are only counted in the log.

Streaming: a ``.tar.gz`` can only be read front to back, and it is far too large to
unpack or hold in memory. ``list_instances`` makes one pass reading names only (and
the two small list files). ``read_chunks`` needs the (small) resampled noise before the
first short clip: where the archive stores ``_background_noise_`` before every clip,
it is collected during the single reading pass; otherwise a first pass reads the
archive only up to the last noise member. The gzip stream is read through
:mod:`gzip`, which checks the stream's length and CRC, so a truncated or corrupt
archive is an error even when it breaks off between two members.
"""

from __future__ import annotations

import functools
import gzip
import logging
import re
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..seeding import rng_for
from .base import DataError, DatasetInfo, InstanceIndex, RawChunk, extract_setting, one_of, raw_file_name

WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off",
    "on", "one", "right", "seven", "sheila", "six", "stop", "three", "tree", "two",
    "up", "visual", "wow", "yes", "zero",
)
WORD_INDEX = {word: index for index, word in enumerate(WORDS)}
INFO = DatasetInfo(
    name="speech",
    title="SPEECH",
    domain="speech",
    task="classification",
    channels=1,
    sampling_rate=8000.0,
    units="PCM full scale (int16 / 32768)",
    class_names=WORDS,
)

DEFAULT_FILE = "speech_commands_v0.02.tar.gz"
SOURCE_RATE = 16_000  # Hz of every WAV in the archive
NOISE_FOLDER = "_background_noise_"
LIST_FILES = ("validation_list.txt", "testing_list.txt")
DEFAULT_NOISE_SEED = 0
CLIP_NAME = re.compile(r"^[0-9a-f]{8}_nohash_\d+\.wav$")
DROP_OUTSIDE = "WAV outside the 35 word folders and _background_noise_"
_LOG = logging.getLogger(__name__)


# --------------------------------------------------------------------------- params
def _file_name(params: Mapping[str, Any]) -> str:
    """``params['file']`` (optional): the archive's name inside ``raw``."""
    return raw_file_name(params, DEFAULT_FILE)


def _settings(params: Mapping[str, Any]) -> tuple[int, int, int]:
    """``sample_rate`` (Hz after resampling) and ``n_samples`` (kept per clip), both
    required; ``noise_seed`` (optional, default 0) seeds the padding draws."""
    rate = extract_setting(params, INFO.name, "sample_rate", int)
    n_samples = extract_setting(params, INFO.name, "n_samples", int)
    noise_seed = extract_setting(params, INFO.name, "noise_seed", int, DEFAULT_NOISE_SEED)
    return rate, n_samples, noise_seed


# Instances the paper's extraction yields from the real data (clips of the 35 words; REFERENCE.md section 2),
# for estimates made before any conversion (tstransfer.cluster_budget).
PAPER_INSTANCES = 105_829


def input_length(params: Mapping[str, Any]) -> int:
    """The model input's length: ``n_samples`` per clip."""
    return _settings(params)[1]


def _resampler(params: Mapping[str, Any]) -> str:
    """``resampler`` (optional): ``poly`` (default) or ``kaiser_best`` (:func:`resample`)."""
    return extract_setting(params, INFO.name, "resampler", one_of(RESAMPLERS), "poly")


PADDINGS = ("segment", "rotating_buffer")


def _padding(params: Mapping[str, Any]) -> str:
    """``padding`` (optional): ``segment`` (default; :func:`pad_with_noise`) or
    ``rotating_buffer`` (the authors'; :func:`pad_offsets`, :func:`pad_from_buffer`)."""
    return extract_setting(params, INFO.name, "padding", one_of(PADDINGS), "segment")


def raw_files(params: Mapping[str, Any]) -> list[str]:
    return [_file_name(params)]


@dataclass
class SpeechIndex(InstanceIndex):
    """The index plus what the listing pass learnt about the background noise."""

    noise_members: tuple[str, ...] = ()  # archive names, without "./"
    noise_before_clips: bool = False  # every noise member precedes the first clip
    # padding rotating_buffer: each clip's position in the concatenated noise buffer
    # (before the modulo of the buffer's length, which only the noise pass knows)
    pad_offsets: dict[str, int] | None = None


# --------------------------------------------------------------------------- archive
def _member_kind(name: str) -> str:
    """``clip``, ``noise``, ``list``, ``other_wav`` or ``other`` for a normalised name."""
    parts = name.split("/")
    if len(parts) == 2 and parts[1].lower().endswith(".wav"):
        if parts[0] in WORD_INDEX:
            return "clip"
        if parts[0] == NOISE_FOLDER:
            return "noise"
    if name in LIST_FILES:
        return "list"
    return "other_wav" if name.lower().endswith(".wav") else "other"


def _normalise(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _stream(
    archive: Path, wanted: Callable[[str], bool], stop: Callable[[], bool] = lambda: False
) -> Iterator[tuple[str, bytes | None]]:
    """``(name, data)`` for each regular member in archive order; ``data`` only if wanted.

    Reads sequentially (gzip + tar stream mode); ``stop()`` is asked after each member
    and ends the pass early. Without an early stop the gzip stream is drained to its
    end so that its CRC and length are checked.
    """
    if not archive.is_file():
        raise DataError(INFO.name, archive, "raw file not found")
    where, last = "before the first member", None
    try:
        with gzip.open(archive, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                # Stream mode still remembers every TarInfo; 100k of them are not needed.
                tar.members = []
                if not member.isfile():
                    continue
                name = last = _normalise(member.name)
                where = f"while reading member {name}"
                data = None
                if wanted(name):
                    handle = tar.extractfile(member)
                    data = handle.read() if handle is not None else b""
                    if len(data) != member.size:
                        raise tarfile.ReadError(f"member ends after {len(data)} of {member.size} bytes")
                yield name, data
                where = f"after member {name}"
                if stop():
                    return
            where = f"after the last member{f' ({last})' if last else ''}"
            while stream.read(1 << 20):  # verify gzip CRC and length up to the end
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(
            INFO.name, archive, f"unreadable or truncated archive {where}: {exc}", trace=last
        ) from None


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
    try:
        (tag, channels, rate, bits), samples = _riff_chunks(data)
    except ValueError as exc:
        raise DataError(INFO.name, archive, f"unreadable WAV ({exc})", trace=name) from None
    if (tag, channels, bits, rate) != (WAVE_FORMAT_PCM, 1, 16, SOURCE_RATE):
        kind = "PCM" if tag == WAVE_FORMAT_PCM else f"format tag {tag:#06x} (not PCM)"
        raise DataError(
            INFO.name, archive,
            f"expected 16-bit PCM mono {SOURCE_RATE} Hz, got {bits}-bit {kind}, {channels} "
            f"channel(s), {rate} Hz", trace=name,
        )
    if len(samples) % 2:
        raise DataError(INFO.name, archive, "odd number of bytes in 16-bit WAV data", trace=name)
    return np.frombuffer(samples, dtype="<i2").astype(np.float64) / 32768.0


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
            INFO.name, archive,
            f"no background-noise recording is long enough to pad {need} samples "
            f"(longest: {max((len(n) for n in noise), default=0)})", trace=key,
        )
    position = int(rng_for(noise_seed, INFO.name, "pad", key).integers(total))
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
        raise DataError(INFO.name, archive, f"the background-noise recordings hold {len(buffer)} samples "
                        f"in all, fewer than the {need} this clip's padding needs", trace=key)
    return np.concatenate([clip, np.take(buffer, np.arange(offset, offset + need), mode="wrap")])


def _clip_samples(data: bytes, archive: Path, name: str) -> int:
    """Samples in a clip's WAV, from its header (the listing pass for ``rotating_buffer``)."""
    return len(decode_wav(data, archive, name))


# --------------------------------------------------------------------------- protocol
def list_instances(raw: Path, params: Mapping[str, Any], log: logging.Logger) -> SpeechIndex:
    archive = Path(raw) / _file_name(params)
    rate, n_samples, _ = _settings(params)
    _resampler(params)
    rotating = _padding(params) == "rotating_buffer"
    keys: list[str] = []
    labels: list[int] = []
    lengths: list[int] = []  # resampled, for rotating_buffer
    noise: list[str] = []
    lists: dict[str, int] = {}
    odd_names = 0
    outside = 0
    noise_before_clips = True
    # rotating_buffer needs every clip's length before the first clip is padded: this
    # pass reads the clips too (the gzip stream is decompressed in full either way).
    read_kinds = ("list", "clip") if rotating else ("list",)
    for count, (name, data) in enumerate(_stream(archive, lambda n: _member_kind(n) in read_kinds), 1):
        kind = _member_kind(name)
        if kind == "clip":
            keys.append(name)
            labels.append(WORD_INDEX[name.split("/")[0]])
            if rotating:
                lengths.append(resampled_length(_clip_samples(data, archive, name), rate))
            odd_names += CLIP_NAME.match(name.split("/")[1]) is None
        elif kind == "noise":
            noise.append(name)
            noise_before_clips &= not keys
        elif kind == "list":
            lists[name] = sum(1 for line in data.decode("utf-8", "replace").splitlines() if line.strip())
        elif kind == "other_wav":
            outside += 1
        if count % 20_000 == 0:
            log.info("%s: listing %s: %d members read", INFO.name, archive.name, count)
    if not noise:
        raise DataError(INFO.name, archive, f"no ./{NOISE_FOLDER}/*.wav recordings to pad short clips with")
    label_array = np.asarray(labels, dtype=np.int16)
    missing = [word for word, index in WORD_INDEX.items() if not (label_array == index).any()]
    if missing:
        raise DataError(INFO.name, archive, f"no clips for word(s): {', '.join(missing)}")
    counts = np.bincount(label_array, minlength=len(WORDS))
    log.info(
        "%s: %d clips in 35 words (fewest %d: %s; most %d: %s), %d noise recordings%s",
        INFO.name, len(keys), counts.min(), WORDS[counts.argmin()], counts.max(),
        WORDS[counts.argmax()], len(noise),
        "" if noise_before_clips else " (stored after some clips: read in a first pass)",
    )
    log.info(
        "%s: official lists %s (not used: the paper splits 70/15/15 at random per class)",
        INFO.name, ", ".join(f"{k}={v}" for k, v in lists.items()) or "absent",
    )
    if odd_names:
        log.info("%s: %d clip name(s) not of the form <8hex>_nohash_<n>.wav", INFO.name, odd_names)
    dropped = {DROP_OUTSIDE: outside} if outside else {}
    table = pd.DataFrame({"key": keys, "label": label_array})
    offsets = pad_offsets(keys, label_array, np.asarray(lengths), n_samples) if rotating else None
    return SpeechIndex(
        table=table, dropped=dropped, files=[archive],
        noise_members=tuple(noise), noise_before_clips=noise_before_clips, pad_offsets=offsets,
    )


def _noise_bank(decoded: dict[str, np.ndarray], expected: tuple[str, ...], archive: Path) -> list[np.ndarray]:
    """Resampled noise recordings in sorted name order (independent of archive order)."""
    if expected and set(decoded) != set(expected):
        lacking = sorted(set(expected) - set(decoded))
        raise DataError(INFO.name, archive, "noise recording(s) missing since the listing pass",
                        trace=lacking[0] if lacking else None)
    if not decoded:
        raise DataError(INFO.name, archive, f"no ./{NOISE_FOLDER}/*.wav recordings")
    return [decoded[name] for name in sorted(decoded)]


def _read_noise(archive: Path, noise_members: tuple[str, ...], rate: int,
                resampler: str = "poly") -> dict[str, np.ndarray]:
    """A pass over the archive for the noise recordings only (resampled), stopping after
    the last of ``noise_members`` where the listing pass knows them."""
    decoded: dict[str, np.ndarray] = {}
    remaining = set(noise_members)

    def enough() -> bool:
        return bool(noise_members) and not remaining

    for name, data in _stream(archive, lambda n: _member_kind(n) == "noise", enough):
        if data is not None:
            decoded[name] = resample(decode_wav(data, archive, name), rate, resampler)
            remaining.discard(name)
    return decoded


def _decode_clip(data: bytes, archive: Path, name: str, rate: int, resampler: str = "poly") -> np.ndarray:
    clip = resample(decode_wav(data, archive, name), rate, resampler)
    if len(clip) == 0:
        raise DataError(INFO.name, archive, "empty clip (no samples)", trace=name)
    return clip


def _chunk(waveforms: np.ndarray, count: int, labels: np.ndarray, keys: list[str], end: int,
           archive: Path) -> RawChunk:
    """The ``count`` clips before listed clip ``end``, from the first rows of ``waveforms``."""
    rows = slice(end - count, end)
    return RawChunk(waveforms[:count].copy(), labels[rows], keys[rows], str(archive))


def read_chunks(
    raw: Path, params: Mapping[str, Any], index: InstanceIndex, chunk_size: int
) -> Iterator[RawChunk]:
    """The clips in the index's order, noise-padded, ``chunk_size`` at a time.

    The noise recordings come first: from their own pass over the archive, or, where the
    listing pass found them ahead of every clip, from the same pass as the clips.
    """
    archive = Path(raw) / _file_name(params)
    rate, n_samples, noise_seed = _settings(params)
    resampler = _resampler(params)
    offsets = None
    if _padding(params) == "rotating_buffer":
        # An index without the listing's offsets (a plain InstanceIndex, or a subset of
        # the clips): the offsets count every clip of the archive, so list them again.
        offsets = getattr(index, "pad_offsets", None) or list_instances(raw, params, _LOG).pad_offsets
    table = index.table.reset_index(drop=True)
    expected_keys = table["key"].astype(str).tolist()
    position = {key: i for i, key in enumerate(expected_keys)}
    labels = table["label"].to_numpy()
    noise_members = tuple(getattr(index, "noise_members", ()))
    single_pass = bool(getattr(index, "noise_before_clips", False)) and bool(noise_members)

    decoded = {} if single_pass else _read_noise(archive, noise_members, rate, resampler)
    bank = None if single_pass else _noise_bank(decoded, noise_members, archive)

    waveforms = np.empty((chunk_size, n_samples, 1), dtype=np.float32)
    buffer = None  # rotating_buffer: the concatenated noise
    filled = 0
    written = 0

    def wanted(name: str) -> bool:
        kind = _member_kind(name)
        return (kind == "noise" and single_pass) or (kind == "clip" and name in position)

    for name, data in _stream(archive, wanted, lambda: written == len(expected_keys) and bank is not None):
        if data is None:
            continue
        if _member_kind(name) == "noise":
            decoded[name] = resample(decode_wav(data, archive, name), rate, resampler)
            continue
        if bank is None:
            bank = _noise_bank(decoded, noise_members, archive)
        if position[name] != written:
            raise DataError(
                INFO.name, archive, f"member order differs from the listing pass (expected "
                f"{expected_keys[written]})", trace=name,
            )
        clip = _decode_clip(data, archive, name, rate, resampler)
        if offsets is None:
            waveforms[filled, :, 0] = pad_with_noise(clip, n_samples, bank, name, noise_seed, archive)
        else:
            if buffer is None:
                buffer = np.concatenate(bank)  # the noise recordings in sorted name order
            waveforms[filled, :, 0] = pad_from_buffer(clip, n_samples, buffer, offsets[name], name, archive)
        filled += 1
        written += 1
        if filled == chunk_size:
            yield _chunk(waveforms, filled, labels, expected_keys, written, archive)
            filled = 0
    if filled:
        yield _chunk(waveforms, filled, labels, expected_keys, written, archive)
    if written != len(expected_keys):
        raise DataError(
            INFO.name, archive, f"archive holds {written} of the {len(expected_keys)} listed clips",
            trace=expected_keys[written],
        )
