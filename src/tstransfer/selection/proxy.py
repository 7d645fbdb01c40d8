"""The short fine-tuning proxy: fine-tune the source model on the target for a few epochs
and take its validation metric as the score.

It is the most direct estimator (it measures what is to be predicted, early) and the
dearest: it trains. This module only defines its interface, so that the estimators can be
ranked and validated alike; the caller supplies the training, as a callable that
fine-tunes a fresh copy of the source model for ``epochs`` epochs and returns the
validation metric (the pipeline's jobs, tstransfer.jobs, do the training).

On a finished study (rule selection_proxy) :func:`study_proxy_scores` supplies that
callable from the study's own fine-tuning runs: it trains nothing. A (source, target)
cell's score is its run 0 at multiplier ``omega``, read as a run of the first ``epochs``
epochs would have ended: the validation metric of the epoch whose weights that run keeps
(:func:`kept_epoch` replays the history rows through the loop's own schedule). With the
default monitor that is the metric at the lowest validation loss of those epochs, not the
best metric among them.

Why this is what a separate ``epochs``-epoch proxy job would measure: that job would be
this very run cut short: same seed (drawn from the job's identity, not from
``max_epochs``), same subset and initial weights, same training order (a function of seed
and epoch), same learning-rate schedule and early-stopping state up to epoch ``epochs``;
a run restores its best weights at the end, and the best of the first ``epochs`` epochs is
the one such a job keeps (tests/test_training.py trains both and compares). A run that
stopped early before ``epochs`` epochs uses the epochs it has, which is also where the
shorter job would have stopped.

The limits: a study trains at most ``training.max_epochs`` epochs, so a larger ``epochs``
reads whole runs; a run that diverged within the first ``epochs`` epochs leaves no score
(the proxy job would have diverged, and the study leaves diverged runs out), one that
diverged later is scored from the epochs before; with ``training.deterministic`` off the
equality holds only as far as GPU nondeterminism allows. And run 0 is one of the runs
whose mean gain the proxy is validated against (a proxy job, the same run cut short,
would share that).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from tstransfer import training as training_loop
from tstransfer.budget import monitored_value
from tstransfer.layout import omega_label
from tstransfer.metrics import METRIC_FOR_TASK, lower_is_better
from tstransfer.protocol import job_switches

PROXY_EPOCHS = 5
NAME = "finetune_proxy"
# The columns of the study's selection scores (tstransfer.zoo.study.SCORE_COLUMNS).
SCORE_COLUMNS = ["arch", "source", "target", "variant", "estimator", "score"]

log = logging.getLogger(__name__)


def finetune_proxy(train_for: Callable[[int], float], *, task: str, epochs: int = PROXY_EPOCHS) -> float:
    """The validation metric after ``train_for(epochs)``, oriented so that higher is better
    (minus the MAE of a regression target, the weighted F1 of a classification one)."""
    if task not in METRIC_FOR_TASK:
        raise ValueError(f"task must be one of {tuple(METRIC_FOR_TASK)}, got {task!r}")
    if int(epochs) < 1:
        raise ValueError(f"the fine-tuning proxy needs at least 1 epoch, got {epochs}")
    value = float(train_for(int(epochs)))
    if not math.isfinite(value):
        raise ValueError(f"the fine-tuning proxy's training returned a non-finite validation metric ({value})")
    return -value if lower_is_better(METRIC_FOR_TASK[task]) else value


class _Diverged(Exception):
    """The run diverged within the proxy's epochs: the proxy would have diverged too."""


def _record(item: str | os.PathLike | Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if isinstance(item, Mapping):
        return item, "<record>"
    with open(item, encoding="utf-8") as handle:
        return json.load(handle), str(item)


def kept_epoch(history: Mapping[str, Sequence[Any]], epochs: int, *, task: str,
               training: Mapping[str, Any], switches: Mapping[str, bool]) -> int | None:
    """The 0-based epoch whose weights a run of at most ``epochs`` epochs keeps (its
    ``val_metric`` is that epoch's), from the first rows of a longer run's ``history``
    (result.json's) replayed through the training loop's own rules
    (:meth:`tstransfer.training.EpochLoop.schedule`: :func:`~tstransfer.training.diverges`,
    :func:`~tstransfer.budget.monitored_value`, :func:`~tstransfer.training.schedule_step`)
    with the run's ``training`` settings and ``switches``. None when one of those rows
    diverges or there is none. A run that stopped early has fewer rows: the shorter one,
    on the same schedule, would have stopped at the same epoch."""
    monitor_accuracy = task == "classification" and bool(switches["monitor_val_acc"])
    state = training_loop._State(learning_rate=float(training["learning_rate"]))
    optimizer = SimpleNamespace(learning_rate=state.learning_rate)  # what schedule_step reads and sets
    for epoch, values in enumerate(list(zip(*history.values()))[:int(epochs)]):
        row = dict(zip(history, values))
        if training_loop.diverges(row):
            return None
        monitored = monitored_value(row, monitor=str(training.get("monitor", "val_loss")),
                                    monitor_accuracy=monitor_accuracy)
        _, stop = training_loop.schedule_step(state, epoch, monitored, optimizer, training["reduce_lr"],
                                              training["early_stopping"])
        if stop:
            break
    return state.best_epoch


def _run_score(record: Mapping[str, Any], origin: str, epochs: int) -> float | str:
    """One run's proxy score, or why it has none."""
    task, history = record["task"], record.get("history") or {}
    if record.get("metric") != METRIC_FOR_TASK.get(task):
        raise ValueError(f"{origin}: metric {record.get('metric')!r} for a {task} target; "
                         f"the proxy expects {METRIC_FOR_TASK.get(task)!r}")
    if not history.get("val_metric"):
        return "without a history"
    spec = record.get("config") or {}
    if "training" not in spec:
        raise ValueError(f"{origin}: no training config (config.training) to replay the run's schedule with")
    switches = job_switches(spec)

    def train_for(k: int) -> float:
        kept = kept_epoch(history, k, task=task, training=spec["training"], switches=switches)
        if kept is None:
            raise _Diverged
        return history["val_metric"][kept]

    try:
        return finetune_proxy(train_for, task=task, epochs=epochs)
    except _Diverged:
        return "diverged within the epochs"


# The study's proxy (config selection.proxy): 2 epochs of the runs at multiplier 1.0.
STUDY_DEFAULTS = {"epochs": 2, "omega": 1.0}


def study_settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Config ``selection.proxy`` with :data:`STUDY_DEFAULTS` for the keys it leaves out."""
    given = ((config or {}).get("selection") or {}).get("proxy") or {}
    return {**STUDY_DEFAULTS, **given}


def study_proxy_scores(results: Iterable[str | os.PathLike | Mapping[str, Any]], *, epochs: int,
                       omega: float):
    """The fine-tuning proxy of every (arch, source, target, variant) of a finished study,
    read from the study's own fine-tuning runs (``results``: result.json paths, as the
    manifest lists them, or their parsed records; every other kind is passed over).

    A cell's score is its run 0 at multiplier ``omega``: the validation metric of the epoch
    whose weights a run of ``epochs`` epochs keeps (:func:`kept_epoch`, with the run's own
    monitor and early-stopping settings), oriented by :func:`finetune_proxy` so that
    higher is better. Why that is what a separate ``epochs``-epoch proxy job would
    measure, and its limits: the module's docstring. A run without a history, or that
    diverged within the epochs, leaves no row. Columns:
    :data:`SCORE_COLUMNS`, estimator :data:`NAME`, sorted by (arch, source, target, variant).
    """
    import pandas as pd  # lazily: the estimators themselves need only NumPy

    if int(epochs) < 1:
        raise ValueError(f"config selection.proxy.epochs: at least 1 epoch, got {epochs}")
    label = omega_label(omega)
    rows, seen, skipped = [], {}, {}
    for item in results:
        record, origin = _record(item)
        if (record.get("kind") != "finetune" or record.get("run") != 0 or record.get("omega") is None
                or omega_label(record["omega"]) != label):
            continue
        key = {name: record[name] for name in ("arch", "source", "target", "variant")}
        cell = tuple(key.values())
        if cell in seen:
            raise ValueError(f"{origin}: a second run 0 at omega {label} of {cell} (the first: {seen[cell]})")
        seen[cell] = origin
        score = _run_score(record, origin, int(epochs))
        if isinstance(score, str):
            skipped[score] = skipped.get(score, 0) + 1
        else:
            rows.append({**key, "estimator": NAME, "score": score})
    for reason, count in skipped.items():
        log.info("%d run(s) %s: no %s score", count, reason, NAME)
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    return frame.sort_values(SCORE_COLUMNS[:4], kind="stable", ignore_index=True)


__all__ = ["finetune_proxy", "kept_epoch", "study_proxy_scores", "study_settings", "STUDY_DEFAULTS", "NAME", "PROXY_EPOCHS", "SCORE_COLUMNS"]
