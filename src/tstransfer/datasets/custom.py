"""A dataset given by one config entry (``datasets.<name>`` with ``format:``).

:class:`CustomDataset` is a dataset module (see :mod:`.base`) built from the entry
instead of written as code: the generic readers (:mod:`.readers`) read the user's file,
and this class makes what they return into what the store takes. Everything after that
(stream_max, scaling, mask, subsets, training, tables) is the six datasets' code.

What the entry says, and what is read from the data where it does not:

* ``format`` (required): ``numpy``, ``hdf5``, ``csv``, ``xarray``, ``ts`` or ``tsv``
  (the UCR 2018 archive's files; with ``train:`` and ``test:`` for its two files);
* ``path`` (required): the file, or a folder (with ``train``/``test``/``val`` file names
  inside it; a ``ts`` folder without them is read as ``<Problem>_TRAIN.ts`` and
  ``<Problem>_TEST.ts``, the UCR/UEA archive's layout);
* ``domain`` (required): the group for intra-/cross-domain statistics (``seismology``
  joins the paper's seismic group; any other is an "other domain");
* ``title``: as printed in tables (default: the name);
* ``task``: ``classification`` or ``regression``; default: what the file declares
  (``.ts``: ``@classLabel``/``@targetLabel``), else classification for text, boolean
  or integer labels and regression for floating-point ones;
* ``channels``: checked against the data when given;
* ``length``: every series is cut or padded to it; default: the longest series.
  Variable-length data (UEA JapaneseVowels: 7 to 29 steps) is padded at the end with
  each series' last value, not zeros: the store scales each instance by its own min and
  max, and repeating a value the series took keeps that range as it is;
* ``x``, ``y``, ``split``, ``dims``, ``layout``, ``columns``: where the reader finds
  things (:mod:`.readers`);
* ``stream_max``, ``sampling_rate``, ``units``: as for the six (defaults false, 1.0,
  ``arbitrary``).

Splits: a ``split`` variable, or separate train/val/test files, are kept. Where only
train and test are given (the UCR/UEA archives), the test set stays the test set and the
training set is split into train and validation by the store, seeded and stratified, in
the ratio 70 : 15 (the six datasets' fractions). With no split at all the store draws
70/15/15 as for the six.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import TRAIN_OR_VAL, DataError, DatasetInfo, InstanceIndex, RawChunk
from .readers import FORMATS, READERS, Series

TASKS = ("classification", "regression")


class CustomDataset:
    """A dataset module made from a config entry; the data is read once and kept in memory."""

    def __init__(self, name: str, spec: Mapping[str, Any]):
        self.name = str(name)
        self.spec = dict(spec)
        where = f"config datasets.{self.name}"
        if self.spec.get("format") not in FORMATS:
            raise ValueError(f"{where}.format must be one of {', '.join(FORMATS)}, "
                             f"got {self.spec.get('format')!r}")
        for key in ("path", "domain"):
            if not self.spec.get(key):
                raise ValueError(f"{where}.{key} is required for a dataset given by format")
        if self.spec.get("task") not in (None, *TASKS):
            raise ValueError(f"{where}.task must be classification or regression, got {self.spec['task']!r}")
        self._loaded: tuple[DatasetInfo, list[np.ndarray], np.ndarray, np.ndarray, list[Path]] | None = None

    @property
    def title(self) -> str:
        return str(self.spec.get("title") or self.name)

    @property
    def domain(self) -> str:
        return str(self.spec["domain"])

    # ------------------------------------------------------------------ the module API
    @property
    def INFO(self) -> DatasetInfo:  # noqa: N802 - the dataset-module attribute's name
        return self._load()[0]

    def raw_files(self, params: Mapping[str, Any] | None = None) -> list[str]:
        return [str(path) for _, path in self._sources()]  # without reading them

    def list_instances(self, raw: Path, params: Mapping[str, Any], log: logging.Logger) -> InstanceIndex:
        info, series, labels, split, files = self._load(log)
        table = pd.DataFrame({"key": [f"{s}/{i}" for i, s in enumerate(split)], "label": labels})
        if (split != "").all():
            table["split"] = split
        elif (split != "").any():
            raise DataError(self.name, self.spec["path"], "some instances have a split and some do not")
        return InstanceIndex(table=table, files=files)

    def read_chunks(self, raw: Path, params: Mapping[str, Any], index: InstanceIndex,
                    chunk_size: int) -> Iterator[RawChunk]:
        _, series, labels, _, files = self._load()
        keys = index.table["key"].tolist()
        for lo in range(0, len(series), chunk_size):
            hi = min(lo + chunk_size, len(series))
            yield RawChunk(waveforms=np.stack(series[lo:hi]), labels=labels[lo:hi],
                           keys=keys[lo:hi], file=str(files[0]))

    # ------------------------------------------------------------------ reading
    def _sources(self) -> list[tuple[str, Path]]:
        """(split name or "", file) pairs to read, from the entry's path and file names."""
        path = Path(self.spec["path"])
        if not path.exists():
            raise FileNotFoundError(f"config datasets.{self.name}.path: {path} not found")
        named = [(s, self.spec[s]) for s in ("train", "val", "test") if self.spec.get(s)]
        if named:
            if not path.is_dir():
                raise ValueError(f"config datasets.{self.name}: train/val/test name files inside "
                                 f"path, so path must be a folder; {path} is a file")
            if not any(s == "train" for s, _ in named) or not any(s == "test" for s, _ in named):
                raise ValueError(f"config datasets.{self.name}: give both train and test (val optional)")
            return [(s, path / name) for s, name in named]
        if self.spec["format"] == "ts" and path.is_dir():
            found = {}
            for split, suffix in (("train", "_TRAIN.ts"), ("test", "_TEST.ts")):
                matches = sorted(glob.glob(str(path / f"*{suffix}")))
                if len(matches) != 1:
                    raise ValueError(
                        f"config datasets.{self.name}.path: {path} must hold exactly one *{suffix} "
                        f"(found {len(matches)}); or name the files with train: and test:")
                found[split] = Path(matches[0])
            return list(found.items())
        return [("", path)]

    def _paired(self, file: Path, part: Series) -> Series:
        """``part`` if its instances, labels and split values pair up one to one; a file whose
        arrays differ in length is refused here, naming it, before anything is written."""
        for role, values in (("labels", part.y), ("split values", part.split)):
            if values is not None and len(values) != len(part.x):
                raise DataError(self.name, file, f"{len(part.x)} instances but {len(values)} {role}")
        return part

    def _load(self, log: logging.Logger | None = None):
        if self._loaded is not None:
            return self._loaded
        log = log or logging.getLogger(__name__)
        read = READERS[self.spec["format"]]
        parts: list[tuple[str, Path, Series]] = []
        for split, file in self._sources():
            if not file.exists():
                raise FileNotFoundError(f"config datasets.{self.name}: {file} not found")
            parts.append((split, file, self._paired(file, read(self.name, file, {**self.spec, "_name": self.name}))))
        files = [file for _, file, _ in parts]

        series = [x for _, _, part in parts for x in part.x]
        raw_labels = np.concatenate([np.asarray(part.y) for _, _, part in parts])
        split = self._split(parts)
        if len(series) == 0:
            raise DataError(self.name, files[0], "no instances")
        widths = {x.shape[1] for x in series}
        if len(widths) != 1:
            raise DataError(self.name, files[0], f"instances have different channel counts {sorted(widths)}")
        channels = widths.pop()
        if self.spec.get("channels") not in (None, channels):
            raise DataError(self.name, files[0], f"config datasets.{self.name}.channels is "
                            f"{self.spec['channels']} but the data has {channels}")
        for i, x in enumerate(series):
            if not np.isfinite(x).all():
                raise DataError(self.name, files[0], "missing or non-finite values; fill them "
                                "before converting", trace=f"instance {i}")
        series = self._fixed_length(series, files[0], log)

        declared_task = next((p.task for _, _, p in parts if p.task), None)
        task = self.spec.get("task") or declared_task or _inferred_task(raw_labels)
        class_names: tuple[str, ...] = ()
        if task == "classification":
            declared = next((p.class_names for _, _, p in parts if p.class_names), None)
            text = np.asarray([str(v) for v in raw_labels])
            class_names = tuple(declared) if declared else tuple(sorted(set(text), key=_natural))
            code = {c: i for i, c in enumerate(class_names)}
            labels = np.asarray([code[v] for v in text], dtype=np.int64)
        else:
            try:
                labels = raw_labels.astype(np.float64)
            except ValueError:
                raise DataError(self.name, files[0], f"config datasets.{self.name}: task regression "
                                "but a label is not a number") from None
            if not np.isfinite(labels).all():
                raise DataError(self.name, files[0], "a regression target is missing or not finite")
        info = DatasetInfo(
            name=self.name, title=self.title, domain=self.domain, task=task, channels=channels,
            sampling_rate=float(self.spec.get("sampling_rate", 1.0)),
            units=str(self.spec.get("units", "arbitrary")), class_names=class_names,
        )
        log.info("%s: %d instances of %d step(s) x %d channel(s) from %s; %s%s", self.name,
                 len(series), series[0].shape[0], channels, ", ".join(map(str, files)), task,
                 f" ({len(class_names)} classes)" if class_names else "")
        self._loaded = (info, series, labels, split, files)
        return self._loaded

    def _split(self, parts) -> np.ndarray:
        """Per instance: the split the data gives ("" for none); a train without a
        validation set becomes TRAIN_OR_VAL (the store splits it)."""
        chunks = []
        for split, _, part in parts:
            n = len(part.x)
            if split:
                chunks.append(np.full(n, split, dtype=object))
            elif part.split is not None:
                chunks.append(part.split.astype(object))
            else:
                chunks.append(np.full(n, "", dtype=object))
        split = np.concatenate(chunks)
        if (split == "train").any() and not (split == "val").any():
            split[split == "train"] = TRAIN_OR_VAL
        return split

    def _fixed_length(self, series: list[np.ndarray], file: Path, log: logging.Logger) -> list[np.ndarray]:
        lengths = np.array([len(x) for x in series])
        if lengths.min() == 0:
            raise DataError(self.name, file, "an instance has no time steps",
                            trace=f"instance {int(np.argmin(lengths))}")
        length = int(self.spec.get("length") or lengths.max())
        padded, cut = int((lengths < length).sum()), int((lengths > length).sum())
        if padded or cut:
            log.info("%s: series of %d..%d steps -> %d: %d padded with their last value, %d cut",
                     self.name, lengths.min(), lengths.max(), length, padded, cut)
        return [pad_or_cut(x, length) for x in series]


def pad_or_cut(x: np.ndarray, length: int) -> np.ndarray:
    """``x`` (time, channel) cut to ``length`` steps, or padded at the end with its last row."""
    if len(x) >= length:
        return x[:length]
    return np.concatenate([x, np.repeat(x[-1:], length - len(x), axis=0)])


def _inferred_task(labels: np.ndarray) -> str:
    """Regression for floating-point labels, classification for anything else."""
    return "regression" if np.asarray(labels).dtype.kind == "f" else "classification"


def _natural(value: str):
    """Sort key: numbers by value (so 2 before 10), then text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)
