"""LOMAX (Lomax et al. 2019; Zenodo record 5040865): global earthquakes, 20 Hz, m/s.

Raw file ``ConvNetQuake_INGV_dataset.hdf5``: groups ``train``, ``validate``, ``test`` and
``test2``, each with ``events`` and ``noise`` subgroups; one (1001, 3) time x channel
dataset per trace, named like ``MN_AQU__BH.2007.07.31.10.49.59.717``, with the event
magnitude in attribute ``magnitude``.

Extraction (paper section 2.1.1, authors' ``filter_lomax.py`` and ``preprocess_lomax.py``):

1. events only (the ``*/noise`` groups are not read);
2. ``test/events`` and ``test2/events`` keep only the traces on the keep-list (those the
   original CNN classified correctly: 2,991 and 786 in the authors' list);
3. duplicates by trace name across groups are removed, the first kept, visiting the
   groups in the authors' order ``train, test, test2, validate``.

The paper's result is 19,426 events. Every trace must have the shape of the first one
read (3 channels last); the length is not fixed, so shortened synthetic files convert.

``params`` (the ``extract:`` mapping) keys read:

* ``keep_list``: path of a text file, one trace per line, either a bare trace name
  (kept in whichever test group holds it) or a group-qualified one such as
  ``test/events/MN_AQU__BH.2007.07.31.10.49.59.717`` (kept in that group only); blank
  lines and ``#`` comments are ignored, lines naming ``noise`` groups or the training
  and validation groups are ignored too (those groups are not filtered). A relative path
  is taken relative to the working directory. A ``.py`` file is read as the authors'
  ``scripts/filter_lomax.py`` (repository ecokeco/tstl), whose ``kept_keys`` set holds
  the list as quoted group-qualified names; only those names are taken from it.
  ``null`` keeps every test event and says so in the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _hdf5
from .base import DataError, DatasetInfo, InstanceIndex, RawChunk, raw_file_name

INFO = DatasetInfo(
    name="lomax",
    title="LOMAX",
    domain="seismology",
    task="regression",
    channels=3,
    sampling_rate=20.0,
    units="m/s",
)

FILE = "ConvNetQuake_INGV_dataset.hdf5"
# The authors' visiting order, which decides which copy of a duplicate is kept.
EVENT_GROUPS = ("train/events", "test/events", "test2/events", "validate/events")
FILTERED_GROUPS = ("test/events", "test2/events")
LABEL_ATTR = b"magnitude"
LENGTH = 1001

# Instances the paper's extraction yields from the real data (the keep-list's events, duplicates removed; REFERENCE.md section 2),
# for estimates made before any conversion (tstransfer.cluster_budget).
PAPER_INSTANCES = 19_426


def input_length(params: Mapping[str, Any]) -> int:
    """The model input's length: every trace's (the extract settings do not change it)."""
    return LENGTH


def raw_files(params: Mapping[str, Any]) -> list[str]:
    return [raw_file_name(params, FILE)]


def read_keep_list(path: str | Path) -> tuple[set[str], set[str]]:
    """``(qualified, bare)`` trace names of a keep-list file (see the module docstring).

    ``qualified`` holds ``group/events/name`` entries of the filtered groups, ``bare`` the
    names given without a group.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(INFO.name, path, "keep-list file (datasets.lomax.extract.keep_list) not found")
    qualified: set[str] = set()
    bare: set[str] = set()
    text = path.read_text()
    if path.suffix == ".py":
        # The authors publish their list inside scripts/filter_lomax.py (a Python set
        # of quoted group-qualified names): take those names, ignore the code.
        entries = re.findall(r"""['"]((?:train|validate|test2?)/(?:events|noise)/[^'"]+)['"]""", text)
        if not entries:
            raise DataError(INFO.name, path, "no quoted 'group/events/trace' names in this Python file")
    else:
        entries = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    for entry in entries:
        if not entry:
            continue
        if "/" in entry:
            group, _, name = entry.rpartition("/")
            if group in FILTERED_GROUPS:
                qualified.add(f"{group}/{name}")
            # Entries of noise, train or validate groups do not filter anything.
        else:
            bare.add(entry)
    return qualified, bare


def list_instances(raw: Path, params: Mapping[str, Any], log: logging.Logger) -> InstanceIndex:
    """Event traces after the keep-list and de-duplication, in group then name order."""
    path = Path(raw) / raw_file_name(params, FILE)
    keep_path = params.get("keep_list")
    if keep_path is None:
        log.warning(
            "%s: no keep-list given (datasets.lomax.extract.keep_list: null): keeping every test event",
            INFO.name,
        )
        keep = None
    else:
        keep = read_keep_list(keep_path)
        log.info("%s: keep-list %s: %d qualified + %d bare names", INFO.name, keep_path, *map(len, keep))

    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    dropped = {"test events not on the keep-list": 0, "duplicate trace names (first kept)": 0}
    with _hdf5.open_hdf5(INFO.name, path) as handle:
        n_noise = 0
        for group in EVENT_GROUPS:
            names = _hdf5.member_names(INFO.name, handle, group)
            noise_group = group.split("/")[0] + "/noise"
            if noise_group in handle:
                n_noise += len(handle[noise_group])
            for name in names:
                if keep is not None and group in FILTERED_GROUPS:
                    qualified, bare = keep
                    if f"{group}/{name}" not in qualified and name not in bare:
                        dropped["test events not on the keep-list"] += 1
                        continue
                if name in seen:
                    dropped["duplicate trace names (first kept)"] += 1
                    continue
                seen.add(name)
                rows.append((name, group))
    dropped["noise traces (*/noise groups)"] = n_noise
    dropped = {reason: count for reason, count in dropped.items() if count}
    table = pd.DataFrame(rows, columns=["key", "group"])
    log.info("%s: %d events kept; per group: %s", INFO.name, len(table),
             table["group"].value_counts().to_dict())
    return InstanceIndex(table=table, dropped=dropped, files=[path])


def read_chunks(
    raw: Path, params: Mapping[str, Any], index: InstanceIndex, chunk_size: int
) -> Iterator[RawChunk]:
    """Traces of the index in order, ``chunk_size`` at a time, as (n, time, 3) float64."""
    path = Path(raw) / raw_file_name(params, FILE)
    keys = index.table["key"].astype(str).tolist()
    groups = index.table["group"].astype(str).tolist()
    with _hdf5.open_hdf5(INFO.name, path) as handle:
        readers: dict[str, _hdf5.TraceReader] = {}
        shape = None
        for start in range(0, len(keys), chunk_size):
            chunk_keys = keys[start : start + chunk_size]
            labels = np.empty(len(chunk_keys), dtype=np.float64)
            waveforms = None
            for i, (key, group) in enumerate(zip(chunk_keys, groups[start : start + chunk_size])):
                reader = readers.get(group)
                if reader is None:
                    # Every group's traces must have the first trace's shape.
                    reader = readers[group] = _hdf5.TraceReader(INFO.name, handle, group, shape=shape)
                dsid = reader.open(key)
                shape = reader.shape
                if waveforms is None:
                    waveforms = np.empty((len(chunk_keys), *shape), dtype=np.float64)
                reader.read_into(dsid, key, waveforms[i])
                labels[i] = reader.float_attr(dsid, key, LABEL_ATTR)
            yield RawChunk(waveforms=waveforms, labels=labels, keys=chunk_keys, file=str(path))
