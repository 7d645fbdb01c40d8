"""TCN (Bai et al. 2018, keras-tcn; paper section 2.2.4), with the authors' hyperparameters.

24 filters, kernel 8, one stack of dilations 1, 2, ..., 256 (nine residual blocks), causal
padding, no skip connections, no dropout, ReLU, he_normal, no normalisation, last time step
only -> [stream_max] -> head. The first block also has a 1x1 "matching" convolution on its
shortcut, because the input has fewer channels than 24.
"""

from __future__ import annotations

import keras
from tcn import TCN

from tstransfer.models import common

NAME = "tcn"
TCN_LAYER = "tcn"
NB_FILTERS = 24
KERNEL_SIZE = 8
NB_STACKS = 1
DILATIONS = tuple(2**i for i in range(9))
KERNEL_INITIALIZER = "he_normal"
TRANSFERABLE_LAYERS = (TCN_LAYER,)


def build(*, length, channels, task, n_outputs, stream_max, dataset=None, seed=0) -> keras.Model:
    del dataset  # one variant for every dataset
    inputs, waveform, stream = common.waveform_inputs(length, channels, stream_max)
    tcn_layer = TCN(
        nb_filters=NB_FILTERS,
        kernel_size=KERNEL_SIZE,
        nb_stacks=NB_STACKS,
        dilations=list(DILATIONS),
        padding="causal",
        use_skip_connections=False,
        dropout_rate=0.0,
        return_sequences=False,
        activation="relu",
        kernel_initializer=KERNEL_INITIALIZER,
        use_batch_norm=False,
        use_layer_norm=False,
        name=TCN_LAYER,
    )
    x = tcn_layer(waveform)
    x = common.with_stream_max(x, stream)
    outputs = common.head(x, task=task, n_outputs=n_outputs, seed=seed, arch=NAME)
    model = keras.Model(inputs=inputs, outputs=outputs, name=NAME)
    _seed_kernels(tcn_layer, seed)
    return model


def _seed_kernels(tcn_layer: TCN, seed: int) -> None:
    """Redraw every TCN kernel from a seed of its own.

    keras-tcn hands its ``kernel_initializer`` to every inner Conv1D, so a seeded
    initializer object would give all equally shaped kernels the same values (and would
    have to survive keras-tcn's config); the layer is therefore built with the plain
    initializer name and its kernels redrawn here, one seed per variable path (unique:
    ``tcn/residual_block_<i>/<conv>/kernel``). Biases start at zero, which needs no seed.
    """
    for variable in tcn_layer.weights:
        if variable.path.endswith("/kernel"):
            init = common.initializer(KERNEL_INITIALIZER, seed, NAME, variable.path)
            variable.assign(init(variable.shape, dtype=variable.dtype))


def input_kernels(model: keras.Model) -> list:
    """The kernels of the first residual block that read the input channels."""
    first_block = model.get_layer(TCN_LAYER).residual_blocks[0]
    kernels = [first_block.layers[0].kernel]  # the block's first dilated conv
    if isinstance(first_block.shape_match_conv, keras.layers.Conv1D):
        kernels.append(first_block.shape_match_conv.kernel)  # 1x1 conv on the shortcut
    return kernels
