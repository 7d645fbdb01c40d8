"""The data pipeline from a zarr store (see :mod:`tstransfer.store`) into a Keras model.

One :class:`Feed` serves one training job: its training set, its validation set and its
test set, each a :class:`SplitData`.

* The training set is either a 1k5/9k subset (store indices and mask from the subset
  ``.npz``) or, for pretraining, the store's whole training split with the store's mask.
* A split whose waveforms fit under ``memory_limit_bytes`` (2 GiB by default: every 1k5/9k
  subset, most validation/test sets) is read into memory once, chunk by chunk -- only
  the chunks that hold selected instances, each read whole, since whole-chunk reads are
  ~100x faster than per-instance reads (REFERENCE.md section 7) -- and the mask is
  subtracted once.
* A larger split (STEAD's ~720k training instances of 6000 x 3 are ~52 GB; its
  validation and test sets ~11 GB each) is never loaded whole: it is streamed chunk by
  chunk by a background thread into a bounded queue, so reads and decompression overlap
  with the model's work. Training streams visit chunks in a seeded random order and mix
  ``shuffle_window`` chunks at a time (a shuffle buffer); evaluation streams go in order.
  Such batches are close to draws from a full permutation (what the paper's authors
  used) because ``store.convert`` stores the instances in a seeded random order, so that
  every chunk is a random sample; over a store in the raw files' order (neighbouring
  traces alike) they would not be (bench/stream_order.py), and a warning says so.

Training order is a pure function of ``(seed, epoch)`` (:meth:`Feed.epoch_order`, and :meth:`Feed.stream_epoch_order` when streamed), so a job
resumed at epoch k sees exactly the batches an uninterrupted job would have seen.

Model inputs are ``{"waveform": x - mask, "stream_max": s[:, None]}`` (``stream_max`` only
when the model uses it); targets are ``(n, 1)`` floats for regression and one-hot
rows for classification. When a 1-channel target feeds a model built with 3 channels
(a 3-channel source, REFERENCE.md section 4) the single channel is repeated per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .background import read_ahead, without_autotune
from .budget import batch_size_for, epoch_passes
from .channels import repeat_channels
from .datasets.base import SPLIT_CODES
from .seeding import rng_for
from .splitdata import READ_THREADS, SplitData, load_in_memory, read_span
from .store import load_subset

log = logging.getLogger(__name__)

MEMORY_LIMIT_BYTES = 2 * 1024**3
# Chunks mixed by the streaming shuffle buffer (8 x 256 instances). Enough because stores
# hold their instances in a random order: on a label-sorted raw order the batches then
# match a full permutation's statistics, where even 128 chunks of the raw order do not
# (bench/stream_order.py mixing).
SHUFFLE_WINDOW_CHUNKS = 8
PREFETCH_BATCHES = 64  # batches the background reader may run ahead of the model
PIPELINE_DEPTH = 2  # tf.data's map calls at a time and batches ahead (autotuning off: without_autotune)


# --------------------------------------------------------------------------- feed
class Feed:
    """Training, validation and test data of one job; see the module docstring.

    ``train_indices``/``train_mask``: a subset (``Feed.from_subset``) or ``None`` for the
    store's full training split and mask. ``model_channels``: the channels the model was
    built with (defaults to the data's). ``force_stream``: stream every split whatever
    its size (tests and benchmarks). ``min_epoch_steps``: an in-memory epoch is as many
    passes over the training set as make at least this many batches (:func:`epoch_passes`).
    ``batch_fraction``: batches of that fraction of the training set, at most
    ``batch_size`` (:func:`batch_size_for`; 0, the default, is ``batch_size``).
    ``drop_remainder`` (switch ``drop_last_batch``, the authors' DataGenerator): an epoch
    is floor(N/batch) batches, the last partial one dropped (:meth:`validation_rows` gives
    the validation set's counterpart).
    """

    def __init__(
        self,
        store: str | Path,
        *,
        use_stream_max: bool,
        seed: int,
        train_indices: np.ndarray | None = None,
        train_mask: np.ndarray | None = None,
        model_channels: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
        shuffle_window: int = SHUFFLE_WINDOW_CHUNKS,
        force_stream: bool = False,
        standardize_labels: bool = False,
        min_epoch_steps: int = 0,
        batch_fraction: float = 0.0,
        drop_remainder: bool = False,
    ):
        import zarr

        self.store = Path(store)
        root = zarr.open_group(str(self.store), mode="r")
        attrs = dict(root.attrs)
        self.task: str = attrs["task"]
        self.n_outputs: int = int(attrs["n_outputs"])
        self.length: int = int(root["waveform"].shape[1])
        self.channels: int = int(root["waveform"].shape[2])
        self.model_channels = int(model_channels or self.channels)
        if self.model_channels != self.channels and self.channels != 1:
            raise ValueError(f"cannot feed {self.channels}-channel data to a {self.model_channels}-channel model")
        self.use_stream_max = bool(use_stream_max)
        self.seed = int(seed)
        self.eval_batch_size = int(eval_batch_size)
        self.shuffle_window = int(shuffle_window)
        self.min_epoch_steps, self.drop_remainder = int(min_epoch_steps), bool(drop_remainder)

        split = np.asarray(root["split"][:])
        train_indices, train_mask = _training_set(root, split, train_indices, train_mask)
        options = dict(memory_limit_bytes=memory_limit_bytes, force_stream=force_stream)
        self.train = SplitData(root, "train", train_indices, train_mask, **options)
        # validation and test are centred with the *training* mask (paper section 2.4.1)
        self.val, self.test = (
            SplitData(root, name, np.flatnonzero(split == SPLIT_CODES[name]), train_mask, **options)
            for name in ("val", "test")
        )
        if not self.train.in_memory and attrs.get("instance_order") != "shuffled":
            log.warning(
                "%s: streaming a training split stored in the raw files' order: its batches "
                "mix only %d chunks at a time and are far from a full permutation; "
                "reconvert the store (store.convert now writes a seeded random order)",
                self.store, self.shuffle_window,
            )
        load_in_memory([self.train, self.val, self.test])
        self.batch_size = batch_size_for(len(self.train), batch_size, batch_fraction)
        # Regression targets as the model sees them: (label - shift) / scale.
        self.label_shift, self.label_scale = 0.0, 1.0
        if standardize_labels and self.task == "regression":
            self.label_shift, self.label_scale = _standardization(self.train.labels)

    @classmethod
    def from_subset(cls, store: str | Path, subset: str | Path, **kwargs) -> Feed:
        """A feed whose training set is the 1k5/9k subset written by ``store.make_subset``."""
        indices, mask, _ = load_subset(subset)
        return cls(store, train_indices=indices, train_mask=mask, **kwargs)

    # ----------------------------------------------------------------- conversion
    def inputs(self, waveform: np.ndarray, stream_max: np.ndarray) -> dict[str, np.ndarray]:
        """The model's input dict for mask-subtracted waveforms (data channels)."""
        if self.model_channels != self.channels:
            waveform = repeat_channels(waveform, self.model_channels)
        inputs = {"waveform": waveform}
        if self.use_stream_max:
            inputs["stream_max"] = np.asarray(stream_max, dtype=np.float32).reshape(-1, 1)
        return inputs

    def targets(self, labels: np.ndarray) -> np.ndarray:
        """Training targets: (n, 1) floats for regression, one-hot rows for classification."""
        if self.task == "classification":
            return np.eye(self.n_outputs, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
        labels = np.asarray(labels)
        if self.label_shift != 0.0 or self.label_scale != 1.0:  # standardized: in float64
            labels = self.model_scale(labels.astype(np.float64))
        return labels.astype(np.float32, copy=False).reshape(-1, 1)

    def model_scale(self, values: np.ndarray) -> np.ndarray:
        """Regression labels or predictions in label units -> the model's target units."""
        if self.task != "regression" or (self.label_shift == 0.0 and self.label_scale == 1.0):
            return values  # (labels not standardized: no copy on every streamed block)
        return (values - self.label_shift) / self.label_scale

    def _signature(self, with_targets: bool):
        import tensorflow as tf

        inputs = {"waveform": tf.TensorSpec((None, self.length, self.model_channels), tf.float32)}
        if self.use_stream_max:
            inputs["stream_max"] = tf.TensorSpec((None, 1), tf.float32)
        if not with_targets:
            return (inputs,)
        return inputs, tf.TensorSpec((None, self.n_outputs), tf.float32)

    def _dataset(self, batches: Callable[[], Iterator[Any]], with_targets: bool, n_batches: int):
        import tensorflow as tf

        dataset = tf.data.Dataset.from_generator(
            lambda: read_ahead(batches(), PREFETCH_BATCHES, name="feed-reader"),
            output_signature=self._signature(with_targets),
        )
        # a known length lets Keras size its loops (and not warn about running out of data)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(n_batches))
        return without_autotune(dataset.prefetch(PIPELINE_DEPTH))

    # ----------------------------------------------------------------- training
    def epoch_order(self, epoch: int) -> np.ndarray:
        """The in-memory training order of ``epoch``: a function of (seed, epoch) only;
        :meth:`passes` permutations of the training set one after the other."""
        n = len(self.train)
        # pass 0 draws what a one-pass epoch always drew, so the paper's orders are unchanged
        return np.concatenate([rng_for(self.seed, "train-order", epoch, *([p] if p else [])).permutation(n)
                               for p in range(self.passes())])

    def passes(self) -> int:
        """Passes over the training set in one epoch (:func:`epoch_passes`; 1 when streamed)."""
        if not self.train.in_memory:
            return 1
        return epoch_passes(len(self.train), self.batch_size, self.min_epoch_steps)

    def steps_per_epoch(self) -> int:
        if self.drop_remainder:
            if not (steps := self.passes() * len(self.train) // self.batch_size):
                raise ValueError(f"{self.store}: {len(self.train)} training instances make no whole batch "
                                 f"of {self.batch_size} (switch drop_last_batch drops partial batches)")
            return steps
        return -(-self.passes() * len(self.train) // self.batch_size)

    def validation_rows(self, epoch: int) -> np.ndarray | None:
        """The validation instances (positions in the split) epoch ``epoch`` is validated
        on: None (all of them), or with ``drop_remainder`` a seeded random floor(N/batch)
        batches' worth, drawn anew each epoch, as the authors' shuffling DataGenerator
        served them (train.py line 131); all of them when they make no whole batch."""
        n = len(self.val)
        keep = n // self.batch_size * self.batch_size
        if not self.drop_remainder or keep in (0, n):
            return None
        return np.sort(rng_for(self.seed, "val-batches", epoch).permutation(n)[:keep])

    def training_dataset(self, first_epoch: int, stop_epoch: int):
        """One ``tf.data`` stream of the training batches of epochs ``first_epoch`` to
        ``stop_epoch - 1``, epoch after epoch, each in its (seed, epoch) order.

        Meant for ONE ``model.fit(..., initial_epoch=first_epoch, epochs=stop_epoch,
        steps_per_epoch=self.steps_per_epoch())`` call: a ``fit`` call per epoch costs ~0.1 s
        of set-up, over 10 % of a short epoch. Batches never straddle two epochs.

        In memory (:meth:`_in_memory_batches`): the arrays live in TensorFlow once and
        batches are gathered by index from precomputed per-epoch permutations. Streamed
        (:meth:`_streamed_batches`): the background chunk reader
        (``stream_train_blocks``) runs epoch after epoch.
        """
        import tensorflow as tf

        epochs = range(first_epoch, stop_epoch)
        if self.train.in_memory:
            dataset = self._in_memory_batches(epochs)
        else:
            dataset = self._streamed_batches(epochs)
        n_batches = self.steps_per_epoch() * (stop_epoch - first_epoch)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(n_batches))
        return without_autotune(dataset.prefetch(PIPELINE_DEPTH))

    def _batch_inputs(self) -> Callable:
        """``(x, stream_max, targets) -> (model inputs, targets)`` on batch tensors."""
        import tensorflow as tf

        repeat = self.model_channels // self.channels
        use_stream_max = self.use_stream_max

        @tf.autograph.experimental.do_not_convert  # see _in_memory_batches
        def model_inputs(x, stream_max, targets):
            if repeat != 1:  # a 1-channel target fed to a 3-channel model
                x = tf.tile(x, [1, 1, repeat])
            inputs = {"waveform": x}
            if use_stream_max:
                inputs["stream_max"] = stream_max
            return inputs, targets

        return model_inputs

    def _in_memory_batches(self, epochs: range):
        """The batches of ``epochs`` gathered from the in-memory training set."""
        import tensorflow as tf

        model_inputs, batch_size = self._batch_inputs(), self.batch_size
        drop = self.drop_remainder  # switch drop_last_batch: floor(N/batch) batches an epoch
        orders = np.stack([self.epoch_order(e) for e in epochs])
        waveform = tf.constant(self.train.waveform)
        stream_max = tf.constant(self.train.stream_max.reshape(-1, 1))
        targets = tf.constant(self.targets(self.train.labels))

        # The pipeline's functions branch on Python values only, so AutoGraph has nothing
        # to convert; left on, converting them was most of a forked job's 0.1 s of set-up
        # (its first use in a process: source parsing, transforming, compiling).
        @tf.autograph.experimental.do_not_convert
        def gather(rows):
            return model_inputs(
                tf.gather(waveform, rows), tf.gather(stream_max, rows), tf.gather(targets, rows)
            )

        @tf.autograph.experimental.do_not_convert
        def epoch_batches(order):
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop)

        dataset = tf.data.Dataset.from_tensor_slices(orders.astype(np.int64)).flat_map(epoch_batches)
        return dataset.map(gather, num_parallel_calls=PIPELINE_DEPTH, deterministic=True)

    def _streamed_batches(self, epochs: range):
        """The batches of ``epochs`` cut from :meth:`stream_train_blocks`.

        Python hands over whole shuffle windows (one call per ~64 batches, not per
        batch); tf.data cuts them into the batches.
        """
        import tensorflow as tf

        model_inputs, batch_size = self._batch_inputs(), self.batch_size
        drop = self.drop_remainder  # switch drop_last_batch: floor(N/batch) batches an epoch

        def blocks():
            for epoch in epochs:
                for waveform, stream_max, labels in self.stream_train_blocks(epoch):
                    yield waveform, stream_max.reshape(-1, 1), self.targets(labels)

        signature = (
            tf.TensorSpec((None, self.length, self.channels), tf.float32),
            tf.TensorSpec((None, 1), tf.float32),
            tf.TensorSpec((None, self.n_outputs), tf.float32),
        )
        dataset = tf.data.Dataset.from_generator(
            lambda: read_ahead(blocks(), 2, name="feed-reader"), output_signature=signature
        ).flat_map(
            tf.autograph.experimental.do_not_convert(
                lambda *block: tf.data.Dataset.from_tensor_slices(block).batch(batch_size, drop_remainder=drop))
        )
        return dataset.map(model_inputs, num_parallel_calls=PIPELINE_DEPTH, deterministic=True)

    def _stream_windows(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """The plan of one streamed epoch, without reading anything: per shuffle window
        ``(span ids, permutation of the pool, n_served)``.

        The pool is the previous window's leftover instances followed by the window's
        chunks' instances; its first ``n_served`` permuted instances are served (a whole
        number of batches, except in the epoch's last window) and the rest are carried.
        A pure function of ``(seed, epoch)``: :meth:`stream_train_blocks` (data) and
        :meth:`stream_epoch_order` (row numbers) both follow it.
        """
        spans = self.train.spans
        chunk_order = rng_for(self.seed, "train-chunks", epoch).permutation(len(spans))
        mixer = rng_for(self.seed, "train-window", epoch)
        carried = 0
        for i in range(0, len(chunk_order), self.shuffle_window):
            window = chunk_order[i : i + self.shuffle_window]
            pool = carried + sum(len(spans[k].rows) for k in window)
            perm = mixer.permutation(pool)
            last = i + self.shuffle_window >= len(chunk_order)
            served = pool if last else pool // self.batch_size * self.batch_size
            carried = pool - served
            yield window, perm, served

    def stream_epoch_order(self, epoch: int) -> np.ndarray:
        """The streamed training order of ``epoch`` as positions in the training split
        (``self.train``'s rows): what :meth:`stream_train_blocks` serves, read from its
        plan alone (nothing is read from the store)."""
        spans = self.train.spans
        served, carry = [], np.arange(0, dtype=np.int64)
        for window, perm, n_served in self._stream_windows(epoch):
            pool = np.concatenate(
                [carry, *(np.arange(spans[k].first, spans[k].first + len(spans[k].rows)) for k in window)]
            )
            served.append(pool[perm[:n_served]])
            carry = pool[perm[n_served:]]
        return np.concatenate(served)

    def stream_train_blocks(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Shuffled training instances read chunk by chunk (for splits too big for memory).

        Chunk order is a seeded permutation; ``shuffle_window`` chunks at a time are
        pooled (with the previous window's leftover instances) and permuted
        (:meth:`_stream_windows`). Yields per window ``(waveform, stream_max, labels)`` in
        training order, a whole number of batches long (the epoch's last block excepted),
        so cutting each block into batches gives the epoch's batches. Every instance
        appears exactly once per epoch.

        The window only mixes the chunks it holds: batches are close to draws from a full
        permutation only if the store's chunks are themselves random samples of the
        split, which ``store.convert`` ensures by writing the instances in a seeded
        random order (bench/stream_order.py measures both).
        """
        split = self.train
        with ThreadPoolExecutor(READ_THREADS) as pool:
            plan = list(self._stream_windows(epoch))

            def submit(window):  # raw reads: the mask is subtracted once per window below
                return [pool.submit(read_span, split.waveform_array, split.spans[k]) for k in window]

            upcoming = submit(plan[0][0]) if plan else []
            carry: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
            for number, (window, perm, n_served) in enumerate(plan):
                spans = [split.spans[k] for k in window]
                blocks = [future.result() for future in upcoming]
                # read the next window while this one is being served
                upcoming = submit(plan[number + 1][0]) if number + 1 < len(plan) else []
                rows = np.concatenate(
                    [np.arange(s.first, s.first + len(s.rows)) for s in spans]
                )
                waveform = np.concatenate(blocks)
                waveform -= split.mask
                stream_max, labels = split.stream_max[rows], split.labels[rows]
                if carry is not None:
                    waveform = np.concatenate([carry[0], waveform])
                    stream_max = np.concatenate([carry[1], stream_max])
                    labels = np.concatenate([carry[2], labels])
                take, rest = perm[:n_served], perm[n_served:]
                yield waveform[take], stream_max[take], labels[take]
                carry = (waveform[rest], stream_max[rest], labels[rest])

    # ----------------------------------------------------------------- evaluation
    def split(self, name: str) -> SplitData:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def eval_batches(self, name: str) -> Iterator[dict[str, np.ndarray]]:
        """Input batches of ``eval_batch_size`` over a split, in store order.

        Batches are cut identically whether the split is in memory or streamed (a
        streamed chunk's tail is carried into the next batch), so predictions agree.
        """
        split = self.split(name)
        size = self.eval_batch_size
        if split.in_memory:
            for b in range(0, len(split), size):
                yield self.inputs(split.waveform[b : b + size], split.stream_max[b : b + size])
            return
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        held = 0
        for waveform, stream_max, _ in split.stream_in_order():
            pending.append((waveform, stream_max))
            held += len(waveform)
            if held < size:
                continue
            waveform = np.concatenate([p[0] for p in pending])
            stream_max = np.concatenate([p[1] for p in pending])
            n_full = len(waveform) // size * size
            for b in range(0, n_full, size):
                yield self.inputs(waveform[b : b + size], stream_max[b : b + size])
            pending = [(waveform[n_full:], stream_max[n_full:])]
            held = len(waveform) - n_full
        if held:
            yield self.inputs(
                np.concatenate([p[0] for p in pending]), np.concatenate([p[1] for p in pending])
            )

    def predict(self, model, name: str) -> np.ndarray:
        """Model outputs over a whole split, in store order, as float64 (n, outputs).

        Each batch goes through Keras's own compiled predict step (what ``model.predict``
        runs, built once and cached on the model), without ``model.predict``'s per-call
        set-up of a dataset, an iterator and callbacks: that set-up cost 30-50 ms a call,
        more than the demo's whole validation pass, which runs after every epoch
        (bench/job_fixed_cost.py). The outputs are bit-identical (tests/test_training.py).
        """
        import tensorflow as tf

        split = self.split(name)
        step = model.make_predict_function() or model.predict_function
        batches = self.eval_batches(name)
        if not split.in_memory:  # read the next chunks while the model runs
            batches = read_ahead(batches, PREFETCH_BATCHES, name="feed-reader")
        outputs = [np.asarray(step([({key: tf.convert_to_tensor(value) for key, value in batch.items()},)]))
                   for batch in batches]
        predictions = np.concatenate(outputs).astype(np.float64).reshape(len(split), -1)
        if self.task == "regression":  # back to label units (identity unless standardized)
            predictions = predictions * self.label_scale + self.label_shift
        return predictions


def _training_set(root, split: np.ndarray, indices: np.ndarray | None,
                  mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The training instances and their mask: a subset's, checked to lie in the training
    split, or (``indices`` None) the store's whole training split and mask."""
    if indices is None:
        return (np.flatnonzero(split == SPLIT_CODES["train"]),
                np.asarray(root["mask"][:], dtype=np.float32))
    if mask is None:
        raise ValueError("a training subset needs its own mask")
    if np.any(split[np.asarray(indices)] != SPLIT_CODES["train"]):
        raise ValueError("training subset holds instances outside the training split")
    return indices, mask


def _standardization(labels: np.ndarray) -> tuple[float, float]:
    """``(shift, scale)`` of standardized regression targets: the training labels' mean
    and standard deviation (1 for constant labels).

    The paper trains on raw labels (S&P 500: prices in the hundreds or thousands, which a
    freshly initialised linear head reaches only after thousands of Adam steps);
    predictions are mapped back, so metrics stay in the labels' units.
    """
    labels = np.asarray(labels, dtype=np.float64)
    spread = float(labels.std())
    return float(labels.mean()), spread if spread > 0 else 1.0


__all__: Sequence[str] = ["Feed", "SplitData", "load_in_memory", "MEMORY_LIMIT_BYTES"]
