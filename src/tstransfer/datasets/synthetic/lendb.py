"""Synthetic LEN-DB: ``LEN-DB.hdf5`` in the real layout (see :mod:`..lendb`).

``params`` (the ``synthetic.lendb`` mapping) keys read: ``n_instances`` (earthquake
traces; as many noise traces are written to ``AN``) and ``length`` (samples per trace,
540 in the real data).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...fsutil import atomic_path
from ..lendb import EVENTS, FILE, INFO, LENGTH, NOISE, STATIONS
from . import _seismic

NETWORKS = {"IU": ["ANMO", "COLA", "HRV", "KONO"], "GE": ["APE", "KBS", "SANT"], "II": ["BFO", "KDAK"]}


def _key(rng: np.random.Generator) -> str:
    net = str(rng.choice(list(NETWORKS)))
    sta = str(rng.choice(NETWORKS[net]))
    epoch = rng.uniform(1.1e9, 1.55e9)  # 2004..2019, like LEN-DB's catalogue
    return f"{net}_{sta}_{epoch:.2f}"


def write_synthetic(raw: Path, params: Mapping[str, Any], rng: np.random.Generator) -> None:
    """``LEN-DB.hdf5`` with ``EQ``, ``AN`` and ``Stations`` groups, real dtypes and shapes.

    ``EQ`` traces are learnable earthquakes (see ``_seismic.synthetic_events``) with ``mag``;
    ``AN`` holds as many noise traces. ``Stations`` holds one small dataset per station
    (latitude, longitude, elevation): the real group's inner layout is not used by the
    extraction and is not reproduced exactly.
    """
    n = int(params["n_instances"])
    length = int(params.get("length", LENGTH))
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    eq_keys = _seismic.unique_names(rng, n, _key)
    an_keys = _seismic.unique_names(rng, n, _key, taken=eq_keys)
    magnitudes = _seismic.synthetic_magnitudes(rng, n)
    unit = 1e-9  # m/s: a magnitude-4 event peaks near 1e-7 m/s
    with atomic_path(raw / FILE) as tmp, h5py.File(tmp, "w") as handle:
        eq = handle.create_group(EVENTS)
        an = handle.create_group(NOISE)
        stations = handle.create_group(STATIONS)
        batch = 256
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            waves = _seismic.synthetic_events(rng, magnitudes[start:stop], length, INFO.sampling_rate, unit)
            noise = _seismic.synthetic_events(
                rng, np.zeros(stop - start), length, INFO.sampling_rate, unit, noise_only=True
            )
            for i in range(stop - start):
                dset = eq.create_dataset(eq_keys[start + i], data=waves[i].T.astype(np.float64))
                dset.attrs["mag"] = magnitudes[start + i]
                an.create_dataset(an_keys[start + i], data=noise[i].T.astype(np.float64))
        for net, names in NETWORKS.items():
            for sta in names:
                coords = np.array([rng.uniform(-60, 70), rng.uniform(-180, 180), rng.uniform(0, 3000)])
                stations.create_dataset(f"{net}_{sta}", data=coords)
