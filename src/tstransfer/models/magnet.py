"""MagNet (Mousavi & Beroza 2020; paper section 2.2.2).

Conv1D(64, k3, same, no activation) -> Dropout 0.2 -> MaxPool 4 (same) -> Conv1D(32, k3,
same, no activation) -> Dropout 0.2 -> MaxPool 4 (same) -> Bidirectional LSTM(100), last
output -> [stream_max] -> head. Layer sizes and default initializers as in the authors'
code. Their dropout also ran at inference (``training=True``); here dropout is the
standard kind, off at inference (REFERENCE.md section 6).
"""

from __future__ import annotations

import keras

from tstransfer.models import common

NAME = "magnet"
CONV_FILTERS = (64, 32)
KERNEL_SIZE = 3
POOL_SIZE = 4
DROPOUT = 0.2
LSTM_UNITS = 100
TRANSFERABLE_LAYERS = ("conv1", "conv2")


def _lstm(name: str, seed: int, go_backwards: bool) -> keras.layers.LSTM:
    return keras.layers.LSTM(
        LSTM_UNITS,
        return_sequences=False,
        go_backwards=go_backwards,
        kernel_initializer=common.initializer("glorot_uniform", seed, NAME, name, "kernel"),
        recurrent_initializer=common.initializer("orthogonal", seed, NAME, name, "recurrent"),
        name=name,
    )


@keras.saving.register_keras_serializable(package="tstransfer")
class AlwaysOnDropout(keras.layers.Dropout):
    """Dropout also when predicting, as the authors' MagNet had it.

    Passing ``training=True`` when building a functional model is not enough in Keras 3:
    calling the model with ``training=False`` (``predict`` does) overrides it.
    """

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def build(
    *, length, channels, task, n_outputs, stream_max, dataset=None, seed=0, dropout_at_inference=False
) -> keras.Model:
    """``dropout_at_inference``: the authors' MagNet kept dropout on when predicting
    (protocol switch ``magnet_dropout_at_inference``), with :class:`AlwaysOnDropout`."""
    del dataset  # one variant for every dataset
    dropout = AlwaysOnDropout if dropout_at_inference else keras.layers.Dropout
    inputs, waveform, stream = common.waveform_inputs(length, channels, stream_max)

    x = waveform
    for index, (conv_name, filters) in enumerate(zip(TRANSFERABLE_LAYERS, CONV_FILTERS), 1):
        x = keras.layers.Conv1D(
            filters,
            KERNEL_SIZE,
            padding="same",
            kernel_initializer=common.initializer("glorot_uniform", seed, NAME, conv_name),
            name=conv_name,
        )(x)
        x = dropout(
            DROPOUT, seed=common.layer_seed(seed, NAME, f"dropout{index}", "mask"), name=f"dropout{index}"
        )(x)
        x = keras.layers.MaxPooling1D(POOL_SIZE, padding="same", name=f"pool{index}")(x)

    # Keras would build the backward LSTM from the forward one's config, seeds included,
    # so both directions would start with identical weights; give each its own seed.
    x = keras.layers.Bidirectional(
        _lstm("forward_lstm", seed, go_backwards=False),
        backward_layer=_lstm("backward_lstm", seed, go_backwards=True),
        name="bilstm",
    )(x)
    x = common.with_stream_max(x, stream)
    outputs = common.head(x, task=task, n_outputs=n_outputs, seed=seed, arch=NAME)
    return keras.Model(inputs=inputs, outputs=outputs, name=NAME)


def input_kernels(model: keras.Model) -> list:
    return [model.get_layer(TRANSFERABLE_LAYERS[0]).kernel]
