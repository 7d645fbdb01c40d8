"""File-system helpers: atomic outputs and streaming checksums.

Every output is written under a temporary name beside its final path and renamed into
place only when complete, so an interrupted job never leaves a half-written file that a
later run (or Snakemake) would mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

CHUNK_BYTES = 8 * 1024 * 1024


def sha256_file(path: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex sha256 of a file, read in chunks (works for files far larger than RAM)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


class NoSpaceError(OSError):
    """The file system filled up (ENOSPC, or EDQUOT: a quota) while an output was written;
    its message is one line naming what was written, where, and how much room is left."""

    def __str__(self) -> str:
        return str(self.strerror)


FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_full_disk(error: BaseException) -> bool:
    """Whether ``error`` is a write refused for want of space (or of quota)."""
    return isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS


def no_space_error(what: str, final: str | os.PathLike, error: OSError) -> NoSpaceError:
    """A :class:`NoSpaceError` for ``final`` (written atomically, see :func:`atomic_path`,
    whose partial copy is gone by the time this is called): ``what`` (say, the dataset)
    and the space its file system has, from ``error`` (ENOSPC or EDQUOT)."""
    final = Path(final)
    cause = "no space left on the device" if error.errno == errno.ENOSPC else "disk quota exceeded"
    try:
        usage = shutil.disk_usage(final.parent)
        room = f"{usage.free / 2**20:.1f} MiB free of {usage.total / 2**20:.1f} MiB in {final.parent}"
    except OSError:
        room = f"{final.parent} unreadable"
    return NoSpaceError(error.errno, f"{what}: {cause} writing {final} ({room} once the partial copy was "
                                     "removed); nothing was kept under that name")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it to ``final`` on success.

    On any exception the temporary file or folder is removed and ``final`` is left as
    it was before (absent, for a Snakemake output). Works for files and, with
    ``directory=True``, for folders such as zarr stores.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    )
    if not directory:
        tmp.rmdir()
    try:
        yield tmp
        if final.exists():
            _remove(final)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_safe(value):
    """JSON-safe copy: NaN/inf -> None (JSON has no such numbers), numpy scalars -> Python
    numbers, mappings and sequences copied through."""
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
