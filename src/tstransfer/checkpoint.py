"""A training job's checkpoint: ``checkpoint/state.npz`` in its output folder.

One ``.npz`` holds every model variable, every optimizer variable, the best weights so
far and a JSON ``meta`` entry: the training loop's state (a plain mapping, see
``tstransfer.training``) and the job's fingerprint. The loop rewrites it atomically after
an epoch every :data:`CHECKPOINT_INTERVAL_S` and at the end, so that a job killed at any
moment resumes from the last epoch it saved; a checkpoint whose fingerprint differs from
the job's (another config, another model, another store) or that cannot be read is ignored
and the job starts afresh. Beside it the job's ``history.csv`` (:func:`write_history`) and
its log's line per epoch (:func:`epoch_line`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .fsutil import atomic_path

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "state.npz"
CHECKPOINT_FORMAT = 2  # 2: the fingerprint holds the protocol switches
# How often (seconds, at an epoch's end) the loop rewrites a job's checkpoint (config
# training.checkpoint_interval_s; 0: every epoch). Resuming is exact from any epoch's
# checkpoint (the data order is a function of (seed, epoch), the state and every variable
# are in it), so the interval only bounds the training a killed job repeats; a write after
# every epoch cost a demo fine-tuning job 0.1 s, a tenth of its fixed cost
# (bench/job_fixed_cost.py).
CHECKPOINT_INTERVAL_S = 30.0


def fingerprint(model, optimizer, feed, config: Mapping, seed: int, switches: Mapping) -> dict:
    """What must match for a checkpoint to belong to this job."""
    return {
        "format": CHECKPOINT_FORMAT,
        "seed": int(seed),
        "switches": dict(switches),
        # every training setting but how often the checkpoint is written, which cannot
        # change what the job computes
        "training": json.loads(json.dumps({k: v for k, v in dict(config["training"]).items()
                                           if k != "checkpoint_interval_s"}, default=str)),
        "model_variables": [list(map(int, v.shape)) for v in model.variables],
        "optimizer_variables": [list(map(int, v.shape)) for v in optimizer.variables],
        "train_instances": int(len(feed.train)),
        "store": str(feed.store.resolve()),
    }


def save_checkpoint(path: Path, model, optimizer, best_weights, state: Mapping[str, Any],
                    fingerprint: Mapping) -> None:
    """Write the variables, the best weights and ``state`` to ``path`` atomically."""
    arrays: dict[str, np.ndarray] = {}
    for i, variable in enumerate(model.variables):
        arrays[f"model_{i}"] = np.asarray(variable.numpy())
    for i, variable in enumerate(optimizer.variables):
        arrays[f"optimizer_{i}"] = np.asarray(variable.numpy())
    for i, weight in enumerate(best_weights or []):
        arrays[f"best_{i}"] = weight
    meta = {"state": dict(state), "fingerprint": fingerprint, "n_best": len(best_weights or [])}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta, default=_json_number)), **arrays)


def _json_number(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def load_checkpoint(path: Path, model, optimizer, fingerprint: Mapping,
                    log) -> tuple[dict, list | None] | None:
    """Restore the variables from ``path``; return ``(state, best_weights)``.

    None (nothing restored) when there is no checkpoint, when it belongs to another job
    configuration or when it cannot be read; the last two are logged as warnings.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta["fingerprint"] != fingerprint:
                log.warning("checkpoint %s belongs to another job configuration; starting afresh", path)
                return None
            for i, variable in enumerate(model.variables):
                variable.assign(npz[f"model_{i}"])
            for i, variable in enumerate(optimizer.variables):
                variable.assign(npz[f"optimizer_{i}"])
            best = [npz[f"best_{i}"] for i in range(meta["n_best"])]
    except (OSError, ValueError, KeyError) as error:  # unreadable: start again rather than fail
        log.warning("checkpoint %s unreadable (%s); starting afresh", path, error)
        return None
    return meta["state"], best or None


def write_history(path: Path, history: Mapping[str, list], order: list[str]) -> None:
    """``history.csv``: the history's columns in ``order``, a row per epoch (atomically)."""
    columns = [c for c in order if c in history]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in zip(*(history[c] for c in columns)):
        writer.writerow([repr(float(v)) if isinstance(v, float) else v for v in row])
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())


def remove_checkpoint(out_dir: str | Path) -> None:
    """Delete a job's checkpoint folder (after its result is safely written)."""
    shutil.rmtree(Path(out_dir) / CHECKPOINT_DIR, ignore_errors=True)


HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_metric", "val_accuracy", "test_metric",
                   "learning_rate", "epoch_seconds"]


def epoch_line(row: Mapping[str, float], *, max_epochs: int, metric: str, best: bool) -> str:
    """The training log's line for one epoch, for a person following a job::

        epoch 3/100: loss 0.01234 val_loss 0.01456 val_mae 0.09321 lr 0.001 time 1.2 s best

    ``row`` is the epoch's history row: training loss, validation loss and metric (and
    accuracy for classification, the test metric with ``test_curves``), the learning rate
    the epoch trained with and its seconds. ``best``: the epoch whose weights are kept so far.
    Keras's own progress output is off (``verbose=0``): its per-batch bar would fill the log.
    """
    parts = [f"epoch {int(row['epoch'])}/{max_epochs}:", f"loss {row['train_loss']:.5g}",
             f"val_loss {row['val_loss']:.5g}", f"val_{metric} {row['val_metric']:.5g}"]
    if "val_accuracy" in row and math.isfinite(row["val_accuracy"]):
        parts.append(f"val_accuracy {row['val_accuracy']:.4g}")
    if "test_metric" in row:
        parts.append(f"test_{metric} {row['test_metric']:.5g}")
    parts += [f"lr {row['learning_rate']:.3g}", f"time {row['epoch_seconds']:.1f} s"]
    if best:
        parts.append("best")
    return " ".join(parts)
