"""FCN, the fully convolutional network of Wang et al. 2017 ("Time series classification
from scratch with deep neural networks: a strong baseline"), as Ismail Fawaz et al. train
it on the UCR/UEA archives (github.com/hfawaz/dl-4-tsc, classifiers/fcn.py) and as they
transfer it between UCR problems (Ismail Fawaz et al. 2018, "Transfer learning for time
series classification").

Not one of the paper's four architectures: it is here for the study on real UCR/UEA data
(config/real.yaml), where the paper's architectures, built for seismograms, fall far short
of the accuracy published for this family on the same splits (README "Transfer on real
data"), so that the gains it measures are over competent referents.

Conv1D(128, k8) -> BN -> ReLU -> Conv1D(256, k5) -> BN -> ReLU -> Conv1D(128, k3) -> BN ->
ReLU -> global average pooling -> [stream_max] -> head; convolutions with same padding and
Keras's default initializer (glorot_uniform), as in dl-4-tsc. It is MLSTM-FCN's
convolutional branch without the squeeze-excite blocks and without the LSTM branch. The
three convolutions transfer (with the learning-rate multiplier); the batch normalisations
start afresh on the target, as the head does.
"""

from __future__ import annotations

import keras

from tstransfer.models import common

NAME = "fcn"
CONV_BLOCKS = ((128, 8), (256, 5), (128, 3))  # (filters, kernel size)
TRANSFERABLE_LAYERS = tuple(f"conv{i}" for i in range(1, len(CONV_BLOCKS) + 1))


def build(*, length, channels, task, n_outputs, stream_max, dataset=None, seed=0) -> keras.Model:
    del dataset  # one variant for every dataset
    inputs, waveform, stream = common.waveform_inputs(length, channels, stream_max)
    x = waveform
    for index, (conv_name, (filters, kernel_size)) in enumerate(zip(TRANSFERABLE_LAYERS, CONV_BLOCKS), 1):
        x = common.conv_bn_relu(x, filters, kernel_size, index=index, conv_name=conv_name,
                                initializer_kind="glorot_uniform", seed=seed, arch=NAME)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = common.with_stream_max(x, stream)
    outputs = common.head(x, task=task, n_outputs=n_outputs, seed=seed, arch=NAME)
    return keras.Model(inputs=inputs, outputs=outputs, name=NAME)


def input_kernels(model: keras.Model) -> list:
    return [model.get_layer(TRANSFERABLE_LAYERS[0]).kernel]
