"""The workflow's data steps as plain functions (the rules' scripts call these)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import datasets, store
from .fsutil import atomic_path
from .seeding import rng_for

log = logging.getLogger(__name__)


def synthesize(dataset: str, out_dir: str | Path, synthetic: Mapping[str, Any], seed: int) -> None:
    """Write the synthetic raw files of ``dataset`` into ``out_dir`` (atomically, as a folder)."""
    module = datasets.get(dataset)
    with atomic_path(out_dir, directory=True) as tmp:
        module.write_synthetic(Path(tmp), dict(synthetic), rng_for(seed, "synthetic", dataset))
    log.info("%s: synthetic raw files in %s", dataset, out_dir)


def convert(
    dataset: str, raw: str | Path, out: str | Path, extract: Mapping[str, Any], seed: int
) -> dict[str, Any]:
    """Convert ``dataset``'s raw folder into its zarr store; see :func:`tstransfer.store.convert`."""
    raw = Path(raw)
    if not raw.exists():
        raise FileNotFoundError(
            f"{dataset}: raw data not found at {raw} (config datasets.{dataset}.path or raw_dir)"
        )
    if raw.is_file():
        # config datasets.<name>.path may name the raw file itself: the modules read the
        # folder that holds it (their extract `file` key names a file of another name).
        raw = raw.parent
    return store.convert(datasets.get(dataset), raw, out, dict(extract), seed=seed, log=log)


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
