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

import gzip
import logging
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# KAISER_BEST, RESAMPLERS and resampled_length are imported for this module's readers too
from ._speech_audio import (  # noqa: F401
    KAISER_BEST, RESAMPLERS, SOURCE_RATE, decode_wav, pad_from_buffer, pad_offsets, pad_with_noise, resample,
    resampled_length, wav_samples,
)
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
                lengths.append(resampled_length(wav_samples(data, archive, name), rate))
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


def _padder(raw: Path, params: Mapping[str, Any], index: InstanceIndex,
            archive: Path) -> Callable[[np.ndarray, str, list[np.ndarray]], np.ndarray]:
    """``pad(clip, key, noise bank)``: the clip cut or padded to ``n_samples`` as extract
    setting ``padding`` says (:func:`pad_with_noise` or :func:`pad_from_buffer`)."""
    _, n_samples, noise_seed = _settings(params)
    if _padding(params) != "rotating_buffer":
        return lambda clip, key, bank: pad_with_noise(clip, n_samples, bank, key, noise_seed, archive)
    # An index without the listing's offsets (a plain InstanceIndex, or a subset of the
    # clips): the offsets count every clip of the archive, so list them again.
    offsets = getattr(index, "pad_offsets", None) or list_instances(raw, params, _LOG).pad_offsets
    buffer: list[np.ndarray] = []  # the noise recordings concatenated, in sorted name order, once

    def pad(clip: np.ndarray, key: str, bank: list[np.ndarray]) -> np.ndarray:
        if not buffer:
            buffer.append(np.concatenate(bank))
        return pad_from_buffer(clip, n_samples, buffer[0], offsets[key], key, archive)

    return pad


def read_chunks(
    raw: Path, params: Mapping[str, Any], index: InstanceIndex, chunk_size: int
) -> Iterator[RawChunk]:
    """The clips in the index's order, noise-padded, ``chunk_size`` at a time.

    The noise recordings come first: from their own pass over the archive, or, where the
    listing pass found them ahead of every clip, from the same pass as the clips.
    """
    archive = Path(raw) / _file_name(params)
    rate, n_samples, _ = _settings(params)
    resampler = _resampler(params)
    pad = _padder(raw, params, index, archive)
    table = index.table.reset_index(drop=True)
    expected_keys = table["key"].astype(str).tolist()
    position = {key: i for i, key in enumerate(expected_keys)}
    labels = table["label"].to_numpy()
    noise_members = tuple(getattr(index, "noise_members", ()))
    single_pass = bool(getattr(index, "noise_before_clips", False)) and bool(noise_members)

    decoded = {} if single_pass else _read_noise(archive, noise_members, rate, resampler)
    bank = None if single_pass else _noise_bank(decoded, noise_members, archive)

    waveforms = np.empty((chunk_size, n_samples, 1), dtype=np.float32)
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
        waveforms[filled, :, 0] = pad(_decode_clip(data, archive, name, rate, resampler), name, bank)
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
