"""The preprocessed zarr store of one dataset, and the per-run training subsets.

Layout (an xarray Dataset with named dimensions, Zarr v3):

* ``waveform``  (instance, time, channel) float32 -- each instance min-max scaled to
  [0, 1] with its own min and max over all channels (a constant instance gives zeros);
  the training mask is *not* subtracted here, because every 1k5/9k subset has its own;
* ``label``     (instance,) float32 (regression) or int16 (classification);
* ``stream_max`` (instance,) float32 -- ``max(|min|, |max|)`` of the raw instance;
* ``split``     (instance,) int8 -- 0 train, 1 val, 2 test (``split_codes`` attr);
* ``key``       (instance,) str -- the raw trace / file / window id;
* ``raw_index`` (instance,) int64 -- the instance's position in the extraction's (raw) order;
* ``mask``      (time, channel) float32 -- mean scaled waveform of the full training split.

Instances are stored in a seeded random order (``rng_for(seed, "store-order", dataset)``),
not in the raw files' order, where neighbouring traces share station, time and magnitude:
a training split too big for memory is streamed a few chunks at a time (``feed.Feed``), and
its batches are close to draws from a full permutation only if every chunk is a random
sample of the split (bench/stream_order.py). ``key`` identifies each instance and
``raw_index`` restores the raw order (``np.argsort(raw_index)``).

Attributes record the dataset, task, classes, sampling rate, units, extraction
parameters, raw file checksums, split seed and fractions, counts, and what the extraction
dropped. See REFERENCE.md section 3 for the preprocessing this implements.

The package, by concern: :mod:`.splits` (train/val/test codes and stratified draws),
:mod:`.scaling` (per-instance min-max scaling), :mod:`.conversion` (``convert``: raw files
to the store), :mod:`.writer` and :mod:`.staging` (writing the store in its random order),
:mod:`.reading` (opening a store) and :mod:`.subsets` (the per-run training subsets).
"""

from .conversion import INSTANCE_CHUNK, READ_AHEAD, convert
from .reading import open_store, store_attrs
from .scaling import scale_instances
from .splits import DEFAULT_FRACTIONS, assign_splits, stratified_sample
from .subsets import load_subset, make_subset, mean_waveform

__all__ = [
    "assign_splits", "stratified_sample", "scale_instances", "convert", "open_store",
    "store_attrs", "make_subset", "mean_waveform", "load_subset",
    "DEFAULT_FRACTIONS", "INSTANCE_CHUNK", "READ_AHEAD",
]
