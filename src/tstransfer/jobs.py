"""Entry points of the training jobs: one function per training kind of
:data:`tstransfer.plan.KINDS` (``pretrain``, ``referent``, ``finetune``, ``stream_max``),
whose arguments are the kind's identity fields and inputs (``tstransfer.cli`` calls them
by kind; :mod:`tstransfer.pairs` and :mod:`tstransfer.zoo` directly), and the seed
selection (``select_pretrained``, run by the workflow's script).

Every job writes into its ``out_dir``: ``history.csv`` (after each epoch),
``checkpoint/state.npz`` (after each epoch, removed at the end unless
``training.keep_checkpoint``), ``model.keras`` (pretraining always; referent/fine-tuned
models when ``training.save_models``) and, LAST, ``result.json`` -- the file Snakemake
waits for, so a job that died at any point leaves no result and reruns (resuming from its
checkpoint).

``result.json`` keys (see ``_record``): kind, arch, source, target, variant, run, omega,
seed, seed_index, stream_max, task, status, best_epoch, last_epoch, resumed_from_epoch,
metric, val_metric, test_metric, test_accuracy, monitor (what the schedule, early
stopping and best weights followed), convergence_rate, convergence_rate_val,
convergence_rate_test, n_train, n_val, n_test, steps_per_epoch,
timings, history, config, versions and
runtime_s. Non-finite numbers are written as null. The datasets: a pretraining job's is
its ``source`` (``target`` null; results written before this named it ``target``, which
:func:`tstransfer.plan.trained_on` and the results table still read), a stream_max
study's its ``target``, a referent's its ``target``, a fine-tuned model's its ``source``
(pretrained on) and ``target``.

Seeds (one integer seeds the initial weights, the dropout streams and the training
order): ``seeding.int_seed`` of the config seed and ``tstransfer.plan.seed_parts`` of the
job's identity:

* pretrain: ("pretrain", arch, dataset, seed_index)
* stream_max: ("stream_max", arch, dataset, seed_index) -- the same for the runs with
  and without the input, so Table 2 compares paired runs (same order, same conv init);
* referent: ("referent", arch, target, variant, run)
* finetune: ("finetune", arch, source, target, variant, run, repr(omega))

ConvNetQuake_INGV's per-dataset variants (initialiser, L2) are used only to pretrain on
those datasets, as in the authors' scripts (REFERENCE.md section 4): ``build_model`` gets
the dataset for pretraining and the stream_max study (a pretraining run with the input on
or off) and none for referent and fine-tuned models, which are always the base model.

The protocol switches (:mod:`tstransfer.protocol`) a job follows come with its config and
are recorded under ``config.switches``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .channels import adapt_channels
from .fsutil import atomic_path, json_safe, write_json
from .metrics import LOWER_IS_BETTER, is_better
from .plan import seed_parts, trained_on
from .protocol import PRESETS, TARGET_KINDS, job_switches, shaping, spec_with, trains_as_regression
from .seeding import int_seed
from .store import store_attrs


def process_start() -> float:
    """Wall-clock time this process started (Linux /proc), or now where unavailable.

    Read when a job starts, not at import: a job forked from the warm job server
    (``tstransfer.jobserver``) has its own start time (the fork), later than the server's.
    """
    try:
        # field 22 (starttime): clock ticks after boot; /proc/uptime has 10 ms resolution
        # where /proc/stat's boot time is whole seconds
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        now, uptime = time.time(), float(Path("/proc/uptime").read_text().split()[0])
        return now - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


log = logging.getLogger(__name__)


# Jobs that train on a dataset's full training split; only they use ConvNetQuake's
# per-dataset variants.
PRETRAINING_KINDS = ("pretrain", "stream_max")


# --------------------------------------------------------------------------- helpers
def versions() -> dict[str, str | None]:
    """Python and the versions of the packages that shape a result (the archive's list)."""
    from .archive import package_versions

    return {"python": platform.python_version(), **package_versions()}


def save_model(model, path: str | Path) -> None:
    """``model.save`` to ``path`` (.keras) atomically."""
    with atomic_path(path) as tmp:
        staged = tmp.with_name(tmp.name + ".keras")  # Keras insists on the .keras suffix
        try:
            model.save(staged)
            os.replace(staged, tmp)
        finally:
            staged.unlink(missing_ok=True)


def load_model(path: str | Path):
    """A saved ``.keras`` model (any architecture of :mod:`tstransfer.models`), uncompiled."""
    import keras

    from . import models  # noqa: F401  registers the custom layers (keras-tcn's TCN)

    return keras.models.load_model(path, compile=False)


# --------------------------------------------------------------------------- one job
def tf_threads() -> dict[str, int]:
    """TensorFlow's intra- and inter-op thread counts (0: its default, every core)."""
    import tensorflow as tf

    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def limit_threads(threads: int) -> None:
    """Size TensorFlow's intra- and inter-op thread pools to ``threads``, the job's share
    of the machine (its rule's ``threads``), before the job runs an op.

    TensorFlow sizes both pools to every core by default, whatever else runs: Snakemake's
    two 1-thread jobs on a 2-core machine then keep four busy threads on two cores. Two
    FCN GunPoint referents side by side took 18.3 s that way, 15.3 s with a thread each
    (bench/concurrent_jobs.py, tf.data autotuning off in both). A fixed count also makes a job's numbers independent of
    the machine's core count, which changes the order of TensorFlow's sums.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError as error:  # TensorFlow ran an op before: its pools are made
        log.warning("cannot set TensorFlow's threads to %d: %s", threads, error)


def _model_and_optimizer(
    kind: str, arch: str, dataset: str, attrs: Mapping[str, Any], config: Mapping[str, Any],
    switches: Mapping[str, bool], *, seed: int, use_stream_max: bool,
    pretrained: str | Path | None, omega: float | None,
):
    """The job's model and optimizer: built from scratch, or a fresh model holding the
    pretrained model's transferable layers with the per-group Adam of ``omega``.

    Returns ``(model, optimizer, as_regression)``; ``as_regression``: the authors' bug,
    SPEECH and EMG referents with a linear head and MSE (one-hot targets).
    """
    import keras

    from . import models
    from .models.common import input_channels

    task, n_outputs = attrs["task"], int(attrs["n_outputs"])
    length, channels = int(attrs["length"]), int(attrs["channels"])
    learning_rate = float(config["training"]["learning_rate"])
    as_regression = trains_as_regression(switches, kind=kind, task=task)
    if switches["duplicate_single_channel"] and channels == 1 and kind in TARGET_KINDS:
        channels = 3  # the Feed repeats the single channel per batch
    build_args = dict(length=length, task="regression" if as_regression else task,
                      n_outputs=n_outputs, stream_max=use_stream_max,
                      dataset=dataset if kind in PRETRAINING_KINDS else None, seed=seed)
    if arch == "magnet" and switches["magnet_dropout_at_inference"]:
        build_args["dropout_at_inference"] = True
    if arch == "mlstm_fcn" and switches["lstm_hard_sigmoid"]:
        build_args["recurrent_activation"] = "hard_sigmoid"
    if pretrained is None:
        model = models.build_model(arch, channels=channels, **build_args)
        return model, keras.optimizers.Adam(learning_rate=learning_rate), as_regression

    from .optim import make_optimizer
    from .transfer import transfer_weights

    source_model = load_model(pretrained)
    model_channels = adapt_channels(input_channels(source_model), channels)
    model = models.build_model(arch, channels=model_channels, **build_args)
    transferred = transfer_weights(source_model, model, arch)
    del source_model
    optimizer = make_optimizer(learning_rate, transferred, float(omega),
                               step_per_group=switches["adam_step_per_multiplier_group"])
    return model, optimizer, as_regression


def _record(kind: str, arch: str, identity: Mapping[str, Any], *, seed: int, use_stream_max: bool,
            omega: float | None, task: str, result, feed, timings: Mapping[str, float],
            spec: Mapping[str, Any]) -> dict[str, Any]:
    """The job's ``result.json`` content (``runtime_s`` is added when it is written)."""
    return {
        "kind": kind,
        "arch": arch,
        "source": identity.get("source"),
        "target": identity.get("target"),
        "variant": identity.get("variant"),
        "run": identity.get("run"),
        "omega": None if omega is None else float(omega),
        "seed": int(seed),
        "seed_index": identity.get("seed_index"),
        "stream_max": bool(use_stream_max),
        "task": task,
        "status": result.status,
        "best_epoch": result.best_epoch,
        "last_epoch": result.last_epoch,
        "resumed_from_epoch": result.resumed_from_epoch,
        "metric": result.metric,
        "val_metric": result.val_metric,
        "test_metric": result.test_metric,
        "test_accuracy": result.test_accuracy,
        "monitor": result.monitor,
        "convergence_rate": result.convergence_rate,
        "convergence_rate_val": result.convergence_rate_val,
        "convergence_rate_test": result.convergence_rate_test,
        "n_train": len(feed.train),
        "n_val": len(feed.val),
        "n_test": len(feed.test),
        "batch_size": feed.batch_size,  # training.batch_fraction sets it per training set
        "tf_threads": tf_threads(),  # the order of TensorFlow's sums depends on it
        "steps_per_epoch": feed.steps_per_epoch(),  # more than one pass with training.min_epoch_steps
        "timings": timings,
        "history": result.history,
        "config": spec,
        "versions": versions(),
    }


def _run(
    *, kind: str, config: Mapping[str, Any], arch: str, dataset: str, store: str | Path,
    out_dir: str | Path, seed: int, use_stream_max: bool, identity: Mapping[str, Any],
    subset: str | Path | None = None, pretrained: str | Path | None = None,
    omega: float | None = None, save: bool,
) -> dict[str, Any]:
    """Train one job's model on ``dataset`` (its ``subset`` when given), save it when
    ``save``, write result.json last and return its content."""
    from .feed import Feed
    from .models.common import input_channels
    from .training import train

    started = process_start()
    timings = {"import": time.time() - started}  # process start -> this job's code running
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    training = config["training"]

    clock = time.perf_counter()
    attrs = store_attrs(store)
    shaped_by = shaping(job_switches(config), kind=kind, arch=arch, task=attrs["task"],
                        channels=int(attrs["channels"]))
    # the job acts on the switches that shape it; ours for the rest (they cannot change it)
    switches = {**PRESETS["validation"], **shaped_by}
    model, optimizer, as_regression = _model_and_optimizer(
        kind, arch, dataset, attrs, config, switches, seed=seed, use_stream_max=use_stream_max,
        pretrained=pretrained, omega=omega,
    )
    timings["model_build"] = time.perf_counter() - clock

    clock = time.perf_counter()
    feed_args = dict(
        use_stream_max=use_stream_max, seed=seed, model_channels=input_channels(model),
        batch_size=int(training["batch_size"]),
        standardize_labels=bool(training.get("standardize_labels", False)),
        min_epoch_steps=int(training.get("min_epoch_steps", 0)),
        batch_fraction=float(training.get("batch_fraction", 0.0)),
        drop_remainder=switches["drop_last_batch"],
    )
    feed = Feed.from_subset(store, subset, **feed_args) if subset else Feed(store, **feed_args)
    timings["data_load"] = time.perf_counter() - clock

    result = train(model, optimizer, feed, task=attrs["task"], config=config, out_dir=out_dir, seed=seed,
                   switches=switches, loss="mse" if as_regression else None, log=log)
    timings.update(training=result.seconds["training"], evaluation=result.seconds["evaluation"])
    if save:
        clock = time.perf_counter()
        save_model(model, out_dir / "model.keras")
        timings["save"] = time.perf_counter() - clock

    record = _record(kind, arch, identity, seed=seed, use_stream_max=use_stream_max, omega=omega,
                     task=attrs["task"], result=result, feed=feed, timings=timings,
                     spec=spec_with(config, dataset, shaped_by))  # the spec job_spec gives this job
    _write_result(out_dir, record, started, keep_checkpoint=training.get("keep_checkpoint", False))
    return record


def _write_result(out_dir: Path, record: dict[str, Any], started: float, *, keep_checkpoint: bool) -> None:
    """Write result.json (with ``runtime_s``: process start -> now), then drop the checkpoint."""
    from .training import remove_checkpoint

    record["runtime_s"] = time.time() - started
    write_json(out_dir / "result.json", json_safe(record))
    if not keep_checkpoint:
        remove_checkpoint(out_dir)  # only now: a job killed before result.json resumes from it
    log.info("%s %s: %s, best epoch %s, val %s %s, test %s", record["kind"], record["arch"],
             record["status"], record["best_epoch"], record["metric"], record["val_metric"],
             record["test_metric"])


def _stream_max_setting(config: Mapping[str, Any], dataset: str) -> bool:
    # a dataset given by format may leave stream_max out (default false, as job_spec has it)
    return bool(config["datasets"][dataset].get("stream_max", False))


def pretrain(config, arch: str, dataset: str, seed_index: int, store, out_dir) -> dict[str, Any]:
    """Train ``arch`` from scratch on the full training split of ``dataset`` (one seed)."""
    seed = int_seed(config["seed"], *seed_parts("pretrain", arch=arch, dataset=dataset, seed_index=int(seed_index)))
    return _run(
        kind="pretrain", config=config, arch=arch, dataset=dataset, store=store, out_dir=out_dir,
        seed=seed, use_stream_max=_stream_max_setting(config, dataset),
        identity={"source": dataset, "target": None, "seed_index": int(seed_index)}, save=True,
    )


def stream_max(
    config, arch: str, dataset: str, stream_max: bool, seed_index: int, store, out_dir
) -> dict[str, Any]:
    """Table 2: ``pretrain`` with the stream_max input forced on (``stream_max``) or off."""
    seed = int_seed(config["seed"], *seed_parts("stream_max", arch=arch, dataset=dataset, seed_index=int(seed_index)))
    return _run(
        kind="stream_max", config=config, arch=arch, dataset=dataset, store=store, out_dir=out_dir,
        seed=seed, use_stream_max=bool(stream_max),
        identity={"source": None, "target": dataset, "seed_index": int(seed_index)},
        save=bool(config["training"].get("save_models", False)),
    )


def referent(config, arch: str, target: str, variant: str, run: int, store, subset, out_dir):
    """A model trained from scratch on one run's reduced training set of ``target``."""
    seed = int_seed(config["seed"], *seed_parts("referent", arch=arch, target=target, variant=variant, run=int(run)))
    return _run(
        kind="referent", config=config, arch=arch, dataset=target, store=store, out_dir=out_dir,
        seed=seed, use_stream_max=_stream_max_setting(config, target), subset=subset,
        identity={"source": None, "target": target, "variant": variant, "run": int(run)},
        save=bool(config["training"].get("save_models", False)),
    )


def finetune(
    config, arch: str, source: str, target: str, variant: str, run: int, omega: float,
    pretrained, store, subset, out_dir,
) -> dict[str, Any]:
    """The pretrained model's (``pretrained``, .keras) transferable layers in a fresh
    target model, fine-tuned with learning-rate multiplier ``omega`` on the transferred
    variables."""
    omega = float(omega)
    seed = int_seed(config["seed"], *seed_parts("finetune", arch=arch, source=source, target=target,
                                                variant=variant, run=int(run), omega=omega))
    return _run(
        kind="finetune", config=config, arch=arch, dataset=target, store=store, out_dir=out_dir,
        seed=seed, use_stream_max=_stream_max_setting(config, target), subset=subset,
        pretrained=pretrained, omega=omega,
        identity={"source": source, "target": target, "variant": variant, "run": int(run)},
        save=bool(config["training"].get("save_models", False)),
    )


# --------------------------------------------------------------------------- selection
# The criteria select_pretrained can choose the best pretraining seed by: the
# validation metric (ours) or the test metric (switch select_seed_on_test). The authors
# chose by hand and did not say how; the only tools in their repository that could
# have informed it (report_baseline_models.py, make_baseline_predictions.py) read the
# test set, so "test" is a guess at their way, not a documented fact.
SEED_CRITERIA = {"validation": "val_metric", "test": "test_metric"}
CRITERION_NOTES = {
    "validation": "the best validation metric (ours)",
    "test": "the best test metric (switch select_seed_on_test: the authors chose by hand "
            "with tools that read the test set; their criterion is unknown)",
}


def select_pretrained(
    result_json_paths: Sequence[str | Path], out_path: str | Path, *, model_out: str | Path | None = None,
    criterion: str = "validation",
) -> dict[str, Any]:
    """Pick the best pretraining seed by ``criterion`` (:data:`SEED_CRITERIA`; recorded
    in the JSON) and write ``out_path`` (JSON). Best = lowest MAE / highest weighted F1;
    diverged runs (or runs without a finite metric) are never chosen; ties go to the
    lowest seed index. The chosen run's ``model.keras`` (beside its result.json) is
    named in the JSON and, with ``model_out``, copied there atomically."""
    if criterion not in SEED_CRITERIA:
        raise ValueError(f"seed selection criterion {criterion!r} is not one of {', '.join(SEED_CRITERIA)}")
    key = SEED_CRITERIA[criterion]
    candidates = []
    for path in result_json_paths:
        path = Path(path)
        result = json.loads(path.read_text())
        candidates.append({
            "result": str(path), "model": str(path.parent / "model.keras"),
            "seed_index": result.get("seed_index"), "seed": result.get("seed"),
            "status": result.get("status"), "metric": result.get("metric"),
            "val_metric": result.get("val_metric"), "test_metric": result.get("test_metric"),
            "arch": result.get("arch"),
            "dataset": trained_on(result),
        })
    if not candidates:
        raise ValueError("no pretraining results to choose from")
    if len({(c["arch"], c["dataset"], c["metric"]) for c in candidates}) != 1:
        raise ValueError("pretraining results of different architectures/datasets/metrics: "
                         + ", ".join(c["result"] for c in candidates))
    metric = candidates[0]["metric"]
    if metric not in LOWER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r} in {candidates[0]['result']}")
    eligible = [
        c for c in candidates
        if c["status"] == "ok" and c[key] is not None and math.isfinite(c[key])
    ]
    if not eligible:
        raise ValueError("every pretraining seed diverged: " + ", ".join(c["result"] for c in candidates))
    best = None
    for c in sorted(eligible, key=lambda c: c["seed_index"]):
        if best is None or is_better(c[key], best[key], metric):
            best = c  # strict improvement only: ties keep the lower seed index
    selection = {
        "arch": best["arch"], "dataset": best["dataset"], "metric": metric,
        "seed_index": best["seed_index"], "seed": best["seed"], "val_metric": best["val_metric"],
        "result": best["result"], "model": best["model"],
        "candidates": [{k: c[k] for k in ("seed_index", "status", "val_metric", "result")}
                       for c in candidates],
    }
    selection.update(criterion=criterion, criterion_note=CRITERION_NOTES[criterion],
                     test_metric=best["test_metric"])
    for entry, c in zip(selection["candidates"], candidates):
        entry["test_metric"] = c["test_metric"]
    if model_out is not None:
        with atomic_path(model_out) as tmp:
            shutil.copyfile(best["model"], tmp)
        selection["model_copy"] = str(model_out)
    write_json(out_path, selection)
    return selection


__all__ = ["pretrain", "referent", "finetune", "stream_max", "select_pretrained",
           "versions", "save_model", "load_model", "process_start"]
