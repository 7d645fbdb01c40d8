"""Weight transfer from a pretrained model to a freshly built target model.

What transfers (REFERENCE.md section 4): every Conv1D of ConvNetQuake_INGV, MagNet and
MLSTM-FCN, and the whole TCN layer; everything else in the target keeps its fresh
initialisation. The transferred variables are the ones that get the learning-rate
multiplier (:func:`tstransfer.optim.make_optimizer`).

Channel mismatch (paper section 2.3; the datasets have 1 or 3 channels):

* 1-channel source -> 3-channel target: the target is built for its own 3 channels and
  each kernel that reads the input channels (the first conv; for TCN also the first
  block's 1x1 shortcut conv) is the source kernel repeated along the input-channel axis.
* 3-channel source -> 1-channel target: the target is built for 3 channels
  (:func:`adapt_channels`) and its data is the single channel repeated three times
  (:func:`repeat_channels`), so every weight transfers unchanged.

Both rules hold for any count n (1 -> n, n -> 1), as the paper's do for n = 3.

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
"""

from __future__ import annotations

import keras
import numpy as np

from tstransfer.models import input_kernels, transferable_layers


def adapt_channels(source_channels: int, target_channels: int) -> int:
    """Channels to build the target model with, for a source with ``source_channels``.

    Equal counts stay; a single-channel source keeps the target's channels (kernels are
    widened); a single-channel target takes the source's channels (data is repeated);
    any other pair keeps the target's channels (kernels averaged, repeated and scaled,
    :func:`widen_input_kernel`).
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


def transfer_weights(source: keras.Model, target: keras.Model, arch: str) -> list[keras.Variable]:
    """Copy the transferable layers' weights of ``source`` into ``target``.

    Layers are paired by the architecture's fixed order and must carry the same names;
    weights within a layer are paired by order. Returns the target variables that were
    written. Any shape difference other than an input kernel's channel count (m -> k
    input channels, :func:`widen_input_kernel`) raises ValueError naming the layer, the weight and both shapes; nothing is
    written to ``target`` unless every weight transfers.
    """
    source_layers = transferable_layers(source, arch)
    target_layers = transferable_layers(target, arch)
    widenable = {id(kernel) for kernel in input_kernels(target, arch)}

    assignments: list[tuple[keras.Variable, np.ndarray]] = []
    for source_layer, target_layer in zip(source_layers, target_layers, strict=True):
        if source_layer.name != target_layer.name:
            raise ValueError(
                f"{arch}: transferable layers differ: source {source_layer.name!r}, "
                f"target {target_layer.name!r}"
            )
        source_weights = source_layer.weights
        target_weights = target_layer.weights
        if len(source_weights) != len(target_weights):
            raise ValueError(
                f"{arch}: layer {target_layer.name!r} has {len(source_weights)} weights in the "
                f"source and {len(target_weights)} in the target"
            )
        for source_var, target_var in zip(source_weights, target_weights):
            value = np.array(keras.ops.convert_to_numpy(source_var))
            target_shape = tuple(target_var.shape)
            if value.shape != target_shape:
                if id(target_var) in widenable and _widens_input_channels(value.shape, target_shape):
                    value = widen_input_kernel(value, target_shape[1])
                else:
                    raise ValueError(
                        f"{arch}: cannot transfer layer {target_layer.name!r} weight "
                        f"{target_var.path!r}: source shape {value.shape}, target shape "
                        f"{target_shape}"
                    )
            assignments.append((target_var, value))

    for target_var, value in assignments:
        target_var.assign(value)
    return [target_var for target_var, _ in assignments]


def _widens_input_channels(source_shape: tuple, target_shape: tuple) -> bool:
    """A (kernel, m, filters) kernel going to (kernel, k, filters), k > 1: an m-channel
    source and a 1-channel target take the paper's rule instead (:func:`adapt_channels`:
    the target is built for m channels and its data repeated)."""
    return (
        len(source_shape) == 3
        and len(target_shape) == 3
        and target_shape[1] > 1
        and source_shape[0] == target_shape[0]
        and source_shape[2] == target_shape[2]
    )
