"""Pieces every architecture shares: inputs, the output head, seeded initializers.

An architecture module (one per architecture, registered in
``tstransfer.models.ARCHITECTURES``) provides:

* ``build(*, length, channels, task, n_outputs, stream_max, dataset, seed)``: the Keras
  functional model. Its inputs come from :func:`waveform_inputs`, its output from
  :func:`head`, and every random initializer or dropout layer gets its seed from
  :func:`initializer` / :func:`layer_seed`, so one ``seed`` fixes the initial weights.
* ``TRANSFERABLE_LAYERS``: the names of the layers whose weights are transferred (and get
  the learning-rate multiplier), in a stable order (REFERENCE.md section 4).
* ``input_kernels(model)``: the kernels whose axis 1 is the waveform's channel axis; only
  these may be widened from 1 to 3 input channels by :mod:`tstransfer.transfer`.

Every layer is named explicitly: Keras's automatic names (``dense_3``) depend on how many
layers the process built before, and weight transfer, saved models and multipliers
recorded by variable path all rely on names being the same in every process.
"""

from __future__ import annotations

import keras

from tstransfer.seeding import int_seed

TASKS = ("regression", "classification")
WAVEFORM_INPUT = "waveform"
STREAM_MAX_INPUT = "stream_max"
HEAD_LAYER = "head"

_INITIALIZERS = {
    "glorot_uniform": keras.initializers.GlorotUniform,
    "glorot_normal": keras.initializers.GlorotNormal,
    "he_uniform": keras.initializers.HeUniform,
    "he_normal": keras.initializers.HeNormal,
    "orthogonal": keras.initializers.Orthogonal,
}


def layer_seed(seed: int, arch: str, layer: str, role: str) -> int:
    """The integer seed of one random draw: (model seed, architecture, layer, role)."""
    return int_seed(seed, arch, layer, role)


def initializer(kind: str, seed: int, arch: str, layer: str, role: str = "kernel"):
    """A fresh ``kind`` initializer seeded for one weight of one layer.

    One instance per weight: an initializer with an integer seed returns the same values
    every time it is called, so sharing one between layers would give them equal weights.
    """
    try:
        cls = _INITIALIZERS[kind]
    except KeyError:
        raise ValueError(f"unknown initializer {kind!r}; known: {sorted(_INITIALIZERS)}") from None
    return cls(seed=layer_seed(seed, arch, layer, role))


def check_build_args(*, length: int, channels: int, task: str, n_outputs: int) -> None:
    """Reject arguments no architecture can be built with, naming the bad one."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    for name, value in (("length", length), ("channels", channels), ("n_outputs", n_outputs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def waveform_inputs(length: int, channels: int, stream_max: bool):
    """The model's named inputs: ``(inputs_dict, waveform_tensor, stream_max_tensor_or_None)``."""
    waveform = keras.Input(shape=(length, channels), name=WAVEFORM_INPUT)
    inputs = {WAVEFORM_INPUT: waveform}
    stream = None
    if stream_max:
        stream = keras.Input(shape=(1,), name=STREAM_MAX_INPUT)
        inputs[STREAM_MAX_INPUT] = stream
    return inputs, waveform, stream


def with_stream_max(features, stream, name: str = "concat_stream_max"):
    """``features`` with the stream_max input appended (unchanged when there is none)."""
    if stream is None:
        return features
    return keras.layers.Concatenate(name=name)([features, stream])


def conv_bn_relu(x, filters: int, kernel_size: int, *, index: int, conv_name: str, initializer_kind: str,
                 seed: int, arch: str):
    """Conv1D (same padding) -> BatchNormalization -> ReLU, the block of FCN and of
    MLSTM-FCN's convolutional branch; the normalisation and activation are named
    ``bn{index}`` and ``relu{index}``."""
    x = keras.layers.Conv1D(
        filters,
        kernel_size,
        padding="same",
        kernel_initializer=initializer(initializer_kind, seed, arch, conv_name),
        name=conv_name,
    )(x)
    x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
    return keras.layers.Activation("relu", name=f"relu{index}")(x)


def head(features, *, task: str, n_outputs: int, seed: int, arch: str):
    """Dense(n_outputs): linear for regression, softmax for classification."""
    activation = "linear" if task == "regression" else "softmax"
    return keras.layers.Dense(
        n_outputs,
        activation=activation,
        kernel_initializer=initializer("glorot_uniform", seed, arch, HEAD_LAYER),
        name=HEAD_LAYER,
    )(features)


def input_channels(model: keras.Model) -> int:
    """Channels of the model's waveform input."""
    return int(model.get_layer(WAVEFORM_INPUT).output.shape[-1])
