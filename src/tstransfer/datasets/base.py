"""What a dataset module provides, and the errors it raises.

A dataset module (one per dataset, registered in ``tstransfer.datasets.REGISTRY``) knows
these things about its dataset and nothing else:

* ``INFO``: a :class:`DatasetInfo` (task, domain, channels, classes, units, ...);
* ``raw_files(params)``: the names of the raw files it reads inside its raw folder;
* ``list_instances(raw, params, log)``: a cheap pass over the raw files that returns an
  :class:`InstanceIndex` -- which instances the paper's extraction keeps, in the order
  ``read_chunks`` will produce them, with labels where they are cheap to know (always
  for classification, so that splits can be stratified) and a fixed split where the
  dataset prescribes one (S&P 500's chronological split);
* ``read_chunks(raw, params, index, chunk_size)``: the expensive streaming pass that yields
  :class:`RawChunk` objects (raw waveforms, time x channel, in index order);

Its synthetic stand-in for the embedded default (small raw files in exactly the real
on-disk format, with learnable structure), if it has one, is a separate module
``synthetic.<name>`` (see :mod:`.synthetic`), which imports the reader's format constants
and which :func:`tstransfer.datasets.write_synthetic` finds by the dataset's name: the
reader holds the real format only and never imports its generator.

Everything common -- finiteness checks, stream_max, min-max scaling, splits, the
training mask, the zarr layout, atomic writes -- lives in :mod:`tstransfer.store`, so that
every dataset is converted by the same code.

``raw`` is the dataset's raw location: a folder holding the files named by
``raw_files(params)`` (the download/synthetic rules fill it, or the config points at an
existing one). ``params`` is the dataset's ``extract`` mapping from the config.

Extract settings: the config schema (``workflow/schemas/config.schema.yaml``, under
``datasets.<name>.extract``) states each dataset's settings -- types, ranges, choices,
and in words the defaults -- and Snakemake checks them before any job runs. A module
reads its settings and does not check them again: where it cannot read one at all
(missing, not convertible, a choice it has no code for) it raises a ``ValueError``
naming ``datasets.<name>.extract.<key>`` (:func:`extract_setting`), which is what a
caller from Python (``pipeline.convert``, ``store.convert``), who bypasses the schema,
gets. Checks across settings, which the schema cannot state (S&P 500's start before
end), stay in the module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

Task = Literal["regression", "classification"]

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
# An index's split value meaning "train or val, as the store draws them": data that gives
# a training and a test set but no validation set (UCR/UEA archives; datasets.custom).
TRAIN_OR_VAL = "train_or_val"


# extract.file: a single-file dataset's raw file name inside its raw folder (optional;
# default: the official download's name). datasets.<name>.path naming the file sets it.
FILE_PARAM = "file"


def raw_file_name(params: Mapping[str, Any], default: str) -> str:
    """The raw file a single-file dataset reads: ``params['file']``, else ``default``."""
    return str(params.get(FILE_PARAM, default))


_REQUIRED = object()


def extract_setting(
    params: Mapping[str, Any],
    dataset: str,
    key: str,
    convert: Callable[[Any], Any] = lambda value: value,
    default: Any = _REQUIRED,
) -> Any:
    """``convert(params[key])``; ``default`` where the key is absent (without one, required).

    A missing required setting, or one ``convert`` refuses (``TypeError``/``ValueError``),
    is a ``ValueError`` naming ``datasets.<dataset>.extract.<key>``.
    """
    name = f"datasets.{dataset}.extract.{key}"
    if key not in params:
        if default is _REQUIRED:
            raise ValueError(f"{dataset}: {name} is required")
        return default
    value = params[key]
    try:
        return convert(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{dataset}: {name}: cannot read {value!r} ({exc})") from None


def one_of(choices: Sequence[str]) -> Callable[[Any], str]:
    """An :func:`extract_setting` converter that takes only one of ``choices``: the schema
    has the enum too, but a caller from Python bypasses the schema, and an unknown value
    must not be read as one of them."""
    def known(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"not one of {', '.join(choices)}")
        return value

    return known


class DataError(ValueError):
    """Bad raw input: the message names the dataset, the file and, where known, the trace."""

    def __init__(self, dataset: str, file: str | Path, message: str, trace: str | None = None):
        where = f"{dataset}: {file}"
        if trace is not None:
            where += f" [trace {trace}]"
        super().__init__(f"{where}: {message}")
        self.dataset = dataset
        self.file = str(file)
        self.trace = trace


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # registry key and path component: lomax, lendb, stead, speech, emg, sp500
    title: str  # as printed in tables: LOMAX, LEN-DB, STEAD, SPEECH, EMG, S&P 500
    domain: str  # seismology, speech, medicine, finance (groups for Tables 3 and 4)
    task: Task
    channels: int
    sampling_rate: float  # Hz of the extracted waveforms
    units: str  # of the raw waveforms before scaling
    class_names: tuple[str, ...] = ()  # classification only, in label order

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) if self.task == "classification" else 1


@dataclass
class InstanceIndex:
    """The instances a conversion keeps, in the order ``read_chunks`` yields them.

    ``table`` has a column ``key`` (a unique string id per instance: trace name, file
    path, window id), optionally ``label`` (required for classification) and optionally
    ``split`` (``train``/``val``/``test``; where absent the store assigns a seeded split).
    ``dropped`` counts what the paper's extraction removed, by reason, for the log and
    the store's attributes.
    """

    table: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)
    files: Sequence[Path] = ()  # raw files read (checksums go into the store attrs)

    def __len__(self) -> int:
        return len(self.table)


@dataclass
class RawChunk:
    """A run of consecutive instances of the index, as read from the raw files."""

    waveforms: np.ndarray  # (n, time, channel), any float dtype, unscaled
    labels: np.ndarray  # (n,)
    keys: Sequence[str]  # (n,) for error messages, equal to the index keys
    file: str  # the raw file these came from, for error messages


class DatasetModule(Protocol):
    INFO: DatasetInfo

    def raw_files(self, params: Mapping[str, Any]) -> list[str]: ...

    def list_instances(
        self, raw: Path, params: Mapping[str, Any], log: logging.Logger
    ) -> InstanceIndex: ...

    def read_chunks(
        self, raw: Path, params: Mapping[str, Any], index: InstanceIndex, chunk_size: int
    ) -> Iterator[RawChunk]: ...
