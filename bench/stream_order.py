"""How far the streamed training order is from a full per-epoch permutation.

    python bench/stream_order.py mixing [--instances 100000] [--epochs 5]
    python bench/stream_order.py train  [--instances 43000] [--epochs 10] [--seeds 3] [--layouts runs]
    python bench/stream_order.py read   [--instances 20000] [--length 540] [--epochs 5]

Training splits too big for memory (LEN-DB, STEAD) are streamed (``feed.Feed``): chunks
of 256 instances in a seeded random order, shuffled only inside windows of
``shuffle_window`` chunks. The paper's authors drew every batch from a full permutation
of the training set. When the store's physical order follows the raw files, where
neighbouring traces share station, time and magnitude, a window holds a few narrow slices
of the label range and its ~64 consecutive batches all lean the same way.

Stores are converted by the real ``store.convert`` from a synthetic regression dataset
whose label is laid out along the raw order as ``sorted`` (worst case: labels ascending)
or ``runs`` (runs of 512 instances sharing a label level, like traces of one event or
station) -- once in the raw order (``shuffle=False``, as stores were written before) and
once in the seeded random store order that ``store.convert`` now writes.

``mixing`` (no training, seconds): statistics of the batches (32 instances) of whole
epochs, medians over ``--epochs`` epochs, for

* ``full``: the in-memory path's per-epoch permutation (``Feed.epoch_order``);
* ``raw W=w``: the stream over the raw-order store with a window of ``w`` chunks;
* ``shuffled W=8``: the stream over the shuffled store with the default window.

Columns: ``within`` = mean per-batch label variance / the split's label variance (1 for
i.i.d. batches); ``between`` = variance of batch means / (label variance / 32) (1 for
i.i.d. batches; a window of w homogeneous chunks gives about 1 + 32 / w); ``lag1`` =
correlation of consecutive batch means (0 for i.i.d. batches). Under a full permutation
``between`` and ``lag1`` have sampling sds of about sqrt(2 / k) and 1 / sqrt(k) for k
batches per epoch; they are printed.

``train``: ConvNetQuake_INGV (length 64, 3 channels, no stream_max: the label sets the
waveform's frequency) trained by ``training.train`` (Adam 1e-3, batch 32, the paper's
ReduceLROnPlateau; early stopping off, so every run has ``--epochs`` epochs) on the
``sorted`` layout (or the first of ``--layouts``), per seed: ``stream raw`` (raw-order store, the training split
streamed: ``memory_limit_bytes`` below its size), ``full`` (the same store, training split
in memory: full permutation per epoch), ``stream shuffled`` (shuffled store, streamed)
and ``full shuffled`` (shuffled store, in memory: another full permutation, the yardstick
for how much two equally good orders differ). Validation and test sets are the same
instances in all four.

``read``: what the random store order costs the streamed reads: instances per second of
a whole streamed epoch (``Feed.stream_train_blocks``: chunk reads, decompression, mask,
window shuffle; no model) over the raw-order and the shuffled store (3 channels,
``--length`` samples), alternating, median of ``--epochs`` epochs each, and the ratio. Printed: per-epoch
validation loss (median over seeds), best and last validation MAE and the validation
convergence rate (medians over seeds), and per-seed ratios to ``full`` taken in one run
(medians).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

BATCH = 32


# --------------------------------------------------------------------------- data
def labels_along_raw_order(n: int, layout: str, rng: np.random.Generator) -> np.ndarray:
    """Labels in [1, 4] in the raw order: ``sorted``, ``runs`` of 512, or ``iid``."""
    if layout == "sorted":
        return np.sort(rng.uniform(1.0, 4.0, n))
    if layout == "runs":
        levels = rng.uniform(1.0, 4.0, -(-n // 512))
        return np.clip(np.repeat(levels, 512)[:n] + rng.normal(0, 0.1, n), 1.0, 4.0)
    if layout == "iid":
        return rng.uniform(1.0, 4.0, n)
    raise ValueError(layout)


def toy_module(n: int, length: int, layout: str, seed: int = 0):
    """A regression DatasetModule: the label sets a noisy sine's frequency (learnable
    from the min-max scaled waveform alone); amplitudes are random."""
    from tstransfer.datasets.base import DatasetInfo, InstanceIndex, RawChunk
    from tstransfer.seeding import rng_for

    labels = labels_along_raw_order(n, layout, rng_for(seed, "bench-labels", layout))
    keys = [f"s{i:07d}" for i in range(n)]
    info = DatasetInfo(name=f"order_{layout}", title="Stream order bench", domain="toy",
                       task="regression", channels=3, sampling_rate=1.0, units="a.u.")
    t = np.arange(length)

    def list_instances(raw, params, log):
        return InstanceIndex(pd.DataFrame({"key": keys, "label": labels}))

    def read_chunks(raw, params, index, chunk_size):
        rng = rng_for(seed, "bench-waves", layout)
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            y = labels[start:stop, None, None]
            freq = 1 / 32 + (y - 1) / 3 * (1 / 6 - 1 / 32)  # cycles per sample
            phase = rng.uniform(0, 2 * np.pi, (stop - start, 1, 3))
            amplitude = 10 ** rng.uniform(-1, 1, (stop - start, 1, 1))
            wave = np.sin(2 * np.pi * freq * t[None, :, None] + phase)
            wave = wave + rng.normal(0, 0.5, wave.shape)
            yield RawChunk(wave * amplitude, labels[start:stop], keys[start:stop], "bench")

    return SimpleNamespace(INFO=info, list_instances=list_instances, read_chunks=read_chunks,
                           raw_files=lambda p: [])


def make_stores(folder: Path, n: int, length: int, layout: str) -> dict[str, Path]:
    from tstransfer import store

    out = {}
    module = toy_module(n, length, layout)
    for order in ("raw", "shuffled"):
        path = folder / f"{layout}_{n}_{length}_{order}.zarr"
        if not path.exists():
            started = time.perf_counter()
            store.convert(module, folder, path, {}, seed=1, shuffle=order == "shuffled")
            print(f"  converted {path.name} in {time.perf_counter() - started:.1f} s", flush=True)
        out[order] = path
    return out


# --------------------------------------------------------------------------- mixing
def batch_stats(labels: np.ndarray, batch: int = BATCH) -> dict[str, float]:
    """``within``, ``between`` and ``lag1`` (module docstring) of the full batches of
    ``labels`` taken in training order."""
    k = len(labels) // batch
    y = np.asarray(labels[: k * batch], dtype=np.float64).reshape(k, batch)
    var = np.var(labels, ddof=1)
    means = y.mean(axis=1)
    return {
        "within": float(y.var(axis=1, ddof=1).mean() / var),
        "between": float(means.var(ddof=1) / (var / batch)),
        "lag1": float(np.corrcoef(means[:-1], means[1:])[0, 1]),
    }


def mixing(folder: Path, n: int, epochs: int, layouts, windows) -> None:
    from tstransfer.feed import Feed

    for layout in layouts:
        stores = make_stores(folder, n, 8, layout)
        rows = {}
        full = Feed(stores["raw"], use_stream_max=False, seed=0, force_stream=True)
        labels = full.train.labels
        rows["full"] = [batch_stats(labels[full.epoch_order(e)]) for e in range(epochs)]
        for w in windows:
            feed = Feed(stores["raw"], use_stream_max=False, seed=0, force_stream=True, shuffle_window=w)
            rows[f"raw W={w}"] = [batch_stats(labels[feed.stream_epoch_order(e)]) for e in range(epochs)]
        feed = Feed(stores["shuffled"], use_stream_max=False, seed=0, force_stream=True)
        rows["shuffled W=8"] = [
            batch_stats(feed.train.labels[feed.stream_epoch_order(e)]) for e in range(epochs)
        ]
        k = len(labels) // BATCH
        print(f"\nlayout {layout}: {len(labels)} training instances, {len(full.train.spans)} "
              f"chunks, {k} batches/epoch; medians over {epochs} epochs "
              f"(full-permutation sampling sd: between {np.sqrt(2 / k):.3f}, lag1 {1 / np.sqrt(k):.3f})")
        print(f"  {'order':<16}{'within':>8}{'between':>9}{'lag1':>7}")
        for name, values in rows.items():
            med = {key: statistics.median(v[key] for v in values) for key in values[0]}
            print(f"  {name:<16}{med['within']:>8.3f}{med['between']:>9.3f}{med['lag1']:>7.3f}")


# --------------------------------------------------------------------------- training
def train_arms(folder: Path, n: int, length: int, epochs: int, seeds: int, layout: str) -> None:
    import keras
    import yaml

    from tstransfer.feed import Feed
    from tstransfer.metrics import convergence_rate
    from tstransfer.models import build_model
    from tstransfer.training import train

    stores = make_stores(folder, n, length, layout)
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    config["training"].update(max_epochs=epochs, early_stopping={"patience": epochs + 1})
    probe = Feed(stores["raw"], use_stream_max=False, seed=0, force_stream=True)
    limit = probe.train.nbytes - 1  # streams the training split, keeps val/test in memory
    arms = {
        "stream raw": (stores["raw"], limit),
        "full": (stores["raw"], None),
        "stream shuffled": (stores["shuffled"], limit),
        "full shuffled": (stores["shuffled"], None),
    }
    print(f"\ntraining ({layout} layout): {len(probe.train)} train / {len(probe.val)} val "
          f"instances, length {length}, {epochs} epochs, {seeds} seeds", flush=True)
    results: dict[str, list] = {arm: [] for arm in arms}
    for seed in range(seeds):
        for arm, (path, limit_bytes) in arms.items():
            options = {} if limit_bytes is None else {"memory_limit_bytes": limit_bytes}
            feed = Feed(path, use_stream_max=False, seed=seed, **options)
            assert feed.train.in_memory is (limit_bytes is None) and feed.val.in_memory
            model = build_model("convnetquake_ingv", length=length, channels=3, task="regression",
                                n_outputs=1, stream_max=False, dataset="bench", seed=seed)
            optimizer = keras.optimizers.Adam(learning_rate=1e-3)
            started = time.perf_counter()
            result = train(model, optimizer, feed, task="regression", config=config,
                           out_dir=folder / f"run_{arm.replace(' ', '_')}_{seed}", seed=seed)
            history = result.history
            results[arm].append({
                "val_loss": history["val_loss"], "best": min(history["val_metric"]),
                "last": history["val_metric"][-1],
                "rate": convergence_rate(history["val_metric"], "regression"),
                "seconds": time.perf_counter() - started,
            })
            print(f"  seed {seed} {arm:<16} best val MAE {results[arm][-1]['best']:.4f} "
                  f"last {results[arm][-1]['last']:.4f} ({results[arm][-1]['seconds']:.0f} s)", flush=True)

    print("\nper-epoch validation loss (MSE), median over seeds")
    print(f"  {'epoch':<6}" + "".join(f"{arm:>17}" for arm in arms))
    for e in range(epochs):
        print(f"  {e + 1:<6}" + "".join(
            f"{statistics.median(r['val_loss'][e] for r in results[arm]):>17.4f}" for arm in arms))
    print("\nmedians over seeds (ratios to 'full' per seed, then the median)")
    print(f"  {'arm':<16}{'best MAE':>9}{'last MAE':>9}{'conv.rate':>10}{'best/full':>10}"
          f"{'last/full':>10}{'roughness':>10}{'s/epoch':>8}")
    for arm in arms:
        rs = results[arm]

        def med(key):
            return statistics.median(r[key] for r in rs)

        def ratio(key):
            return statistics.median(r[key] / f[key] for r, f in zip(rs, results["full"]))

        # mean |change| of validation loss between consecutive epochs over its mean: how
        # jagged the curve is
        rough = statistics.median(float(np.mean(np.abs(np.diff(r["val_loss"]))) / np.mean(r["val_loss"]))
                                  for r in rs)
        print(f"  {arm:<16}{med('best'):>9.4f}{med('last'):>9.4f}{med('rate'):>10.3f}"
              f"{ratio('best'):>10.3f}{ratio('last'):>10.3f}{rough:>10.3f}{med('seconds') / epochs:>8.2f}")


def read_speed(folder: Path, n: int, length: int, epochs: int) -> None:
    from tstransfer.feed import Feed

    stores = make_stores(folder, n, length, "sorted")
    for order, path in stores.items():
        size = sum(f.stat().st_size for f in (path / "waveform").rglob("*") if f.is_file())
        print(f"  {order} store: waveform {size / 1e6:.0f} MB compressed")
    feeds = {order: Feed(path, use_stream_max=True, seed=0, force_stream=True)
             for order, path in stores.items()}
    n_train = len(feeds["raw"].train)
    rates: dict[str, list[float]] = {order: [] for order in feeds}
    for epoch in range(epochs + 1):  # epoch 0 warms the page cache and the thread pool
        # which store goes first alternates, so that a position effect hits both alike
        for order in ("raw", "shuffled") if epoch % 2 else ("shuffled", "raw"):
            feed = feeds[order]
            started = time.perf_counter()
            served = sum(len(block) for _, _, block in feed.stream_train_blocks(epoch))
            seconds = time.perf_counter() - started
            assert served == n_train
            if epoch:
                rates[order].append(n_train / seconds)
    raw, shuffled = (statistics.median(rates[o]) for o in ("raw", "shuffled"))
    ratio = statistics.median(s / r for s, r in zip(rates["shuffled"], rates["raw"]))
    print(f"\nstreamed reads, {n_train} training instances of {length} x 3, median of {epochs} epochs:")
    print(f"  raw order {raw:.0f}/s, shuffled order {shuffled:.0f}/s, "
          f"shuffled/raw {ratio:.2f} (median of per-epoch ratios)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["mixing", "train", "read"])
    parser.add_argument("--instances", type=int, default=None,
                        help="raw instances (70%% train); default 100000 (mixing), 43000 (train), 20000 (read)")
    parser.add_argument("--epochs", type=int, default=None, help="default 5 (mixing, read), 10 (train)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--length", type=int, default=None, help="default 64 (train), 540 (read)")
    parser.add_argument("--layouts", nargs="+", default=None,
                        help="mixing: sorted runs iid (default all); train: the first (default sorted)")
    parser.add_argument("--windows", nargs="+", type=int, default=[8, 32, 128])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_order_") as tmp:
        if args.part == "mixing":
            mixing(Path(tmp), args.instances or 100_000, args.epochs or 5,
                   args.layouts or ["sorted", "runs", "iid"], args.windows)
        elif args.part == "read":
            read_speed(Path(tmp), args.instances or 20_000, args.length or 540, args.epochs or 5)
        else:
            train_arms(Path(tmp), args.instances or 43_000, args.length or 64, args.epochs or 10, args.seeds,
                       (args.layouts or ["sorted"])[0])
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
