"""The short fine-tuning proxy: fine-tune the source model on the target for a few epochs
and take its validation metric as the score.

It is the most direct estimator (it measures what is to be predicted, early) and the
dearest: it trains. This module only defines its interface, so that the estimators can be
ranked and validated alike; the caller supplies the training, as a callable that
fine-tunes a fresh copy of the source model for ``epochs`` epochs and returns the
validation metric (the pipeline's jobs, tstransfer.jobs, do the training).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tstransfer.metrics import METRIC_FOR_TASK, lower_is_better

PROXY_EPOCHS = 5


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


__all__ = ["finetune_proxy", "PROXY_EPOCHS"]
