"""Training throughput through the project's pipeline against a bare ``model.fit``.

    python bench/train.py [--archs convnetquake_ingv magnet ...] [--lengths 80 540 1001]
                          [--epochs 3] [--instances 1500] [--stream] [--fixed-cost-only]

For each architecture and length (3 channels, regression, stream_max on, batch 32) it
writes a toy store (``store.convert`` of random-walk waveforms) with a 1,500-instance
training subset (``store.make_subset``), builds the model with ``build_model`` and
measures instances per second of a training epoch:

* ``bare``: ``model.fit`` on in-memory numpy arrays (``shuffle=True``), all epochs in one
  call, each epoch timed by a callback from its first batch to its end (no per-call cost);
* ``pipeline``: what ``training.train`` runs -- ``Feed.from_subset`` loaded once, then one
  ``model.fit`` over ``feed.training_dataset`` (every epoch's seeded permutation, batches
  gathered by index from the arrays held in TensorFlow);
* ``stream`` (with ``--stream``): the same through the chunk-streaming path used for
  training splits too big for memory (background reader, shuffle buffer, tf.data).

Every epoch is timed by a callback from its start to its end (so ``fit``'s per-call
set-up counts for neither path; ``training.train`` makes one ``fit`` call per job). The
paths alternate epoch by epoch, after one warm-up epoch each (tracing), so load on the
machine affects all alike; each figure is the median of ``--epochs`` epochs, and the
ratio to bare is printed (target >= 0.9), with the pipeline dataset's one-off set-up
(copying the arrays into TensorFlow, the permutations) beside it.

Then the fixed cost of one job, each in a fresh subprocess, median of 3: a bare
``python -c "import tensorflow"``, and the job's fixed part -- process start, imports
(``tstransfer.jobs``, models, TensorFlow/Keras), data load (``Feed.from_subset``) and model
build -- exiting before the first epoch (target: <= 2 s above the bare import).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

ARCHS = ["convnetquake_ingv", "magnet", "mlstm_fcn", "tcn", "fcn"]
LENGTHS = [80, 540, 1001]


def toy_module(n: int, length: int, channels: int = 3, seed: int = 0):
    from tstransfer.datasets.base import DatasetInfo, InstanceIndex, RawChunk

    rng = np.random.default_rng(seed)
    labels = rng.uniform(1.0, 4.0, n).astype(np.float32)
    keys = [f"b{i:06d}" for i in range(n)]
    info = DatasetInfo(name="bench", title="Bench", domain="toy", task="regression",
                       channels=channels, sampling_rate=1.0, units="a.u.")

    def list_instances(raw, params, log):
        return InstanceIndex(pd.DataFrame({"key": keys, "label": labels}))

    def read_chunks(raw, params, index, chunk_size):
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            block = rng.standard_normal((stop - start, length, channels)).cumsum(axis=1)
            yield RawChunk(block * labels[start:stop, None, None], labels[start:stop],
                           keys[start:stop], "bench")

    return SimpleNamespace(INFO=info, list_instances=list_instances, read_chunks=read_chunks,
                           raw_files=lambda p: [])


def make_store(folder: Path, length: int, instances: int) -> tuple[Path, Path]:
    from tstransfer import store

    path, subset = folder / f"bench_{length}.zarr", folder / f"bench_{length}_sub.npz"
    if not path.exists():
        n = int(np.ceil(instances / 0.7)) + 20
        store.convert(toy_module(n, length), folder, path, {}, seed=1)
        store.make_subset(path, subset, variant="bench", size=instances, run=0, seed=1)
    return path, subset


class EpochTimer:
    def __init__(self):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        self.callback = Timer()


def throughput(arch: str, length: int, folder: Path, instances: int, epochs: int, stream: bool):
    import keras

    from tstransfer.feed import Feed
    from tstransfer.models import build_model

    path, subset = make_store(folder, length, instances)
    feed = Feed.from_subset(path, subset, use_stream_max=True, seed=0)
    model = build_model(arch, length=length, channels=3, task="regression", n_outputs=1,
                        stream_max=True, dataset="bench", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mean_squared_error")
    streamed = Feed.from_subset(path, subset, use_stream_max=True, seed=0, force_stream=True) if stream else None

    x = feed.inputs(feed.train.waveform, feed.train.stream_max)
    y = feed.targets(feed.train.labels)
    times = {"bare": [], "pipeline": [], "stream": []}
    setup = []

    def timed_fit(path: str, **fit_args) -> None:
        timer = EpochTimer().callback
        model.fit(**fit_args, epochs=1, verbose=0, callbacks=[timer])
        times[path] += timer.seconds

    def one_epoch_each(epoch: int) -> None:
        timed_fit("bare", x=x, y=y, batch_size=32, shuffle=True)
        for path, source in (("pipeline", feed), ("stream", streamed)):
            if source is not None:
                started = time.perf_counter()
                dataset = source.training_dataset(epoch, epoch + 1)
                setup.append(time.perf_counter() - started)
                timed_fit(path, x=dataset, steps_per_epoch=source.steps_per_epoch(), shuffle=False)

    one_epoch_each(0)  # warm-up: traces the train function for each input structure
    for values in times.values():
        values.clear()
    for epoch in range(1, epochs + 1):  # alternate epoch by epoch: load hits all paths alike
        one_epoch_each(epoch)
    n = len(feed.train)
    row = {path: n / statistics.median(values) for path, values in times.items() if values}
    row["setup_s"] = max(setup)
    return row


FIXED_JOB = """
import sys, time
from tstransfer import jobs                     # the clock starts at process start
import keras
from tstransfer.feed import Feed
from tstransfer.models import build_model
from tstransfer.models.common import input_channels
imported = time.time()
feed = Feed.from_subset(sys.argv[1], sys.argv[2], use_stream_max=True, seed=0)
loaded = time.time()
model = build_model("convnetquake_ingv", length=feed.length, channels=feed.channels,
                    task="regression", n_outputs=1, stream_max=True, dataset="bench", seed=0)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mean_squared_error")
built = time.time()
print(f"{imported - jobs.process_start():.3f} {loaded - imported:.3f} {built - loaded:.3f}")
"""


def fixed_cost(folder: Path, instances: int, repeats: int = 3) -> dict:
    path, subset = make_store(folder, 1001, instances)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    bare, job, parts = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, env=env,
                       capture_output=True)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", FIXED_JOB, str(path), str(subset)],
                             check=True, env=env, capture_output=True, text=True)
        job.append(time.perf_counter() - started)
        parts.append([float(v) for v in out.stdout.split()[-3:]])
    parts = np.median(np.array(parts), axis=0)
    return {"bare_import_s": statistics.median(bare), "job_fixed_s": statistics.median(job),
            "import_s": parts[0], "data_load_s": parts[1], "model_build_s": parts[2]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=ARCHS[:4], choices=ARCHS)  # default: the paper's four
    parser.add_argument("--lengths", nargs="+", type=int, default=LENGTHS)
    parser.add_argument("--epochs", type=int, default=5, help="measured epochs after a warm-up")
    parser.add_argument("--instances", type=int, default=1500)
    parser.add_argument("--stream", action="store_true", help="also time the streaming path")
    parser.add_argument("--skip", nargs="*", default=[], help="arch:length pairs to leave out")
    parser.add_argument("--fixed-cost-only", action="store_true")
    parser.add_argument("--no-fixed-cost", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        folder = Path(tmp)
        if not args.fixed_cost_only:
            print(f"{'arch':<18}{'length':>7}{'bare/s':>10}{'pipeline/s':>12}{'ratio':>7}"
                  + (f"{'stream/s':>10}{'ratio':>7}" if args.stream else ""), flush=True)
            for arch in args.archs:
                for length in args.lengths:
                    if f"{arch}:{length}" in args.skip:
                        continue
                    row = throughput(arch, length, folder, args.instances, args.epochs, args.stream)
                    line = (f"{arch:<18}{length:>7}{row['bare']:>10.0f}{row['pipeline']:>12.0f}"
                            f"{row['pipeline'] / row['bare']:>7.2f}")
                    if args.stream:
                        line += f"{row['stream']:>10.0f}{row['stream'] / row['bare']:>7.2f}"
                    line += f"  (dataset set-up {row['setup_s']:.2f} s)"
                    print(line, flush=True)
        if not args.no_fixed_cost:
            cost = fixed_cost(folder, args.instances)
            print(
                f"fixed cost of a job (median of 3 fresh processes): {cost['job_fixed_s']:.2f} s "
                f"(imports {cost['import_s']:.2f}, data load {cost['data_load_s']:.2f}, "
                f"model build {cost['model_build_s']:.2f}); bare 'import tensorflow' "
                f"{cost['bare_import_s']:.2f} s; difference "
                f"{cost['job_fixed_s'] - cost['bare_import_s']:+.2f} s", flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
