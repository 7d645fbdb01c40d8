"""The four architectures of the paper, and FCN for the real-data study, one module each,
registered in ARCHITECTURES.

A new architecture is one module (the interface is described in
:mod:`tstransfer.models.common`) plus one line in ``ARCHITECTURES`` and its label in
:mod:`tstransfer.registry`, which holds the architectures' names and labels for the parts
of the pipeline without TensorFlow.
"""

from __future__ import annotations

import keras

from tstransfer.models import common, convnetquake_ingv, fcn, magnet, mlstm_fcn, tcn

ARCHITECTURES = {
    "convnetquake_ingv": convnetquake_ingv,
    "magnet": magnet,
    "mlstm_fcn": mlstm_fcn,
    "tcn": tcn,
    "fcn": fcn,
}


def architecture(arch: str):
    """The module of architecture ``arch``."""
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}") from None


def build_model(
    arch: str,
    *,
    length: int,
    channels: int,
    task: str,
    n_outputs: int,
    stream_max: bool,
    dataset: str | None = None,
    seed: int = 0,
    **options,
) -> keras.Model:
    """Build architecture ``arch`` for inputs of ``length`` x ``channels``.

    Inputs are named ``waveform`` (length, channels) and, with ``stream_max``, ``stream_max``
    (1,); call the model with a dict. The head is Dense(n_outputs), linear for
    ``task == "regression"`` and softmax for ``"classification"``. ``dataset`` (the dataset
    being trained on) picks ConvNetQuake_INGV's variant and is ignored by the other
    architectures. ``seed`` fixes every initial weight and dropout stream. ``options``
    go to the architecture's own ``build`` (MagNet: ``dropout_at_inference``); one it
    does not take is a TypeError.
    """
    module = architecture(arch)
    common.check_build_args(length=length, channels=channels, task=task, n_outputs=n_outputs)
    return module.build(
        length=length,
        channels=channels,
        task=task,
        n_outputs=n_outputs,
        stream_max=bool(stream_max),
        dataset=dataset,
        seed=int(seed),
        **options,
    )


def transferable_layers(model: keras.Model, arch: str) -> list[keras.layers.Layer]:
    """The layers of ``model`` whose weights transfer, in the architecture's fixed order."""
    return [model.get_layer(name) for name in architecture(arch).TRANSFERABLE_LAYERS]


def input_kernels(model: keras.Model, arch: str) -> list:
    """Kernels of ``model`` whose axis 1 is the waveform's channel axis."""
    return architecture(arch).input_kernels(model)
