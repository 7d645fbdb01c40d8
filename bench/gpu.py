"""Training jobs of the paper's shapes on this machine's device: epoch time, data wait, fixed cost, determinism.

    python bench/gpu.py [--quick] [--archs A ...] [--datasets D ...] [--epochs 2] [--val 1000]
                        [--max-seconds 290] [--json FIGURES.json] [--config config/config.yaml]

For each architecture of the config and each input shape of its datasets (length, channels,
task and outputs from the dataset's own module and extract settings,
:func:`tstransfer.datasets.input_shape`) it writes a synthetic store of that shape with the
project's store writer (``store.convert`` of random-walk waveforms, the dataset's real name,
task and classes) holding a training split of the largest variant, ``--val`` validation and
a few test instances, draws the config's variants (1k5 = 1,500 and 9k = 9,000 instances) with
``store.make_subset``, and runs the project's job (``tstransfer.jobs.referent``: model build,
``Feed``, ``training.train`` with validation every epoch, result.json) for ``--epochs``
epochs, in this process. Per (architecture, dataset, variant) it prints:

* ``epoch_s``: the median epoch after the first (which traces), as the job's history
  records it (training plus the validation pass over ``--val`` instances);
* ``train_ips`` / ``predict_ips``: training instances/s (the epoch less its validation
  pass) and prediction instances/s (the validation pass itself: the job's own calls of
  ``training.evaluate_all`` over the validation split, timed by a wrapper), the medians of
  the epochs after the first -- what ``tstransfer.cluster_budget`` scales to the real
  split sizes;
* ``wait_%``: the data-wait share, measured by **timing the iterator alone**: one epoch of
  ``Feed.training_dataset`` drawn to the end with no model (the second of two: the first
  builds the pipeline, as a job's one ``fit`` call does once), as a share of the epoch's
  training part. The feed prefetches, so this bounds the wait from above (the model waits
  only when the feed is the slower of the two);
* ``same``: the 1k5 job run twice in this process gives identical losses and metrics
  (every epoch's, and the test metric): ``yes``/``no``. The 9k job runs once.

Then per architecture the fixed cost of one job in a **fresh subprocess**: the training CLI
(``python -m tstransfer.cli referent ...``, no job server) on the first dataset's 1k5
subset for one epoch; ``fixed_s`` is its wall time less one steady epoch (process start,
imports, device initialisation, model build, data load, first-step tracing, the test pass,
result writing), ``import_s`` the job's own record of process start to its code running
(what a packed allocation's job server pays once), ``same_fresh`` whether its epoch equals
the first epoch of the in-process 1k5 job.

``--quick`` (the CI form, tests/test_bench_gpu.py): one architecture, inputs cut to 64 time
steps, variants of 96 and 192 instances, 32 validation instances, 2 epochs. Without it the
real sizes, for a GPU: ``--max-seconds`` (default 290) stops starting new cells once spent,
so the run stays within about 5 minutes (a cell already started runs to its end) and says
what it skipped; it starts with the first dataset (every architecture and its fixed cost),
then the other datasets. GPU memory grows as needed (``TF_FORCE_GPU_ALLOW_GROWTH``) so that
the fresh process finds some beside this one. Not yet run on a GPU: the 5 minutes are a
limit, not a measurement.
``--json OUT`` writes the figures for ``python -m tstransfer.cluster_budget --figures OUT``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import yaml

import tstransfer
from tstransfer.datasets import get as dataset_module
from tstransfer.datasets import input_shape

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"length": 64, "variants": {"1k5": 96, "9k": 192}, "val": 32, "epochs": 2}
TEST_INSTANCES = 64
COLUMNS = ["arch", "dataset", "shape", "variant", "n_train", "epoch_s", "train_ips", "predict_ips", "wait_%", "same"]
FIXED_COLUMNS = ["arch", "dataset", "fixed_s", "import_s", "same_fresh"]


def toy_module(name: str, n: int, length: int, seed: int = 0):
    """A dataset module yielding ``n`` random-walk instances of ``name``'s shape (its real
    INFO: name, task, channels, classes), for ``store.convert``."""
    from tstransfer.datasets.base import InstanceIndex, RawChunk

    info = dataset_module(name).INFO
    rng = np.random.default_rng(seed)
    if info.task == "classification":
        labels = np.arange(n) % info.n_outputs
        scale = 1.0 + labels
    else:
        labels = rng.uniform(1.0, 4.0, n).astype(np.float32)
        scale = labels
    keys = [f"b{i:06d}" for i in range(n)]

    def list_instances(raw, params, log):
        return InstanceIndex(pd.DataFrame({"key": keys, "label": labels}))

    def read_chunks(raw, params, index, chunk_size):
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            block = rng.standard_normal((stop - start, length, info.channels), dtype=np.float32).cumsum(axis=1)
            yield RawChunk(block * scale[start:stop, None, None], labels[start:stop], keys[start:stop], "bench")

    return SimpleNamespace(INFO=info, list_instances=list_instances, read_chunks=read_chunks, raw_files=lambda p: [])


def make_store(folder: Path, name: str, length: int, variants: dict[str, int], n_val: int) -> tuple[Path, dict]:
    """The synthetic store of ``name``'s shape and one subset per variant (run 0)."""
    from tstransfer import store

    n_train = max(variants.values()) + 8  # the split's rounding must leave room for the largest variant
    n = n_train + n_val + TEST_INSTANCES
    path = folder / f"{name}.zarr"
    store.convert(toy_module(name, n, length), folder, path, {}, seed=1,
                  fractions=(n_train / n, n_val / n, TEST_INSTANCES / n))
    subsets = {}
    for variant, size in variants.items():
        subsets[variant] = folder / f"{name}_{variant}.npz"
        store.make_subset(path, subsets[variant], variant=variant, size=size, run=0, seed=1)
    return path, subsets


def job_config(config: dict, epochs: int) -> dict:
    """The config with ``epochs`` epochs, nothing saved and no early stop before them."""
    config = copy.deepcopy(config)
    training = config["training"]
    training.update(max_epochs=epochs, save_models=False)
    training["early_stopping"] = {**training["early_stopping"], "patience": epochs + 1}
    return config


def history_same(a: dict, b: dict) -> bool:
    keys = ("train_loss", "val_loss", "val_metric")
    return all(a["history"][k] == b["history"][k] for k in keys) and a["test_metric"] == b["test_metric"]


def steady(values: list[float]) -> float:
    """The median of the epochs after the first (which traces)."""
    return statistics.median(values[1:] if len(values) > 1 else values)


@contextlib.contextmanager
def timed_validation():
    """Record the seconds of every validation pass a job makes (``training.evaluate_all``
    over ``val``, called at each epoch's end) in the list this yields."""
    from tstransfer import training

    seconds, original = [], training.evaluate_all

    def timed(model, feed, split, *args, **kwargs):
        started = time.perf_counter()
        values = original(model, feed, split, *args, **kwargs)
        if split == "val":
            seconds.append(time.perf_counter() - started)
        return values

    training.evaluate_all = timed
    try:
        yield seconds
    finally:
        training.evaluate_all = original


def iterator_seconds(name: str, store: Path, subset: Path, config: dict) -> float:
    """The second of two training epochs of the feed, drawn to its end without a model
    (the first builds the pipeline, as a job's one ``fit`` call does once)."""
    from tstransfer.feed import Feed

    feed = Feed.from_subset(store, subset, use_stream_max=bool(config["datasets"][name].get("stream_max", False)),
                            seed=0, batch_size=int(config["training"]["batch_size"]))
    batches = iter(feed.training_dataset(1, 3))
    for _ in range(feed.steps_per_epoch()):
        next(batches)
    started = time.perf_counter()
    for _ in range(feed.steps_per_epoch()):
        next(batches)
    return time.perf_counter() - started


def run_cell(arch: str, name: str, shape, store: Path, subsets: dict, config: dict, folder: Path) -> list[dict]:
    """The rows of one (architecture, dataset): one per variant."""
    from tstransfer import jobs

    rows, first = [], None
    for i, (variant, subset) in enumerate(subsets.items()):
        out = folder / "jobs" / arch / name / variant
        with timed_validation() as val_seconds:
            record = jobs.referent(config, arch, name, variant, 0, store, subset, out / "a")
        same = "-"
        if i == 0:
            again = jobs.referent(config, arch, name, variant, 0, store, subset, out / "b")
            same = "yes" if history_same(record, again) else "no"
            first = record
        epochs = record["history"]["epoch_seconds"]
        epoch, val_s = steady(epochs), steady(val_seconds)
        train_s = steady([e - v for e, v in zip(epochs, val_seconds)])
        wait = iterator_seconds(name, store, subset, config)
        rows.append({"arch": arch, "dataset": name, "length": shape.length, "channels": shape.channels,
                     "shape": f"{shape.length}x{shape.channels}", "variant": variant, "n_train": record["n_train"],
                     "n_val": record["n_val"], "epoch_s": epoch, "train_ips": record["n_train"] / train_s,
                     "predict_ips": record["n_val"] / val_s, "wait_%": min(100.0, 100 * wait / train_s), "same": same,
                     "first_epoch": {k: first["history"][k][0] for k in ("train_loss", "val_loss")}})
    return rows


def fixed_cost(arch: str, name: str, store: Path, subset: Path, config: dict, folder: Path, row: dict) -> dict:
    """One epoch of the 1k5 job in a fresh process through the training CLI; see the docstring."""
    from tstransfer.plan import job_spec

    spec = job_spec(job_config(config, 1), kind="referent", arch=arch, dataset=name)
    out = folder / "fresh" / arch
    env = {k: v for k, v in os.environ.items() if k != "TSTRANSFER_JOBSERVER"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(tstransfer.__file__).resolve().parents[1]),
                                         *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = [sys.executable, "-m", "tstransfer.cli", "referent", "--spec", json.dumps(spec), "--arch", arch,
               "--target", name, "--variant", row["variant"], "--run", "0", "--store", str(store),
               "--subset", str(subset), "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"fresh job {arch} on {name} failed: {done.stderr.strip().splitlines()[-1:]}")
    record = json.loads((out / "result.json").read_text())
    same = all(record["history"][k][0] == v for k, v in row["first_epoch"].items())
    return {"arch": arch, "dataset": name, "fixed_s": wall - row["epoch_s"], "import_s": record["timings"]["import"],
            "same_fresh": "yes" if same else "no"}


def device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"{len(gpus)} x {details.get('device_name', 'GPU')}"
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def format_table(rows: list[dict], columns: list[str]) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if value < 100 else f"{value:.0f}"
        return str(value)

    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--quick", action="store_true", help="the CI-sized form (see the docstring)")
    parser.add_argument("--archs", nargs="+", help="default: the config's (--quick: its first)")
    parser.add_argument("--datasets", nargs="+", help="default: the config's sources and targets")
    parser.add_argument("--epochs", type=int, help="epochs per job, at least 2 (default 2)")
    parser.add_argument("--val", type=int, help="validation instances per store (default 1000; --quick 32)")
    parser.add_argument("--max-seconds", type=float, default=290.0,
                        help="start no new cell after this many seconds (default 290)")
    parser.add_argument("--json", help="write the figures here (for python -m tstransfer.cluster_budget)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    config = yaml.safe_load(Path(args.config).read_text())
    archs = args.archs or (config["architectures"][:1] if args.quick else config["architectures"])
    names = args.datasets or list(dict.fromkeys([*config["sources"], *config["targets"]]))
    epochs = args.epochs or QUICK["epochs"]
    if epochs < 2:
        parser.error("--epochs: at least 2 (the first epoch traces; the figures are the later ones')")
    variants = QUICK["variants"] if args.quick else {str(k): int(v) for k, v in config["variants"].items()}
    n_val = args.val or (QUICK["val"] if args.quick else 1000)
    config = job_config(config, epochs)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow maps nearly all GPU memory by default: the fresh-process job beside this
    # one would find none (set before the import; the child inherits it)
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    from tstransfer.tfquiet import import_tensorflow

    import_tensorflow()
    where = device()
    print(f"device: {where}; commit {commit()}; {epochs} epochs per job; {n_val} validation instances"
          + ("; --quick" if args.quick else ""), flush=True)
    rows, fixed, skipped = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        folder = Path(tmp)
        for position, name in enumerate(names):
            shape = input_shape(name, config["datasets"][name].get("extract"))
            if args.quick:
                shape = type(shape)(min(shape.length, QUICK["length"]), shape.channels, shape.task, shape.n_outputs)
            if time.monotonic() - started > args.max_seconds:
                skipped += [f"{arch}/{name}" for arch in archs]
                continue
            store, subsets = make_store(folder / name, name, shape.length, variants, n_val)
            for arch in archs:
                if time.monotonic() - started > args.max_seconds:
                    skipped.append(f"{arch}/{name}")
                    continue
                cell_rows = run_cell(arch, name, shape, store, subsets, config, folder)
                rows += cell_rows
                print(format_table(cell_rows, COLUMNS).split("\n", 1)[1], flush=True)
                if position == 0:
                    fixed.append(fixed_cost(arch, name, store, subsets[cell_rows[0]["variant"]], config, folder,
                                            cell_rows[0]))
    print()
    print(format_table(rows, COLUMNS))
    print()
    print(format_table(fixed, FIXED_COLUMNS))
    if skipped:
        print(f"\nskipped (--max-seconds {args.max_seconds:g}): {', '.join(skipped)}")
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        throughput = {}
        for row in rows:  # the largest variant's rates (the most steps) stand for the cell
            key = (row["arch"], row["dataset"])
            if key not in throughput or row["n_train"] > throughput[key]["n_train"]:
                throughput[key] = row
        figures = {
            "device": where, "commit": commit(), "quick": args.quick, "epochs": epochs, "rows": rows,
            "throughput": [{k: r[k] for k in ("arch", "dataset", "length", "channels", "n_train", "train_ips",
                                              "predict_ips")} for r in throughput.values()],
            "fixed": {f["arch"]: {"fixed_s": f["fixed_s"], "import_s": f["import_s"], "dataset": f["dataset"]}
                      for f in fixed},
        }
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
