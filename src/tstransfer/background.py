"""Iterate in a background thread, a few items ahead of the consumer.

Used where reading holds the GIL (h5py, zarr decoding in Python) while the consumer's work
mostly releases it (numpy, Blosc, file writes, TensorFlow): the conversion's raw reader
(:mod:`tstransfer.store`) and the training feed's batch reader (:mod:`tstransfer.feed`).
:func:`without_autotune` keeps tf.data's own background thread out of the feed's pipelines.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any


def read_ahead(items: Iterable[Any], depth: int, *, name: str = "read-ahead") -> Iterator[Any]:
    """The items of ``items``, produced by a daemon thread up to ``depth`` ahead.

    An exception in the producer is raised here, in the consumer, unchanged (a
    :class:`~tstransfer.datasets.base.DataError` keeps the raw file it names). Closing
    this generator (the consumer failed, or stopped early) stops the producer at its
    next item, closes ``items`` if it is a generator (its ``finally``, e.g. closing raw
    files, runs in the producer's thread) and waits for the thread. Items handed over
    must not be changed by the next read (the readers yield a new array each time).
    """
    handed: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=0.1)  # (the timeout only bounds the wait for stop)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as err:  # noqa: BLE001 (re-raised in the consumer)
            put((done, err))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, err = handed.get()
            if item is done:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        thread.join()


def without_autotune(dataset):
    """``dataset`` with tf.data's autotuning off: fixed parallelism and buffers instead.

    An autotuned pipeline runs an optimization thread whose wake-ups back off to seconds
    apart; destroying the iterator waits for it. A training job's stream lives for the
    whole ``fit``, and its end then waited up to 10 s for that thread: a third of a
    GunPoint FCN referent's wall time, in one of two jobs side by side
    (bench/concurrent_jobs.py). The pipelines here gather batches by index or cut
    blocks, cheap next to a training step; two batches ahead are enough.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


__all__ = ["read_ahead", "without_autotune"]
