"""Shared helpers of the seismic dataset tests: independent readers of the raw files.

The "expected" readers here use plain high-level h5py and pandas, not the modules'
low-level code paths, so a test compares the conversion against a second, simple
reading of the same raw files.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd


def expected_lomax(raw: Path, keep_qualified: set[str] | None, keep_bare: set[str] | None):
    """Kept event traces, by the rules in the paper/authors' code, read independently.

    Returns ``(traces, n_keep_dropped, n_duplicates, noise_names)`` where ``traces`` maps
    trace name -> (magnitude, (time, channel) samples) of the first kept copy.
    """
    traces: dict[str, tuple[float, np.ndarray]] = {}
    keep_dropped = duplicates = 0
    noise = set()
    with h5py.File(raw / "ConvNetQuake_INGV_dataset.hdf5", "r") as f:
        for group in ("train/events", "test/events", "test2/events", "validate/events"):
            for name in f[group]:
                if keep_qualified is not None and group in ("test/events", "test2/events"):
                    if f"{group}/{name}" not in keep_qualified and name not in keep_bare:
                        keep_dropped += 1
                        continue
                if name in traces:
                    duplicates += 1
                    continue
                dset = f[group][name]
                traces[name] = (float(dset.attrs["magnitude"]), dset[()])
        for split in ("train", "validate", "test", "test2"):
            noise.update(f[f"{split}/noise"].keys())
    return traces, keep_dropped, duplicates, noise


def expected_lendb(raw: Path):
    """``(traces, noise_names)``: EQ name -> (mag, samples transposed to time x channel)."""
    with h5py.File(raw / "LEN-DB.hdf5", "r") as f:
        traces = {name: (float(d.attrs["mag"]), d[()].T) for name, d in f["EQ"].items()}
        noise = set(f["AN"].keys())
    return traces, noise


def expected_stead(raw: Path, layout: str, chunks: list[int] | None = None):
    """``(traces, noise_names)`` from the CSV tables and the HDF5 files."""
    if layout == "single":
        pairs = [("waveforms_11_13_19.hdf5", "metadata_11_13_19.csv")]
    else:
        pairs = [(f"chunk{k}.hdf5", f"chunk{k}.csv") for k in chunks]
    traces, noise = {}, set()
    for hdf5, csv in pairs:
        table = pd.read_csv(raw / csv)
        with h5py.File(raw / hdf5, "r") as f:
            for row in table.itertuples():
                if row.trace_category == "earthquake_local":
                    path = f"earthquake/local/{row.trace_name}" if layout == "single" else f"data/{row.trace_name}"
                    dset = f[path]
                    # The HDF5 attribute repeats the CSV's magnitude (as in the real files).
                    assert float(dset.attrs["source_magnitude"]) == float(row.source_magnitude)
                    traces[row.trace_name] = (float(row.source_magnitude), dset[()])
                else:
                    noise.add(row.trace_name)
    return traces, noise
