"""Synthetic SPEECH: a ``speech_commands_v0.02.tar.gz`` in the real layout (see :mod:`..speech`)."""

from __future__ import annotations

import gzip
import io
import tarfile
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...fsutil import atomic_path
from ..base import raw_file_name
from ..speech import DEFAULT_FILE, INFO, NOISE_FOLDER, SOURCE_RATE, WORD_INDEX, WORDS

# Every timestamp in the archive (gzip header, tar members): its bytes depend on the rng only.
MTIME = 1_500_000_000

# Background noise of a clip: a floor plus a share of the voice's gain (the real clips
# were recorded by volunteers in their own rooms). With the share at 0.1 the 35 words stay
# learnable, and a model trained on them learns filters that pass the formants and reject
# noise, which is what the noisy synthetic EMG gestures (the same tones) need from it.
NOISE_FLOOR = 0.01
NOISE_TO_VOICE = 0.1


def _wav_bytes(samples: np.ndarray) -> bytes:
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SOURCE_RATE)
        handle.writeframes(pcm.tobytes())
    return buffer.getvalue()


def word_signature(word: int) -> tuple[float, float, float]:
    """Synthetic word ``word``'s two formants (Hz) and chirp (Hz per second).

    5 x 7 formant pairs (all below 4 kHz, so they survive resampling to 8 kHz) give
    35 distinct spectra; the chirp sign and size add a time pattern.
    """
    f1 = 300.0 + 175.0 * (word % 5)
    f2 = 1200.0 + 350.0 * (word // 5)
    chirp = (-1) ** word * (150.0 + 40.0 * (word % 7))
    return f1, f2, chirp


def _synthetic_clip(word: int, length: int, rng: np.random.Generator) -> np.ndarray:
    f1, f2, chirp = word_signature(word)
    t = np.arange(length) / SOURCE_RATE
    # The word is voiced over a random part of the clip, with a smooth envelope.
    onset = rng.uniform(0.0, 0.3) * length
    duration = rng.uniform(0.4, 0.65) * length
    envelope = np.clip((np.arange(length) - onset) / max(duration, 1.0), 0.0, 1.0)
    envelope = np.sin(np.pi * envelope) ** 2
    pitch = rng.uniform(0.97, 1.03)  # speaker variation
    phase1 = 2 * np.pi * (f1 * pitch * t + 0.5 * chirp * t**2)
    phase2 = 2 * np.pi * (f2 * pitch * t - 0.25 * chirp * t**2)
    voiced = np.sin(phase1) + 0.6 * np.sin(phase2 + rng.uniform(0, 2 * np.pi))
    gain = rng.uniform(0.1, 0.6)
    noise = np.hypot(NOISE_FLOOR, NOISE_TO_VOICE * gain)
    return gain * envelope * voiced / 1.6 + rng.normal(0.0, noise, length)


def write_synthetic(raw: Path, params: Mapping[str, Any], rng: np.random.Generator) -> None:
    """A ``speech_commands_v0.02.tar.gz`` in the real layout, with learnable words.

    ``params`` is the ``synthetic.speech`` mapping: ``clips_per_word`` (required),
    ``n_samples`` (required, 16 kHz samples of a full-length clip; about a quarter of
    the clips are 45-95 % of that, so padding is exercised), ``noise_samples``
    (optional, samples per background-noise recording, default ``4 * n_samples``),
    ``file`` (optional). Member names start with ``./``; folder order is shuffled
    (the real archive's order is the file system's, not alphabetical), so
    ``_background_noise_`` may come after some clips.
    """
    clips_per_word, n_samples = int(params["clips_per_word"]), int(params["n_samples"])
    noise_samples = int(params.get("noise_samples", 4 * n_samples))
    if clips_per_word < 1 or n_samples < 16:
        raise ValueError(f"{INFO.name}: synthetic.clips_per_word >= 1 and n_samples >= 16 required")
    folders: dict[str, list[tuple[str, bytes]]] = {}
    speakers = [f"{value:08x}" for value in rng.integers(0, 2**32, size=max(4, clips_per_word // 2))]
    for word_name, word in WORD_INDEX.items():
        members = []
        seen: dict[str, int] = {}
        for _ in range(clips_per_word):
            speaker = speakers[int(rng.integers(len(speakers)))]
            repeat = seen.get(speaker, 0)
            seen[speaker] = repeat + 1
            short = rng.random() < 0.25
            length = int(n_samples * rng.uniform(0.45, 0.95)) if short else n_samples
            clip = _synthetic_clip(word, length, rng)
            members.append((f"{speaker}_nohash_{repeat}.wav", _wav_bytes(clip)))
        folders[word_name] = members
    folders[NOISE_FOLDER] = _noise_recordings(rng, noise_samples)
    lists = _official_lists(rng, [f"{w}/{name}" for w in WORDS for name, _ in folders[w]])
    Path(raw).mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(raw) / raw_file_name(params, DEFAULT_FILE)) as tmp:
        # gzip's header would otherwise hold the wall-clock time and the temporary name.
        with open(tmp, "wb") as handle, gzip.GzipFile(
            filename="", mode="wb", compresslevel=1, fileobj=handle, mtime=MTIME
        ) as stream, tarfile.open(fileobj=stream, mode="w") as tar:
            _add(tar, "./", None)
            for list_name, lines in lists.items():
                _add(tar, f"./{list_name}", ("\n".join(lines) + "\n").encode())
            _add(tar, "./LICENSE", b"Creative Commons BY 4.0 (synthetic stand-in)\n")
            for folder in rng.permutation(sorted(folders)):
                _add(tar, f"./{folder}/", None)
                for name, data in folders[str(folder)]:
                    _add(tar, f"./{folder}/{name}", data)


def _noise_recordings(rng: np.random.Generator, noise_samples: int) -> list[tuple[str, bytes]]:
    """The three ``_background_noise_`` recordings (white, brown and a mains hum) as WAV files."""
    t = np.arange(noise_samples) / SOURCE_RATE
    white = rng.normal(0.0, 0.1, noise_samples)
    brown = np.cumsum(rng.normal(0.0, 1.0, noise_samples))
    brown = 0.2 * (brown - brown.mean()) / (np.abs(brown - brown.mean()).max() + 1e-12)
    hum = 0.08 * np.sin(2 * np.pi * 60.0 * t) + 0.04 * np.sin(2 * np.pi * 180.0 * t) + rng.normal(0, 0.02, noise_samples)
    return [
        ("white_noise.wav", _wav_bytes(white)),
        ("running_tap.wav", _wav_bytes(brown)),
        ("dude_miaowing.wav", _wav_bytes(hum)),
    ]


def _official_lists(rng: np.random.Generator, all_clips: list[str]) -> dict[str, list[str]]:
    """The official validation and testing lists: about 10 % of the clips each, by file
    (the real lists hash speaker ids; here a random choice is enough for the format)."""
    chosen = rng.permutation(len(all_clips))
    tenth = max(1, len(all_clips) // 10)
    return {
        "validation_list.txt": sorted(all_clips[i] for i in chosen[:tenth]),
        "testing_list.txt": sorted(all_clips[i] for i in chosen[tenth : 2 * tenth]),
    }


def _add(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name.rstrip("/") if data is None and name != "./" else name)
    info.mtime = MTIME
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    else:
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
