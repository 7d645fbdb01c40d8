"""Weight transfer from a pretrained model to a freshly built target model.

What transfers (REFERENCE.md section 4): every Conv1D of ConvNetQuake_INGV, MagNet and
MLSTM-FCN, and the whole TCN layer; everything else in the target keeps its fresh
initialisation. The transferred variables are the ones that get the learning-rate
multiplier (:func:`tstransfer.optim.make_optimizer`).

Channel mismatch: the rule is :mod:`tstransfer.channels` (TensorFlow-free, shared with the
data feed and the zoo). Here it takes effect as :func:`transfer_weights` widening the
input kernels (:func:`tstransfer.channels.widen_input_kernel`) when the target model is
built for other channels than the source (:func:`tstransfer.channels.adapt_channels`).
"""

from __future__ import annotations

import keras
import numpy as np

from tstransfer.channels import widen_input_kernel
from tstransfer.models import input_kernels, transferable_layers


def transfer_weights(source: keras.Model, target: keras.Model, arch: str) -> list[keras.Variable]:
    """Copy the transferable layers' weights of ``source`` into ``target``.

    Layers are paired by the architecture's fixed order and must carry the same names;
    weights within a layer are paired by order. Returns the target variables that were
    written. Any shape difference other than an input kernel's channel count (m -> k
    input channels,
    :func:`~tstransfer.channels.widen_input_kernel`) raises ValueError naming the layer, the weight and both shapes; nothing is
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
    source and a 1-channel target take the paper's rule instead
    (:func:`tstransfer.channels.adapt_channels`:
    the target is built for m channels and its data repeated)."""
    return (
        len(source_shape) == 3
        and len(target_shape) == 3
        and target_shape[1] > 1
        and source_shape[0] == target_shape[0]
        and source_shape[2] == target_shape[2]
    )
