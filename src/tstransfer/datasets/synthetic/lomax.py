"""Synthetic LOMAX: ``ConvNetQuake_INGV_dataset.hdf5`` in the real layout (see :mod:`..lomax`).

``params`` (the ``synthetic.lomax`` mapping) keys read: ``n_instances`` (event traces
written, one of them a duplicate key) and ``length`` (samples per trace, 1001 in the real
data).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...fsutil import atomic_path
from ..lomax import FILE, INFO, LENGTH
from . import _seismic

STATIONS = ["AQU", "BLY", "BNI", "CEL", "CUC", "DIVS", "IDI", "PDG", "RTC", "TIP", "TIR", "TRI", "VSL", "VTS"]
# Shares of the event traces per group, roughly as in the real file.
GROUP_SHARES = {"train/events": 0.6, "validate/events": 0.15, "test/events": 0.15, "test2/events": 0.10}


def _key(rng: np.random.Generator) -> str:
    station = str(rng.choice(STATIONS))
    year = int(rng.integers(2007, 2019))
    month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
    hour, minute, second = int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    millis = int(rng.integers(0, 1000))
    return f"MN_{station}__BH.{year}.{month:02d}.{day:02d}.{hour:02d}.{minute:02d}.{second:02d}.{millis:03d}"


def write_synthetic(raw: Path, params: Mapping[str, Any], rng: np.random.Generator) -> None:
    """``ConvNetQuake_INGV_dataset.hdf5`` with the real groups, dtype, shape and attribute.

    ``n_instances`` event traces (learnable earthquakes, see ``_seismic.synthetic_events``)
    are spread over the four ``*/events`` groups; the last one of ``validate/events``
    repeats the name, samples and magnitude of the first ``train/events`` trace, as
    the real file's duplicates do. Each ``*/noise`` group gets a third as many noise
    traces (magnitude attribute absent, as noise has no event).
    """
    n = int(params["n_instances"])
    length = int(params.get("length", LENGTH))
    if n < 8:
        raise ValueError(f"{INFO.name}: synthetic n_instances must be at least 8, got {n}")
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    counts = {group: int(share * n) for group, share in GROUP_SHARES.items()}
    counts["train/events"] += n - sum(counts.values())
    unique = n - 1  # one validate/events trace duplicates a train/events one
    names = _seismic.unique_names(rng, unique, _key)
    magnitudes = _seismic.synthetic_magnitudes(rng, unique)
    waves = _seismic.synthetic_events(rng, magnitudes, length, INFO.sampling_rate, unit=1e-9, dtype=np.float32)
    with atomic_path(raw / FILE) as tmp, h5py.File(tmp, "w") as handle:
        position = 0
        for group, count in counts.items():
            events = handle.create_group(group)
            if group == "validate/events":
                count -= 1
            for name, wave, magnitude in zip(
                names[position : position + count], waves[position : position + count],
                magnitudes[position : position + count],
            ):
                dset = events.create_dataset(name, data=wave)
                dset.attrs["magnitude"] = magnitude
            position += count
            if group == "validate/events":
                dset = events.create_dataset(names[0], data=waves[0])
                dset.attrs["magnitude"] = magnitudes[0]
            n_noise = max(1, count // 3)
            noise = _seismic.synthetic_events(
                rng, np.zeros(n_noise), length, INFO.sampling_rate, unit=1e-9, noise_only=True, dtype=np.float32
            )
            noise_group = handle.create_group(group.split("/")[0] + "/noise")
            for name, wave in zip(_seismic.unique_names(rng, n_noise, _key, taken=names), noise):
                noise_group.create_dataset(name, data=wave)
