"""The learnable synthetic earthquake generator shared by LOMAX, LEN-DB and STEAD."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
# Magnitude range of the synthetic catalogues and the log10 scatter of the site/distance
# amplification: with magnitudes uniform on 2..6 (std 1.15) and amplitude ~ 10**(0.5*mag),
# log10 peak amplitude has a magnitude-driven std of 0.58 against a 0.15 scatter, so the
# magnitude can be learned from the amplitude (stream_max) as well as from the spectrum.
MAG_RANGE = (2.0, 6.0)
SITE_SCATTER_LOG10 = 0.15


def synthetic_magnitudes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Magnitudes of ``n`` synthetic events, rounded to 0.1 as catalogues report them."""
    return np.round(rng.uniform(*MAG_RANGE, size=n), 1)


def synthetic_events(
    rng: np.random.Generator,
    magnitudes: np.ndarray,
    length: int,
    sampling_rate: float,
    unit: float,
    noise_only: bool = False,
    onsets: dict[str, np.ndarray] | None = None,
    dtype: type = np.float64,
) -> np.ndarray:
    """(n, length, 3) three-component seismograms with a learnable magnitude.

    Each event has a P onset and, a random distance-dependent delay later, a stronger S
    onset; both are decaying envelopes times a sinusoid with random phases per channel.
    The magnitude sets three things, as in real seismograms: amplitude ``~10**(0.5*mag)``
    (times a lognormal site/distance factor), the dominant frequency (falls from 0.3 to
    0.05 of the sampling rate as the magnitude rises across ``MAG_RANGE``, whatever the
    rate)
    and the coda duration (grows with magnitude). Gaussian station noise of a random
    level is added everywhere; ``noise_only`` returns just that noise (noise traces).
    ``unit`` scales amplitudes into the dataset's units (m/s or counts). A dict passed
    as ``onsets`` receives the sample indices ``p_sample``, ``s_sample`` and
    ``coda_end_sample`` of each event (for metadata such as STEAD's CSV). ``dtype`` is
    the returned array's (the dataset's on-disk type).
    """
    magnitudes = np.asarray(magnitudes, dtype=np.float64)
    n = len(magnitudes)
    t = np.arange(length) / sampling_rate  # seconds
    duration = length / sampling_rate
    noise_level = unit * 10 ** rng.uniform(0.0, 0.5, size=n)
    lo, hi = MAG_RANGE
    rel = np.clip((magnitudes - lo) / (hi - lo), 0.0, 1.0)
    # In cycles per sample the same for every dataset (0.3 at the smallest event, 0.048 at
    # the largest), so that LOMAX, LEN-DB (20 Hz) and STEAD (100 Hz) share one waveform
    # family sample by sample, as the filters a convolution learns see it: what one
    # seismic set teaches a model transfers to the others (the demo's intra-domain effect).
    frequency = 0.3 * sampling_rate * 10 ** (-0.8 * rel)  # Hz
    amplitude = unit * 10 ** (0.5 * magnitudes + rng.normal(0, SITE_SCATTER_LOG10, size=n))
    p_time = rng.uniform(0.1, 0.25, size=n) * duration
    s_time = p_time + rng.uniform(0.05, 0.2, size=n) * duration
    coda = (0.03 + 0.12 * rel) * duration  # seconds of decay after each onset
    phase = rng.uniform(0, 2 * np.pi, size=(n, 2, 3))
    gain = rng.uniform(0.6, 1.0, size=(n, 2, 3))
    gain[:, 0, 2] = 1.0  # the P wave is strongest on the vertical (Z, last) channel
    if onsets is not None:
        onsets.update(_onset_samples(p_time, s_time, coda, duration, sampling_rate))
    waves = np.empty((n, length, 3), dtype=dtype)
    # Batches bound the float64 temporaries (STEAD: 144 kB per trace and wave).
    batch = max(1, 2_000_000 // (3 * length))
    for lo_i in range(0, n, batch):
        b = slice(lo_i, min(n, lo_i + batch))
        block = rng.standard_normal((b.stop - b.start, length, 3)) * noise_level[b, None, None]
        if not noise_only:
            for onset, weight, wave in ((p_time[b], 0.35, 0), (s_time[b], 1.0, 1)):
                block += _phase_arrival(t, onset, coda[b], weight * amplitude[b], frequency[b],
                                        phase[b, wave], gain[b, wave], sampling_rate)
        waves[b] = block
    return waves


def _phase_arrival(t: np.ndarray, onset: np.ndarray, coda: np.ndarray, amplitude: np.ndarray,
                   frequency: np.ndarray, phase: np.ndarray, gain: np.ndarray,
                   sampling_rate: float) -> np.ndarray:
    """(n, length, 3): one wave (P or S) of ``n`` events, arriving at ``onset`` seconds and
    decaying over ``coda`` seconds; ``phase`` and ``gain`` per event and channel."""
    since = t[None, :] - onset[:, None]
    envelope = np.exp(-np.maximum(since, 0) / coda[:, None])
    # A short linear rise so the onset is sharp but not a one-sample step.
    envelope *= np.clip(since * sampling_rate / 4.0, 0.0, 1.0)
    carrier = np.sin(2 * np.pi * frequency[:, None, None] * t[None, :, None] + phase[:, None, :])
    return amplitude[:, None, None] * envelope[:, :, None] * carrier * gain[:, None, :]


def _onset_samples(p_time: np.ndarray, s_time: np.ndarray, coda: np.ndarray, duration: float,
                   sampling_rate: float) -> dict[str, np.ndarray]:
    """Sample indices of each event's P and S onsets and of the end of its coda."""
    coda_end = np.minimum(s_time + 3 * coda, duration - 1 / sampling_rate)
    return {
        "p_sample": np.round(p_time * sampling_rate).astype(int),
        "s_sample": np.round(s_time * sampling_rate).astype(int),
        "coda_end_sample": np.round(coda_end * sampling_rate).astype(int),
    }


def unique_names(rng: np.random.Generator, n: int, make, taken: Sequence[str] = ()) -> list[str]:
    """``n`` distinct names from ``make(rng)``, none of them in ``taken``."""
    seen = set(taken)
    names: list[str] = []
    while len(names) < n:
        name = make(rng)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names
