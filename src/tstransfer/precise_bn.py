"""Batch-normalisation statistics recomputed over the training set ("precise BN", Wu &
Johnson 2021, "Rethinking 'Batch' in BatchNorm", section 3): config
``training.recalibrate_batchnorm`` (off by default, the paper's behaviour).

A BatchNormalization layer normalises a training batch by the batch's own statistics, but
predicts with moving averages (momentum 0.99 in Keras) of the batches' statistics under
the weights of the last ~100 steps. A training job of a few hundred steps changes its
weights faster than those averages follow, so the weights of the epoch with the lowest
training loss can predict one class for every input: FCN on GunPoint after 240 steps,
training loss 0.02, test accuracy 0.51 at chance, and validation accuracy 1.0 only once
the learning rate had decayed to 5e-7 and the averages caught up (bench/referents_real.py;
README "Transfer on real data"). Recomputing the statistics after every epoch, from one
forward pass over the training set in training mode, makes the weights that validation
sees, that the best-weights snapshot keeps and that the test evaluates the ones training
optimised. Training itself is unchanged: a training step never reads the moving averages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def batchnorm_layers(model) -> list:
    """The model's BatchNormalization layers, those of nested models included, depth first
    in the order of ``layers`` (Keras' public attribute; its own flattening walk is private)."""
    import keras

    found: list = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += batchnorm_layers(layer)
    return found


def recalibrate(model, batches: Iterable[Mapping[str, np.ndarray]], layers: list | None = None) -> int:
    """Set every BatchNormalization layer's moving mean and variance to the statistics of
    the inputs ``batches`` (the training split, in any order) and return how many
    instances they held; nothing happens (0) for a model without such a layer.

    Each batch runs through the model in training mode with the layers' momentum set so
    that the moving averages become the instance-weighted mean of the batches' means and
    variances: one batch holding the whole set gives its exact statistics. The momenta are
    restored afterwards. Eager calls: a traced function would freeze the momentum.
    ``layers``: :func:`batchnorm_layers` of ``model``, when the caller has them (a training
    job finds them once, not after every epoch).
    """
    layers = batchnorm_layers(model) if layers is None else layers
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    seen = 0
    try:
        for batch in batches:
            n = len(next(iter(batch.values())))
            if n == 0:
                continue
            for layer in layers:  # moving <- moving * seen / (seen + n) + batch * n / (seen + n)
                layer.momentum = seen / (seen + n)
            model(dict(batch), training=True)
            seen += n
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return seen
