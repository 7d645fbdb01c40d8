"""The datasets, registered in one place.

Adding a dataset is one module in this package (see :mod:`.base` for what it provides)
plus one line here and its entry in the config; its synthetic stand-in, if any, is one
more module in :mod:`.synthetic` under the same name, which :func:`write_synthetic` finds
by that name (the generator imports its reader's format constants; the reader never
imports the generator).

Or, for one's own data, only the config entry: ``datasets.<name>`` with ``format:``
(:mod:`.custom`). :func:`register_config` registers such entries beside the built-in
six; every process that meets a config (the Snakefile when it parses, the scripts that
convert and analyse) calls it before it looks a dataset up.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import emg, lendb, lomax, sp500, speech, stead, tsheader
from .base import DataError, DatasetInfo, InstanceIndex, RawChunk
from .collection import expand_archives
from .custom import CustomDataset
from .readers import FORMATS

REGISTRY: dict[str, ModuleType | CustomDataset] = {
    module.INFO.name: module for module in (lomax, lendb, stead, speech, emg, sp500)
}
BUILTIN: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> ModuleType | CustomDataset:
    """The dataset module registered as ``name``; a clear error for an unknown one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown dataset {name!r}; registered: {', '.join(sorted(REGISTRY))} "
            "(a dataset of your own needs datasets.<name>.format in the config)"
        ) from None


def title(name: str) -> str:
    """As printed in tables; a config entry's without reading its data."""
    module = get(name)
    return module.title if isinstance(module, CustomDataset) else module.INFO.title


def domain(name: str) -> str:
    """The intra-/cross-domain group; a config entry's without reading its data."""
    module = get(name)
    return module.domain if isinstance(module, CustomDataset) else module.INFO.domain


def task_and_channels(name: str) -> tuple[str, int]:
    """Task and channel count; a config entry that states both is not read for them, nor
    a ``.ts``/``.tsv`` one whose headers declare them (:mod:`.tsheader`)."""
    module = get(name)
    if isinstance(module, CustomDataset) and module.spec.get("task") and module.spec.get("channels"):
        return str(module.spec["task"]), int(module.spec["channels"])
    if isinstance(module, CustomDataset) and module.spec.get("format") in ("ts", "tsv"):
        declared = tsheader.probe(module.spec, module.raw_files())
        if declared is not None:
            return declared
    return module.INFO.task, int(module.INFO.channels)


@dataclass(frozen=True)
class InputShape:
    """What a built-in dataset feeds a model, known before conversion (:func:`input_shape`)."""

    length: int
    channels: int
    task: str
    n_outputs: int


def input_shape(name: str, params: Mapping[str, Any]) -> InputShape:
    """The model input of built-in dataset ``name`` under its extract settings ``params``
    (the config's ``datasets.<name>.extract``): the module's ``input_length`` (a trace's
    length, SPEECH's ``n_samples``, the EMG and S&P windows) and its ``INFO``. A dataset
    given by format has its shape only once read (its converted store's attributes)."""
    module = get(name)
    if isinstance(module, CustomDataset):
        raise ValueError(f"dataset {name!r} is given by format: its input shape is its converted store's")
    info = module.INFO
    return InputShape(int(module.input_length(params or {})), int(info.channels), info.task, info.n_outputs)


def paper_instances(name: str) -> int:
    """Instances the paper's extraction yields from built-in dataset ``name``'s real data
    (the module's ``PAPER_INSTANCES``, REFERENCE.md section 2)."""
    module = get(name)
    if isinstance(module, CustomDataset):
        raise ValueError(f"dataset {name!r} is given by format: its size is known only once converted")
    return int(module.PAPER_INSTANCES)


def is_custom(name: str) -> bool:
    return isinstance(REGISTRY.get(name), CustomDataset)


def write_synthetic(name: str, raw: Path, params: Mapping[str, Any], rng: np.random.Generator) -> None:
    """Write small raw files of dataset ``name`` in its real on-disk format into ``raw``.

    The generator is ``synthetic.<name>.write_synthetic`` (see :mod:`.synthetic`), found by
    the dataset's name and imported only now, so that the readers, which every training
    job imports, do not load the generators. ``params``: the config's ``synthetic.<name>``.
    """
    get(name)  # a clear error for an unknown dataset
    if is_custom(name):
        raise ValueError(f"config datasets.{name}: a dataset given by format has no synthetic "
                         "stand-in; it is always read from its path")
    generator = f"{__name__}.synthetic.{name}"
    if importlib.util.find_spec(generator) is None:
        raise ValueError(f"dataset {name!r} has no synthetic generator (no module {generator}); "
                         "config raw_data: synthetic needs one")
    importlib.import_module(generator).write_synthetic(Path(raw), params, rng)


def register(name: str, spec: Mapping[str, Any]) -> CustomDataset:
    """Register the config entry ``datasets.<name>`` (with ``format:``) as a dataset."""
    if name in BUILTIN:
        raise ValueError(f"config datasets.{name}: {name} is a built-in dataset; a dataset "
                         "given by format: needs a name of its own")
    current = REGISTRY.get(name)
    if isinstance(current, CustomDataset) and current.spec == dict(spec):
        return current  # already read: keep what it loaded
    dataset = CustomDataset(name, spec)
    REGISTRY[name] = dataset
    return dataset


def register_config(config: Mapping[str, Any]) -> list[str]:
    """Register every ``datasets`` entry of ``config`` that has ``format:``; drop custom
    entries the config no longer has. Returns the config's custom dataset names.

    Expands the config's ``archives`` first, in place (:mod:`.collection`): each
    archive's problems become ``datasets`` entries, and its name in the dataset lists
    their names.

    Also checks that every dataset the config uses (sources, targets, the stream_max
    study) is an entry of ``datasets`` and that every entry is either built in or
    given by format.
    """
    if config.get("archives"):
        expand_archives(config)  # type: ignore[arg-type]  # a config is a dict
    entries = config.get("datasets") or {}
    custom = [name for name, spec in entries.items() if isinstance(spec, Mapping) and "format" in spec]
    for name in [n for n in REGISTRY if n not in BUILTIN and n not in custom]:
        del REGISTRY[name]
    for name in custom:
        register(name, entries[name])
    unknown = [name for name in entries if name not in REGISTRY]
    if unknown:
        raise ValueError(f"config datasets: {', '.join(unknown)} is neither built in "
                         f"({', '.join(BUILTIN)}) nor given by format: ({', '.join(FORMATS)})")
    uses = {"sources": config.get("sources") or [], "targets": config.get("targets") or [],
            "stream_max_study.datasets": (config.get("stream_max_study") or {}).get("datasets") or []}
    for key, names in uses.items():
        missing = [name for name in names if name not in entries]
        if missing:
            raise ValueError(f"config {key}: {', '.join(missing)} has no entry under datasets")
    return custom


__all__ = ["REGISTRY", "BUILTIN", "get", "title", "domain", "task_and_channels", "is_custom", "input_shape", "paper_instances", "InputShape", "register", "register_config",
           "expand_archives", "write_synthetic", "DataError",
           "DatasetInfo", "InstanceIndex", "RawChunk", "CustomDataset"]
