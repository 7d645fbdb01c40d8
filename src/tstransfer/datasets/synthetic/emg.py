"""Synthetic EMG: a ``Pinch.zip`` in the real format (see :mod:`..emg`)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...fsutil import atomic_path
from ..base import raw_file_name
from ..emg import ANN_SUFFIX, CLASS_NAMES, DEFAULT_FILE, EMG_SUFFIX, INFO, N_MYO_CHANNELS, REST
from ..speech import INFO as SPEECH_INFO
from .speech import word_signature

# The synthetic SPEECH word whose two formants (at SPEECH's 8 kHz, in cycles per sample)
# are each gesture's tones: four words with distinct first and second formants.
GESTURE_WORDS = (0, 6, 12, 18)

# Noise standard deviation over the first tone's amplitude in an active window. At 2.5,
# MagNet from scratch on the demo's 120 windows reaches a weighted F1 of 0.57-0.76, and
# fine-tuning from SPEECH adds 5-37 % in each of 8 runs while the seismic sources lose
# 18-23 % on average (bench/transfer_pair.py emg speech lomax lendb stead sp500 --runs 8).
NOISE_TO_TONE = 2.5

DATE_TIME = (2017, 7, 14, 2, 40, 0)  # of every zip member (the SPEECH tar's time)

def write_synthetic(raw: Path, params: Mapping[str, Any], rng: np.random.Generator) -> None:
    """A ``Pinch.zip`` of ``sessions`` session pairs in the real format.

    ``params`` is the ``synthetic.emg`` mapping: ``sessions`` (required, session pairs
    written), ``repetitions`` (required, times each of the 4 gestures is performed per
    session), ``file`` (optional). As in the real protocol each gesture lasts 2 s and
    is followed by 1 s of rest (200 Hz); values are int8 like the Myo's raw output.

    A gesture is noise plus two tones, times an activation amplitude per Myo channel
    (one pattern for every gesture, a per-session gain and a smooth envelope), on top of
    low-level rest noise. The tones are the gesture's only mark: in cycles per sample
    they are the formants of one synthetic SPEECH word (``GESTURE_WORDS``), so the two
    classification sets share a signal family, as the three seismic sets share theirs.
    The tones have one phase on every channel (one muscle, seen by several electrodes)
    and lie under noise ``NOISE_TO_TONE`` times their amplitude, so that 120 windows do
    not teach a model from scratch all there is to learn, and a model that learned the
    same tones on SPEECH has something to give (config/demo.yaml).
    """
    sessions, repetitions = int(params["sessions"]), int(params["repetitions"])
    if sessions < 1 or repetitions < 1:
        raise ValueError(f"{INFO.name}: synthetic.sessions and synthetic.repetitions must be >= 1")
    rate = int(INFO.sampling_rate)
    gesture_len, rest_len = 2 * rate, rate
    # Per Myo channel activation amplitude, the same for every gesture: the channel
    # pattern alone let 120 windows from scratch reach a weighted F1 of 1.0, which left
    # transfer nothing to add (the gesture was told apart without the tones).
    pattern = rng.uniform(2.0, 45.0, size=N_MYO_CHANNELS)
    tones = np.array([word_signature(word)[:2] for word in GESTURE_WORDS]) / SPEECH_INFO.sampling_rate  # cycles/sample
    Path(raw).mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(raw) / raw_file_name(params, DEFAULT_FILE)) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for session in range(sessions):
                emg, names = _session(rng, pattern, tones, repetitions, gesture_len, rest_len)
                prefix = f"Pinch/subject{session // 3 + 1:02d}_session{session % 3 + 1}"
                for suffix, array in ((EMG_SUFFIX, emg.astype(np.int8)), (ANN_SUFFIX, np.concatenate(names))):
                    buffer = io.BytesIO()
                    np.save(buffer, array, allow_pickle=False)
                    archive.writestr(_member(prefix + suffix), buffer.getvalue())


def _session(rng: np.random.Generator, pattern: np.ndarray, tones: np.ndarray, repetitions: int,
             gesture_len: int, rest_len: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """One session: ``repetitions`` rounds of the four gestures in a random order, each
    followed by rest. Returns the EMG (time x Myo channel, int8-ranged floats) and the
    per-sample gesture names as one array per gesture or rest part."""
    gain = rng.uniform(0.7, 1.3, N_MYO_CHANNELS)
    order = np.concatenate([rng.permutation(len(CLASS_NAMES)) for _ in range(repetitions)])
    amplitude = [np.full((rest_len, N_MYO_CHANNELS), 3.0)]
    names = [np.full(rest_len, REST, dtype="<U6")]
    for gesture in order:
        envelope = np.sin(np.linspace(0.05, np.pi - 0.05, gesture_len))[:, None] ** 0.5
        amplitude.append(envelope * pattern * gain + 3.0)
        names.append(np.full(gesture_len, CLASS_NAMES[gesture], dtype="<U6"))
        amplitude.append(np.full((rest_len, N_MYO_CHANNELS), 3.0))
        names.append(np.full(rest_len, REST, dtype="<U6"))
    amplitude = np.concatenate(amplitude)
    carrier = rng.standard_normal(amplitude.shape)
    position = 0
    for part in names:
        if part[0] != REST:
            f1, f2 = tones[CLASS_NAMES.index(part[0])]
            n = np.arange(len(part))[:, None]
            phase = rng.uniform(0, 2 * np.pi, size=2)
            carrier[position : position + len(part)] = (
                NOISE_TO_TONE * carrier[position : position + len(part)]
                + 1.0 * np.sin(2 * np.pi * f1 * n + phase[0])
                + 0.6 * np.sin(2 * np.pi * f2 * n + phase[1])
            )
        position += len(part)
    return np.clip(np.round(amplitude * carrier), -128, 127), names


def _member(name: str) -> zipfile.ZipInfo:
    """A member as ``ZipFile.writestr(name, ...)`` makes it, but with a fixed timestamp
    instead of the wall-clock time: the archive's bytes depend on the rng only."""
    info = zipfile.ZipInfo(name, date_time=DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    return info
