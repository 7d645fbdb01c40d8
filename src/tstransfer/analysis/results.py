"""The tidy results table: one row per trained model.

Every training job (pretrain, referent, fine-tune, stream_max study) writes one JSON
file; the pipeline lists those files in a manifest (a text file, one path a line) and
:func:`build_results_table` turns them into a single table that every statistic and
figure is computed from. The authors' published results are mapped onto the same
columns by :mod:`tstransfer.analysis.published`, so both go through the same code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from tstransfer.fsutil import atomic_path
from tstransfer.metrics import LOWER_IS_BETTER
from tstransfer.plan import TRAINING_KINDS as KINDS
from tstransfer.plan import trained_on
from tstransfer.protocol import SWITCHES

STATUSES = ("ok", "diverged")
METRICS = tuple(LOWER_IS_BETTER)  # the metrics tstransfer.metrics knows: mae, f1_weighted

# Column order of the table; the dtype says how a missing value is stored.
COLUMNS: dict[str, str] = {
    "kind": "string",
    "arch": "string",
    "source": "string",  # a fine-tuned model's pretraining dataset; "" for the others
    "target": "string",  # the dataset a model was trained (fine-tuned) and tested on
    "variant": "string",  # "" for pretrain jobs (full training set)
    "run": "Int64",  # <NA> for pretrain jobs
    "omega": "float64",  # NaN unless finetune
    "seed": "Int64",  # <NA> where unknown (the authors used no seeds)
    "stream_max": "boolean",
    "task": "string",  # "regression" | "classification"
    "status": "string",  # "ok" | "diverged"
    "best_epoch": "Int64",  # 1-based
    "last_epoch": "Int64",
    "val_metric": "float64",
    "test_metric": "float64",
    "test_accuracy": "float64",  # classification; NaN for regression and results written before
    "metric": "string",  # "mae" | "f1_weighted"
    "convergence_rate": "float64",  # the one the configured protocol defines
    "convergence_rate_val": "float64",
    "convergence_rate_test": "float64",
    "runtime_s": "float64",
}

# Keys a job JSON may lack: results written before the key existed.
OPTIONAL_KEYS = ("test_accuracy",)
# Keys a job JSON must carry (``history``, ``config`` and ``versions`` are ignored here).
REQUIRED_KEYS = tuple(key for key in COLUMNS if key not in OPTIONAL_KEYS)

# One column per protocol switch (tstransfer.protocol): its value for the model, or <NA>
# where the switch does not shape that kind of model (so a flip leaves it unchanged).
SWITCH_COLUMNS: dict[str, str] = {f"switch_{name}": "boolean" for name in SWITCHES}
COLUMNS.update(SWITCH_COLUMNS)


def switch_values(switches: Mapping[str, bool] | None) -> dict[str, object]:
    """The switch columns of one row from the switches recorded for its job."""
    switches = switches or {}
    return {f"switch_{name}": switches.get(name) for name in SWITCHES}


class ResultsError(ValueError):
    """A job JSON or manifest that cannot be turned into a table row."""


def read_manifest(manifest: str | os.PathLike) -> list[Path]:
    """Paths listed in a manifest file, one a line; blank lines and ``#`` comments skipped.

    Relative paths are taken relative to the manifest's folder, so a manifest can be
    moved together with the files it lists.
    """
    manifest = Path(manifest)
    base = manifest.parent
    paths = []
    for line in manifest.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line)
        paths.append(path if path.is_absolute() else base / path)
    return paths


def _as_float(value: object) -> float:
    if value is None:
        return np.nan
    return float(value)


def record_from_job(job: Mapping[str, object], origin: str = "<job>") -> dict[str, object]:
    """One table row from a parsed job JSON.

    Nulls become the table's missing values: ``source`` and ``variant`` the empty
    string, numbers NaN / <NA>. A pretraining job's dataset, which its result.json names
    ``source`` (``target`` in results written before), is the row's ``target``, as for
    every model trained from scratch (:func:`tstransfer.plan.trained_on`). A job with missing keys or an unknown kind, status or
    metric is rejected with the file it came from, rather than silently skewing counts.
    """
    missing = [key for key in REQUIRED_KEYS if key not in job]
    if missing:
        raise ResultsError(f"{origin}: missing keys {missing}")
    if job["kind"] not in KINDS:
        raise ResultsError(f"{origin}: unknown kind {job['kind']!r}")
    if job["status"] not in STATUSES:
        raise ResultsError(f"{origin}: unknown status {job['status']!r}")
    if job["metric"] not in METRICS:
        raise ResultsError(f"{origin}: unknown metric {job['metric']!r}")
    return {
        "kind": job["kind"],
        "arch": job["arch"],
        "source": (job["source"] if job["kind"] == "finetune" else None) or "",
        "target": trained_on(job),
        "variant": job["variant"] or "",
        "run": job["run"],
        "omega": _as_float(job["omega"]),
        "seed": job["seed"],
        "stream_max": bool(job["stream_max"]),
        "task": job["task"],
        "status": job["status"],
        "best_epoch": job["best_epoch"],
        "last_epoch": job["last_epoch"],
        "val_metric": _as_float(job["val_metric"]),
        "test_metric": _as_float(job["test_metric"]),
        "test_accuracy": _as_float(job.get("test_accuracy")),
        "metric": job["metric"],
        "convergence_rate": _as_float(job["convergence_rate"]),
        "convergence_rate_val": _as_float(job["convergence_rate_val"]),
        "convergence_rate_test": _as_float(job["convergence_rate_test"]),
        "runtime_s": _as_float(job["runtime_s"]),
        **switch_values((job.get("config") or {}).get("switches")),
    }


def _read_job(path: Path) -> dict[str, object]:
    with open(path, encoding="utf-8") as handle:
        try:
            job = json.load(handle)
        except json.JSONDecodeError as error:
            raise ResultsError(f"{path}: not valid JSON ({error})") from error
    return record_from_job(job, origin=str(path))


def table_from_records(records: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """A results table with the standard columns and dtypes from row dictionaries."""
    frame = pd.DataFrame.from_records(list(records), columns=list(COLUMNS))
    for column, dtype in COLUMNS.items():
        if dtype == "Int64":
            # Whole numbers may arrive as floats (NaN forces float); Int64 keeps <NA>.
            frame[column] = pd.array(
                [None if pd.isna(v) else int(v) for v in frame[column]], dtype="Int64"
            )
        else:
            frame[column] = frame[column].astype(dtype)
    return frame


def build_results_table(
    manifest_or_paths: str | os.PathLike | Iterable[str | os.PathLike],
    max_workers: int = 8,
) -> pd.DataFrame:
    """Read every job JSON listed in a manifest (or given as paths) into one table.

    Cost is linear in the number of jobs: files are parsed by a small thread pool
    (JSON parsing releases little of the GIL, but file opening on a network file
    system dominates on a cluster) and the rows are assembled once at the end.
    Duplicate model identities are an error: they would be counted twice.
    """
    if isinstance(manifest_or_paths, (str, os.PathLike)):
        paths = read_manifest(manifest_or_paths)
    else:
        paths = [Path(p) for p in manifest_or_paths]
    if max_workers > 1 and len(paths) > 64:
        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            records = list(pool.map(_read_job, paths, chunksize=256))
    else:
        records = [_read_job(path) for path in paths]
    table = table_from_records(records)
    check_unique(table)
    return table


IDENTITY = ["kind", "arch", "source", "target", "variant", "run", "omega", "seed", "stream_max"]


def check_unique(table: pd.DataFrame) -> None:
    """Raise if two rows describe the same model (same job listed twice)."""
    duplicated = table.duplicated(subset=IDENTITY, keep=False)
    if duplicated.any():
        sample = table.loc[duplicated, IDENTITY].head(5).to_dict("records")
        raise ResultsError(f"{int(duplicated.sum())} rows share a model identity, e.g. {sample}")


def write_table(df: pd.DataFrame, parquet_path: str | os.PathLike, csv_path: str | os.PathLike) -> None:
    """Write the table as Parquet and CSV, each atomically."""
    with atomic_path(parquet_path) as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (Parquet or CSV) with standard dtypes."""
    path = Path(path)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        # Text columns read as text: a variant named 500 (or a dataset named 1) stays "500",
        # not the number 500.0 that a column with empty cells would otherwise become.
        text = {column: str for column, dtype in COLUMNS.items() if dtype == "string"}
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=text)
        for column in ("source", "variant"):
            frame[column] = frame[column].fillna("")
    return table_from_records(frame.to_dict("records"))
