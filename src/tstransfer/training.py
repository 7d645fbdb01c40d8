"""The training loop (paper section 2.4.3): deterministic, resumable, divergence-safe.

One call of :func:`train` trains a compiled-here Keras model on a :class:`~tstransfer.feed.Feed`
epoch by epoch with Adam (the optimizer passed in), MSE or categorical cross-entropy,
ReduceLROnPlateau and EarlyStopping with best-weight restoration, all parameterised by
the config's ``training:`` mapping.

Why the schedule is not Keras's own callbacks: the whole training state has to go into
the checkpoint (so that a killed job resumes and ends with an uninterrupted run's result),
and Keras callbacks keep their state in private attributes. The two rules are therefore re-implemented here with exactly the semantics of
``keras.callbacks.ReduceLROnPlateau`` and ``keras.callbacks.EarlyStopping`` in Keras 3.15
(monitor ``val_loss``, or what ``training.monitor`` names, mode min, comparisons in
float32, ReduceLROnPlateau ``min_delta`` 1e-4 and cooldown 0, EarlyStopping ``min_delta``
0 and ``epoch > 0`` before stopping, best weights restored at the end even when no early
stop happened).

All epochs of a job run in ONE ``model.fit`` call over ``Feed.training_dataset`` (a call
per epoch would cost ~0.1 s of Keras set-up each time, over 10 % of a short epoch); the
per-epoch work (validation, schedule, history, checkpoint) runs in an epoch-end callback.

Validation loss and metric come from one prediction pass over the validation set (streamed
when large); the loss is computed from it as Keras does (MSE, or clipped cross-entropy,
plus the model's regularisation losses).

Determinism: the training order is a function of (seed, epoch) (see ``Feed.epoch_order``),
Keras/NumPy/TF global seeds are set from the seed once (re-seeding every epoch would make
TensorFlow retrace the training function each epoch, seconds each time; nothing draws from
the global generators after the model is built: Keras 3 dropout draws from per-layer seed
generators), TensorFlow op determinism is enabled, and the checkpoint holds every model
variable (including those seed generators' states) and every optimizer variable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# remove_checkpoint, epoch_line, HISTORY_COLUMNS: imported from here too (jobs.py, the tests)
from .checkpoint import (CHECKPOINT_DIR, CHECKPOINT_FILE, CHECKPOINT_INTERVAL_S, HISTORY_COLUMNS, epoch_line,
                         fingerprint, load_checkpoint, remove_checkpoint, save_checkpoint, write_history)
from . import precise_bn
from .budget import MONITORS, monitored_value
from .metrics import METRIC_FOR_TASK, convergence_rate, mae, weighted_f1
from .protocol import job_switches, monitors_accuracy, recorded
from .seeding import int_seed, seeds_kept

CE_EPSILON = 1e-7  # keras.backend.epsilon(): Keras clips probabilities to [eps, 1 - eps]
DEFAULT_RLR_MIN_DELTA = 1e-4  # keras.callbacks.ReduceLROnPlateau default
DEFAULT_ES_MIN_DELTA = 0.0  # keras.callbacks.EarlyStopping default
LOSS_FOR_TASK = {"regression": "mse", "classification": "crossentropy"}
KERAS_LOSSES = {"mse": "mean_squared_error", "crossentropy": "categorical_crossentropy"}


# --------------------------------------------------------------------------- results
@dataclass
class TrainResult:
    """What a training run produced (best weights are left in the model)."""

    status: str  # "ok" | "diverged"
    metric: str  # "mae" | "f1_weighted"
    best_epoch: int | None  # 1-based; None when no epoch finished with finite losses
    last_epoch: int  # 1-based number of epochs trained
    val_metric: float | None
    test_metric: float | None
    convergence_rate_val: float | None
    convergence_rate_test: float | None  # only with switch test_curves (the authors')
    convergence_rate: float | None  # the selection curve's: val, or test with test_curves
    history: dict[str, list]
    seconds: dict[str, float] = field(default_factory=dict)  # training, evaluation
    resumed_from_epoch: int = 0  # epochs already done when this call started
    # the share of test instances classified right (classification only): the figure
    # published results of a model family give, which a referent is held to
    test_accuracy: float | None = None
    monitor: str = "val_loss"  # what the schedule followed: val_loss, val_accuracy or train_loss


def loss_value(task: str, labels: np.ndarray, predictions: np.ndarray, n_outputs: int,
               loss: str | None = None) -> float:
    """The compiled loss over a whole split, as Keras computes it per instance.

    MSE for regression; categorical cross-entropy for classification with Keras's
    renormalisation and clipping of the probabilities. ``loss="mse"`` with a
    classification task is MSE against one-hot targets (the authors' referents trained
    as regression, switch ``referents_as_regression``).
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    loss = loss or LOSS_FOR_TASK[task]
    if task == "regression":
        return float(np.mean((predictions.reshape(-1) - np.asarray(labels, np.float64)) ** 2))
    if loss == "mse":
        one_hot = np.eye(n_outputs)[np.asarray(labels, dtype=np.int64)]
        return float(np.mean((predictions - one_hot) ** 2))
    probs = predictions / predictions.sum(axis=1, keepdims=True)
    probs = np.clip(probs, CE_EPSILON, 1.0 - CE_EPSILON)
    picked = probs[np.arange(len(probs)), np.asarray(labels, dtype=np.int64)]
    return float(-np.mean(np.log(picked)))


def metric_value(task: str, labels: np.ndarray, predictions: np.ndarray, n_outputs: int) -> float:
    """MAE (regression) or weighted F1 of the arg-max class (classification)."""
    if task == "regression":
        return mae(labels, predictions.reshape(-1))
    return weighted_f1(labels, np.argmax(predictions, axis=1), n_outputs)


def _regularisation(model) -> float:
    """Sum of the model's regularisation losses (part of Keras's loss in fit and evaluate)."""
    losses = model.losses
    if not losses:
        return 0.0
    return float(sum(float(np.asarray(loss)) for loss in losses))


def evaluate(model, feed, split: str, loss: str | None = None) -> tuple[float, float]:
    """``(loss, metric)`` of ``model`` over a whole split of ``feed``."""
    values = evaluate_all(model, feed, split, loss)
    return values["loss"], values["metric"]


def evaluate_all(model, feed, split: str, loss: str | None = None,
                 rows: np.ndarray | None = None) -> dict[str, float]:
    """Loss, metric and (classification) accuracy of ``model`` over a whole split, or
    over its instances at positions ``rows`` (:meth:`~tstransfer.feed.Feed.validation_rows`)."""
    data = feed.split(split)
    predictions = feed.predict(model, split)
    labels = np.asarray(data.labels)
    if rows is not None:
        predictions, labels = predictions[rows], labels[rows]
    if not np.all(np.isfinite(predictions)):
        return {"loss": math.nan, "metric": math.nan, "accuracy": math.nan}
    values = {
        # the loss in the units the model trains on (standardized labels, if so), so
        # that it matches the training loss; the metric in label units
        "loss": loss_value(feed.task, feed.model_scale(labels.astype(np.float64)),
                           feed.model_scale(predictions), feed.n_outputs, loss)
        + _regularisation(model),
        "metric": metric_value(feed.task, labels, predictions, feed.n_outputs),
        "accuracy": math.nan,
    }
    if feed.task == "classification":
        values["accuracy"] = float(np.mean(np.argmax(predictions, axis=1) == labels))
    return values


# --------------------------------------------------------------------------- state
def _float32_less(a: float, b: float) -> bool:
    # Keras's monitor callbacks compare with ops.less on float32 tensors
    return bool(np.float32(a) < np.float32(b))


@dataclass
class _State:
    """Everything the loop needs to continue after a restart (besides the variables)."""

    epoch: int = 0  # epochs finished
    finished: bool = False  # stopped early, reached max_epochs or diverged
    status: str = "ok"
    learning_rate: float = 0.0
    rlr_best: float | None = None
    rlr_wait: int = 0
    es_best: float | None = None
    es_wait: int = 0
    best_epoch: int | None = None  # 0-based
    history: dict[str, list] = field(default_factory=dict)
    training_seconds: float = 0.0


def _read_lr(optimizer) -> float:
    return float(np.asarray(optimizer.learning_rate))


def schedule_step(
    state: _State, epoch: int, val_loss: float, optimizer,
    reduce_lr: Mapping[str, Any], early_stopping: Mapping[str, Any],
) -> tuple[bool, bool]:
    """One epoch end of ReduceLROnPlateau then EarlyStopping, with Keras 3's semantics.

    Updates ``state`` (wait counters, bests, best epoch) and the optimizer's learning
    rate. Returns ``(is_new_best, stop)``: whether the caller must snapshot the weights
    as the best ones (EarlyStopping also snapshots at the first epoch it sees), and
    whether training stops now.
    """
    # ReduceLROnPlateau: monitor val_loss, mode min, cooldown 0
    rlr_delta = float(reduce_lr.get("min_delta", DEFAULT_RLR_MIN_DELTA))
    if state.rlr_best is None or _float32_less(val_loss + rlr_delta, state.rlr_best):
        state.rlr_best, state.rlr_wait = val_loss, 0
    else:
        state.rlr_wait += 1
        if state.rlr_wait >= int(reduce_lr["patience"]):
            old_lr = _read_lr(optimizer)
            if old_lr > np.float32(reduce_lr["min_lr"]):
                optimizer.learning_rate = max(old_lr * float(reduce_lr["factor"]),
                                              float(reduce_lr["min_lr"]))
                state.rlr_wait = 0
    # EarlyStopping: monitor val_loss, restore_best_weights, baseline None
    es_delta = float(early_stopping.get("min_delta", DEFAULT_ES_MIN_DELTA))
    first = state.best_epoch is None
    if first:
        state.best_epoch = epoch
    state.es_wait += 1
    if state.es_best is None or _float32_less(val_loss - es_delta, state.es_best):
        state.es_best, state.best_epoch, state.es_wait = val_loss, epoch, 0
        return True, False
    stop = state.es_wait >= int(early_stopping["patience"]) and epoch > 0
    return first, stop


def diverges(row: Mapping[str, Any]) -> bool:
    """Whether an epoch's history row ends the run as diverged: a non-finite (or, as
    result.json writes one, null) training loss, validation loss or validation metric."""
    return not all(row[c] is not None and math.isfinite(row[c]) for c in ("train_loss", "val_loss", "val_metric"))


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# --------------------------------------------------------------------------- train
class EpochLoop:
    """The epochs of one training job, each step named: :meth:`run_epochs` (one
    ``model.fit`` over the remaining epochs) and, at the end of every epoch,
    :meth:`validate`, :meth:`schedule`, :meth:`checkpoint` and :meth:`should_stop`;
    :meth:`result` evaluates the best weights at the end.

    Built after the model is compiled and the optimizer built: it restores the job's
    checkpoint if there is one (the state, the variables and the best weights so far), so
    that the loop continues where a killed job stopped.
    """

    def __init__(self, model, optimizer, feed, *, task: str, config: Mapping[str, Any], out_dir: Path,
                 seed: int, switches: Mapping[str, bool], loss: str,
                 epoch_end_hook: Callable[[int, Mapping[str, list]], None] | None, log: logging.Logger):
        training = config["training"]
        self.model, self.optimizer, self.feed = model, optimizer, feed
        self.task, self.loss, self.metric = task, loss, METRIC_FOR_TASK[task]
        self.test_curves = bool(switches["test_curves"])
        self.metric_from_curve = bool(switches["test_metric_from_curve"])  # test metric: the curve's
        # a classification target trained as regression (MSE) monitors val_loss like any regression model
        self.monitor_accuracy = monitors_accuracy(switches, task=task,
                                                  as_regression=task == "classification" and loss == "mse")
        self.monitor = str(training.get("monitor", "val_loss"))
        if self.monitor not in MONITORS:
            raise ValueError(f"config training.monitor must be one of {', '.join(MONITORS)}, "
                             f"got {self.monitor!r}")
        self.monitored = ("val_accuracy" if self.monitor_accuracy and self.monitor == "val_loss"
                          else self.monitor)
        log.info("monitoring %s for the learning-rate schedule, early stopping and the best weights",
                 self.monitored)
        self.reduce_lr = training["reduce_lr"]
        self.early_stopping = training["early_stopping"]
        self.max_epochs = int(training["max_epochs"])
        # the layers whose statistics are recomputed after every epoch (none: nothing to do)
        self.batchnorm = (precise_bn.batchnorm_layers(model)
                          if training.get("recalibrate_batchnorm", False) else [])
        if self.batchnorm:
            log.info("recomputing the statistics of %d BatchNormalization layers over the training "
                     "split after every epoch (recalibrate_batchnorm)", len(self.batchnorm))
        self.checkpoint_path = out_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
        self.checkpoint_interval = float(training.get("checkpoint_interval_s", CHECKPOINT_INTERVAL_S))
        self._last_checkpoint = time.monotonic()
        self.history_path = out_dir / "history.csv"
        self.epoch_end_hook = epoch_end_hook
        self.log = log

        self.fingerprint = fingerprint(model, optimizer, feed, config, seed, recorded(switches))
        restored = load_checkpoint(self.checkpoint_path, model, optimizer, self.fingerprint, log)
        if restored:
            self.state, self.best_weights = _State(**restored[0]), restored[1]
            log.info("resuming from %s after epoch %d", self.checkpoint_path, self.state.epoch)
        else:
            self.state = _State(learning_rate=float(training["learning_rate"]))
            optional = {"test_metric": self.test_curves or self.metric_from_curve,
                        "val_accuracy": self.monitor_accuracy}
            self.state.history = {c: [] for c in HISTORY_COLUMNS if optional.get(c, True)}
            self.best_weights = None
        optimizer.learning_rate = self.state.learning_rate
        self.resumed_from = self.state.epoch
        self._epoch_started = 0.0  # perf_counter at the current epoch's start
        self._epoch_lr = 0.0  # the learning rate the current epoch trains with

    def run_epochs(self) -> None:
        """Train the remaining epochs (none when the checkpoint says the job is done).

        One fit call for all of them (a call per epoch costs ~0.1 s of set-up); the
        dataset carries each epoch's own (seed, epoch) order, and a Keras callback runs
        :meth:`begin_epoch` and :meth:`end_epoch` around every epoch.
        """
        import keras

        if self.should_stop():
            return
        self.model.fit(
            self.feed.training_dataset(self.state.epoch, self.max_epochs),
            initial_epoch=self.state.epoch,
            epochs=self.max_epochs,
            steps_per_epoch=self.feed.steps_per_epoch(),
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_begin=self.begin_epoch,
                                                      on_epoch_end=self.end_epoch)],
            shuffle=False,  # the order is the dataset's own, seeded by (seed, epoch)
            verbose=0,
        )

    def should_stop(self) -> bool:
        """Whether training is over: stopped early, diverged or at ``max_epochs``."""
        return self.state.finished or self.state.epoch >= self.max_epochs

    def begin_epoch(self, epoch: int, logs=None) -> None:
        self._epoch_started = time.perf_counter()
        self._epoch_lr = _read_lr(self.optimizer)

    def end_epoch(self, epoch: int, logs) -> None:
        """Validation, schedule, history and checkpoint after training epoch ``epoch`` (0-based)."""
        state = self.state
        if epoch != state.epoch:
            raise RuntimeError(f"epoch {epoch} ran but epoch {state.epoch} was expected")
        train_loss = float(logs["loss"])
        if self.batchnorm:  # before validation and the best-weights snapshot
            with seeds_kept(self.model):  # a pass in training mode draws dropout masks too
                precise_bn.recalibrate(self.model, self.feed.eval_batches("train"), self.batchnorm)
        row = self.validate(epoch, train_loss)
        for column in state.history:
            state.history[column].append(row[column])
        state.epoch = epoch + 1
        self.schedule(epoch, row)
        state.learning_rate = _read_lr(self.optimizer)
        state.training_seconds += time.perf_counter() - self._epoch_started
        self.checkpoint()
        self.log.info("%s", epoch_line(row, max_epochs=self.max_epochs, metric=self.metric,
                                       best=state.status == "ok" and state.best_epoch == epoch))
        if self.epoch_end_hook is not None:
            self.epoch_end_hook(state.epoch, state.history)
        if self.should_stop():
            self.model.stop_training = True

    def validate(self, epoch: int, train_loss: float) -> dict[str, float]:
        """The epoch's history row: losses, validation metric (and accuracy), the test
        metric with ``test_curves``, the learning rate it trained with and its seconds."""
        val = evaluate_all(self.model, self.feed, "val", self.loss, self.feed.validation_rows(epoch))
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"],
               "val_metric": val["metric"], "val_accuracy": val["accuracy"], "learning_rate": self._epoch_lr}
        if "test_metric" in self.state.history:
            # The test curve is a record (the authors predicted it after training, from each
            # epoch's saved model): the dropout masks it draws where dropout stays on when
            # predicting must not move the training's own draws.
            with seeds_kept(self.model):
                row["test_metric"] = evaluate(self.model, self.feed, "test", self.loss)[1]
        row["epoch_seconds"] = time.perf_counter() - self._epoch_started
        return row

    def schedule(self, epoch: int, row: Mapping[str, float]) -> None:
        """Divergence, ReduceLROnPlateau and EarlyStopping after the epoch; snapshots the
        weights when they are the best so far (or the first)."""
        state = self.state
        if diverges(row):
            self.log.warning("epoch %d: non-finite loss (train %s, val %s): diverged",
                             epoch + 1, row["train_loss"], row["val_loss"])
            state.status, state.finished = "diverged", True
        else:
            monitored = monitored_value(row, monitor=self.monitor, monitor_accuracy=self.monitor_accuracy)
            improved, stop = schedule_step(state, epoch, monitored, self.optimizer,
                                           self.reduce_lr, self.early_stopping)
            if self.best_weights is None or improved:
                self.best_weights = self.model.get_weights()
            state.finished = stop
        if state.epoch >= self.max_epochs:
            state.finished = True

    def checkpoint(self) -> None:
        """history.csv after every epoch; the checkpoint when ``checkpoint_interval_s``
        have passed since the last one (:data:`CHECKPOINT_INTERVAL_S`), and at the end."""
        write_history(self.history_path, self.state.history, HISTORY_COLUMNS)
        now = time.monotonic()
        if self.should_stop() or now - self._last_checkpoint >= self.checkpoint_interval:
            save_checkpoint(self.checkpoint_path, self.model, self.optimizer, self.best_weights,
                            self.state.__dict__, self.fingerprint)
            self._last_checkpoint = now

    def result(self) -> TrainResult:
        """The best weights put in the model, evaluated on the test set."""
        state, task = self.state, self.task
        started = time.perf_counter()
        val_metric = test_metric = test_accuracy = None
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            val_metric = state.history["val_metric"][state.best_epoch]
            test = evaluate_all(self.model, self.feed, "test", self.loss)
            test_metric = test["metric"]
            if self.metric_from_curve:  # the authors' report: the test curve at the best epoch
                test_metric = state.history["test_metric"][state.best_epoch]
            test_accuracy = test["accuracy"] if task == "classification" else None
        rate_val = convergence_rate(state.history["val_metric"], task)
        rate_test = convergence_rate(state.history["test_metric"], task) if self.test_curves else None
        return TrainResult(
            status=state.status,
            metric=self.metric,
            best_epoch=None if state.best_epoch is None else state.best_epoch + 1,
            last_epoch=state.epoch,
            val_metric=_finite_or_none(val_metric),
            test_metric=_finite_or_none(test_metric),
            convergence_rate_val=_finite_or_none(rate_val),
            convergence_rate_test=_finite_or_none(rate_test),
            convergence_rate=_finite_or_none(rate_test if self.test_curves else rate_val),
            history={k: list(v) for k, v in state.history.items()},
            seconds={"training": state.training_seconds, "evaluation": time.perf_counter() - started},
            resumed_from_epoch=self.resumed_from,
            test_accuracy=_finite_or_none(test_accuracy),
            monitor=self.monitored,
        )


def train(
    model,
    optimizer,
    feed,
    *,
    task: str,
    config: Mapping[str, Any],
    out_dir: str | Path,
    seed: int,
    switches: Mapping[str, bool] | None = None,
    loss: str | None = None,
    epoch_end_hook: Callable[[int, Mapping[str, list]], None] | None = None,
    log: logging.Logger | None = None,
) -> TrainResult:
    """Train ``model`` on ``feed`` and evaluate its best weights on the test set.

    ``config``: the job's config (``training``; the switches of :mod:`tstransfer.protocol`
    come from ``switches``, else from ``config``). With switch ``test_curves`` every epoch
    also records the test metric, and the convergence rate is the test curve's; with
    ``monitor_val_acc`` a classification run monitors validation accuracy (mode max)
    instead of validation loss. ``loss``: ``"mse"`` or ``"crossentropy"`` (default: by
    task). ``out_dir`` receives ``history.csv`` (after each epoch) and
    ``checkpoint/state.npz`` (:meth:`EpochLoop.checkpoint`; a later call with the same job
    resumes from it), both written atomically. ``epoch_end_hook(epochs_done, history)``
    runs after each epoch's history (and checkpoint, when one is due) is on disk.

    Returns a :class:`TrainResult`; the model is left holding the best epoch's weights.
    A non-finite training or validation loss stops training with status ``diverged``.
    """
    import keras
    import tensorflow as tf

    log = log or logging.getLogger(__name__)
    training = config["training"]
    switches = dict(job_switches(config) if switches is None else switches)
    loss = loss or LOSS_FOR_TASK[task]
    if loss not in KERAS_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(KERAS_LOSSES)}")
    if task != feed.task:
        raise ValueError(f"task {task!r} but the data are {feed.task!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    if training.get("deterministic", True):  # off only to trade repeatability for GPU speed
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(int_seed(seed, "train"))
    model.compile(
        optimizer=optimizer,
        loss=KERAS_LOSSES[loss],
        jit_compile=training.get("jit_compile", "auto"),
    )
    optimizer.build(model.trainable_variables)  # creates the slots a checkpoint restores

    loop = EpochLoop(model, optimizer, feed, task=task, config=config, out_dir=out_dir, seed=seed,
                     switches=switches, loss=loss, epoch_end_hook=epoch_end_hook, log=log)
    loop.run_epochs()
    return loop.result()


__all__ = ["TrainResult", "train", "EpochLoop", "epoch_line", "schedule_step", "diverges", "evaluate", "loss_value",
           "metric_value", "remove_checkpoint", "HISTORY_COLUMNS"]
