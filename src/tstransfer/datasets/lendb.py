"""LEN-DB (Magrini et al. 2020, Zenodo record 3648232): local earthquakes, 20 Hz, m/s.

Raw file ``LEN-DB.hdf5`` (18.2 GB): groups ``EQ`` (629,095 earthquake traces), ``AN``
(615,847 noise traces) and ``Stations``. Each trace is a (3, 540) float64 dataset,
channel x time, named ``NET_STA_<epoch>``, with the event magnitude in attribute ``mag``.

Extraction (paper section 2.1.2): the ``EQ`` group only, transposed to time x channel.
Instances are ordered as their samples lie in the file, so the 18 GB are read
sequentially (``_hdf5.storage_order``).

Trace length: every trace must have the shape of the first one read (3 channels first),
so shortened synthetic files convert as well.

``params`` (the ``extract:`` mapping) keys read: ``file`` (optional, see
:func:`.base.raw_file_name`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _hdf5
from .base import DatasetInfo, InstanceIndex, RawChunk, raw_file_name

INFO = DatasetInfo(
    name="lendb",
    title="LEN-DB",
    domain="seismology",
    task="regression",
    channels=3,
    sampling_rate=20.0,
    units="m/s",
)

FILE = "LEN-DB.hdf5"
EVENTS = "EQ"
NOISE = "AN"
STATIONS = "Stations"
LABEL_ATTR = b"mag"
LENGTH = 540

# Instances the paper's extraction yields from the real data (the EQ group; REFERENCE.md section 2),
# for estimates made before any conversion (tstransfer.cluster_budget).
PAPER_INSTANCES = 629_095


def input_length(params: Mapping[str, Any]) -> int:
    """The model input's length: every trace's (the extract settings do not change it)."""
    return LENGTH


def raw_files(params: Mapping[str, Any]) -> list[str]:
    return [raw_file_name(params, FILE)]


def list_instances(raw: Path, params: Mapping[str, Any], log: logging.Logger) -> InstanceIndex:
    """Every trace of ``EQ``, in the order of their samples in the file (sequential reads).

    The noise group is only counted.
    """
    path = Path(raw) / raw_file_name(params, FILE)
    with _hdf5.open_hdf5(INFO.name, path) as handle:
        keys = _hdf5.member_names(INFO.name, handle, EVENTS)
        keys = [keys[i] for i in _hdf5.storage_order(INFO.name, handle, EVENTS, keys)]
        n_noise = len(handle[NOISE]) if NOISE in handle else 0
    log.info("%s: %d earthquake traces in %s/%s", INFO.name, len(keys), path.name, EVENTS)
    dropped = {f"noise traces (group {NOISE})": n_noise} if n_noise else {}
    return InstanceIndex(table=pd.DataFrame({"key": keys}), dropped=dropped, files=[path])


def read_chunks(
    raw: Path, params: Mapping[str, Any], index: InstanceIndex, chunk_size: int
) -> Iterator[RawChunk]:
    """Traces of the index in order, ``chunk_size`` at a time, as (n, time, 3) float64.

    Each trace is read (channel x time, as stored) straight into a row of a reused
    buffer, then the whole chunk is transposed once.
    """
    path = Path(raw) / raw_file_name(params, FILE)
    keys = index.table["key"].astype(str).tolist()
    with _hdf5.open_hdf5(INFO.name, path) as handle:
        reader = _hdf5.TraceReader(INFO.name, handle, EVENTS, channel_axis=0)
        buffer = None
        for start in range(0, len(keys), chunk_size):
            chunk_keys = keys[start : start + chunk_size]
            labels = np.empty(len(chunk_keys), dtype=np.float64)
            for i, key in enumerate(chunk_keys):
                dsid = reader.open(key)
                if buffer is None:
                    buffer = np.empty((chunk_size, *reader.shape), dtype=np.float64)
                reader.read_into(dsid, key, buffer[i])
                labels[i] = reader.float_attr(dsid, key, LABEL_ATTR)
            waveforms = buffer[: len(chunk_keys)].transpose(0, 2, 1)
            # A copy: the buffer is refilled for the next chunk while the consumer may keep this one.
            yield RawChunk(
                waveforms=np.ascontiguousarray(waveforms), labels=labels, keys=chunk_keys, file=str(path)
            )
