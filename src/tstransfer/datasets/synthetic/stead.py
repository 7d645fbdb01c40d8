"""Synthetic STEAD: either release's files in the real layout (see :mod:`..stead`).

``params`` (the ``synthetic.stead`` mapping) keys read: ``n_instances`` (earthquake
traces; a quarter as many noise traces are added), ``length`` (samples per trace, 6000
in the real data), ``layout`` (default ``chunks``) and, for ``chunks``, ``n_chunks``
(default 2: chunk1 noise, the earthquakes spread over chunk2..chunk<n_chunks>). The
matching ``extract.chunks`` is ``[1, ..., n_chunks]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from ...fsutil import atomic_path
from ..stead import (
    CHUNK_GROUP, EARTHQUAKE, INFO, LENGTH, METADATA_COLUMNS, NOISE, SINGLE_CSV, SINGLE_GROUPS,
    SINGLE_HDF5,
)
from . import _seismic

NETWORKS = {"TA": ["109C", "Q23A", "R11A"], "CI": ["PASC", "SBC", "WBS"], "NC": ["KCPB", "BJOB"], "AK": ["KTH", "PPLA"]}


def _metadata(rng: np.random.Generator, n: int, category: str, magnitudes, onsets, length) -> pd.DataFrame:
    """``n`` rows of the 35 STEAD columns, earthquake columns empty for noise."""
    nets = rng.choice(list(NETWORKS), size=n)
    stations = np.array([str(rng.choice(NETWORKS[net])) for net in nets])
    starts = pd.Timestamp("2000-01-01") + pd.to_timedelta(rng.integers(0, 19 * 365 * 86400, size=n), unit="s")
    suffix = "_EV" if category == EARTHQUAKE else "_NO"
    names = [f"{sta}.{net}_{t:%Y%m%d%H%M%S}{suffix}" for sta, net, t in zip(stations, nets, starts)]
    table = pd.DataFrame({column: np.full(n, np.nan, dtype=object) for column in METADATA_COLUMNS})
    table["network_code"] = nets
    table["receiver_code"] = stations
    table["receiver_type"] = rng.choice(["HH", "BH", "EH", "HN"], size=n)
    table["receiver_latitude"] = np.round(rng.uniform(30, 65, n), 4)
    table["receiver_longitude"] = np.round(rng.uniform(-160, -70, n), 4)
    table["receiver_elevation_m"] = np.round(rng.uniform(0, 2500, n), 1)
    table["trace_start_time"] = [f"{t:%Y-%m-%d %H:%M:%S}" for t in starts]
    table["trace_category"] = category
    table["trace_name"] = names
    if category == EARTHQUAKE:
        distance_km = rng.uniform(5, 110, n)
        table["p_arrival_sample"] = onsets["p_sample"].astype(float)
        table["p_status"] = rng.choice(["manual", "autopicker"], size=n)
        table["p_weight"] = np.round(rng.uniform(0.3, 1.0, n), 2)
        table["p_travel_sec"] = np.round(distance_km / 6.0, 2)
        table["s_arrival_sample"] = onsets["s_sample"].astype(float)
        table["s_status"] = rng.choice(["manual", "autopicker"], size=n)
        table["s_weight"] = np.round(rng.uniform(0.3, 1.0, n), 2)
        table["source_id"] = [str(v) for v in rng.integers(10_000_000, 99_999_999, n)]
        origin = starts + pd.to_timedelta(onsets["p_sample"] / INFO.sampling_rate - distance_km / 6.0, unit="s")
        table["source_origin_time"] = [f"{t:%Y-%m-%d %H:%M:%S.%f}"[:-4] for t in origin]
        table["source_origin_uncertainty_sec"] = np.round(rng.uniform(0.1, 1.0, n), 2)
        table["source_latitude"] = np.round(table["receiver_latitude"].astype(float) + rng.normal(0, 0.5, n), 4)
        table["source_longitude"] = np.round(table["receiver_longitude"].astype(float) + rng.normal(0, 0.5, n), 4)
        table["source_error_sec"] = np.round(rng.uniform(0.1, 1.5, n), 2)
        table["source_gap_deg"] = np.round(rng.uniform(20, 300, n), 1)
        table["source_horizontal_uncertainty_km"] = np.round(rng.uniform(0.1, 5, n), 3)
        table["source_depth_km"] = np.round(rng.uniform(0, 30, n), 2)
        table["source_depth_uncertainty_km"] = np.round(rng.uniform(0.1, 5, n), 2)
        table["source_magnitude"] = magnitudes
        table["source_magnitude_type"] = rng.choice(["ml", "md", "mb"], size=n)
        table["source_magnitude_author"] = rng.choice(["CI", "NC", "AK", "US"], size=n)
        table["source_distance_km"] = np.round(distance_km, 2)
        table["source_distance_deg"] = np.round(distance_km / 111.19, 4)
        table["back_azimuth_deg"] = np.round(rng.uniform(0, 360, n), 1)
        snr = rng.uniform(10, 70, (n, 3))
        table["snr_db"] = [f"[{a:.8f} {b:.8f} {c:.8f}]" for a, b, c in snr]
        table["coda_end_sample"] = [f"[[{v:.0f}.]]" for v in onsets["coda_end_sample"]]
    return table


def _write_pair(hdf5: Path, csv: Path, group: str, table: pd.DataFrame, waves: np.ndarray) -> None:
    """One HDF5 file (traces under ``group``, metadata as attributes) and its table."""
    with atomic_path(hdf5) as tmp, h5py.File(tmp, "w") as handle:
        for row, wave in zip(table.itertuples(index=False), waves):
            dset = handle.create_dataset(f"{group(row)}/{row.trace_name}", data=wave)
            for column, value in zip(METADATA_COLUMNS, row):
                if isinstance(value, str):
                    dset.attrs[column] = value
                elif value is not None and not (isinstance(value, float) and np.isnan(value)):
                    dset.attrs[column] = value
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)


def write_synthetic(raw: Path, params: Mapping[str, Any], rng: np.random.Generator) -> None:
    """STEAD files of either layout, real columns, dtypes, shapes and group names.

    Earthquakes are learnable (``_seismic.synthetic_events``, in counts); noise traces are
    station noise only. Each trace's HDF5 attributes repeat its metadata row.
    """
    n = int(params["n_instances"])
    length = int(params.get("length", LENGTH))
    layout = params.get("layout", "chunks")
    if layout not in ("chunks", "single"):
        raise ValueError(f"{INFO.name}: synthetic.layout must be 'chunks' or 'single', got {layout!r}")
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    n_noise = max(1, n // 4)
    magnitudes = _seismic.synthetic_magnitudes(rng, n)
    onsets: dict[str, np.ndarray] = {}
    quakes = _seismic.synthetic_events(rng, magnitudes, length, INFO.sampling_rate, unit=1.0, onsets=onsets, dtype=np.float32)
    noise = _seismic.synthetic_events(rng, np.zeros(n_noise), length, INFO.sampling_rate, unit=1.0, noise_only=True, dtype=np.float32)
    quake_rows = _metadata(rng, n, EARTHQUAKE, magnitudes, onsets, length)
    noise_rows = _metadata(rng, n_noise, NOISE, None, None, length)
    # Trace names embed a station and a second: redraw the rare collisions.
    while True:
        names = pd.concat([quake_rows["trace_name"], noise_rows["trace_name"]])
        if not names.duplicated().any():
            break
        quake_rows = _metadata(rng, n, EARTHQUAKE, magnitudes, onsets, length)
        noise_rows = _metadata(rng, n_noise, NOISE, None, None, length)
    if layout == "single":
        # The 2019 file interleaves noise and earthquakes in one table.
        table = pd.concat([quake_rows, noise_rows], ignore_index=True)
        waves = np.concatenate([quakes, noise])
        order = rng.permutation(len(table))
        _write_pair(
            raw / SINGLE_HDF5, raw / SINGLE_CSV,
            lambda row: SINGLE_GROUPS[row.trace_category], table.iloc[order], waves[order],
        )
        return
    n_chunks = int(params.get("n_chunks", 2))
    if n_chunks < 2:
        raise ValueError(f"{INFO.name}: synthetic n_chunks must be at least 2 (chunk1 holds the noise)")
    _write_pair(raw / "chunk1.hdf5", raw / "chunk1.csv", lambda row: CHUNK_GROUP, noise_rows, noise)
    bounds = np.linspace(0, n, n_chunks, dtype=int)
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]), start=2):
        _write_pair(
            raw / f"chunk{k}.hdf5", raw / f"chunk{k}.csv", lambda row: CHUNK_GROUP,
            quake_rows.iloc[lo:hi], quakes[lo:hi],
        )
