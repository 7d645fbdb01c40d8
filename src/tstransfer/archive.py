"""The results tree as a data artifact: a sha256 manifest, provenance, and verification.

``MANIFEST.sha256`` uses sha256sum's format (``<hex>  <path>``, paths relative to the
results folder), so ``cd results && sha256sum -c MANIFEST.sha256`` checks it without
this package. Large intermediates (zarr stores, training checkpoints, model files) can
be left out, so that the archive holds what a paper's readers need: results, tables,
figures, logs, benchmarks.

The archive rule walks the tree once (:func:`archived_files`) and hands the list to the
manifest, the provenance and the RO-Crate (:mod:`tstransfer.crate`), which it writes
before the manifest, so that the manifest covers the crate's metadata file too.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .fsutil import atomic_path, sha256_file, write_json

MANIFEST_NAME = "MANIFEST.sha256"
PROVENANCE_NAME = "PROVENANCE.json"
CRATE_NAME = "ro-crate-metadata.json"  # tstransfer.crate.METADATA_NAME
# Written by the archive rule itself: never taken from a walk (a stale copy would be listed).
ARCHIVE_OUTPUTS = (MANIFEST_NAME, PROVENANCE_NAME, CRATE_NAME)
LARGE_SUFFIXES = (".zarr", ".keras", ".npz")
LARGE_FOLDERS = ("checkpoint",)
# Logs still being written while (or after) the manifest is made: the archive rule's own
# log, verify's log, and the job server's log (it ends when the workflow ends).
LIVE_LOGS = ("logs/archive.log", "logs/verify.log", "logs/jobserver.log")
PACKAGES = (
    "tstransfer", "tensorflow", "keras", "keras-tcn", "snakemake", "numpy", "scipy",
    "statsmodels", "pandas", "xarray", "zarr", "h5py", "matplotlib",
)


def _is_large(relative: Path) -> bool:
    return any(
        part.endswith(LARGE_SUFFIXES) or part in LARGE_FOLDERS for part in relative.parts
    )


def archived_files(results: str | Path, *, exclude_large: bool) -> Iterator[Path]:
    """Files under ``results`` that the archive covers, relative to it, sorted."""
    results = Path(results)
    found = []
    for folder, dirs, files in os.walk(results):
        here = Path(folder).relative_to(results)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and not (exclude_large and _is_large(here / d))
        )
        for name in files:
            relative = here / name
            if name.startswith(".") or (here == Path(".") and name in ARCHIVE_OUTPUTS):
                continue
            if exclude_large and _is_large(relative):
                continue
            if relative.as_posix() in LIVE_LOGS:
                continue
            found.append(relative)
    return iter(sorted(found))


def write_manifest(results: str | Path, out: str | Path, *, exclude_large: bool,
                   files: list[Path] | None = None) -> int:
    """Checksum every archived file (hashed in parallel threads); returns the count.
    ``files``: the list :func:`archived_files` gives (walked here when None), plus any
    file the archive rule wrote itself that the manifest should cover."""
    results = Path(results)
    files = list(archived_files(results, exclude_large=exclude_large)) if files is None else sorted(files)
    with ThreadPoolExecutor(max_workers=4) as pool:
        sums = list(pool.map(lambda rel: sha256_file(results / rel), files))
    with atomic_path(out) as tmp:
        Path(tmp).write_text("".join(f"{digest}  {rel.as_posix()}\n" for digest, rel in zip(sums, files)))
    return len(files)


def verify(results: str | Path, manifest: str | Path | None = None) -> dict[str, list[str]]:
    """Compare the tree with its manifest: ``{"changed": [...], "missing": [...]}``."""
    results = Path(results)
    manifest = Path(manifest) if manifest else results / MANIFEST_NAME
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no manifest; run the archive rule first")
    changed, missing = [], []
    for number, line in enumerate(manifest.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            digest, relative = line.split("  ", 1)
        except ValueError:
            raise ValueError(f"{manifest}:{number}: not a sha256sum line: {line!r}") from None
        path = results / relative
        if not path.is_file():
            missing.append(relative)
        elif sha256_file(path) != digest:
            changed.append(relative)
    return {"changed": changed, "missing": missing}


def _git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    from importlib import metadata

    from . import __version__

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            # The project itself runs from the workflow's src/ in the rules' conda envs,
            # which do not install it (workflow/scripts/srcpath.py): its version is its own.
            versions[name] = __version__ if name == "tstransfer" else None
    return versions


def _mtime_range(results: Path, files: list[Path]) -> tuple[str | None, str | None]:
    times = [(results / f).stat().st_mtime for f in files]
    if not times:
        return None, None
    fmt = lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")  # noqa: E731
    return fmt(min(times)), fmt(max(times))


def write_provenance(
    results: str | Path, out: str | Path, config: Mapping[str, Any], *, repo: str | Path = ".",
    exclude_large: bool, files: list[Path] | None = None,
) -> dict[str, Any]:
    """Config, git commit, package versions, host, and the time span of the outputs
    (``files``: as :func:`write_manifest` takes them)."""
    results = Path(results)
    files = list(archived_files(results, exclude_large=exclude_large)) if files is None else list(files)
    first, last = _mtime_range(results, files)
    provenance = {
        "config": dict(config),
        "git_commit": _git_commit(Path(repo)),
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        # The run's start and end as the results tree records them: the oldest and the
        # newest archived output (a rerun of one cell moves only the end).
        "start_time": first,
        "end_time": last,
        "archived_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "archived_files": len(files),
        "large_intermediates_excluded": exclude_large,
    }
    write_json(out, provenance)
    return provenance
