"""Import the paper authors' per-run results into the tidy results table.

The authors published one ``our_models/<name>/metrics.json`` per referent and fine-tuned
model (repository ``ecokeco/tstl``, commit f3497acd). Names encode the model:

- referent:   ``{arch}-{target}{variant}_{run}``
- fine-tuned: ``{arch}-{source}-{target}{variant}_{run}-{omega}``

Their JSON holds per-epoch TEST-set curves only, so the performance of a model is
``mae[bestEpoch-1]`` (regression) or ``f1[bestEpoch-1]`` (classification), the
convergence rate is theirs (computed on test curves), and every validation column is
NaN. Names are mapped onto this project's (``convnetquakeingv`` ->
``convnetquake_ingv``, ``speech8khz`` -> ``speech``).
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from tstransfer import datasets, protocol
from tstransfer.analysis.results import ResultsError, check_unique, switch_values, table_from_records
from tstransfer.metrics import METRIC_FOR_TASK

ARCH_NAMES = {
    "convnetquakeingv": "convnetquake_ingv",
    "magnet": "magnet",
    "mlstm_fcn": "mlstm_fcn",
    "tcn": "tcn",
}
DATASET_NAMES = {
    "lomax": "lomax",
    "lendb": "lendb",
    "stead": "stead",
    "speech8khz": "speech",
    "emg": "emg",
    "sp500": "sp500",
}
# The authors fed stream_max to every dataset except STEAD (paper Table 2, section 2.4.2).
NO_STREAM_MAX = {"stead"}

_ARCH = "|".join(ARCH_NAMES)
_DATA = "|".join(DATASET_NAMES)
_REFERENT = re.compile(rf"^(?P<arch>{_ARCH})-(?P<target>{_DATA})(?P<variant>1k5|9k)_(?P<run>\d+)$")
_FINETUNE = re.compile(
    rf"^(?P<arch>{_ARCH})-(?P<source>{_DATA})-(?P<target>{_DATA})(?P<variant>1k5|9k)"
    rf"_(?P<run>\d+)-(?P<omega>\d+(?:\.\d+)?)$"
)
_MEMBER = re.compile(r"^(?:\./)?(?:.*/)?our_models/(?P<name>[^/]+)/metrics\.json$")


def parse_model_name(name: str) -> dict[str, object]:
    """Identity columns from an authors' model folder name; raises on an unknown name."""
    match = _FINETUNE.match(name)
    if match:
        kind, source, omega = "finetune", DATASET_NAMES[match["source"]], float(match["omega"])
    else:
        match = _REFERENT.match(name)
        if not match:
            raise ResultsError(f"not an authors' model name: {name!r}")
        kind, source, omega = "referent", "", np.nan
    target = DATASET_NAMES[match["target"]]
    return {
        "kind": kind,
        "arch": ARCH_NAMES[match["arch"]],
        "source": source,
        "target": target,
        "variant": match["variant"],
        "run": int(match["run"]),
        "omega": omega,
    }


def record_from_metrics(name: str, metrics: dict) -> dict[str, object]:
    """One results-table row from an authors' model name and its parsed metrics.json."""
    row = parse_model_name(name)
    info = datasets.get(row["target"]).INFO
    curve = metrics["f1"] if info.task == "classification" else metrics["mae"]
    best_epoch = int(metrics["bestEpoch"])
    if not 1 <= best_epoch <= len(curve):
        raise ResultsError(f"{name}: bestEpoch {best_epoch} outside a {len(curve)}-epoch curve")
    row.update(
        seed=None,
        stream_max=row["target"] not in NO_STREAM_MAX,
        task=info.task,
        status="ok",
        best_epoch=best_epoch,
        last_epoch=int(metrics["lastEpoch"]),
        val_metric=np.nan,
        test_metric=float(curve[best_epoch - 1]),
        metric=METRIC_FOR_TASK[info.task],
        convergence_rate=float(metrics["convergence_rate"]),
        convergence_rate_val=np.nan,
        convergence_rate_test=float(metrics["convergence_rate"]),
        runtime_s=np.nan,
    )
    row.update(switch_values(protocol.shaping(
        protocol.PRESETS["paper"], kind=row["kind"], arch=row["arch"], task=info.task,
        channels=info.channels,
    )))
    return row


def _records_from_tar(path: Path) -> list[dict[str, object]]:
    records = []
    # Stream mode: one pass over the archive, no member index built first; "r|*" reads a
    # .tar as well as a .tar.gz / .tgz (load_published accepts all three).
    member_name = None
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                match = _MEMBER.match(member.name)
                if not match:
                    continue
                member_name = member.name
                handle = archive.extractfile(member)
                metrics = json.loads(handle.read())
                records.append(record_from_metrics(match["name"], metrics))
    except (tarfile.TarError, EOFError, OSError) as error:
        where = f" after member {member_name}" if member_name else ""
        raise ResultsError(f"{path}: unreadable archive{where} ({' '.join(str(error).split())})") from None
    except json.JSONDecodeError as error:
        raise ResultsError(f"{path}: member {member_name} is not JSON ({error})") from None
    return records


def _records_from_folder(path: Path) -> list[dict[str, object]]:
    folder = path / "our_models" if (path / "our_models").is_dir() else path
    records = []
    for metrics_path in sorted(folder.glob("*/metrics.json")):
        with open(metrics_path, encoding="utf-8") as handle:
            records.append(record_from_metrics(metrics_path.parent.name, json.load(handle)))
    return records


def load_published(path: str | os.PathLike) -> pd.DataFrame:
    """The authors' results as a tidy results table.

    ``path`` is the ``.tar.gz`` archive or a folder containing ``our_models/`` (or the
    ``our_models`` folder itself).
    """
    path = Path(path)
    if path.is_dir():
        records = _records_from_folder(path)
    elif path.name.endswith((".tar.gz", ".tgz", ".tar")):
        records = _records_from_tar(path)
    else:
        raise ResultsError(f"{path}: neither a folder nor a .tar.gz archive")
    if not records:
        raise ResultsError(f"{path}: no our_models/*/metrics.json found")
    table = table_from_records(records)
    check_unique(table)
    return table.sort_values(
        ["kind", "arch", "source", "target", "variant", "run", "omega"], ignore_index=True
    )
