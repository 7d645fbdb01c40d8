"""STEAD (Mousavi et al. 2019): local earthquakes and noise, 100 Hz, counts.

Two releases, chosen by ``params["layout"]``:

* ``single`` (2019, the file the paper used): ``waveforms_11_13_19.hdf5`` with
  ``earthquake/local/<trace>`` and ``non_earthquake/noise/<trace>``, plus the metadata
  table ``metadata_11_13_19.csv``;
* ``chunks`` (current release): ``chunk<k>.hdf5`` with ``data/<trace>`` and its table
  ``chunk<k>.csv`` for each k of ``params["chunks"]`` (chunk1 holds the noise, chunks
  2..6 the earthquakes).

Each trace is a (6000, 3) float32 dataset, time x channel (E, N, Z). The tables have the
35 STEAD metadata columns (``METADATA_COLUMNS``); the label is ``source_magnitude``.
Every trace must have the shape of the first one read (3 channels last).

Extraction (paper section 2.1.3, authors' ``preprocess_stead.py``): earthquakes only
(``trace_category == "earthquake_local"``; 1,031,908 in the 2019 file). Instances are
listed from the tables (cheap: only a sample of traces is opened, to check that table
order is file order; ``_hdf5.storage_order``), labels come from the tables, and
waveforms are read file by file in the order of their samples. An earthquake whose
``source_magnitude`` is missing or not a number is an error (the paper filters nothing
beyond the category, and a NaN label would silently poison training).

``params`` (the ``extract:`` mapping) keys read:

* ``layout``: ``chunks`` (default) or ``single``;
* ``chunks``: chunk numbers of the ``chunks`` layout, default ``[1, 2, 3, 4, 5, 6]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from . import _hdf5
from .base import DataError, DatasetInfo, InstanceIndex, RawChunk, extract_setting, one_of

INFO = DatasetInfo(
    name="stead",
    title="STEAD",
    domain="seismology",
    task="regression",
    channels=3,
    sampling_rate=100.0,
    units="counts",
)

LAYOUTS = ("chunks", "single")
SINGLE_HDF5 = "waveforms_11_13_19.hdf5"
SINGLE_CSV = "metadata_11_13_19.csv"
SINGLE_GROUPS = {"earthquake_local": "earthquake/local", "noise": "non_earthquake/noise"}
CHUNK_GROUP = "data"
DEFAULT_CHUNKS = (1, 2, 3, 4, 5, 6)
EARTHQUAKE = "earthquake_local"
NOISE = "noise"
LABEL_COLUMN = "source_magnitude"
LENGTH = 6000

# Instances the paper's extraction yields from the real data (earthquakes of the current release; REFERENCE.md section 2),
# for estimates made before any conversion (tstransfer.cluster_budget).
PAPER_INSTANCES = 1_031_908


def input_length(params: Mapping[str, Any]) -> int:
    """The model input's length: every trace's (the extract settings do not change it)."""
    return LENGTH

# The STEAD metadata columns, in the order of the released tables.
METADATA_COLUMNS = (
    "network_code", "receiver_code", "receiver_type", "receiver_latitude",
    "receiver_longitude", "receiver_elevation_m", "p_arrival_sample", "p_status",
    "p_weight", "p_travel_sec", "s_arrival_sample", "s_status", "s_weight", "source_id",
    "source_origin_time", "source_origin_uncertainty_sec", "source_latitude",
    "source_longitude", "source_error_sec", "source_gap_deg",
    "source_horizontal_uncertainty_km", "source_depth_km", "source_depth_uncertainty_km",
    "source_magnitude", "source_magnitude_type", "source_magnitude_author",
    "source_mechanism_strike_dip_rake", "source_distance_deg", "source_distance_km",
    "back_azimuth_deg", "snr_db", "coda_end_sample", "trace_start_time", "trace_category",
    "trace_name",
)


def _layout(params: Mapping[str, Any]) -> str:
    return extract_setting(params, INFO.name, "layout", one_of(LAYOUTS), "chunks")


def _chunk_numbers(params: Mapping[str, Any]) -> list[int]:
    if params.get("chunks") is None:
        return list(DEFAULT_CHUNKS)
    return extract_setting(params, INFO.name, "chunks", lambda value: [int(k) for k in value])


def _pairs(params: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(hdf5 file, table file, earthquake group)`` per raw file pair, in reading order."""
    if _layout(params) == "single":
        return [(SINGLE_HDF5, SINGLE_CSV, SINGLE_GROUPS[EARTHQUAKE])]
    return [(f"chunk{k}.hdf5", f"chunk{k}.csv", CHUNK_GROUP) for k in _chunk_numbers(params)]


def raw_files(params: Mapping[str, Any]) -> list[str]:
    return [name for hdf5, csv, _ in _pairs(params) for name in (hdf5, csv)]


def _read_table(dataset: str, path: Path) -> pd.DataFrame:
    """The earthquake rows of one metadata table: trace name, category, magnitude."""
    if not path.is_file():
        raise DataError(dataset, path, "metadata table not found")
    wanted = ["trace_name", "trace_category", LABEL_COLUMN]
    try:
        table = pd.read_csv(
            path, usecols=lambda c: c in wanted, dtype={"trace_name": str, "trace_category": str},
            low_memory=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise DataError(dataset, path, f"unreadable metadata table ({err})") from None
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise DataError(dataset, path, f"metadata table lacks column(s) {', '.join(missing)}")
    return table


def list_instances(raw: Path, params: Mapping[str, Any], log: logging.Logger) -> InstanceIndex:
    """Earthquake traces from the metadata tables, with their magnitudes, file by file in
    the order their samples lie in the file (the table order when the two agree)."""
    raw = Path(raw)
    parts = []
    n_other = 0
    files = []
    for hdf5, csv, group in _pairs(params):
        table = _read_table(INFO.name, raw / csv)
        quakes = table["trace_category"] == EARTHQUAKE
        n_other += int((~quakes).sum())
        table = table.loc[quakes]
        label = pd.to_numeric(table[LABEL_COLUMN], errors="coerce")
        bad = ~np.isfinite(label.to_numpy(dtype=np.float64))
        if bad.any():
            names = table["trace_name"].to_numpy()[bad]
            raise DataError(
                INFO.name, raw / csv, f"{LABEL_COLUMN} missing or not a number for {int(bad.sum())} "
                f"earthquake(s), first: {', '.join(map(str, names[:5]))}", trace=str(names[0]),
            )
        part = pd.DataFrame({
            "key": table["trace_name"].to_numpy(dtype=str), "label": label.to_numpy(np.float64),
            "file": hdf5, "group": group,
        })
        # Opening the HDF5 file now also reports a missing or truncated one before the
        # conversion starts, not hours into an 85 GB read.
        with _hdf5.open_hdf5(INFO.name, raw / hdf5) as handle:
            order = _hdf5.storage_order(INFO.name, handle, group, part["key"].tolist())
        parts.append(part.iloc[order])
        files += [raw / hdf5, raw / csv]
        log.info("%s: %s: %d earthquakes", INFO.name, csv, int(quakes.sum()))
    index = pd.concat(parts, ignore_index=True)
    dropped = {"non-earthquake traces (trace_category != earthquake_local)": n_other} if n_other else {}
    return InstanceIndex(table=index, dropped=dropped, files=files)


def read_chunks(
    raw: Path, params: Mapping[str, Any], index: InstanceIndex, chunk_size: int
) -> Iterator[RawChunk]:
    """Traces of the index in order, ``chunk_size`` at a time, as (n, 6000, 3) float32.

    A chunk may span two raw files; then its ``file`` names both. Files are opened one
    at a time, in index order, and closed when the index moves on.
    """
    raw = Path(raw)
    keys = index.table["key"].astype(str).tolist()
    files = index.table["file"].astype(str).tolist()
    groups = index.table["group"].astype(str).tolist()
    labels = index.table["label"].to_numpy(dtype=np.float64)
    handle: h5py.File | None = None
    reader: _hdf5.TraceReader | None = None
    open_name = None
    shape = None
    buffer = None
    try:
        for start in range(0, len(keys), chunk_size):
            stop = min(len(keys), start + chunk_size)
            used: list[str] = []
            for i in range(start, stop):
                if files[i] != open_name:
                    if handle is not None:
                        handle.close()
                    handle = _hdf5.open_hdf5(INFO.name, raw / files[i])
                    open_name = files[i]
                    reader = _hdf5.TraceReader(INFO.name, handle, groups[i], shape=shape)
                if not used or used[-1] != open_name:
                    used.append(open_name)
                dsid = reader.open(keys[i])
                shape = reader.shape
                if buffer is None:
                    # A new buffer per chunk (not one reused): the consumer may still hold
                    # the previous chunk, e.g. while a background thread writes it.
                    buffer = np.empty((stop - start, *shape), dtype=np.float32)
                reader.read_into(dsid, keys[i], buffer[i - start])
            yield RawChunk(
                waveforms=buffer, labels=labels[start:stop],
                keys=keys[start:stop], file=" + ".join(str(raw / name) for name in used),
            )
            buffer = None
    finally:
        if handle is not None:
            handle.close()
