"""Weight transfer, channel adaptation and the learning-rate-multiplier Adam."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tstransfer.channels import adapt_channels, repeat_channels
from tstransfer.models import build_model, input_kernels, transferable_layers
from tstransfer.models.common import input_channels
from tstransfer.optim import MultiplierAdam, make_optimizer
from tstransfer.transfer import transfer_weights

ARCHS = ("convnetquake_ingv", "magnet", "mlstm_fcn", "tcn", "fcn")


def to_numpy(variable):
    return np.array(keras.ops.convert_to_numpy(variable))


def snapshot(variables):
    return {v.path: to_numpy(v) for v in variables}


def regression_data(length, channels, n, stream_max=True, seed=0):
    rng = np.random.default_rng(seed)
    x = {"waveform": rng.normal(size=(n, length, channels)).astype("float32")}
    if stream_max:
        x["stream_max"] = rng.uniform(0.5, 2.0, size=(n, 1)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y


def source_and_target(arch, *, source_channels=3, target_channels=3, target_length=50):
    """A 'pretrained' source (other task, length and seed) and a fresh target."""
    source = build_model(arch, length=80, channels=source_channels, task="classification",
                         n_outputs=4, stream_max=False, dataset="emg", seed=1)
    target = build_model(arch, length=target_length, channels=target_channels, task="regression",
                         n_outputs=1, stream_max=True, dataset="lomax", seed=2)
    return source, target


# --- transfer ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_transferred_weights_equal_the_source(arch):
    source, target = source_and_target(arch)
    transferable_ids = {id(v) for layer in transferable_layers(target, arch) for v in layer.weights}
    untouched_before = snapshot([v for v in target.weights if id(v) not in transferable_ids])

    transferred = transfer_weights(source, target, arch)

    target_weights = [v for layer in transferable_layers(target, arch) for v in layer.weights]
    source_weights = [v for layer in transferable_layers(source, arch) for v in layer.weights]
    assert [id(v) for v in transferred] == [id(v) for v in target_weights]
    for s, t in zip(source_weights, target_weights):
        np.testing.assert_array_equal(to_numpy(t), to_numpy(s), err_msg=t.path)
    # Everything else keeps its fresh initialisation.
    untouched_after = snapshot([v for v in target.weights if id(v) not in transferable_ids])
    assert untouched_after.keys() == untouched_before.keys()
    for path, value in untouched_before.items():
        np.testing.assert_array_equal(untouched_after[path], value, err_msg=path)


@pytest.mark.parametrize("arch", ARCHS)
def test_one_to_three_channels_repeats_input_kernels(arch):
    channels = adapt_channels(1, 3)
    assert channels == 3
    source, target = source_and_target(arch, source_channels=1, target_channels=channels)
    transfer_weights(source, target, arch)

    source_kernels = input_kernels(source, arch)
    target_kernels = input_kernels(target, arch)
    assert len(target_kernels) == (2 if arch == "tcn" else 1)
    for s, t in zip(source_kernels, target_kernels):
        s, t = to_numpy(s), to_numpy(t)
        assert s.shape[1] == 1 and t.shape == (s.shape[0], 3, s.shape[2])
        for c in range(3):
            np.testing.assert_array_equal(t[:, c, :], s[:, 0, :])
    # Every other transferred weight is copied unchanged.
    widened = {id(k) for k in target_kernels}
    source_weights = [v for layer in transferable_layers(source, arch) for v in layer.weights]
    target_weights = [v for layer in transferable_layers(target, arch) for v in layer.weights]
    for s, t in zip(source_weights, target_weights):
        if id(t) not in widened:
            np.testing.assert_array_equal(to_numpy(t), to_numpy(s), err_msg=t.path)


@pytest.mark.parametrize("arch", ("convnetquake_ingv", "tcn"))
def test_three_to_one_channel_builds_three_and_repeats_the_data(arch):
    channels = adapt_channels(3, 1)
    assert channels == 3
    source, target = source_and_target(arch, source_channels=3, target_channels=channels)
    transfer_weights(source, target, arch)
    for s, t in zip(transferable_layers(source, arch), transferable_layers(target, arch)):
        for vs, vt in zip(s.weights, t.weights):
            np.testing.assert_array_equal(to_numpy(vt), to_numpy(vs))

    single = np.random.default_rng(0).normal(size=(4, 50, 1)).astype("float32")
    repeated = repeat_channels(single, channels)
    assert repeated.shape == (4, 50, 3)
    for c in range(3):
        np.testing.assert_array_equal(repeated[..., c], single[..., 0])
    y = target({"waveform": repeated, "stream_max": np.ones((4, 1), "float32")}, training=False)
    assert y.shape == (4, 1)

    # A target built for the single channel itself cannot take the 3-channel kernels.
    one_channel = build_model(arch, length=50, channels=1, task="regression", n_outputs=1, stream_max=True)
    before = snapshot(one_channel.weights)
    with pytest.raises(ValueError, match=r"\(3, 1, .*\)|\(8, 1, 24\)|\(1, 1, 24\)") as error:
        transfer_weights(source, one_channel, arch)
    message = str(error.value)
    assert ("conv1" in message if arch != "tcn" else "'tcn'" in message)
    assert "source shape" in message and "target shape" in message
    after = snapshot(one_channel.weights)  # nothing written when the transfer fails
    for path, value in before.items():
        np.testing.assert_array_equal(after[path], value)


@pytest.mark.parametrize("arch", ARCHS)
def test_transfer_from_a_saved_pretrained_model(arch, tmp_path):
    # The pipeline's path: the pretrained model is saved as .keras and loaded uncompiled.
    source, _ = source_and_target(arch)
    source.save(tmp_path / "source.keras")
    loaded = keras.saving.load_model(tmp_path / "source.keras", compile=False)
    for a, b in zip(source.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)

    target = build_model(arch, length=50, channels=3, task="regression", n_outputs=1, stream_max=True, seed=9)
    transferred = transfer_weights(loaded, target, arch)
    source_weights = [v for layer in transferable_layers(source, arch) for v in layer.weights]
    assert len(transferred) == len(source_weights)
    for s, t in zip(source_weights, transferred):
        np.testing.assert_array_equal(to_numpy(t), to_numpy(s), err_msg=t.path)


def test_channel_helpers_reject_what_they_cannot_adapt():
    assert adapt_channels(1, 1) == 1 and adapt_channels(3, 3) == 3
    # m -> k beyond 1 <-> n keeps the target's channels (tests/test_channel_rule.py).
    assert adapt_channels(3, 2) == 2
    with pytest.raises(ValueError, match="source_channels must be a positive int, got 0"):
        adapt_channels(0, 3)
    x3 = np.zeros((2, 10, 3), "float32")
    assert repeat_channels(x3, 3) is x3
    with pytest.raises(ValueError, match=r"can only repeat a single channel, got 2 channels \(shape \(2, 10, 2\)\)"):
        repeat_channels(np.zeros((2, 10, 2)), 3)


def test_mismatched_architectures_are_refused():
    magnet_source = build_model("magnet", length=50, channels=3, task="regression", n_outputs=1, stream_max=False)
    mlstm_target = build_model("mlstm_fcn", length=50, channels=3, task="regression", n_outputs=1, stream_max=False)
    # Refused by Keras: the MagNet source has no layer of MLSTM-FCN's transferable ones.
    with pytest.raises(ValueError, match="No such layer: conv3"):
        transfer_weights(magnet_source, mlstm_target, "mlstm_fcn")


# --- the multiplier optimizer ---------------------------------------------------------------


def fine_tune_setup(arch, omega, learning_rate=1e-3):
    source, target = source_and_target(arch)
    transferred = transfer_weights(source, target, arch)
    target.compile(optimizer=make_optimizer(learning_rate, transferred, omega), loss="mse")
    return source, target, transferred


def eager_train_step(model, x, y):
    """One optimizer step as ``fit`` takes it (MSE + regularisation losses), without tracing
    a train function: tracing costs seconds per model, an eager step milliseconds."""
    with tf.GradientTape() as tape:
        prediction = model(x, training=True)
        loss = keras.ops.mean(keras.losses.mean_squared_error(y, prediction))
        if model.losses:
            loss = loss + keras.ops.sum(keras.ops.stack(model.losses))
    gradients = tape.gradient(loss, model.trainable_variables)
    model.optimizer.apply(gradients, model.trainable_variables)


@pytest.mark.parametrize("arch", ARCHS)
def test_omega_zero_keeps_transferred_weights_while_the_head_learns(arch):
    source, target, transferred = fine_tune_setup(arch, omega=0.0)
    frozen_before = snapshot(transferred)
    head_before = to_numpy(target.get_layer("head").kernel)
    for step in range(3):
        eager_train_step(target, *regression_data(50, 3, n=4, seed=step))

    assert int(target.optimizer.iterations.numpy()) == 3  # one Adam step per batch
    for variable in transferred:
        np.testing.assert_array_equal(to_numpy(variable), frozen_before[variable.path], err_msg=variable.path)
        assert target.optimizer.multiplier(variable) == 0.0
    assert not np.array_equal(to_numpy(target.get_layer("head").kernel), head_before)
    assert target.optimizer.multiplier(target.get_layer("head").kernel) == 1.0


def test_fit_with_reduce_lr_on_plateau_and_omega_zero():
    # The training loop's path: compile + fit + ReduceLROnPlateau. Every epoch is a
    # "plateau" (min_delta 1e9), so the base rate drops 1e-3 -> 2e-4 after epoch 2.
    _, target, transferred = fine_tune_setup("convnetquake_ingv", omega=0.0)
    frozen_before = snapshot(transferred)
    head_before = to_numpy(target.get_layer("head").kernel)
    x, y = regression_data(50, 3, n=12)
    callback = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.2, patience=0, min_delta=1e9)
    target.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False, callbacks=[callback])

    assert int(target.optimizer.iterations.numpy()) == 6  # 3 batches x 2 epochs, one step each
    assert float(target.optimizer.learning_rate.numpy()) == pytest.approx(2e-4)
    for variable in transferred:
        np.testing.assert_array_equal(to_numpy(variable), frozen_before[variable.path], err_msg=variable.path)
    assert not np.array_equal(to_numpy(target.get_layer("head").kernel), head_before)


def test_omega_scales_the_first_update_of_transferred_variables():
    learning_rate = 1e-2
    deltas = {}
    for omega in (1.0, 0.1):
        _, target, transferred = fine_tune_setup("convnetquake_ingv", omega, learning_rate)
        watched = [*transferred, target.get_layer("head").kernel, target.get_layer("dense1").kernel]
        before = snapshot(watched)
        eager_train_step(target, *regression_data(50, 3, n=8, seed=1))
        deltas[omega] = {
            v.path: to_numpy(v).astype(np.float64) - before[v.path] for v in watched
        }
        transferred_paths = {v.path for v in transferred}

    for path, full in deltas[1.0].items():
        scaled = deltas[0.1][path]
        assert np.any(full != 0), path
        if path in transferred_paths:
            # Same initial weights and batch, so the same gradient; only the rate differs.
            np.testing.assert_allclose(scaled, 0.1 * full, rtol=1e-3, atol=1e-7, err_msg=path)
            ratio = np.sum(np.abs(scaled)) / np.sum(np.abs(full))
            assert ratio == pytest.approx(0.1, rel=1e-4)
        else:  # fresh layers train at the base rate in both
            np.testing.assert_allclose(scaled, full, rtol=1e-5, atol=1e-8, err_msg=path)


def test_multiplier_follows_a_learning_rate_change():
    # Equal constant gradients give two variables identical Adam moments, so the ratio of
    # their updates is exactly the ratio of their rates at every step.
    scaled = keras.Variable(np.ones(4, "float32"), name="scaled")
    plain = keras.Variable(np.ones(4, "float32"), name="plain")
    optimizer = MultiplierAdam(learning_rate=1e-2, multipliers=[(scaled, 0.25)])
    gradient = np.array([0.5, -1.0, 2.0, -0.1], "float32")

    def step():
        a, b = to_numpy(scaled), to_numpy(plain)
        optimizer.apply_gradients([(gradient, scaled), (gradient, plain)])
        return to_numpy(scaled).astype(np.float64) - a, to_numpy(plain).astype(np.float64) - b

    d_scaled_1, d_plain_1 = step()
    optimizer.learning_rate = 1e-3  # what ReduceLROnPlateau does
    d_scaled_2, d_plain_2 = step()

    np.testing.assert_allclose(d_scaled_1, 0.25 * d_plain_1, rtol=1e-3)
    np.testing.assert_allclose(d_scaled_2, 0.25 * d_plain_2, rtol=1e-3)
    # With a constant gradient Adam's step is lr * g / (|g| + eps'), so it shrinks 10x.
    np.testing.assert_allclose(d_plain_2, 0.1 * d_plain_1, rtol=1e-3)
    np.testing.assert_allclose(d_scaled_2, 0.1 * d_scaled_1, rtol=1e-3)
    assert int(optimizer.iterations.numpy()) == 2


def test_unmatched_multipliers_are_an_error():
    model = build_model("convnetquake_ingv", length=50, channels=3, task="regression", n_outputs=1,
                        stream_max=False)
    other = build_model("magnet", length=50, channels=3, task="regression", n_outputs=1, stream_max=False)
    optimizer = make_optimizer(1e-3, [other.get_layer("bilstm").weights[0]], 0.5)
    with pytest.raises(ValueError, match="does not train"):
        optimizer.build(model.trainable_variables)
    with pytest.raises(ValueError, match="does not train"):
        MultiplierAdam(multipliers={"nonexistent/kernel": 0.5}).build(model.trainable_variables)
    with pytest.raises(ValueError, match=r"multiplier for 'conv1/kernel' must be finite and >= 0, got -1.0"):
        MultiplierAdam(multipliers={"conv1/kernel": -1.0})
    with pytest.raises(ValueError, match="weight_decay"):
        MultiplierAdam(weight_decay=0.01)


def test_multiplier_adam_config_round_trip():
    model = build_model("convnetquake_ingv", length=50, channels=3, task="regression", n_outputs=1,
                        stream_max=False)
    conv_weights = [v for layer in transferable_layers(model, "convnetquake_ingv") for v in layer.weights]
    optimizer = make_optimizer(3e-4, conv_weights, 0.05)
    config = optimizer.get_config()
    assert config["multipliers"] == {v.path: 0.05 for v in conv_weights}

    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is MultiplierAdam
    assert restored.get_config() == config
    restored.build(model.trainable_variables)  # resolves the recorded paths
    for variable in model.trainable_variables:
        expected = 0.05 if variable.path in config["multipliers"] else 1.0
        assert restored.multiplier(variable) == expected

    by_id = MultiplierAdam(multipliers={id(conv_weights[0]): 0.5})
    by_id.build(model.trainable_variables)
    assert by_id.get_config()["multipliers"] == {conv_weights[0].path: 0.5}


def test_tcn_keras_round_trip_with_multiplier_adam(tmp_path):
    _, target, transferred = fine_tune_setup("tcn", omega=0.25)
    x, y = regression_data(50, 3, n=8)
    eager_train_step(target, x, y)  # so that the optimizer has state to save
    path = tmp_path / "tcn.keras"
    target.save(path)

    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is MultiplierAdam
    assert loaded.optimizer.get_config() == target.optimizer.get_config()
    assert [v.path for v in loaded.weights] == [v.path for v in target.weights]
    for a, b in zip(loaded.weights, target.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(target(x, training=False)),
    )
    assert input_channels(loaded) == 3
    tcn_kernel = loaded.get_layer("tcn").weights[0]
    assert loaded.optimizer.multiplier(tcn_kernel) == 0.25
    assert loaded.optimizer.multiplier(loaded.get_layer("head").kernel) == 1.0
    assert int(loaded.optimizer.iterations.numpy()) == 1
