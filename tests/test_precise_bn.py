"""tstransfer.precise_bn: BatchNormalization statistics recomputed over the training set,
checked against the statistics computed independently from the layer's inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tstransfer.precise_bn import batchnorm_layers, recalibrate


def bn_model(seed: int = 0) -> keras.Model:
    waveform = keras.Input((40, 2), name="waveform")
    x = keras.layers.Conv1D(6, 5, padding="same", name="conv",
                            kernel_initializer=keras.initializers.GlorotUniform(seed))(waveform)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    out = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model({"waveform": waveform}, out)


def conv_outputs(model, x: np.ndarray) -> np.ndarray:
    probe = keras.Model(model.inputs, model.get_layer("conv").output)
    return keras.ops.convert_to_numpy(probe({"waveform": x})).astype(np.float64)


@pytest.fixture
def data():
    rng = np.random.default_rng(4)
    return (rng.normal(2.0, 3.0, size=(50, 40, 2))).astype("float32")


def test_one_batch_gives_the_exact_statistics_and_restores_the_momentum(data):
    model = bn_model()
    bn = model.get_layer("bn")
    assert batchnorm_layers(model) == [bn]
    assert recalibrate(model, [{"waveform": data}]) == 50
    features = conv_outputs(model, data)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), features.mean(axis=(0, 1)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), features.var(axis=(0, 1)),
                               rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.99


def test_batches_of_unequal_size_are_weighted_by_their_instances(data):
    model = bn_model()
    parts = [data[:32], data[32:]]  # 32 and 18 instances, as a training set of 50 at batch 32
    assert recalibrate(model, ({"waveform": p} for p in parts)) == 50
    bn = model.get_layer("bn")
    features = [conv_outputs(model, p) for p in parts]
    weights = np.array([32, 18]) / 50
    # the mean is the whole set's; the variance the mean of the batches' (within-batch) variances
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean),
                               conv_outputs(model, data).mean(axis=(0, 1)), rtol=1e-5, atol=1e-5)
    expected_variance = sum(w * f.var(axis=(0, 1)) for w, f in zip(weights, features))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), expected_variance,
                               rtol=1e-4, atol=1e-5)


def test_predictions_follow_the_training_statistics_and_other_weights_stay(data):
    model = bn_model()
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    stale = keras.ops.convert_to_numpy(model({"waveform": data}, training=False))
    recalibrate(model, [{"waveform": data}])
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, model.trainable_weights))
    # inference now normalises as training mode does on the same (whole) set
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model({"waveform": data}, training=False)),
                               keras.ops.convert_to_numpy(model({"waveform": data}, training=True)),
                               rtol=1e-3, atol=1e-4)
    assert not np.allclose(stale, keras.ops.convert_to_numpy(model({"waveform": data}, training=False)))


def test_a_model_without_batch_normalization_is_left_alone(data):
    waveform = keras.Input((40, 2), name="waveform")
    out = keras.layers.Dense(1)(keras.layers.Flatten()(waveform))
    model = keras.Model({"waveform": waveform}, out)
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    assert recalibrate(model, [{"waveform": data}]) == 0
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, model.weights))


def test_batchnorm_layers_are_found_in_nested_models_and_in_fcn():
    inner = keras.Sequential(
        [keras.Input((40, 2)), keras.layers.Conv1D(3, 3), keras.layers.BatchNormalization(name="inner_bn")], name="block")
    waveform = keras.Input((40, 2), name="waveform")
    x = keras.layers.BatchNormalization(name="outer_bn")(inner(waveform))
    model = keras.Model({"waveform": waveform}, keras.layers.GlobalAveragePooling1D()(x))
    assert [layer.name for layer in batchnorm_layers(model)] == ["inner_bn", "outer_bn"]

    from tstransfer.models import build_model

    fcn = build_model("fcn", length=40, channels=2, task="classification", n_outputs=3, stream_max=False)
    assert len(batchnorm_layers(fcn)) == 3
