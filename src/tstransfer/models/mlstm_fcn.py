"""MLSTM-FCN (Karim et al. 2019; paper section 2.2.3), as in the authors' code.

Convolutional branch: Conv1D(128, k8) -> BN -> ReLU -> squeeze-excite -> Conv1D(256, k5) ->
BN -> ReLU -> squeeze-excite -> Conv1D(128, k3) -> BN -> ReLU -> global average pooling;
convolutions he_uniform with same padding. Squeeze-excite (ratio 16): global average pool ->
Dense(f/16, ReLU) -> Dense(f, sigmoid), both he_normal without bias -> channel-wise scale.
LSTM branch: input transposed to (channels, time) -> Masking -> LSTM(8) -> Dropout 0.8.
Both branches [+ stream_max] concatenated -> head.

The transposition makes the LSTM run over the channels (1 or 3 steps) with the whole time
series as the feature vector, so its kernel grows with the input length.
"""

from __future__ import annotations

import keras

from tstransfer.models import common

NAME = "mlstm_fcn"
CONV_BLOCKS = ((128, 8), (256, 5), (128, 3))  # (filters, kernel size)
SE_BLOCKS = 2  # the first two conv blocks end in squeeze-excite
SE_RATIO = 16
LSTM_UNITS = 8
LSTM_DROPOUT = 0.8
TRANSFERABLE_LAYERS = tuple(f"conv{i}" for i in range(1, len(CONV_BLOCKS) + 1))


def _squeeze_excite(x, prefix: str, seed: int):
    filters = int(x.shape[-1])
    se = keras.layers.GlobalAveragePooling1D(name=f"{prefix}_pool")(x)
    se = keras.layers.Reshape((1, filters), name=f"{prefix}_reshape")(se)
    se = keras.layers.Dense(
        filters // SE_RATIO,
        activation="relu",
        use_bias=False,
        kernel_initializer=common.initializer("he_normal", seed, NAME, f"{prefix}_squeeze"),
        name=f"{prefix}_squeeze",
    )(se)
    se = keras.layers.Dense(
        filters,
        activation="sigmoid",
        use_bias=False,
        kernel_initializer=common.initializer("he_normal", seed, NAME, f"{prefix}_excite"),
        name=f"{prefix}_excite",
    )(se)
    return keras.layers.Multiply(name=f"{prefix}_scale")([x, se])


def build(*, length, channels, task, n_outputs, stream_max, dataset=None, seed=0,
          recurrent_activation: str = "sigmoid") -> keras.Model:
    """``recurrent_activation``: the LSTM's gate activation; ``"hard_sigmoid"`` is what
    the authors' TF 1.14 ``tf.keras.layers.LSTM`` defaulted to (their Models.py line 70;
    protocol switch ``lstm_hard_sigmoid``), ``"sigmoid"`` Keras 3's default."""
    del dataset  # one variant for every dataset
    inputs, waveform, stream = common.waveform_inputs(length, channels, stream_max)

    # LSTM branch. Masking skips a channel that is exactly zero over the whole window, as
    # the authors' code does.
    lstm = keras.layers.Permute((2, 1), name="lstm_transpose")(waveform)
    lstm = keras.layers.Masking(name="lstm_mask")(lstm)
    lstm = keras.layers.LSTM(
        LSTM_UNITS,
        kernel_initializer=common.initializer("glorot_uniform", seed, NAME, "lstm", "kernel"),
        recurrent_initializer=common.initializer("orthogonal", seed, NAME, "lstm", "recurrent"),
        recurrent_activation=recurrent_activation,
        name="lstm",
    )(lstm)
    lstm = keras.layers.Dropout(
        LSTM_DROPOUT, seed=common.layer_seed(seed, NAME, "lstm_dropout", "mask"), name="lstm_dropout"
    )(lstm)

    # Fully convolutional branch.
    conv = waveform
    for index, (conv_name, (filters, kernel_size)) in enumerate(zip(TRANSFERABLE_LAYERS, CONV_BLOCKS), 1):
        conv = common.conv_bn_relu(conv, filters, kernel_size, index=index, conv_name=conv_name,
                                   initializer_kind="he_uniform", seed=seed, arch=NAME)
        if index <= SE_BLOCKS:
            conv = _squeeze_excite(conv, f"se{index}", seed)
    conv = keras.layers.GlobalAveragePooling1D(name="conv_pool")(conv)

    branches = [lstm, conv] if stream is None else [lstm, conv, stream]
    x = keras.layers.Concatenate(name="concat_branches")(branches)
    outputs = common.head(x, task=task, n_outputs=n_outputs, seed=seed, arch=NAME)
    return keras.Model(inputs=inputs, outputs=outputs, name=NAME)


def input_kernels(model: keras.Model) -> list:
    return [model.get_layer(TRANSFERABLE_LAYERS[0]).kernel]
