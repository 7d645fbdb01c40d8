"""The channel-adaptation rule: a source model with m input channels on a target with k.

TensorFlow-free (NumPy only), so that the data feed, the weight transfer
(:mod:`tstransfer.transfer`) and the zoo (:mod:`tstransfer.zoo`) share one rule.

The paper's rules (section 2.3; the datasets have 1 or 3 channels), for any n:

* 1 -> n (1-channel source, n-channel target): the target model is built for its own n
  channels (:func:`adapt_channels`) and each kernel that reads the input channels (the
  first conv; for TCN also the first block's 1x1 shortcut conv) is the source kernel
  repeated along the input-channel axis (:func:`widen_input_kernel`).
* n -> 1: the target model is built for the source's n channels and the target's single
  channel is repeated n times (:func:`repeat_channels`), so every weight transfers
  unchanged.

Beyond the paper (a dataset of one's own, e.g. UEA BasicMotions with 6 channels): an
m-channel source -> a k-channel target, m, k > 1, m != k. The target is built for its
own k channels, and each input kernel W (kernel, m, filters) becomes

    W'[:, j, :] = (m / k) * mean_i W[:, i, :]      for every target channel j

(:func:`widen_input_kernel`): the source kernel averaged over its input channels,
repeated k times and scaled by m/k. Why: the source's filters mix its channels with
weights the target's channels do not correspond to (accelerometer axes are not seismic
components), so no channel of the source stands for a given target channel, and the
average is the part of each filter that does not depend on that correspondence; the
factor m/k keeps the activations' size: an input carrying one signal s on every
channel gives sum_i W_i * s = m * mean(W) * s in the source and
k * (m/k) * mean(W) * s, the same, in the target. Everything after the input kernels
transfers unchanged. (The paper's 1 -> n repeat is this rule without the factor 1/n;
it is kept as the paper has it.)

:func:`source_model_input` is the same rule seen from the frozen source model (the zoo's
LogME features): the target data rearranged so that the source model's first layer
computes what the adapted target model's first layer computes before fine-tuning.
"""

from __future__ import annotations

import numpy as np


def adapt_channels(source_channels: int, target_channels: int) -> int:
    """Channels to build the target model with, for a source with ``source_channels``.

    Equal counts stay; a single-channel source keeps the target's channels (kernels are
    widened); a single-channel target takes the source's channels (data is repeated);
    any other pair keeps the target's channels (kernels averaged, repeated and scaled,
    :func:`widen_input_kernel`). A count that is not a positive int raises ValueError
    naming it.
    """
    for name, value in (("source_channels", source_channels), ("target_channels", target_channels)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if target_channels == 1:
        return int(source_channels)
    return int(target_channels)


def widen_input_kernel(kernel: np.ndarray, target_channels: int) -> np.ndarray:
    """An input kernel (kernel, m, filters) for ``target_channels`` input channels.

    m = 1 (the paper's 1 -> n rule): the kernel repeated along the channel axis. m > 1:
    averaged over the m input channels, repeated and scaled by m / ``target_channels``
    (module docstring).
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 3:
        raise ValueError(f"expected an input kernel (kernel, channels, filters), got shape {kernel.shape}")
    source_channels = kernel.shape[1]
    if source_channels == 1:
        return np.repeat(kernel, target_channels, axis=1)
    mean = kernel.mean(axis=1, keepdims=True) * (source_channels / target_channels)
    return np.repeat(mean, target_channels, axis=1).astype(kernel.dtype)


def repeat_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """``x`` (..., time, 1) with its channel repeated to (..., time, ``channels``).

    An array that already has ``channels`` channels is returned as it is.
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"expected (..., time, channels), got shape {x.shape}")
    if x.shape[-1] == channels:
        return x
    if x.shape[-1] != 1:
        raise ValueError(f"can only repeat a single channel, got {x.shape[-1]} channels (shape {x.shape})")
    return np.repeat(x, channels, axis=-1)


def source_model_input(x: np.ndarray, source_channels: int) -> np.ndarray:
    """Target data ``x`` (..., time, k) for the frozen source model's ``source_channels`` (m).

    What the source model's input kernels W compute on the result equals what the
    adapted target model's (:func:`adapt_channels`, :func:`widen_input_kernel`) compute
    on ``x``: equal counts stay; one target channel is repeated (the n -> 1 rule
    repeats the data); to a one-channel source the channels are summed (W repeated over
    k channels, applied to them, is W applied to their sum); otherwise their mean goes
    to each source channel ((m/k) mean(W) on each of k channels is mean(W) on m copies
    of their mean).
    """
    x = np.asarray(x)
    k = x.shape[-1]
    if k == source_channels:
        return x
    if k == 1:
        return repeat_channels(x, source_channels)
    if source_channels == 1:
        return x.sum(axis=-1, keepdims=True)
    return np.repeat(x.mean(axis=-1, keepdims=True), source_channels, axis=-1)
