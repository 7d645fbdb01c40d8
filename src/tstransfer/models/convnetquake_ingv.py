"""ConvNetQuake_INGV (Lomax et al. 2019, as adapted by the authors; paper section 2.2.1).

Nine Conv1D(32, kernel 3, stride 2, same padding, ReLU) layers with L2 on the kernels, no
pooling, dropout or normalisation; Flatten; [stream_max]; Dense(flatten size [+1], ReLU);
head. Each stride-2 "same" conv maps n time steps to ceil(n / 2), so the flattened size is
32 * ceil(L / 512) and the first dense layer has as many units as it has inputs.

The paper needed three variants to make the model converge (section 2.2.1); the variant
follows the dataset being trained on. Dense layers keep Keras's default glorot_uniform in
every variant, as in the authors' code.
"""

from __future__ import annotations

import keras

from tstransfer.models import common

NAME = "convnetquake_ingv"
N_CONV = 9
FILTERS = 32
KERNEL_SIZE = 3
STRIDES = 2
TRANSFERABLE_LAYERS = tuple(f"conv{i}" for i in range(1, N_CONV + 1))

# dataset -> (conv kernel initializer, L2 factor on conv kernels or None).
ORIGINAL_VARIANT = ("glorot_uniform", 1e-3)
DATASET_VARIANTS = {
    "speech": ("he_normal", 1e-3),
    "emg": ("glorot_normal", None),
    "sp500": ("he_normal", 0.7),
}


def variant(dataset: str | None) -> tuple[str, float | None]:
    """(conv initializer, conv L2 factor) used when training on ``dataset``."""
    return DATASET_VARIANTS.get(dataset, ORIGINAL_VARIANT)


def build(*, length, channels, task, n_outputs, stream_max, dataset=None, seed=0) -> keras.Model:
    kernel_init, l2 = variant(dataset)
    inputs, waveform, stream = common.waveform_inputs(length, channels, stream_max)

    x = waveform
    for name in TRANSFERABLE_LAYERS:
        x = keras.layers.Conv1D(
            FILTERS,
            KERNEL_SIZE,
            strides=STRIDES,
            padding="same",
            activation="relu",
            kernel_initializer=common.initializer(kernel_init, seed, NAME, name),
            kernel_regularizer=keras.regularizers.L2(l2) if l2 is not None else None,
            name=name,
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = common.with_stream_max(x, stream)
    x = keras.layers.Dense(
        int(x.shape[-1]),
        activation="relu",
        kernel_initializer=common.initializer("glorot_uniform", seed, NAME, "dense1"),
        name="dense1",
    )(x)
    outputs = common.head(x, task=task, n_outputs=n_outputs, seed=seed, arch=NAME)
    return keras.Model(inputs=inputs, outputs=outputs, name=NAME)


def input_kernels(model: keras.Model) -> list:
    return [model.get_layer(TRANSFERABLE_LAYERS[0]).kernel]
