"""EMG (Myo armband, Pinch subset of Zenodo record 3194792): 4-class gesture windows.

Raw file: ``Pinch.zip`` holding, per subject session, a pair of NumPy files
``<prefix>_emg.npy`` (samples x 8 channels, 200 Hz) and ``<prefix>_ann.npy`` (one label
string per sample: ``Pinch1``..``Pinch4`` or ``none`` for rest). ``<prefix>`` is the
member path without the suffix (folders included), so pairs are matched wherever they
sit in the archive. macOS resource forks (``__MACOSX/``, ``._*``) are ignored.

Extraction (paper section 2.1.5, the authors' ``preprocess_emg.py``): channels
``channels`` (paper: 0, 2, 5); windows of ``window`` samples (80 = 400 ms) starting
every ``step`` samples (10 = 50 ms) from sample 0 while the window fits; a window is
kept only when all its samples carry the same gesture label (``Pinch<k>`` -> k - 1).
Windows with a label change inside (gesture onset/offset) and windows of rest
(``none`` throughout) are dropped and counted by reason. Key: ``<prefix>:<start>``.
Sessions are visited in sorted prefix order, windows by start.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import DataError, DatasetInfo, InstanceIndex, RawChunk, extract_setting, raw_file_name

CLASS_NAMES = ("Pinch1", "Pinch2", "Pinch3", "Pinch4")
REST = "none"
INFO = DatasetInfo(
    name="emg",
    title="EMG",
    domain="medicine",
    task="classification",
    channels=3,
    sampling_rate=200.0,
    units="Myo EMG activation (raw int8 scale)",
    class_names=CLASS_NAMES,
)

DEFAULT_FILE = "Pinch.zip"
EMG_SUFFIX = "_emg.npy"
ANN_SUFFIX = "_ann.npy"
N_MYO_CHANNELS = 8
DROP_CHANGE = "window spans a label change (gesture onset or offset)"
DROP_REST = "window is rest (label 'none' throughout)"
# Integer codes of the per-sample labels: class index, or REST_CODE.
REST_CODE = -1


# --------------------------------------------------------------------------- params
def _file_name(params: Mapping[str, Any]) -> str:
    """``params['file']`` (optional): the zip's name inside ``raw``; default ``Pinch.zip``."""
    return raw_file_name(params, DEFAULT_FILE)


def _settings(params: Mapping[str, Any]) -> tuple[list[int], int, int]:
    """``channels`` (the 3 Myo channel indices kept), ``window`` and ``step`` (samples);
    all required. Their ranges are the config schema's (``datasets.emg.extract``)."""
    channels = extract_setting(params, INFO.name, "channels", lambda value: [int(c) for c in value])
    window = extract_setting(params, INFO.name, "window", int)
    step = extract_setting(params, INFO.name, "step", int)
    return channels, window, step


# Instances the paper's extraction yields from the real data (windows of one constant label; REFERENCE.md section 2),
# for estimates made before any conversion (tstransfer.cluster_budget).
PAPER_INSTANCES = 32_438


def input_length(params: Mapping[str, Any]) -> int:
    """The model input's length: ``window`` samples."""
    return _settings(params)[1]


def raw_files(params: Mapping[str, Any]) -> list[str]:
    return [_file_name(params)]


# --------------------------------------------------------------------------- archive
def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise DataError(INFO.name, path, "raw file not found")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(INFO.name, path, f"not a readable zip archive ({exc})") from None


def _sessions(archive: zipfile.ZipFile, path: Path) -> list[str]:
    """Sorted session prefixes; every ``_emg.npy`` must have its ``_ann.npy`` and back."""
    emg, ann = set(), set()
    for name in archive.namelist():
        base = name.rsplit("/", 1)[-1]
        if name.startswith("__MACOSX/") or base.startswith("._"):
            continue
        if name.endswith(EMG_SUFFIX):
            emg.add(name[: -len(EMG_SUFFIX)])
        elif name.endswith(ANN_SUFFIX):
            ann.add(name[: -len(ANN_SUFFIX)])
    for prefix in sorted(emg ^ ann):
        have, lack = (EMG_SUFFIX, ANN_SUFFIX) if prefix in emg else (ANN_SUFFIX, EMG_SUFFIX)
        raise DataError(
            INFO.name, f"{path}:{prefix}{have}", f"no matching {prefix}{lack} in the archive",
            trace=prefix,
        )
    if not emg:
        raise DataError(INFO.name, path, f"no <prefix>{EMG_SUFFIX} / <prefix>{ANN_SUFFIX} pairs in the archive")
    return sorted(emg)


def _load_npy(archive: zipfile.ZipFile, path: Path, member: str, prefix: str) -> np.ndarray:
    """One .npy member, never unpickled (the authors' loader did not allow pickles either)."""
    try:
        with archive.open(member) as handle:
            return np.load(io.BytesIO(handle.read()), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # BadZipFile covers a CRC mismatch; ValueError a malformed or pickled array.
        raise DataError(INFO.name, f"{path}:{member}", f"unreadable .npy ({exc})", trace=prefix) from None


def _emg_header(archive: zipfile.ZipFile, path: Path, member: str, prefix: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an .npy member from its header only (cheap listing pass)."""
    try:
        with archive.open(member) as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(INFO.name, f"{path}:{member}", f"unreadable .npy header ({exc})", trace=prefix) from None
    return tuple(shape), dtype


def _label_codes(labels: np.ndarray, path: Path, member: str, prefix: str) -> np.ndarray:
    """Per-sample int codes (class index or REST_CODE); unknown labels are an error."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.dtype.kind not in "US":
        raise DataError(
            INFO.name, f"{path}:{member}",
            f"expected a 1-D array of label strings, got dtype {labels.dtype} shape {labels.shape}",
            trace=prefix,
        )
    if labels.dtype.kind == "S":
        labels = labels.astype(str)
    codes = np.full(len(labels), -2, dtype=np.int8)
    codes[labels == REST] = REST_CODE
    for value, name in enumerate(CLASS_NAMES):
        codes[labels == name] = value
    unknown = np.flatnonzero(codes == -2)
    if len(unknown):
        first = int(unknown[0])
        raise DataError(
            INFO.name, f"{path}:{member}",
            f"unknown label {str(labels[first])!r} at sample {first} ({len(unknown)} sample(s) "
            f"with labels other than {', '.join(CLASS_NAMES)}, {REST})",
            trace=f"{prefix}:{first}",
        )
    return codes


def window_labels(codes: np.ndarray, window: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(starts, labels, constant)`` for every window of a session's label codes.

    ``constant`` is True where all ``window`` labels are equal; ``labels`` is the
    window's first label (meaningful where constant).
    """
    starts = np.arange(0, len(codes) - window + 1, step)
    # changes[i] = number of label changes between samples 0..i; a window [s, s+w) is
    # constant iff no change happens between s and s+w-1.
    changes = np.concatenate([[0], np.cumsum(codes[1:] != codes[:-1])])
    constant = changes[starts + window - 1] == changes[starts]
    return starts, codes[starts], constant


# --------------------------------------------------------------------------- protocol
def list_instances(raw: Path, params: Mapping[str, Any], log: logging.Logger) -> InstanceIndex:
    path = Path(raw) / _file_name(params)
    channels, window, step = _settings(params)
    parts = []
    dropped = {DROP_CHANGE: 0, DROP_REST: 0}
    with _open_zip(path) as archive:
        prefixes = _sessions(archive, path)
        for prefix in prefixes:
            ann_member, emg_member = prefix + ANN_SUFFIX, prefix + EMG_SUFFIX
            codes = _label_codes(_load_npy(archive, path, ann_member, prefix), path, ann_member, prefix)
            shape, dtype = _emg_header(archive, path, emg_member, prefix)
            _check_emg(shape, dtype, len(codes), path, emg_member, prefix)
            starts, labels, constant = window_labels(codes, window, step)
            keep = constant & (labels != REST_CODE)
            dropped[DROP_CHANGE] += int((~constant).sum())
            dropped[DROP_REST] += int((constant & (labels == REST_CODE)).sum())
            parts.append(
                pd.DataFrame(
                    {
                        "key": [f"{prefix}:{start}" for start in starts[keep]],
                        "label": labels[keep].astype(np.int16),
                        "session": prefix,
                        "start": starts[keep],
                    }
                )
            )
    table = pd.concat(parts, ignore_index=True)
    counts = np.bincount(table["label"].to_numpy(), minlength=len(CLASS_NAMES))
    log.info(
        "%s: %d sessions -> %d windows (per class %s); dropped %d with a label change, %d of rest",
        INFO.name, len(prefixes), len(table),
        ", ".join(f"{n}={c}" for n, c in zip(CLASS_NAMES, counts)),
        dropped[DROP_CHANGE], dropped[DROP_REST],
    )
    return InstanceIndex(table=table, dropped=dropped, files=[path])


def _check_emg(
    shape: tuple[int, ...], dtype: np.dtype, n_labels: int, path: Path, member: str, prefix: str
) -> None:
    if dtype.kind not in "iuf":
        raise DataError(
            INFO.name, f"{path}:{member}", f"expected numeric EMG samples, got dtype {dtype}", trace=prefix
        )
    if len(shape) != 2 or shape[1] != N_MYO_CHANNELS:
        raise DataError(
            INFO.name, f"{path}:{member}",
            f"expected (samples, {N_MYO_CHANNELS}) EMG, got shape {shape}", trace=prefix,
        )
    if shape[0] != n_labels:
        raise DataError(
            INFO.name, f"{path}:{member}",
            f"{shape[0]} EMG samples but {n_labels} labels in {prefix}{ANN_SUFFIX}", trace=prefix,
        )


def read_chunks(
    raw: Path, params: Mapping[str, Any], index: InstanceIndex, chunk_size: int
) -> Iterator[RawChunk]:
    path = Path(raw) / _file_name(params)
    channels, window, step = _settings(params)
    table = index.table.reset_index(drop=True)
    offsets = np.arange(window)
    # Pending windows not yet yielded. Invariant: fewer than chunk_size are pending
    # before a session is appended, so whatever remains after yielding full chunks
    # belongs to the session just read -- which is the file named in the next chunk.
    pending: list[np.ndarray] = []
    pending_labels: list[np.ndarray] = []
    pending_keys: list[str] = []
    member_of_first = ""
    with _open_zip(path) as archive:
        # The index lists each session's windows as one consecutive run.
        for prefix, rows in table.groupby("session", sort=False):
            emg_member = prefix + EMG_SUFFIX
            data = _load_npy(archive, path, emg_member, prefix)
            _check_emg(data.shape, data.dtype, data.shape[0] if data.ndim else -1, path, emg_member, prefix)
            starts = rows["start"].to_numpy()
            if len(starts) and starts.max() + window > data.shape[0]:
                raise DataError(
                    INFO.name, f"{path}:{emg_member}",
                    "the archive changed since the instances were listed", trace=prefix,
                )
            if not pending_keys:
                member_of_first = f"{path}:{emg_member}"
            pending.append(data[:, channels].astype(np.float32)[starts[:, None] + offsets])
            pending_labels.append(rows["label"].to_numpy())
            pending_keys.extend(rows["key"])
            while len(pending_keys) >= chunk_size:
                waveforms, labels = np.concatenate(pending), np.concatenate(pending_labels)
                yield RawChunk(
                    waveforms[:chunk_size], labels[:chunk_size], pending_keys[:chunk_size], member_of_first
                )
                pending, pending_labels = [waveforms[chunk_size:]], [labels[chunk_size:]]
                pending_keys = pending_keys[chunk_size:]
                member_of_first = f"{path}:{emg_member}"
    if pending_keys:
        yield RawChunk(np.concatenate(pending), np.concatenate(pending_labels), pending_keys, member_of_first)
