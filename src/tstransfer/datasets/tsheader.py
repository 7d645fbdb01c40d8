"""Task and channel count of a UCR/UEA dataset from its files' headers, without reading the data.

The Snakefile needs each dataset's task and channel count when it parses (the job specs,
:func:`tstransfer.protocol.job_spec`), and every SLURM job parses it again. Reading a
whole archive's data for that (128 problems) would cost each job seconds to minutes;
a ``.ts`` file declares both before its data (``@classLabel`` / ``@targetLabel``,
``@univariate`` / ``@dimensions``), so :func:`probe` reads the header lines and the first
instance's line (whose ``:``-separated fields count the channels where the header does
not say), and stops. A UCR 2018 ``.tsv`` file is always one channel, classification.

Where the files do not settle it (no label declaration, the train and test files
disagree, the header contradicts the first instance) :func:`probe` returns None and the
caller reads the data, whose reader then names what is wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def ts_header(path: Path) -> tuple[dict[str, str], str | None]:
    """The ``@`` header of a ``.ts`` file (keys lower case) and its first data line (or None)."""
    header: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        in_data = False
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if in_data:
                return header, line
            if not line.startswith("@"):
                return header, None
            in_data = read_header_line(line, header)
    return header, None


def read_header_line(line: str, header: dict[str, str]) -> bool:
    """One stripped ``@key value`` line into ``header`` (key lower case); True at ``@data``."""
    key, _, value = line[1:].partition(" ")
    key = key.lower()
    if key == "data":
        return True
    header[key] = value.strip()
    return False


def probe_ts_file(path: Path) -> tuple[str, int] | None:
    """(task, channels) one ``.ts`` file declares; None where it does not settle them."""
    stat = path.stat()
    return _probe_ts_file(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _probe_ts_file(path: str, mtime_ns: int, size: int) -> tuple[str, int] | None:
    # Cached by the file's identity: the Snakefile asks once per (job kind, architecture).
    header, first = ts_header(Path(path))
    if first is None or header.get("timestamps", "false").lower() == "true":
        return None
    if header.get("classlabel", "").lower().startswith("true"):
        task = "classification"
    elif header.get("targetlabel", "").lower().startswith("true"):
        task = "regression"
    else:
        return None
    channels = len(first.split(":")) - 1
    declared = header.get("dimensions")
    if header.get("univariate", "").lower() == "true":
        declared = declared or "1"
    if channels < 1 or (declared is not None and declared.strip() != str(channels)):
        return None
    return task, channels


def probe(spec: Mapping[str, Any], files: Sequence[str | Path]) -> tuple[str, int] | None:
    """(task, channels) of a dataset given by format from its files' headers, the entry's
    ``task:`` first; None where they do not settle it (the caller then reads the data)."""
    fmt = spec.get("format")
    if fmt == "tsv":
        found = {("classification", 1)} if all(Path(f).is_file() for f in files) else set()
    elif fmt == "ts":
        found = {probe_ts_file(Path(f)) if Path(f).is_file() else None for f in files}
    else:
        return None
    if len(found) != 1 or None in found:
        return None
    task, channels = found.pop()
    if spec.get("channels") not in (None, channels):
        return None  # the full read names the mismatch
    return str(spec.get("task") or task), channels


__all__ = ["ts_header", "probe_ts_file", "probe"]
