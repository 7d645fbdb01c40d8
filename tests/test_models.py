"""tstransfer.models: shapes, parameter counts against hand-derived formulas, variants, seeds."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tstransfer.models import ARCHITECTURES, build_model, input_kernels, transferable_layers
from tstransfer.models.common import input_channels

ARCHS = ("convnetquake_ingv", "magnet", "mlstm_fcn", "tcn", "fcn")
LENGTHS = (50, 80, 540, 1001)


# --- parameter counts, derived by hand from the layer definitions (REFERENCE.md section 4) ---


def conv_params(kernel, c_in, filters, bias=True):
    return kernel * c_in * filters + (filters if bias else 0)


def dense_params(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def lstm_params(n_in, units):
    # Four gates, each with input kernel, recurrent kernel and bias.
    return 4 * (units * (n_in + units) + units)


def bn_params(features):
    # gamma, beta, moving mean, moving variance (the last two are non-trainable).
    return 4 * features


def expected_params(arch, length, channels, n_outputs, stream_max):
    s = int(stream_max)
    if arch == "convnetquake_ingv":
        flat = 32 * math.ceil(length / 512)  # nine stride-2 "same" convs: L -> ceil(L / 2**9)
        dense1 = flat + s
        return (
            conv_params(3, channels, 32)
            + 8 * conv_params(3, 32, 32)
            + dense_params(flat + s, dense1)
            + dense_params(dense1, n_outputs)
        )
    if arch == "magnet":
        return (
            conv_params(3, channels, 64)
            + conv_params(3, 64, 32)
            + 2 * lstm_params(32, 100)
            + dense_params(200 + s, n_outputs)
        )
    if arch == "mlstm_fcn":
        return (
            lstm_params(length, 8)  # the LSTM reads the transposed input: time is the feature axis
            + conv_params(8, channels, 128) + bn_params(128)
            + dense_params(128, 128 // 16, bias=False) + dense_params(128 // 16, 128, bias=False)
            + conv_params(5, 128, 256) + bn_params(256)
            + dense_params(256, 256 // 16, bias=False) + dense_params(256 // 16, 256, bias=False)
            + conv_params(3, 256, 128) + bn_params(128)
            + dense_params(8 + 128 + s, n_outputs)
        )
    if arch == "tcn":
        first_block = conv_params(8, channels, 24) + conv_params(8, 24, 24) + conv_params(1, channels, 24)
        other_blocks = 8 * 2 * conv_params(8, 24, 24)
        return first_block + other_blocks + dense_params(24 + s, n_outputs)
    if arch == "fcn":  # MLSTM-FCN's convolutional branch alone
        return (
            conv_params(8, channels, 128) + bn_params(128)
            + conv_params(5, 128, 256) + bn_params(256)
            + conv_params(3, 256, 128) + bn_params(128)
            + dense_params(128 + s, n_outputs)
        )
    raise AssertionError(arch)


def inputs_for(model_length, channels, stream_max, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    x = {"waveform": rng.normal(size=(batch, model_length, channels)).astype("float32")}
    if stream_max:
        x["stream_max"] = rng.uniform(0.5, 2.0, size=(batch, 1)).astype("float32")
    return x


def weight_digest(model):
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(variable.path.encode())
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes())
    return digest.hexdigest()


def is_random(values):
    """A random draw, not a constant initialisation (zero bias, LSTM forget-gate ones, BN)."""
    return values.size > 1 and np.unique(values).size > values.size // 2


def test_registry_has_the_papers_four_architectures_and_fcn():
    assert set(ARCHITECTURES) == set(ARCHS)
    for module in ARCHITECTURES.values():
        assert callable(module.build) and callable(module.input_kernels)
        assert module.TRANSFERABLE_LAYERS


@pytest.mark.parametrize("channels", (1, 3))
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_parameter_counts(arch, length, channels):
    for task, n_outputs in (("regression", 1), ("classification", 5)):
        for stream_max in (False, True):
            model = build_model(
                arch, length=length, channels=channels, task=task, n_outputs=n_outputs,
                stream_max=stream_max, seed=3,
            )
            assert model.count_params() == expected_params(arch, length, channels, n_outputs, stream_max)
            assert model.get_layer("waveform").batch_shape == (None, length, channels)
            assert input_channels(model) == channels
            assert ("stream_max" in {layer.name for layer in model.layers}) == stream_max
            assert model.output.shape == (None, n_outputs)
            expected_activation = keras.activations.linear if task == "regression" else keras.activations.softmax
            assert model.get_layer("head").activation is expected_activation

    # One real forward pass (eager calls are the slow part): the last model built,
    # classification with stream_max, called with a dict as the training loop does.
    y = keras.ops.convert_to_numpy(model(inputs_for(length, channels, True), training=False))
    assert y.shape == (2, 5)
    assert np.all(np.isfinite(y)) and np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("length", (6000, 8000))
@pytest.mark.parametrize("arch", ARCHS)
def test_builds_at_long_lengths(arch, length):
    for channels in (1, 3):
        model = build_model(
            arch, length=length, channels=channels, task="regression", n_outputs=1, stream_max=True
        )
        assert model.output.shape == (None, 1)
        assert model.count_params() == expected_params(arch, length, channels, 1, True)


@pytest.mark.parametrize("arch", ARCHS)
def test_stream_max_feeds_the_prediction(arch):
    model = build_model(arch, length=80, channels=3, task="regression", n_outputs=1, stream_max=True, seed=5)
    x = inputs_for(80, 3, True)
    y1 = keras.ops.convert_to_numpy(model(x, training=False))
    x["stream_max"] = x["stream_max"] + 10.0
    y2 = keras.ops.convert_to_numpy(model(x, training=False))
    assert not np.allclose(y1, y2)


def test_convnetquake_stream_max_enters_before_the_first_dense():
    for length in (50, 1001):
        model = build_model(
            "convnetquake_ingv", length=length, channels=3, task="regression", n_outputs=1, stream_max=True
        )
        n_in = 32 * math.ceil(length / 512) + 1
        assert model.get_layer("dense1").kernel.shape == (n_in, n_in)
        assert model.get_layer("head").kernel.shape == (n_in, 1)


@pytest.mark.parametrize(
    "dataset, initializer, l2",
    [
        (None, keras.initializers.GlorotUniform, 1e-3),
        ("lomax", keras.initializers.GlorotUniform, 1e-3),
        ("stead", keras.initializers.GlorotUniform, 1e-3),
        ("speech", keras.initializers.HeNormal, 1e-3),
        ("emg", keras.initializers.GlorotNormal, None),
        ("sp500", keras.initializers.HeNormal, 0.7),
    ],
)
def test_convnetquake_dataset_variants(dataset, initializer, l2):
    model = build_model(
        "convnetquake_ingv", length=80, channels=3, task="regression", n_outputs=1,
        stream_max=True, dataset=dataset, seed=1,
    )
    convs = transferable_layers(model, "convnetquake_ingv")
    assert len(convs) == 9
    for conv in convs:
        assert type(conv.kernel_initializer) is initializer
    # The regularisation loss is exactly l2 * sum of squared conv kernels (none without L2).
    expected = 0.0 if l2 is None else l2 * sum(
        float(np.sum(np.square(keras.ops.convert_to_numpy(conv.kernel)))) for conv in convs
    )
    model(inputs_for(80, 3, True), training=True)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert total == pytest.approx(expected, rel=1e-5)


def test_other_architectures_ignore_the_dataset():
    for arch in ("magnet", "mlstm_fcn", "tcn", "fcn"):
        a = build_model(arch, length=50, channels=3, task="regression", n_outputs=1, stream_max=False,
                        dataset="sp500", seed=2)
        b = build_model(arch, length=50, channels=3, task="regression", n_outputs=1, stream_max=False, seed=2)
        assert weight_digest(a) == weight_digest(b)
        assert not a.losses


@pytest.mark.parametrize("arch", ARCHS)
def test_transferable_layers(arch):
    model = build_model(arch, length=80, channels=3, task="regression", n_outputs=1, stream_max=True)
    layers = transferable_layers(model, arch)
    if arch == "tcn":
        assert [layer.name for layer in layers] == ["tcn"]
        assert len(layers[0].weights) == 2 * (2 * 9 + 1)  # kernel+bias of 18 dilated convs + 1x1
        assert [v.path for v in input_kernels(model, arch)] == [
            "tcn/residual_block_0/conv1D_0/kernel",
            "tcn/residual_block_0/matching_conv1D/kernel",
        ]
    else:
        # Exactly the Conv1D layers: not BN, squeeze-excite denses, LSTMs or dense layers.
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
        assert layers == convs
        assert len(layers) == {"convnetquake_ingv": 9, "magnet": 2, "mlstm_fcn": 3, "fcn": 3}[arch]
        assert [v.shape for v in input_kernels(model, arch)] == [layers[0].kernel.shape]
        assert input_kernels(model, arch)[0].shape[1] == 3


@pytest.mark.parametrize("arch", ARCHS)
def test_same_seed_same_weights_and_no_duplicated_kernels(arch):
    build = dict(length=50, channels=3, task="classification", n_outputs=3, stream_max=True)
    a = build_model(arch, seed=11, **build)
    b = build_model(arch, seed=11, **build)
    c = build_model(arch, seed=12, **build)
    assert weight_digest(a) == weight_digest(b)
    for va, vc in zip(a.weights, c.weights):
        values = keras.ops.convert_to_numpy(va)
        if is_random(values):
            assert not np.array_equal(values, keras.ops.convert_to_numpy(vc)), va.path
    # Equally shaped random weights inside one model differ (a shared seeded initializer,
    # or Keras copying the forward LSTM's config to the backward one, would make them equal).
    random_weights = [keras.ops.convert_to_numpy(v) for v in a.weights]
    random_weights = [w for w in random_weights if is_random(w)]
    for i, wi in enumerate(random_weights):
        for wj in random_weights[i + 1:]:
            assert wi.shape != wj.shape or not np.array_equal(wi, wj)


def test_same_seed_same_weights_in_a_fresh_process():
    build = dict(length=50, channels=3, task="regression", n_outputs=1, stream_max=True, seed=7)
    script = (
        "import hashlib, json, sys, keras, numpy as np\n"
        "from tstransfer.models import build_model\n"
        "out = {}\n"
        f"for arch in {ARCHS!r}:\n"
        f"    model = build_model(arch, **{build!r})\n"
        "    d = hashlib.sha256()\n"
        "    for v in model.weights:\n"
        "        d.update(v.path.encode())\n"
        "        d.update(np.ascontiguousarray(keras.ops.convert_to_numpy(v)).tobytes())\n"
        "    out[arch] = d.hexdigest()\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            timeout=300, check=True)
    fresh = json.loads(result.stdout.strip().splitlines()[-1])
    for arch in ARCHS:
        assert fresh[arch] == weight_digest(build_model(arch, **build)), arch


def test_bad_arguments_are_rejected():
    good = dict(length=50, channels=3, task="regression", n_outputs=1, stream_max=False)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet", **good)
    with pytest.raises(ValueError, match="task"):
        build_model("tcn", **{**good, "task": "ranking"})
    for key in ("length", "channels", "n_outputs"):
        with pytest.raises(ValueError, match=key):
            build_model("tcn", **{**good, key: 0})
