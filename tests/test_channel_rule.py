"""The channel-adaptation rule (src/tstransfer/channels.py): its parts agree with each
other in NumPy (what the fine-tuned model's input kernels compute equals what the frozen
source model computes on the zoo's adapted input), and beyond the paper's 1 <-> 3, 1 -> 6
and 3 -> 6 and 6 -> 3 for the input kernels of every architecture that has one reading
the channels, and the first layer's activations on equivalent inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tstransfer.channels import adapt_channels, repeat_channels, source_model_input, widen_input_kernel
from tstransfer.models import build_model, input_kernels, transferable_layers
from tstransfer.transfer import transfer_weights

ARCHS = ("convnetquake_ingv", "magnet", "mlstm_fcn", "tcn", "fcn")


def correlate(x, kernel):
    """A valid 1-D convolution (Keras' Conv1D, no bias): (n, time, c) * (size, c, filters)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape[0], axis=1)  # (n, t', c, size)
    return np.einsum("ntcs,scf->ntf", windows.astype(np.float64), kernel.astype(np.float64))


@pytest.mark.parametrize("m, k", [(3, 3), (1, 3), (3, 1), (1, 6), (3, 6), (6, 3), (2, 5)])
def test_the_rule_gives_the_fine_tuned_and_the_frozen_source_model_the_same_first_layer(m, k):
    """Fine-tuning (the target model built for adapt_channels' count, its data repeated when
    that differs from the data's, its input kernel widened) and the zoo's frozen source model
    (source_model_input) compute the same first-layer output on the target's data."""
    rng = np.random.default_rng(10 * m + k)
    kernel = rng.normal(size=(5, m, 4)).astype(np.float32)
    x = rng.normal(size=(2, 30, k)).astype(np.float32)
    built = adapt_channels(m, k)
    assert built == (m if k == 1 else k)
    data = repeat_channels(x, built)  # what the feed gives the fine-tuned model
    assert data.shape == (2, 30, built)
    target_kernel = kernel if built == m else widen_input_kernel(kernel, built)
    frozen = source_model_input(x, m)
    assert frozen.shape == (2, 30, m)
    np.testing.assert_allclose(correlate(data, target_kernel), correlate(frozen, kernel), rtol=1e-5, atol=1e-5)


def to_numpy(variable):
    return np.array(keras.ops.convert_to_numpy(variable))


def pair(arch, source_channels, target_channels):
    source = build_model(arch, length=60, channels=source_channels, task="classification",
                         n_outputs=4, stream_max=False, seed=1)
    model_channels = adapt_channels(source_channels, target_channels)
    target = build_model(arch, length=40, channels=model_channels, task="regression",
                         n_outputs=1, stream_max=True, seed=2)
    transfer_weights(source, target, arch)
    return source, target, model_channels


def first_layer(model, arch):
    """The layer that owns the first input kernel."""
    kernel = input_kernels(model, arch)[0]
    for layer in model._flatten_layers(include_self=False):
        if any(w is kernel for w in layer._trainable_variables):
            return layer
    raise AssertionError("no layer owns the input kernel")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("m, k", [(1, 6), (3, 6), (6, 3)])
def test_input_kernels_follow_the_rule_and_the_rest_is_copied(arch, m, k):
    source, target, model_channels = pair(arch, m, k)
    assert model_channels == k  # the target keeps its own channels
    source_kernels = [to_numpy(v) for v in input_kernels(source, arch)]
    target_kernels = [to_numpy(v) for v in input_kernels(target, arch)]
    for s, t in zip(source_kernels, target_kernels, strict=True):
        assert s.shape[1] == m and t.shape == (s.shape[0], k, s.shape[2])
        expected = s if m == 1 else s.mean(axis=1, keepdims=True) * m / k
        for c in range(k):
            np.testing.assert_allclose(t[:, c, :], expected[:, 0, :], rtol=1e-6, atol=1e-7)
    widened = {id(v) for v in input_kernels(target, arch)}
    source_weights = [v for layer in transferable_layers(source, arch) for v in layer.weights]
    target_weights = [v for layer in transferable_layers(target, arch) for v in layer.weights]
    for s, t in zip(source_weights, target_weights, strict=True):
        if id(t) not in widened:
            np.testing.assert_array_equal(to_numpy(t), to_numpy(s), err_msg=t.path)


@pytest.mark.parametrize("arch", ("convnetquake_ingv", "tcn"))
@pytest.mark.parametrize("m, k", [(1, 6), (3, 6), (6, 3)])
def test_first_layer_activations_equal_the_source_on_the_equivalent_input(arch, m, k):
    """m > 1: one signal on every channel gives the source's activations (the m/k factor).
    m = 1 (the paper's unscaled repeat): the signal split evenly over the k channels does."""
    source, target, _ = pair(arch, m, k)
    signal = np.random.default_rng(0).normal(size=(2, 40, 1)).astype("float32")
    source_in = np.repeat(signal, m, axis=-1)
    target_in = np.repeat(signal / k if m == 1 else signal, k, axis=-1)
    out_source = to_numpy(first_layer(source, arch)(source_in))
    out_target = to_numpy(first_layer(target, arch)(target_in))
    assert out_source.shape == out_target.shape
    np.testing.assert_allclose(out_target, out_source, rtol=1e-4, atol=1e-5)


def test_constant_input_gives_the_source_activations_six_to_three():
    source, target, _ = pair("convnetquake_ingv", 6, 3)
    out_source = to_numpy(first_layer(source, "convnetquake_ingv")(np.full((1, 40, 6), 0.7, "float32")))
    out_target = to_numpy(first_layer(target, "convnetquake_ingv")(np.full((1, 40, 3), 0.7, "float32")))
    np.testing.assert_allclose(out_target, out_source, rtol=1e-5, atol=1e-6)
