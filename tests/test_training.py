"""The data pipeline, the training loop and the job entry points, on tiny stores.

Stores are converted by the real ``store.convert`` from a toy dataset module (sines
with noise: the regression label sets the amplitude, the class sets the frequency), with
32-instance chunks so that every split spans several chunks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from tstransfer import store
from tstransfer.datasets.base import DatasetInfo, InstanceIndex, RawChunk

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LENGTH = 64
CHUNK = 32


# --------------------------------------------------------------------------- fixtures
def toy_module(task: str, n: int, length: int, channels: int, seed: int = 0):
    """A DatasetModule with learnable toy waveforms, for ``store.convert``."""
    rng = np.random.default_rng(seed)
    classification = task == "classification"
    labels = rng.integers(0, 3, n) if classification else rng.uniform(1.0, 3.0, n)
    t = np.arange(length)
    waves = np.empty((n, length, channels), dtype=np.float32)
    for i in range(n):
        freq = 2 * np.pi * (labels[i] + 1) / 16 if classification else 2 * np.pi / 20
        amplitude = 1.0 if classification else 10 ** labels[i]
        base = amplitude * np.sin(freq * t + rng.uniform(0, 2 * np.pi))[:, None]
        waves[i] = base + rng.normal(0, 0.3 * amplitude, (length, channels))
    info = DatasetInfo(
        name=f"toy_{task}", title=f"Toy {task}", domain="toy", task=task, channels=channels,
        sampling_rate=1.0, units="a.u.", class_names=("a", "b", "c") if classification else (),
    )
    return in_memory_module(info, waves, labels, "toy")


def in_memory_module(info, waves: np.ndarray, labels: np.ndarray, prefix: str):
    """A DatasetModule serving ``waves`` and ``labels`` (in that order) to ``store.convert``."""
    n = len(labels)
    keys = [f"{prefix}{i:05d}" for i in range(n)]

    def list_instances(raw, params, log):
        return InstanceIndex(pd.DataFrame({"key": keys, "label": labels}))

    def read_chunks(raw, params, index, chunk_size):
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            yield RawChunk(waves[start:stop], labels[start:stop], keys[start:stop], "toy")

    return SimpleNamespace(
        INFO=info, list_instances=list_instances, read_chunks=read_chunks,
        raw_files=lambda params: [],
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """{task: (store path, subset path)}: 3-channel regression, 1-channel classification."""
    base = tmp_path_factory.mktemp("stores")
    out = {}
    for task, n, channels in (("regression", 320, 3), ("classification", 300, 1)):
        path = base / f"{task}.zarr"
        store.convert(toy_module(task, n, LENGTH, channels), base, path, {}, seed=3, chunk_size=CHUNK)
        subset = base / f"{task}_sub.npz"
        store.make_subset(path, subset, variant="tiny", size=120, run=0, seed=3)
        out[task] = (path, subset)
    return out


def base_config(max_epochs: int = 2) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["training"]["max_epochs"] = max_epochs
    for task in ("regression", "classification"):
        config["datasets"][f"toy_{task}"] = {"stream_max": True}
    return config


def tiny_model(length: int, channels: int, task: str, n_outputs: int, stream_max: bool, seed: int):
    """A small stand-in network with the project's input convention (and dropout)."""
    import keras

    waveform = keras.Input((length, channels), name="waveform")
    inputs = {"waveform": waveform}
    x = keras.layers.Conv1D(
        4, 5, strides=2, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed)
    )(waveform)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3, seed=seed)(x)
    if stream_max:
        inputs["stream_max"] = keras.Input((1,), name="stream_max")
        x = keras.layers.Concatenate()([x, inputs["stream_max"]])
    x = keras.layers.Dense(
        n_outputs, activation="softmax" if task == "classification" else None,
        kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
    )(x)
    return keras.Model(inputs, x)


def make_feed(stores, task, **kwargs):
    from tstransfer.feed import Feed

    path, subset = stores[task]
    kwargs.setdefault("use_stream_max", True)
    kwargs.setdefault("seed", 11)
    return Feed.from_subset(path, subset, **kwargs)


def run_training(stores, task, out_dir, *, seed=5, config=None, learning_rate=1e-3, **feed_args):
    import keras

    from tstransfer.training import train

    feed = make_feed(stores, task, seed=seed, **feed_args)
    model = tiny_model(LENGTH, feed.model_channels, task, feed.n_outputs, True, seed)
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    config = config or base_config()
    config["training"]["learning_rate"] = learning_rate
    result = train(model, optimizer, feed, task=task, config=config, out_dir=out_dir, seed=seed)
    return result, model, feed


# --------------------------------------------------------------------------- feed
def test_subset_loading_reads_selected_instances_minus_subset_mask(stores):
    import zarr

    path, subset = stores["regression"]
    indices, mask, _ = store.load_subset(subset)
    feed = make_feed(stores, "regression")
    root = zarr.open_group(str(path), mode="r")
    assert feed.train.in_memory
    assert np.array_equal(feed.train.indices, indices)
    expected = root["waveform"][:][indices] - mask
    assert np.array_equal(feed.train.waveform, expected)
    assert np.array_equal(feed.train.labels, root["label"][:][indices])
    assert np.array_equal(feed.train.stream_max, root["stream_max"][:][indices])
    # validation and test: their own split's instances, centred with the *subset's* mask
    split = root["split"][:]
    assert np.array_equal(feed.val.indices, np.flatnonzero(split == 1))
    assert np.array_equal(feed.test.waveform, root["waveform"][:][split == 2] - mask)
    # only chunks holding selected instances are visited
    assert {s.start // CHUNK for s in feed.train.spans} == set(indices // CHUNK)

    # training batches: the subset in a (seed, epoch)-determined order per epoch, no
    # instance lost, no batch straddling two epochs
    batches = list(feed.training_dataset(0, 2).as_numpy_iterator())
    steps = feed.steps_per_epoch()
    assert len(batches) == 2 * steps == 2 * int(np.ceil(120 / 32))
    for epoch in (0, 1):
        order = feed.epoch_order(epoch)
        xs, ys = zip(*batches[epoch * steps : (epoch + 1) * steps])
        assert np.array_equal(np.concatenate([x["waveform"] for x in xs]), expected[order])
        assert np.array_equal(np.concatenate([x["stream_max"] for x in xs])[:, 0],
                              feed.train.stream_max[order])
        assert np.array_equal(np.concatenate(ys)[:, 0], feed.train.labels[order])
    order = feed.epoch_order(0)
    assert np.array_equal(np.sort(order), np.arange(len(indices)))
    # a resumed job starting at epoch 1 sees exactly epoch 1's batches
    resumed = list(feed.training_dataset(1, 2).as_numpy_iterator())
    assert all(np.array_equal(a[0]["waveform"], b[0]["waveform"])
               for a, b in zip(resumed, batches[steps:]))
    assert not np.array_equal(order, feed.epoch_order(1))
    assert np.array_equal(order, make_feed(stores, "regression").epoch_order(0))


def test_min_epoch_steps_makes_an_epoch_of_several_passes(stores):
    from tstransfer.feed import epoch_passes

    # 120 instances in batches of 32: 4 steps a pass; at least 10 steps take 3 passes
    assert [epoch_passes(120, 32, s) for s in (0, 1, 4, 5, 10, 12, 13)] == [1, 1, 1, 2, 3, 3, 4]
    assert epoch_passes(1500, 32, 47) == 1  # the paper's 1k5 subsets keep one pass
    plain = make_feed(stores, "regression")
    feed = make_feed(stores, "regression", min_epoch_steps=10)
    assert (plain.steps_per_epoch(), feed.steps_per_epoch()) == (4, 12)
    for epoch in (0, 1):
        order = feed.epoch_order(epoch)
        # every instance once per pass, the first pass the one-pass epoch's order
        assert len(order) == 3 * 120 and np.array_equal(order[:120], plain.epoch_order(epoch))
        assert all(np.array_equal(np.sort(part), np.arange(120)) for part in np.split(order, 3))
        assert not np.array_equal(order[:120], order[120:240])
    batches = list(feed.training_dataset(0, 2).as_numpy_iterator())
    assert len(batches) == 2 * 12
    labels = np.concatenate([y[:, 0] for _, y in batches[12:]])
    assert np.array_equal(labels, feed.train.labels[feed.epoch_order(1)])
    # a setting at or below a pass's steps changes nothing
    assert np.array_equal(make_feed(stores, "regression", min_epoch_steps=4).epoch_order(0),
                          plain.epoch_order(0))


def test_jobs_train_min_epoch_steps_per_epoch(stores, tmp_path):
    from tstransfer import jobs

    cls_store, cls_subset = stores["classification"]
    records = {}
    for steps in (0, 4, 10):
        config = base_config(max_epochs=1)
        config["training"]["min_epoch_steps"] = steps
        records[steps] = jobs.referent(config, "convnetquake_ingv", "toy_classification", "tiny", 0,
                                       cls_store, cls_subset, tmp_path / f"steps{steps}")
    assert [records[s]["steps_per_epoch"] for s in (0, 4, 10)] == [4, 4, 12]
    loss = {s: r["history"]["train_loss"] for s, r in records.items()}
    assert loss[0] == loss[4]  # the same job: the setting is only a lower bound
    assert loss[10] != loss[0]  # three passes trained, not one


def test_batch_fraction_gives_fawaz_batches():
    from tstransfer.budget import batch_size_for

    # dl-4-tsc: int(min(x_train.shape[0] / 10, 16)); the study's training splits
    expected = {30: 3, 32: 3, 41: 4, 55: 5, 61: 6, 70: 7, 80: 8, 115: 11, 165: 16, 225: 16}
    assert {n: batch_size_for(n, 16, 0.1) for n in expected} == expected
    assert all(batch_size_for(n, 16, 0.1) == int(min(n / 10, 16)) for n in range(10, 400))
    assert [batch_size_for(n, 16, 0.1) for n in (1, 9)] == [1, 1]  # never an empty batch
    assert batch_size_for(41, 16, 0.0) == batch_size_for(4100, 16, 0) == 16  # off: batch_size


def test_jobs_train_in_batches_of_a_fraction_of_the_training_set(stores, tmp_path):
    from tstransfer import jobs

    cls_store, cls_subset = stores["classification"]
    records = {}
    for fraction in (0.0, 0.05):
        config = base_config(max_epochs=1)
        config["training"].update(batch_size=32, min_epoch_steps=10, batch_fraction=fraction)
        records[fraction] = jobs.referent(config, "convnetquake_ingv", "toy_classification", "tiny", 0,
                                          cls_store, cls_subset, tmp_path / f"fraction{fraction}")
    n_train = records[0.0]["n_train"]
    small = int(n_train * 0.05)
    assert 1 <= small < 32  # else this test would not tell
    assert (records[0.0]["batch_size"], records[0.05]["batch_size"]) == (32, small)
    # min_epoch_steps counts the smaller batches: the fewest whole passes of >= 10 of them
    passes = -(-10 * small // n_train)
    assert records[0.05]["steps_per_epoch"] == -(-passes * n_train // small)
    assert records[0.05]["history"]["train_loss"] != records[0.0]["history"]["train_loss"]


def test_monitor_train_loss_picks_the_best_weights_by_training_loss(stores, tmp_path):
    results = {}
    for monitor in ("val_loss", "train_loss"):
        config = base_config(max_epochs=8)
        config["training"]["monitor"] = monitor
        # all 8 epochs at one learning rate: both runs train alike, only the pick differs
        config["training"]["early_stopping"]["patience"] = 100
        config["training"]["reduce_lr"]["patience"] = 100
        results[monitor], _, _ = run_training(stores, "classification", tmp_path / monitor, config=config,
                                              learning_rate=0.3)
    assert results["val_loss"].history["train_loss"] == results["train_loss"].history["train_loss"]
    for monitor, result in results.items():
        assert result.last_epoch == 8
        assert result.best_epoch == 1 + int(np.argmin(result.history[monitor]))
    # at this learning rate the two curves disagree on the best epoch (else this test would not tell)
    assert results["val_loss"].best_epoch != results["train_loss"].best_epoch
    config = base_config(max_epochs=1)
    config["training"]["monitor"] = "val_accuracy"
    with pytest.raises(ValueError, match="training.monitor must be one of val_loss, train_loss"):
        run_training(stores, "classification", tmp_path / "bad", config=config)


def batchnorm_model(length: int, channels: int, n_outputs: int, seed: int, dropout: float = 0.0):
    """Conv -> BatchNormalization -> pooling (-> dropout) -> head, FCN's pattern at toy size."""
    import keras

    waveform = keras.Input((length, channels), name="waveform")
    stream = keras.Input((1,), name="stream_max")
    x = keras.layers.Conv1D(8, 5, padding="same", name="conv",
                            kernel_initializer=keras.initializers.GlorotUniform(seed))(waveform)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed)(x)
    x = keras.layers.Concatenate()([x, stream])
    out = keras.layers.Dense(n_outputs, activation="softmax",
                             kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(x)
    return keras.Model({"waveform": waveform, "stream_max": stream}, out)


@pytest.mark.parametrize("dropout", [0.0, 0.5], ids=["bn", "bn-and-dropout"])
def test_recalibrate_batchnorm_gives_the_best_weights_the_training_sets_statistics(stores, tmp_path, dropout):
    import keras

    from tstransfer.training import train

    runs = {}
    for recalibrated in (False, True):
        config = base_config(max_epochs=3)
        config["training"]["recalibrate_batchnorm"] = recalibrated
        config["training"]["early_stopping"]["patience"] = 100
        feed = make_feed(stores, "classification", seed=5)
        model = batchnorm_model(LENGTH, feed.model_channels, feed.n_outputs, seed=5, dropout=dropout)
        result = train(model, keras.optimizers.Adam(learning_rate=0.01), feed, task="classification",
                       config=config, out_dir=tmp_path / str(recalibrated), seed=5)
        runs[recalibrated] = (result, model, feed)
    (plain, _, _), (precise, model, feed) = runs[False], runs[True]
    # training is the same: a training step never reads the moving statistics, and the
    # recalibration pass (in training mode) leaves the dropout draws to the training
    assert plain.history["train_loss"] == precise.history["train_loss"]
    assert plain.history["val_loss"] != precise.history["val_loss"]
    # the model holds the best epoch's weights with that epoch's training-set statistics
    train_inputs = list(feed.eval_batches("train"))
    probe = keras.Model(model.inputs, model.get_layer("conv").output)
    features = np.concatenate([keras.ops.convert_to_numpy(probe(batch)) for batch in train_inputs])
    assert len(features) == len(feed.train)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.get_layer("bn").moving_mean),
                               features.mean(axis=(0, 1)), rtol=1e-4, atol=1e-5)


def test_full_training_split_uses_store_mask_and_streams_every_instance_once(stores):
    import zarr

    from tstransfer.feed import Feed

    path, _ = stores["classification"]
    root = zarr.open_group(str(path), mode="r")
    train = np.flatnonzero(root["split"][:] == 0)
    feed = Feed(path, use_stream_max=False, seed=2, force_stream=True, shuffle_window=3)
    assert not feed.train.in_memory and feed.train.waveform is None
    assert np.array_equal(feed.train.mask, root["mask"][:])
    epochs = []
    for epoch in (0, 1):
        # one epoch of the tf.data stream that training uses
        batches = list(feed.training_dataset(epoch, epoch + 1).as_numpy_iterator())
        assert all(len(y) == feed.batch_size for _, y in batches[:-1])
        assert set(batches[0][0]) == {"waveform"}  # no stream_max input when unused
        waves = np.concatenate([x["waveform"] for x, _ in batches])
        labels = np.concatenate([y.argmax(axis=1) for _, y in batches])
        epochs.append(waves)
        expected = root["waveform"][:][train] - root["mask"][:]
        # same multiset of instances (matched by content), with labels one-hot and aligned
        key = lambda w: w.reshape(len(w), -1)[:, :8].round(5).tobytes()  # noqa: E731
        got = sorted(zip([key(w[None]) for w in waves], labels))
        want = sorted(zip([key(w[None]) for w in expected], root["label"][:][train]))
        assert got == want
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled per epoch
    # one stream over both epochs (as one fit call uses it) cuts exactly these batches
    streamed = [x["waveform"] for x, _ in feed.training_dataset(0, 2).as_numpy_iterator()]
    assert len(streamed) == 2 * feed.steps_per_epoch()
    assert np.array_equal(np.concatenate(streamed), np.concatenate(epochs))
    assert all(len(b) == feed.batch_size for b in streamed[: feed.steps_per_epoch() - 1])
    again = np.concatenate([x["waveform"] for x, _ in feed.training_dataset(1, 2).as_numpy_iterator()])
    assert np.array_equal(again, epochs[1])  # ... and reproducibly


def sorted_module(n: int, length: int = 8):
    """A 1-channel regression DatasetModule whose labels ascend along the raw order: the
    worst case of raw files where neighbouring traces share their magnitude."""
    rng = np.random.default_rng(7)
    labels = np.sort(rng.uniform(1.0, 3.0, n))
    waves = rng.normal(0.0, 1.0, (n, length, 1)) * labels[:, None, None]
    info = DatasetInfo(name="toy_sorted", title="Toy sorted", domain="toy", task="regression",
                       channels=1, sampling_rate=1.0, units="a.u.")
    return in_memory_module(info, waves, labels, "sorted")


@pytest.fixture(scope="module")
def sorted_stores(tmp_path_factory):
    """{"shuffled": store as convert writes it, "raw": the same in the raw order}."""
    base = tmp_path_factory.mktemp("sorted")
    out = {}
    for order in ("shuffled", "raw"):
        out[order] = base / f"{order}.zarr"
        store.convert(sorted_module(4000), base, out[order], {}, seed=3, chunk_size=CHUNK,
                      shuffle=order == "shuffled")
    return out


def _batch_mixing(labels: np.ndarray, batch: int) -> dict[str, float]:
    """Per-batch label spread and batch-mean statistics of labels taken in training order
    (as in bench/stream_order.py): each is 1 (``within``, ``between``) or 0 (``lag1``)
    in expectation for batches drawn from a full permutation."""
    k = len(labels) // batch
    y = labels[: k * batch].astype(np.float64).reshape(k, batch)
    var = labels.var(ddof=1)
    means = y.mean(axis=1)
    return {"within": y.var(axis=1, ddof=1).mean() / var,
            "between": means.var(ddof=1) / (var / batch),
            "lag1": np.corrcoef(means[:-1], means[1:])[0, 1]}


def test_streamed_batches_of_a_label_sorted_store_mix_like_a_full_permutation(sorted_stores):
    """Labels sorted along the raw files: the streamed batches (window of 8 chunks) must
    look like batches of a full permutation, within 4 sampling sds of what a full
    permutation gives; the same stream over a store kept in the raw order must not."""
    from tstransfer.feed import Feed

    feed = Feed(sorted_stores["shuffled"], use_stream_max=False, seed=2, force_stream=True)
    raw = Feed(sorted_stores["raw"], use_stream_max=False, seed=2, force_stream=True)
    assert feed.shuffle_window == 8 and len(feed.train.spans) > 4 * feed.shuffle_window
    labels = feed.train.labels.astype(np.float64)
    b, k = feed.batch_size, len(labels) // feed.batch_size
    # Sampling sds under a full permutation (batches nearly independent, k of them):
    # sample variance of b draws: var(s^2) = sigma^4 (2 / (b - 1) + (kurtosis - 3) / b);
    # variance of k batch means over its expectation ~ chi2(k - 1) / (k - 1): sd sqrt(2 / (k - 1));
    # lag-1 correlation of k independent means: sd 1 / sqrt(k).
    kurtosis = np.mean((labels - labels.mean()) ** 4) / labels.var() ** 2
    sd = {"within": np.sqrt((2 / (b - 1) + (kurtosis - 3) / b) / k),
          "between": np.sqrt(2 / (k - 1)), "lag1": 1 / np.sqrt(k)}
    expected = {"within": 1.0, "between": 1.0, "lag1": 0.0}

    def close_to_full(stats):
        return {name: abs(stats[name] - expected[name]) <= 4 * sd[name] for name in stats}

    for epoch in range(3):
        streamed = np.concatenate([block for _, _, block in feed.stream_train_blocks(epoch)])
        assert np.array_equal(streamed, feed.train.labels[feed.stream_epoch_order(epoch)])
        stats = _batch_mixing(streamed, b)
        assert all(close_to_full(stats).values()), (epoch, stats, sd)
        # the bounds hold for a real full permutation (the in-memory order) ...
        assert all(close_to_full(_batch_mixing(labels[feed.epoch_order(epoch)], b)).values())
        # ... and catch the windowed stream over the physical (sorted) order: its batch
        # means swing with each window's few chunks (~1 + 32 / 8 times the variance)
        raw_stats = _batch_mixing(raw.train.labels[raw.stream_epoch_order(epoch)], b)
        assert raw_stats["between"] > 1 + 4 * sd["between"], raw_stats


def test_streamed_order_is_a_function_of_seed_and_epoch_with_each_instance_once(sorted_stores):
    """Resumability: a fresh feed (a job resumed at epoch k) streams epoch k's batches
    exactly; every training instance appears once per epoch; epochs and seeds differ."""
    import zarr

    from tstransfer.feed import Feed

    path = sorted_stores["shuffled"]
    root = zarr.open_group(str(path), mode="r")
    feeds = [Feed(path, use_stream_max=True, seed=4, force_stream=True) for _ in range(2)]
    other = Feed(path, use_stream_max=True, seed=5, force_stream=True)
    train = feeds[0].train
    stored = root["waveform"][:][train.indices] - root["mask"][:]
    orders = []
    for epoch in range(3):
        order = feeds[0].stream_epoch_order(epoch)
        assert np.array_equal(np.sort(order), np.arange(len(train)))  # each instance once
        assert np.array_equal(order, feeds[1].stream_epoch_order(epoch))
        assert not np.array_equal(order, other.stream_epoch_order(epoch))
        # the data served follow the order: waveforms, stream_max and labels aligned
        waves, stream_max, labels = map(np.concatenate, zip(*feeds[1].stream_train_blocks(epoch)))
        assert np.array_equal(waves, stored[order])
        assert np.array_equal(stream_max, train.stream_max[order])
        assert np.array_equal(labels, train.labels[order])
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])
    # training's tf.data stream: a job resumed at epoch 2 gets epoch 2's batches exactly
    steps = feeds[0].steps_per_epoch()
    whole = list(feeds[0].training_dataset(0, 3).as_numpy_iterator())
    resumed = list(feeds[1].training_dataset(2, 3).as_numpy_iterator())
    assert len(whole) == 3 * steps and len(resumed) == steps
    for (x, y), (rx, ry) in zip(whole[2 * steps :], resumed):
        assert np.array_equal(x["waveform"], rx["waveform"]) and np.array_equal(y, ry)
    assert np.array_equal(np.concatenate([x["waveform"] for x, _ in resumed]), stored[orders[2]])


def test_convert_stores_a_seeded_random_order_with_every_instance_aligned(sorted_stores, tmp_path):
    """The shuffled store holds exactly the raw-order store's instances (waveform, label,
    stream_max, split, key) at the positions ``raw_index`` gives, the same mask, a
    subset whose mask matches its instances, and the same order when converted again."""
    import zarr

    shuffled = zarr.open_group(str(sorted_stores["shuffled"]), mode="r")
    raw = zarr.open_group(str(sorted_stores["raw"]), mode="r")
    assert shuffled.attrs["instance_order"] == "shuffled" and raw.attrs["instance_order"] == "raw"
    n = shuffled["key"].shape[0]
    raw_index = shuffled["raw_index"][:]
    assert np.array_equal(raw["raw_index"][:], np.arange(n))
    assert np.array_equal(np.sort(raw_index), np.arange(n)) and not np.array_equal(raw_index, np.arange(n))
    for name in ("waveform", "label", "stream_max", "split", "key"):
        assert np.array_equal(shuffled[name][:], raw[name][:][raw_index]), name
    assert np.array_equal(shuffled["mask"][:], raw["mask"][:])  # same instances, same sum order
    assert dict(shuffled.attrs)["split_counts"] == dict(raw.attrs)["split_counts"]

    again = tmp_path / "again.zarr"
    store.convert(sorted_module(4000), tmp_path, again, {}, seed=3, chunk_size=CHUNK)
    assert np.array_equal(zarr.open_group(str(again), mode="r")["raw_index"][:], raw_index)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.zarr"]  # no scratch folder left

    store.make_subset(sorted_stores["shuffled"], tmp_path / "sub.npz", variant="tiny", size=300,
                      run=0, seed=3)
    indices, mask, _ = store.load_subset(tmp_path / "sub.npz")
    assert (shuffled["split"][:][indices] == 0).all()
    np.testing.assert_allclose(mask, shuffled["waveform"][:][indices].mean(axis=0, dtype=np.float64),
                               rtol=1e-6, atol=1e-6)


def test_streaming_evaluation_equals_in_memory(stores):
    memory = make_feed(stores, "regression", eval_batch_size=20)
    streamed = make_feed(stores, "regression", eval_batch_size=20, force_stream=True)
    assert memory.val.in_memory and not streamed.val.in_memory
    model = tiny_model(LENGTH, 3, "regression", 1, True, 0)
    for split in ("val", "test"):
        batches_memory = list(memory.eval_batches(split))
        batches_streamed = list(streamed.eval_batches(split))
        assert len(batches_memory) == len(batches_streamed) > 2
        for a, b in zip(batches_memory, batches_streamed):
            assert a.keys() == b.keys()
            for name in a:
                assert np.array_equal(a[name], b[name])
        assert np.array_equal(memory.predict(model, split), streamed.predict(model, split))
    # Feed.predict runs Keras's own predict step batch by batch: bit for bit what
    # model.predict gives over batches of the same size (the tables stay unchanged)
    for feed in (memory, streamed):
        direct = model.predict(memory.inputs(memory.val.waveform, memory.val.stream_max), verbose=0,
                               batch_size=feed.eval_batch_size)
        assert np.array_equal(feed.predict(model, "val"), direct.astype(np.float64))


def test_single_channel_target_is_repeated_for_a_three_channel_model(stores):
    feed = make_feed(stores, "classification", model_channels=3)
    batch = next(feed.eval_batches("val"))
    assert batch["waveform"].shape[-1] == 3
    for channel in range(3):
        assert np.array_equal(batch["waveform"][..., channel], feed.val.waveform[: len(batch["waveform"]), :, 0])
    x, _ = next(feed.training_dataset(0, 1).as_numpy_iterator())
    order = feed.epoch_order(0)[: len(x["waveform"])]
    assert x["waveform"].shape == (32, LENGTH, 3)
    assert np.array_equal(x["waveform"], np.repeat(feed.train.waveform[order], 3, axis=2))
    streamed = make_feed(stores, "classification", model_channels=3, force_stream=True)
    x, _ = next(streamed.training_dataset(0, 1).as_numpy_iterator())
    assert x["waveform"].shape == (32, LENGTH, 3)
    assert np.array_equal(x["waveform"][..., 0], x["waveform"][..., 2])


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("task, force_stream", [("regression", False), ("classification", False),
                                                ("regression", True)])
def test_one_epoch_of_training(stores, task, force_stream, tmp_path):
    from tstransfer.metrics import mae, weighted_f1

    result, model, feed = run_training(stores, task, tmp_path, config=base_config(max_epochs=1),
                                       force_stream=force_stream)
    assert feed.train.in_memory is not force_stream
    assert result.status == "ok" and result.last_epoch == 1 and result.best_epoch == 1
    assert result.metric == {"regression": "mae", "classification": "f1_weighted"}[task]
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_metric",
                                     "learning_rate", "epoch_seconds"]
    assert len(history) == 1 and np.isfinite(history.to_numpy()).all()
    assert history["learning_rate"][0] == pytest.approx(1e-3)
    # the metrics agree with an independent evaluation of the (best = only) weights
    for split, value in (("val", result.val_metric), ("test", result.test_metric)):
        data = feed.split(split)
        waveform = data.waveform if data.in_memory else np.concatenate(
            [block for block, _, _ in data.stream_in_order()])
        predictions = model.predict(feed.inputs(waveform, data.stream_max), verbose=0)
        if task == "regression":
            expected = mae(data.labels, predictions)
        else:
            expected = weighted_f1(data.labels, predictions.argmax(axis=1), 3)
        assert value == pytest.approx(expected, rel=1e-5)
        if split == "test":  # the accuracy published results are given in (classification only)
            accuracy = np.mean(predictions.argmax(axis=1) == np.asarray(data.labels))
            assert result.test_accuracy == (None if task == "regression" else pytest.approx(accuracy))
    assert result.val_metric == history["val_metric"][0]
    # one epoch: no convergence rate (degenerate curve)
    assert result.convergence_rate is None and result.convergence_rate_val is None
    assert (tmp_path / "checkpoint" / "state.npz").is_file()


def test_validation_loss_matches_keras_evaluate(stores, tmp_path):
    import keras

    from tstransfer.training import evaluate

    feed = make_feed(stores, "classification")
    model = tiny_model(LENGTH, 1, "classification", 3, True, 1)
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
    loss, _ = evaluate(model, feed, "val")
    keras_loss = model.evaluate(feed.inputs(feed.val.waveform, feed.val.stream_max),
                                feed.targets(feed.val.labels), verbose=0, batch_size=len(feed.val))
    assert loss == pytest.approx(keras_loss, rel=1e-5)


def test_standardized_labels_train_on_z_scores_and_report_in_label_units(stores):
    import keras

    from tstransfer.metrics import mae
    from tstransfer.training import evaluate

    raw = make_feed(stores, "regression")
    scaled = make_feed(stores, "regression", standardize_labels=True)
    train_labels = np.asarray(scaled.train.labels, dtype=np.float64)
    assert (raw.label_shift, raw.label_scale) == (0.0, 1.0)
    np.testing.assert_array_equal(raw.targets(raw.val.labels).ravel(), raw.val.labels.astype(np.float32))
    targets = scaled.targets(train_labels).ravel()
    assert abs(targets.mean()) < 1e-5 and targets.std() == pytest.approx(1.0, rel=1e-5)
    assert scaled.label_shift == pytest.approx(train_labels.mean())

    model = tiny_model(LENGTH, 3, "regression", 1, True, 1)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    inputs = scaled.inputs(scaled.val.waveform, scaled.val.stream_max)
    outputs = model.predict(inputs, verbose=0, batch_size=len(scaled.val)).ravel()
    loss, metric = evaluate(model, scaled, "val")
    # the loss in the model's (standardized) units, as Keras computes it on the targets
    keras_loss = model.evaluate(inputs, scaled.targets(scaled.val.labels), verbose=0, batch_size=len(scaled.val))
    assert loss == pytest.approx(keras_loss, rel=1e-5)
    # the metric in label units: outputs mapped back with the training set's mean and spread
    expected = mae(scaled.val.labels, outputs * scaled.label_scale + scaled.label_shift)
    assert metric == pytest.approx(expected, rel=1e-5)
    assert metric != pytest.approx(mae(scaled.val.labels, outputs), rel=1e-2)

    classes = make_feed(stores, "classification", standardize_labels=True)
    labels = classes.val.labels
    np.testing.assert_array_equal(classes.targets(labels), make_feed(stores, "classification").targets(labels))


def test_same_seed_same_weights_and_metrics(stores, tmp_path):
    first, model_a, _ = run_training(stores, "regression", tmp_path / "a")
    second, model_b, _ = run_training(stores, "regression", tmp_path / "b")
    third, model_c, _ = run_training(stores, "regression", tmp_path / "c", seed=6)
    for key in ("train_loss", "val_loss", "val_metric"):
        assert first.history[key] == second.history[key]
    assert (first.val_metric, first.test_metric) == (second.val_metric, second.test_metric)
    for a, b in zip(model_a.get_weights(), model_b.get_weights()):
        assert np.array_equal(a, b)
    assert first.history["train_loss"] != third.history["train_loss"]


def test_paper_protocol_records_test_curve(stores, tmp_path, caplog):
    import logging
    import re

    config = base_config(max_epochs=3)
    config["protocol"] = "paper"
    caplog.set_level(logging.INFO, logger="tstransfer.training")
    result, _, _ = run_training(stores, "regression", tmp_path, config=config)
    history = pd.read_csv(tmp_path / "history.csv")
    assert "test_metric" in history and len(history) == 3
    # the training log: one line per epoch, a person's summary of history.csv
    number = r"(\S+)"
    pattern = re.compile(rf"epoch (\d)/3: loss {number} val_loss {number} val_mae {number} "
                         rf"test_mae {number} lr {number} time (\d+\.\d) s( best)?")
    lines = [m for m in (pattern.fullmatch(r.getMessage()) for r in caplog.records) if m]
    assert len(lines) == 3 and len([r for r in caplog.records if "epoch" in r.getMessage()]) == 3
    columns = ["train_loss", "val_loss", "val_metric", "test_metric", "learning_rate"]
    for i, match in enumerate(lines):
        assert int(match.group(1)) == i + 1
        assert [float(v) for v in match.groups()[1:6]] == pytest.approx(
            [history[c][i] for c in columns], rel=1e-4)
        assert float(match.group(7)) == pytest.approx(history["epoch_seconds"][i], abs=0.051)
    best_lines = [i + 1 for i, match in enumerate(lines) if match.group(8)]
    assert best_lines and best_lines[-1] == result.best_epoch
    from tstransfer.metrics import convergence_rate

    assert result.convergence_rate_test == pytest.approx(
        convergence_rate(history["test_metric"], "regression"))
    assert result.convergence_rate == result.convergence_rate_test
    assert result.convergence_rate_val == pytest.approx(
        convergence_rate(history["val_metric"], "regression"))


def test_recording_the_test_curve_leaves_the_training_draws_alone(stores, tmp_path, monkeypatch):
    """Dropout that stays on when predicting (MagNet under the authors' switches) draws
    masks in every evaluation; the test curve is a record, made by the authors after
    training from saved models, so its draws must not move the training's own: with and
    without test curves, the same losses and the same best weights."""
    import keras

    from tstransfer.models.magnet import AlwaysOnDropout

    def always_on_model(length, channels, task, n_outputs, stream_max, seed):
        waveform = keras.Input((length, channels), name="waveform")
        stream = keras.Input((1,), name="stream_max")
        x = keras.layers.Conv1D(4, 5, strides=2, activation="relu",
                                kernel_initializer=keras.initializers.GlorotUniform(seed))(waveform)
        x = AlwaysOnDropout(0.5, seed=seed)(keras.layers.Flatten()(x))
        x = keras.layers.Concatenate()([x, stream])
        output = keras.layers.Dense(n_outputs, kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(x)
        return keras.Model({"waveform": waveform, "stream_max": stream}, output)

    monkeypatch.setattr(sys.modules[__name__], "tiny_model", always_on_model)
    runs = {}
    for curves in (False, True):
        config = base_config(max_epochs=3)
        config["protocol_switches"] = {"test_curves": curves}
        result, model, _ = run_training(stores, "regression", tmp_path / str(curves), config=config)
        runs[curves] = (pd.read_csv(tmp_path / str(curves) / "history.csv"), model.get_weights())
    (without, weights_without), (with_curves, weights_with) = runs[False], runs[True]
    assert "test_metric" in with_curves and "test_metric" not in without
    np.testing.assert_array_equal(with_curves["train_loss"], without["train_loss"])
    np.testing.assert_array_equal(with_curves["val_loss"], without["val_loss"])
    for a, b in zip(weights_with, weights_without):
        np.testing.assert_array_equal(a, b)


def test_epoch_line_of_a_classification_run():
    from tstransfer.training import epoch_line

    row = {"epoch": 4, "train_loss": 0.912345678, "val_loss": 1.0, "val_metric": 0.6123456,
           "val_accuracy": 0.625, "learning_rate": 2e-4, "epoch_seconds": 12.34}
    assert epoch_line(row, max_epochs=100, metric="f1_weighted", best=True) == (
        "epoch 4/100: loss 0.91235 val_loss 1 val_f1_weighted 0.61235 val_accuracy 0.625 "
        "lr 0.0002 time 12.3 s best")
    row.update(train_loss=float("nan"), val_accuracy=float("nan"))
    assert epoch_line(row, max_epochs=100, metric="f1_weighted", best=False) == (
        "epoch 4/100: loss nan val_loss 1 val_f1_weighted 0.61235 lr 0.0002 time 12.3 s")


def test_the_proxy_read_off_a_longer_run_is_what_the_shorter_run_keeps(stores, tmp_path):
    """The study's fine-tuning proxy (tstransfer.selection.proxy.study_proxy_scores) reads a
    k-epoch run off the history of a longer one: trained for k epochs, the run agrees."""
    from tstransfer.protocol import job_switches
    from tstransfer.selection.proxy import study_proxy_scores

    def config_of(max_epochs):
        config = base_config(max_epochs=max_epochs)
        config["training"]["reduce_lr"]["patience"] = 1  # the schedule acts within the epochs read
        return config

    config = config_of(6)
    long, _, _ = run_training(stores, "classification", tmp_path / "long", config=config, learning_rate=0.3)
    record = {"kind": "finetune", "arch": "tiny", "source": "s", "target": "t", "variant": "v", "run": 0,
              "omega": 1.0, "task": "classification", "metric": "f1_weighted", "history": long.history,
              "config": {"training": config["training"], "switches": job_switches(config)}}
    for k in (3, 5):
        short, _, _ = run_training(stores, "classification", tmp_path / f"short{k}", config=config_of(k),
                                   learning_rate=0.3)
        assert short.history["val_loss"] == long.history["val_loss"][:k]  # the same run, cut short
        score = study_proxy_scores([record], epochs=k, omega=1.0)["score"].tolist()
        assert score == [short.val_metric], k
        if k == 3:  # what it keeps is the lowest validation loss's F1, here not the best F1 (else this would not tell)
            assert short.val_metric < max(long.history["val_metric"][:k])


def test_diverging_run_stops_with_status_diverged(stores, tmp_path):
    config = base_config(max_epochs=5)
    result, _, _ = run_training(stores, "regression", tmp_path, config=config, learning_rate=1e30)
    assert result.status == "diverged"
    assert result.last_epoch < 5
    last = result.history["train_loss"][-1], result.history["val_loss"][-1]
    assert not all(np.isfinite(last))
    if result.best_epoch is not None:  # a finite epoch before the blow-up is kept
        assert np.isfinite(result.history["val_loss"][result.best_epoch - 1])


class _ScriptedModel:
    """Just enough of a model for Keras callbacks driven by hand."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.stop_training = False
        self.weights_marker = 0

    def get_weights(self):
        return [self.weights_marker]

    def set_weights(self, weights):
        self.weights_marker = weights[0]


def test_schedule_matches_keras_callbacks():
    """ReduceLROnPlateau + EarlyStopping as re-implemented == Keras's callbacks."""
    import keras

    from tstransfer.training import _State, schedule_step

    reduce_lr = {"factor": 0.2, "patience": 2, "min_lr": 1e-5}
    early = {"patience": 4}
    rng = np.random.default_rng(0)
    # plateaus, tiny improvements below ReduceLROnPlateau's min_delta, ties, and LR floor
    losses = [1.0, 0.9, 0.89995, 0.9, 0.9, 0.85, 0.85, 0.8499, 0.86, 0.87, 0.88, 0.84,
              *(0.84 + rng.uniform(0, 1e-4, 12)), 0.83, 0.9, 0.9, 0.9, 0.9, 0.9]
    ours_opt = keras.optimizers.Adam(learning_rate=1e-3)
    keras_opt = keras.optimizers.Adam(learning_rate=1e-3)
    model = _ScriptedModel(keras_opt)
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **reduce_lr),
        keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True, **early),
    ]
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    state = _State()
    keras_stop = ours_stop = None
    ours_best_marker = None
    for epoch, loss in enumerate(losses):
        model.weights_marker = epoch
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"val_loss": loss})
        improved, stop = schedule_step(state, epoch, loss, ours_opt, reduce_lr, early)
        if improved:
            ours_best_marker = epoch
        assert float(ours_opt.learning_rate) == float(keras_opt.learning_rate), epoch
        if model.stop_training and keras_stop is None:
            keras_stop = epoch
        if stop and ours_stop is None:
            ours_stop = epoch
        if keras_stop is not None or ours_stop is not None:
            break
    assert keras_stop == ours_stop and keras_stop is not None
    callbacks[1].on_train_end()
    assert model.weights_marker == ours_best_marker == state.best_epoch
    assert float(keras_opt.learning_rate) < 1e-3  # the LR schedule was exercised


RESUME_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import test_training as t
    stores = {{"regression": ({store!r}, {subset!r})}}
    out, kill_after = sys.argv[1], int(sys.argv[2])
    config = t.base_config(max_epochs=7)
    config["training"]["reduce_lr"]["patience"] = 1
    config["training"]["early_stopping"]["patience"] = 3
    config["training"]["checkpoint_interval_s"] = 0  # a checkpoint after every epoch

    import tstransfer.training as training
    real_train = training.train

    def hook(done, history):
        if done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    def train(*args, **kwargs):
        return real_train(*args, epoch_end_hook=hook, **kwargs)

    training.train = train
    result, model, _ = t.run_training(stores, "regression", out, config=config)
    np.savez(os.path.join(out, "weights.npz"), *model.get_weights())
    with open(os.path.join(out, "final.json"), "w") as handle:
        json.dump({{k: v for k, v in result.__dict__.items() if k != "seconds"}}, handle)
    """
)


def test_killed_job_resumes_to_the_same_result(stores, tmp_path):
    path, subset = stores["regression"]
    script = tmp_path / "job.py"
    script.write_text(RESUME_SCRIPT.format(tests=str(Path(__file__).parent), store=str(path),
                                           subset=str(subset)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = lambda out, kill: subprocess.Popen(  # noqa: E731
        [sys.executable, str(script), str(out), str(kill)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    whole, killed = run(tmp_path / "whole", 0), run(tmp_path / "killed", 3)
    out_whole, _ = whole.communicate(timeout=240)
    out_killed, _ = killed.communicate(timeout=240)
    assert whole.returncode == 0, out_whole
    assert killed.returncode == -signal.SIGKILL, out_killed
    assert not (tmp_path / "killed" / "final.json").exists()
    assert len(pd.read_csv(tmp_path / "killed" / "history.csv")) == 3
    resumed = run(tmp_path / "killed", 0)
    out_resumed, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out_resumed

    a = json.loads((tmp_path / "whole" / "final.json").read_text())
    b = json.loads((tmp_path / "killed" / "final.json").read_text())
    assert b["resumed_from_epoch"] == 3 and a["resumed_from_epoch"] == 0
    assert a["last_epoch"] > 3  # the resumed part really trained
    for key in ("status", "best_epoch", "last_epoch", "val_metric", "test_metric",
                "convergence_rate"):
        assert a[key] == b[key], key
    for key in ("train_loss", "val_loss", "val_metric", "learning_rate"):
        assert a["history"][key] == b["history"][key], key
    with np.load(tmp_path / "whole" / "weights.npz") as wa, \
            np.load(tmp_path / "killed" / "weights.npz") as wb:
        assert len(wa.files) == len(wb.files) > 0
        for name in wa.files:
            assert np.array_equal(wa[name], wb[name]), name


@pytest.mark.parametrize("interval, expected", [(None, [False, False, True]), (0, [True, True, True])])
def test_checkpoint_written_on_its_interval_and_at_the_end(stores, tmp_path, interval, expected):
    """By default (30 s) a job of short epochs writes its checkpoint once, when training
    ends; with ``checkpoint_interval_s: 0`` after every epoch. The fingerprint ignores the
    setting, so a job resumes whatever interval wrote its checkpoint."""
    import keras

    from tstransfer.checkpoint import fingerprint
    from tstransfer.training import train

    config = base_config(max_epochs=3)
    config["training"]["early_stopping"]["patience"] = 10
    if interval is not None:
        config["training"]["checkpoint_interval_s"] = interval
    feed = make_feed(stores, "classification")
    model = tiny_model(LENGTH, feed.model_channels, "classification", feed.n_outputs, True, 5)
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    written = []
    result = train(model, optimizer, feed, task="classification", config=config, out_dir=tmp_path, seed=5,
                   epoch_end_hook=lambda done, history: written.append(
                       (tmp_path / "checkpoint" / "state.npz").is_file()))
    assert result.last_epoch == 3 and written == expected
    other = {**config, "training": {**config["training"], "checkpoint_interval_s": 99}}
    assert fingerprint(model, optimizer, feed, config, 5, {}) == fingerprint(model, optimizer, feed, other, 5, {})


# --------------------------------------------------------------------------- jobs
def test_jobs_pretrain_select_referent_finetune(stores, tmp_path):
    from tstransfer import jobs

    config = base_config(max_epochs=2)
    reg_store, _ = stores["regression"]
    cls_store, cls_subset = stores["classification"]
    arch = "convnetquake_ingv"

    results = []
    for seed_index in (0, 1):
        out = tmp_path / "pretrain" / f"seed{seed_index}"
        record = jobs.pretrain(config, arch, "toy_regression", seed_index, reg_store, out)
        assert (out / "result.json").is_file() and (out / "model.keras").is_file()
        assert not (out / "checkpoint").exists()
        results.append(out / "result.json")
    stored = [json.loads(p.read_text()) for p in results]
    assert stored[0]["seed"] != stored[1]["seed"]
    # every key the jobs module's docstring lists
    required = {"kind", "arch", "source", "target", "variant", "run", "omega", "seed", "seed_index",
                "stream_max", "task", "status", "best_epoch", "last_epoch", "resumed_from_epoch",
                "metric", "val_metric", "test_metric", "convergence_rate", "convergence_rate_val",
                "convergence_rate_test", "n_train", "n_val", "n_test", "timings", "history", "config",
                "versions", "runtime_s", "test_accuracy"}
    for r in stored:
        assert required <= set(r), required - set(r)
        assert r["convergence_rate"] == r["convergence_rate_val"] and r["convergence_rate_test"] is None
        assert r["history"]["val_metric"][r["best_epoch"] - 1] == r["val_metric"]
        # a pretraining job's dataset is its source, as every path calls it
        assert r["kind"] == "pretrain" and r["source"] == "toy_regression" and r["target"] is None
        assert r["variant"] is None and r["run"] is None and r["omega"] is None
        assert r["n_train"] == 224 and r["stream_max"] is True and r["metric"] == "mae"
        assert r["test_accuracy"] is None  # a regression model has no accuracy
        assert set(r["timings"]) >= {"import", "model_build", "data_load", "training", "evaluation"}
        assert r["config"]["training"]["max_epochs"] == 2 and r["versions"]["keras"]

    selection = jobs.select_pretrained(results, tmp_path / "sel.json", model_out=tmp_path / "best.keras")
    best_index = int(np.argmin([r["val_metric"] for r in stored]))
    assert selection["seed_index"] == best_index
    assert json.loads((tmp_path / "sel.json").read_text())["model"].endswith(
        f"seed{best_index}/model.keras")
    assert (tmp_path / "best.keras").read_bytes() == (results[best_index].parent / "model.keras").read_bytes()

    # a 3-channel regression source fine-tuned on a 1-channel classification target
    out = tmp_path / "finetune"
    record = jobs.finetune(config, arch, "toy_regression", "toy_classification", "tiny", 0, 0.5,
                           tmp_path / "best.keras", cls_store, cls_subset, out)
    assert record["kind"] == "finetune" and record["omega"] == 0.5 and record["task"] == "classification"
    assert record["metric"] == "f1_weighted" and record["n_train"] == 120
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "ok" and len(result["history"]["val_metric"]) == result["last_epoch"]
    assert (out / "model.keras").is_file()  # save_models: true in the paper config

    out = tmp_path / "referent"
    record = jobs.referent(config, arch, "toy_classification", "tiny", 0, cls_store, cls_subset, out)
    assert record["kind"] == "referent" and record["source"] is None and record["omega"] is None
    assert 0 <= record["test_accuracy"] <= 1  # classification: what published figures give
    assert record["seed"] != result["seed"]


def test_select_pretrained_rules(tmp_path):
    from tstransfer import jobs

    def write(index, status, value, metric="f1_weighted"):
        folder = tmp_path / f"seed{index}"
        folder.mkdir()
        (folder / "model.keras").write_text(f"model {index}")
        (folder / "result.json").write_text(json.dumps({
            "seed_index": index, "seed": 100 + index, "status": status, "val_metric": value,
            "metric": metric, "arch": "tcn", "target": "emg",
        }))
        return folder / "result.json"

    paths = [write(0, "ok", 0.7), write(1, "diverged", 0.99), write(2, "ok", 0.8),
             write(3, "ok", 0.8), write(4, "ok", None)]
    selection = jobs.select_pretrained(paths, tmp_path / "sel.json")
    assert selection["seed_index"] == 2  # highest F1, tie -> lower index, diverged skipped
    with pytest.raises(ValueError, match=r"every pretraining seed diverged: .*1[/\\]result\.json"):
        jobs.select_pretrained(paths[1:2], tmp_path / "none.json")


def test_a_nan_in_training_marks_the_job_diverged_and_the_analysis_counts_it(stores, tmp_path):
    """The drill end to end, short of Snakemake: a referent job whose loss turns non-finite
    writes result.json with status diverged; read by the analysis (results table, pairs,
    Table 6's cell, the summary's job counts) it is a diverged referent, counted, not lost."""
    from tstransfer import jobs
    from tstransfer.analysis import results, stats, summary

    try:
        from test_analysis import experiment
    except ImportError:  # pragma: no cover
        from tests.test_analysis import experiment

    config = base_config(max_epochs=4)
    config["training"]["learning_rate"] = 1e30  # the first update overflows: inf, then NaN
    reg_store, reg_subset = stores["regression"]
    jobs.referent(config, "convnetquake_ingv", "toy_regression", "tiny", 0, reg_store, reg_subset, tmp_path / "ref")
    written = json.loads((tmp_path / "ref" / "result.json").read_text())
    assert written["status"] == "diverged" and written["last_epoch"] < 4
    history = pd.read_csv(tmp_path / "ref" / "history.csv")
    assert not np.isfinite(history[["train_loss", "val_loss"]].iloc[-1]).all()

    # That record, as the referent of one (magnet, LenDB 1k5) run of a small study.
    study = experiment(np.random.default_rng(0))
    where = dict(kind="referent", arch="magnet", target="lendb", variant="1k5", run=3)
    mask = np.logical_and.reduce([study[key] == value for key, value in where.items()])
    assert mask.sum() == 1
    ours = results.table_from_records([results.record_from_job({**written, **where}, "ref/result.json")])
    df = pd.concat([study[~mask], ours], ignore_index=True)

    pairs = stats.paired_runs(df, "validation")
    broken = pairs[pairs["pair_status"] == "referent_diverged"]
    assert len(broken) == 2 and set(broken["source"]) == {"lomax", "speech"}  # one pair per source
    cells = stats.domain_tables(pairs, "performance").set_index(stats.CELL_KEYS)
    assert cells.loc[("lomax", "lendb", "1k5"), "n_diverged"] == 1
    assert cells.loc[("speech", "lendb", "1k5"), "n_diverged"] == 1
    assert cells.loc[("lomax", "emg", "1k5"), "n_diverged"] == 0
    numbers = summary.build_summary(df, "validation", expected_jobs={"pretrain": 0, "referent": 56,
                                                                     "finetune": 224, "stream_max": 0})
    assert numbers["size"]["jobs"]["referent"] == {"expected": 56, "done": 56, "diverged": 1}
