"""The workflow's data steps as plain functions (the rules' scripts call these)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from . import datasets, store
from .datasets.base import FILE_PARAM, DataError
from .fsutil import atomic_path
from .seeding import rng_for

log = logging.getLogger(__name__)


def synthesize(dataset: str, out_dir: str | Path, synthetic: Mapping[str, Any], seed: int) -> None:
    """Write the synthetic raw files of ``dataset`` into ``out_dir`` (atomically, as a folder)."""
    with atomic_path(out_dir, directory=True) as tmp:
        datasets.write_synthetic(dataset, Path(tmp), dict(synthetic), rng_for(seed, "synthetic", dataset))
    log.info("%s: synthetic raw files in %s", dataset, out_dir)


def convert(
    dataset: str, raw: str | Path, out: str | Path, extract: Mapping[str, Any], seed: int
) -> dict[str, Any]:
    """Convert ``dataset``'s raw data into its zarr store; see :func:`tstransfer.store.convert`.

    ``raw`` is the folder holding the raw files or, for a dataset read from one file,
    that file itself (config ``datasets.<name>.path``).
    """
    module = datasets.get(dataset)
    if datasets.is_custom(dataset):  # reads its own config entry's path
        return store.convert(module, Path(raw), out, extract, seed=seed, log=log)
    folder, extract = raw_location(dataset, module, Path(raw), extract)
    return store.convert(module, folder, out, extract, seed=seed, log=log)


def raw_location(
    dataset: str, module: ModuleType, raw: Path, extract: Mapping[str, Any]
) -> tuple[Path, dict[str, Any]]:
    """The folder ``module`` reads and the extract settings it reads it with.

    A path naming the raw file itself stands for its folder, with the file's name as
    ``extract.file``, whatever the name: a cluster's copy of a dataset need not carry
    the download's name. Only datasets read from one file can be given that way.
    """
    extract = dict(extract)
    if not raw.exists():
        raise FileNotFoundError(
            f"{dataset}: raw data not found at {raw} (config datasets.{dataset}.path or raw_dir)"
        )
    if not raw.is_file():
        return raw, extract
    expected = module.raw_files(extract)
    if len(expected) != 1:
        raise DataError(
            dataset, raw,
            f"config datasets.{dataset}.path names a file, but {dataset} reads {len(expected)} "
            f"raw files ({', '.join(expected)}): set it to the folder that holds them",
        )
    named = extract.get(FILE_PARAM)
    if named is not None and named != raw.name:
        raise DataError(
            dataset, raw,
            f"config datasets.{dataset}.path names file {raw.name!r} but "
            f"datasets.{dataset}.extract.{FILE_PARAM} names {named!r}: drop one of them",
        )
    extract[FILE_PARAM] = raw.name
    return raw.parent, extract


def write_manifest(paths: Iterable[str | Path], out: str | Path) -> int:
    """One path per line, relative to the manifest's folder, sorted, atomically; returns the count.

    Relative paths keep the results tree relocatable (it is archived and moved).
    """
    import os

    base = Path(out).parent
    lines = sorted(Path(os.path.relpath(p, base)).as_posix() for p in paths)
    with atomic_path(out) as tmp:
        Path(tmp).write_text("".join(f"{line}\n" for line in lines))
    return len(lines)
