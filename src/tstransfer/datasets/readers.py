"""Readers of the generic formats a dataset given by one config entry may come in.

Each reader takes one file (or folder) and the entry's settings and returns a
:class:`Series`: the instances as (time, channel) arrays (lengths may differ), their
labels and, where the file says, each instance's split. :mod:`.custom` turns that into a
dataset module (padding, task, classes, splits); the store does the rest as for the six.

Formats (``datasets.<name>.format``):

* ``numpy``: an ``.npz`` with arrays ``x`` (default ``X``) and ``y`` (default ``y``), or
  a folder with ``<x>.npy`` and ``<y>.npy``; X is (instance, time, channel) or
  (instance, time) for one channel; an object array of (time[, channel]) arrays holds
  series of different lengths.
* ``hdf5``: datasets at the paths ``x`` and ``y`` (required), same shapes as NumPy.
* ``csv``: ``layout: wide`` (default), one series per row, the label column ``y``
  (default ``label``) and every other column a time step (one channel); or
  ``layout: long``, one value per row with columns ``id``, ``time``, ``value``,
  optionally ``channel`` (names in ``columns``) and the label column ``y``.
* ``xarray``: a zarr store or NetCDF file read with xarray; the variable ``x`` with
  named dimensions ``dims: {instance, time, channel}`` (channel optional) and the
  variable ``y`` along the instance dimension.
* ``ts``: the UCR/UEA ``.ts`` format, read by :func:`read_ts` (this project's own
  parser: aeon's loader, the format's reference, pins pandas < 3.1 and, through numba,
  numpy < 2.4, which this project's pins exclude).
* ``tsv``: the UCR 2018 archive's ``.tsv`` files (:func:`read_ucr_tsv`): no header, one
  series per row, the class label first, then the values (one channel); trailing empty
  or NaN cells are a shorter series.

Every format may also name a per-instance split variable/column (``split``) holding
``train``, ``val`` or ``test``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import DataError
from .tsheader import read_header_line

FORMATS = ("numpy", "hdf5", "csv", "xarray", "ts", "tsv")


@dataclass
class Series:
    """What a reader found: instances, labels, and the split the file gives (or None)."""

    x: list[np.ndarray]  # per instance (time, channel), float
    y: np.ndarray  # (instance,), numbers or strings
    split: np.ndarray | None = None  # (instance,) of "train"/"val"/"test", or None
    class_names: tuple[str, ...] | None = None  # declared in the file (.ts @classLabel)
    task: str | None = None  # declared in the file (.ts @classLabel / @targetLabel)


def _as_instances(name: str, path: Path, x: Any) -> list[np.ndarray]:
    """(instance, time[, channel]) array, or an object array of per-instance arrays ->
    list of float (time, channel) arrays."""
    x = np.asarray(x)
    if x.dtype == object:
        items = list(x)
    elif x.ndim == 2:
        items = list(x[:, :, None])
    elif x.ndim == 3:
        items = list(x)
    else:
        raise DataError(name, path, f"X must be (instance, time[, channel]); got shape {x.shape}")
    out = []
    for i, item in enumerate(items):
        item = np.asarray(item, dtype=np.float64)
        if item.ndim == 1:
            item = item[:, None]
        if item.ndim != 2:
            raise DataError(name, path, f"instance {i}: expected (time[, channel]), got shape {item.shape}")
        out.append(item)
    return out


def _split_values(name: str, path: Path, values: Any) -> np.ndarray:
    split = np.asarray([str(v.decode() if isinstance(v, bytes) else v).strip().lower() for v in values])
    bad = sorted(set(split) - {"train", "val", "test"})
    if bad:
        raise DataError(name, path, f"split values must be train, val or test; found {bad[:5]}")
    return split


def _setting(settings: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = settings.get(key, default)
    if value is None:
        raise ValueError(f"datasets.{settings.get('_name', '?')}.{key} is required for format "
                         f"{settings.get('format')!r}")
    return str(value)


# --------------------------------------------------------------------------- numpy
def read_numpy(name: str, path: Path, settings: Mapping[str, Any]) -> Series:
    xkey, ykey, skey = _setting(settings, "x", "X"), _setting(settings, "y", "y"), settings.get("split")
    if path.is_dir():
        def load(key):
            file = path / f"{key}.npy"
            if not file.is_file():
                raise DataError(name, file, "not found (datasets.<name>.x / .y name the .npy files)")
            return np.load(file, allow_pickle=True)
        arrays = {k: load(k) for k in (xkey, ykey, *([skey] if skey else []))}
    else:
        try:
            archive = np.load(path, allow_pickle=True)
        except (OSError, ValueError) as exc:
            raise DataError(name, path, f"not a readable .npz/.npy file ({exc})") from None
        if not hasattr(archive, "files"):
            raise DataError(name, path, "a single .npy holds no labels: give an .npz with X and y, "
                            "or a folder with X.npy and y.npy")
        missing = [k for k in (xkey, ykey, *([skey] if skey else [])) if k not in archive.files]
        if missing:
            raise DataError(name, path, f"missing array(s) {missing}; the file has {archive.files}")
        arrays = {k: archive[k] for k in (xkey, ykey, *([skey] if skey else []))}
    split = _split_values(name, path, arrays[skey]) if skey else None
    return Series(_as_instances(name, path, arrays[xkey]), np.asarray(arrays[ykey]).reshape(-1), split)


# --------------------------------------------------------------------------- hdf5
def read_hdf5(name: str, path: Path, settings: Mapping[str, Any]) -> Series:
    import h5py

    keys = {"x": _setting(settings, "x"), "y": _setting(settings, "y")}
    if settings.get("split"):
        keys["split"] = str(settings["split"])
    try:
        with h5py.File(path, "r") as handle:
            arrays = {}
            for role, key in keys.items():
                if key not in handle or not isinstance(handle[key], h5py.Dataset):
                    raise DataError(name, path, f"no dataset at {key!r} (datasets.{name}.{role})")
                arrays[role] = handle[key][()]
    except OSError as exc:
        raise DataError(name, path, f"not a readable HDF5 file ({exc})") from None
    split = _split_values(name, path, arrays["split"]) if "split" in arrays else None
    return Series(_as_instances(name, path, arrays["x"]), np.asarray(arrays["y"]).reshape(-1), split)


# --------------------------------------------------------------------------- csv
def _filled_length(row: np.ndarray) -> int:
    """Length of a wide-CSV row without its trailing empty cells (a shorter series)."""
    filled = np.flatnonzero(~np.isnan(row))
    return int(filled[-1]) + 1 if len(filled) else 0


def read_csv(name: str, path: Path, settings: Mapping[str, Any]) -> Series:
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(name, path, f"not a readable CSV ({exc})") from None
    label = _setting(settings, "y", "label")
    split_col = settings.get("split")
    needed = [label, *([split_col] if split_col else [])]
    layout = settings.get("layout", "wide")
    if layout == "long":
        cols = {"id": "id", "time": "time", "value": "value", "channel": None,
                **dict(settings.get("columns") or {})}
        needed += [cols["id"], cols["time"], cols["value"], *([cols["channel"]] if cols["channel"] else [])]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(name, path, f"missing column(s) {missing}; the file has {list(frame.columns)}")
    if layout == "wide":
        values = frame.drop(columns=needed)
        try:
            x = values.to_numpy(dtype=np.float64)
        except ValueError as exc:
            raise DataError(name, path, f"a time-step column is not numeric ({exc})") from None
        # Trailing empty cells: a shorter series (NaN at the end is its padding in the file).
        series = [row[: _filled_length(row)][:, None] for row in x]
        split = _split_values(name, path, frame[split_col]) if split_col else None
        return Series(series, frame[label].to_numpy(), split)
    if layout != "long":
        raise ValueError(f"datasets.{name}.layout must be wide or long, got {layout!r}")
    channel = cols["channel"]
    if channel is None:
        frame = frame.assign(_channel=0)
        channel = "_channel"
    series, labels, splits = [], [], []
    for key, group in frame.groupby(cols["id"], sort=False):
        table = group.pivot_table(index=cols["time"], columns=channel, values=cols["value"], aggfunc="first")
        table = table.sort_index().sort_index(axis=1)
        if group[label].nunique() != 1:
            raise DataError(name, path, f"series {key!r} has more than one label", trace=str(key))
        series.append(table.to_numpy(dtype=np.float64))
        labels.append(group[label].iloc[0])
        if split_col:
            splits.append(group[split_col].iloc[0])
    split = _split_values(name, path, splits) if split_col else None
    return Series(series, np.asarray(labels), split)


# --------------------------------------------------------------------------- xarray
def read_xarray(name: str, path: Path, settings: Mapping[str, Any]) -> Series:
    import xarray as xr

    dims = dict(settings.get("dims") or {})
    for role in ("instance", "time"):
        if role not in dims:
            raise ValueError(f"datasets.{name}.dims.{role} is required for format 'xarray'")
    try:
        if path.is_dir() or path.suffix == ".zarr":
            data = xr.open_zarr(path, consolidated=None)
        else:
            data = xr.open_dataset(path)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(name, path, f"not readable with xarray ({exc})") from None
    with data:
        xkey, ykey = _setting(settings, "x"), _setting(settings, "y")
        for role, key in (("x", xkey), ("y", ykey), *((("split", settings["split"]),) if settings.get("split") else ())):
            if key not in data:
                raise DataError(name, path, f"no variable {key!r} (datasets.{name}.{role}); "
                                f"variables: {sorted(data.data_vars)}")
        x = data[xkey]
        order = [dims["instance"], dims["time"], *([dims["channel"]] if dims.get("channel") else [])]
        if set(x.dims) != set(order):
            raise DataError(name, path, f"variable {xkey!r} has dims {x.dims}, datasets.{name}.dims "
                            f"names {order}")
        x = x.transpose(*order).to_numpy()
        y = data[ykey]
        if y.dims != (dims["instance"],):
            raise DataError(name, path, f"variable {ykey!r} has dims {y.dims}, expected ({dims['instance']!r},)")
        split = _split_values(name, path, data[settings["split"]].to_numpy()) if settings.get("split") else None
        return Series(_as_instances(name, path, x), y.to_numpy(), split)


# --------------------------------------------------------------------------- ts
def read_ts(name: str, path: Path, settings: Mapping[str, Any] | None = None) -> Series:
    """One UCR/UEA ``.ts`` file (the format aeon's ``load_from_ts_file`` reads).

    Header lines start with ``@`` (case-insensitive keys); ``#`` lines are comments;
    after ``@data`` each line is one instance: its channels separated by ``:``, each a
    comma-separated list of values (``?`` or ``NaN`` for a missing value), then the class
    label or regression target. Time stamps (``@timeStamps true``) are not supported.
    """
    header: dict[str, str] = {}
    series, labels = [], []
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(name, path, f"not a readable .ts file ({exc})") from None
    in_data = False
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(name, path, f"line {number}: expected a @header line before @data")
            in_data = read_header_line(line, header)
            continue
        instance, label = _ts_instance(name, path, number, line)
        series.append(instance)
        labels.append(label)
    if not in_data:
        raise DataError(name, path, "no @data line")
    if header.get("timestamps", "false").lower() == "true":
        raise DataError(name, path, "@timeStamps true is not supported")
    if not series:
        raise DataError(name, path, "no instances after @data")
    widths = {s.shape[1] for s in series}
    if len(widths) != 1:
        raise DataError(name, path, f"instances have different channel counts {sorted(widths)}")
    return _ts_labelled(name, path, header, series, labels)


def _ts_instance(name: str, path: Path, number: int, line: str) -> tuple[np.ndarray, str]:
    """One ``@data`` line (line ``number``): the instance (time x channel) and its label."""
    fields = line.split(":")
    if len(fields) < 2:
        raise DataError(name, path, f"line {number}: expected channels and a label separated by ':'")
    channels = []
    for c, text in enumerate(fields[:-1]):
        try:
            values = [float("nan") if v.strip() in ("?", "") else float(v) for v in text.split(",")]
        except ValueError:
            raise DataError(name, path, f"line {number}, channel {c}: not a number list "
                            "(time stamps are not supported)") from None
        channels.append(values)
    if len({len(c) for c in channels}) != 1:
        raise DataError(name, path, f"line {number}: channels of one instance differ in length")
    return np.asarray(channels, dtype=np.float64).T, fields[-1].strip()


def _ts_labelled(name: str, path: Path, header: Mapping[str, str], series: list[np.ndarray],
                 labels: list[str]) -> Series:
    """The instances with their labels, as ``@classLabel true`` (classes) or
    ``@targetLabel true`` (numbers) in the header says."""
    class_label = header.get("classlabel", "")
    target = header.get("targetlabel", "")
    if class_label.lower().startswith("true"):
        names = tuple(class_label.split()[1:])
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise DataError(name, path, f"labels {unknown[:5]} are not among @classLabel {list(names)}")
        return Series(series, np.asarray(labels), class_names=names, task="classification")
    if target.lower().startswith("true"):
        try:
            y = np.asarray(labels, dtype=np.float64)
        except ValueError:
            raise DataError(name, path, "@targetLabel true but a target is not a number") from None
        return Series(series, y, task="regression")
    raise DataError(name, path, "neither @classLabel true nor @targetLabel true: no labels")


# --------------------------------------------------------------------------- tsv
def read_ucr_tsv(name: str, path: Path, settings: Mapping[str, Any] | None = None) -> Series:
    """One UCR 2018 ``.tsv`` file: label, then the series' values, tab-separated, no header."""
    try:
        frame = pd.read_csv(path, sep="\t", header=None, dtype={0: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(name, path, f"not a readable UCR .tsv file ({exc})") from None
    try:
        x = frame.iloc[:, 1:].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise DataError(name, path, f"a value column is not numeric ({exc})") from None
    if x.shape[1] == 0:
        raise DataError(name, path, "no values after the label column")
    labels = frame.iloc[:, 0].str.strip().to_numpy()
    return Series([row[: _filled_length(row)][:, None] for row in x], labels, task="classification")


READERS = {"numpy": read_numpy, "hdf5": read_hdf5, "csv": read_csv, "xarray": read_xarray, "ts": read_ts,
           "tsv": read_ucr_tsv}
