"""The authors' procedure as named switches (tstransfer.protocol), and each switch at work.

Each switch is tested where it acts: the job builds a different model, the training loop
monitors another value, the optimizer steps differently. The jobs run on tiny toy stores
(see tests/test_training.py) for two epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tstransfer import plan, protocol

ROOT = Path(__file__).resolve().parents[1]

try:  # tests/ is on sys.path as a rootdir-less folder; as a package if one adds __init__
    from test_training import LENGTH, base_config, stores  # noqa: F401  (fixture)
except ImportError:  # pragma: no cover
    from tests.test_training import LENGTH, base_config, stores  # noqa: F401


# --------------------------------------------------------------------------- the switches
def test_presets_and_single_switches():
    assert protocol.resolve("validation") == dict.fromkeys(protocol.SWITCHES, False)
    assert protocol.resolve("paper") == dict.fromkeys(protocol.SWITCHES, True)
    one = protocol.resolve("validation", {"referents_as_regression": True})
    assert [name for name, on in one.items() if on] == ["referents_as_regression"]
    assert protocol.label("validation", one) == "validation (referents_as_regression=on)"
    assert protocol.label("paper", protocol.resolve("paper")) == "paper"
    with pytest.raises(ValueError, match="protocol_switches.test_curve: unknown switch"):
        protocol.resolve("validation", {"test_curve": True})
    with pytest.raises(ValueError, match="protocol_switches.test_curves: must be true or false"):
        protocol.resolve("validation", {"test_curves": "yes"})
    with pytest.raises(ValueError, match="config protocol: 'guess'"):
        protocol.resolve("guess")
    # The grid search selects by the curve test_curves names, whatever the preset.
    assert protocol.selection_curve(protocol.resolve("paper")) == "paper"
    assert protocol.selection_curve(protocol.resolve("paper", {"test_curves": False})) == "validation"
    assert protocol.selection_curve(protocol.resolve("validation", {"test_curves": True})) == "paper"


def test_schema_lists_exactly_the_switches():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    switches = schema["properties"]["protocol_switches"]
    assert set(switches["properties"]) == set(protocol.SWITCHES)
    assert switches["additionalProperties"] is False
    assert schema["properties"]["protocol"]["enum"] == list(protocol.PRESETS)


@pytest.mark.parametrize(
    "kind, arch, dataset, expected",
    [
        ("pretrain", "tcn", "lomax", {"test_curves"}),
        ("pretrain", "magnet", "speech", {"test_curves", "monitor_val_acc", "magnet_dropout_at_inference"}),
        ("referent", "tcn", "speech", {"test_curves", "monitor_val_acc", "referents_as_regression",
                                       "duplicate_single_channel"}),
        ("referent", "tcn", "emg", {"test_curves", "monitor_val_acc", "referents_as_regression"}),
        ("referent", "tcn", "sp500", {"test_curves", "duplicate_single_channel"}),
        ("finetune", "convnetquake_ingv", "sp500", {"test_curves", "duplicate_single_channel",
                                                    "adam_step_per_multiplier_group"}),
        ("finetune", "tcn", "stead", {"test_curves", "adam_step_per_multiplier_group"}),
        ("stream_max", "tcn", "sp500", {"test_curves"}),
    ],
)
def test_a_job_spec_carries_exactly_the_switches_that_shape_it(kind, arch, dataset, expected):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["protocol"] = "paper"
    spec = plan.job_spec(config, kind=kind, arch=arch, dataset=dataset)
    assert spec["switches"] == dict.fromkeys(expected, True)
    assert set(spec) == {"seed", "switches", "training", "datasets"}
    # every other switch is ours for the job: it cannot change it
    everything = protocol.job_switches(spec)
    assert {name for name, on in everything.items() if on} == expected


# --------------------------------------------------------------------------- jobs
def _job_model(out: Path):
    from tstransfer.jobs import load_model

    return load_model(out / "model.keras")


def _switches_config(**switches) -> dict:
    config = base_config(max_epochs=2)
    config["training"]["save_models"] = True
    config["protocol_switches"] = switches
    for name in ("speech", "emg", "sp500"):
        config["datasets"][name]["stream_max"] = True
    return config


@pytest.mark.slow
def test_convnetquake_variants_only_when_pretraining(stores, tmp_path):
    """REFERENCE.md section 4: referents and fine-tunes are the base ConvNetQuake_INGV."""
    from tstransfer import jobs

    config = _switches_config()
    reg_store, reg_subset = stores["regression"]

    def conv_setup(model):
        conv = model.get_layer("conv1").get_config()
        regularizer = conv["kernel_regularizer"]
        l2 = None if regularizer is None else regularizer["config"]["l2"]
        return conv["kernel_initializer"]["class_name"], l2

    # pretraining on S&P 500 uses its variant (he_normal, L2 0.7) ...
    jobs.pretrain(config, "convnetquake_ingv", "sp500", 0, reg_store, tmp_path / "pretrain")
    assert conv_setup(_job_model(tmp_path / "pretrain")) == ("HeNormal", pytest.approx(0.7))
    # ... a referent on each variant dataset is the base model (glorot_uniform, L2 1e-3)
    for target in ("speech", "emg", "sp500"):
        out = tmp_path / f"referent_{target}"
        jobs.referent(config, "convnetquake_ingv", target, "tiny", 0, reg_store, reg_subset, out)
        assert conv_setup(_job_model(out)) == ("GlorotUniform", pytest.approx(1e-3)), target
    # ... and so is a fine-tuned model on S&P 500
    out = tmp_path / "finetune"
    jobs.finetune(config, "convnetquake_ingv", "lomax", "sp500", "tiny", 0, 0.5,
                  tmp_path / "pretrain" / "model.keras", reg_store, reg_subset, out)
    assert conv_setup(_job_model(out)) == ("GlorotUniform", pytest.approx(1e-3))


@pytest.mark.slow
def test_referents_as_regression_and_single_channel_duplication(stores, tmp_path, monkeypatch):
    from tstransfer import jobs, training

    cls_store, cls_subset = stores["classification"]  # 1 channel, 3 classes
    trained = {}  # the model and feed of the last job (training.train is imported at call time)
    real_train = training.train

    def spy(model, optimizer, feed, **kwargs):
        trained.update(model=model, feed=feed)
        return real_train(model, optimizer, feed, **kwargs)

    monkeypatch.setattr(training, "train", spy)

    def referent(out, **switches):
        record = jobs.referent(_switches_config(**switches), "convnetquake_ingv", "toy_classification",
                               "tiny", 0, cls_store, cls_subset, out)
        from tstransfer.models.common import HEAD_LAYER, input_channels

        model = _job_model(out)
        return record, model.get_layer(HEAD_LAYER).get_config()["activation"], input_channels(model)

    ours, activation, channels = referent(tmp_path / "ours")
    assert (activation, channels) == ("softmax", 1)
    assert ours["config"]["switches"] == {"test_curves": False, "monitor_val_acc": False,
                                          "referents_as_regression": False, "duplicate_single_channel": False}

    theirs, activation, channels = referent(tmp_path / "theirs", referents_as_regression=True,
                                            duplicate_single_channel=True)
    assert (activation, channels) == ("linear", 3)
    assert theirs["metric"] == "f1_weighted" and 0.0 <= theirs["test_metric"] <= 1.0
    assert theirs["config"]["switches"]["referents_as_regression"] is True
    # MSE against one-hot targets: the kept epoch's validation loss is the mean squared
    # difference between the model's outputs and the one-hot labels (plus its L2 terms),
    # computed here from the predictions of the weights the job kept.
    history = pd.read_csv(tmp_path / "theirs" / "history.csv")
    model, feed = trained["model"], trained["feed"]
    outputs = feed.predict(model, "val")
    labels = np.asarray(feed.split("val").labels, dtype=np.int64)
    assert outputs.shape == (len(labels), 3) and set(np.unique(labels)) == {0, 1, 2}
    one_hot = np.eye(3)[labels]
    l2 = sum(float(np.asarray(term)) for term in model.losses)
    mse = float(np.mean((outputs - one_hot) ** 2)) + l2
    kept = history["val_loss"].iloc[theirs["best_epoch"] - 1]
    assert kept == pytest.approx(mse, rel=1e-5)
    softmax = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    cross_entropy = float(-np.mean(np.log(softmax[np.arange(len(labels)), labels]))) + l2
    assert abs(kept - cross_entropy) > 1e-3  # not a cross-entropy of the same outputs


# Scripted validation loss and accuracy whose best epochs differ: the lowest loss is
# epoch 6's, the highest accuracy epoch 3's (accuracy ties at 0.8 later: the first counts).
SCRIPTED_VAL_LOSS = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
SCRIPTED_VAL_ACCURACY = [0.3, 0.5, 0.8, 0.6, 0.8, 0.7]


@pytest.mark.slow
def test_monitoring_validation_accuracy_picks_the_best_accuracy_epoch(stores, tmp_path, monkeypatch):
    """Real training, with the validation loss and accuracy the loop reads replaced by a
    script whose best epochs differ, so that following the loss cannot pass for following
    the accuracy. The kept weights must be the chosen epoch's."""
    import keras

    from tstransfer import training

    try:
        from test_training import make_feed, tiny_model
    except ImportError:  # pragma: no cover
        from tests.test_training import make_feed, tiny_model

    real_evaluate_all = training.evaluate_all

    def scripted(model, feed, split, loss=None):
        values = real_evaluate_all(model, feed, split, loss)
        if split == "val":
            epoch = len(weights)  # epochs whose end (hook) has run: this is the next one
            values.update(loss=SCRIPTED_VAL_LOSS[epoch], accuracy=SCRIPTED_VAL_ACCURACY[epoch])
        return values

    monkeypatch.setattr(training, "evaluate_all", scripted)
    for monitor, expected in ((False, 6), (True, 3)):
        config = base_config(max_epochs=6)
        config["training"]["early_stopping"]["patience"] = 10
        config["protocol_switches"] = {"monitor_val_acc": monitor}
        feed = make_feed(stores, "classification", seed=4)
        model = tiny_model(LENGTH, feed.model_channels, "classification", feed.n_outputs, True, 4)
        weights: list = []  # each epoch's weights at its end
        out = tmp_path / str(monitor)
        result = training.train(model, keras.optimizers.Adam(3e-3), feed, task="classification", config=config,
                                out_dir=out, seed=4, epoch_end_hook=lambda done, history: weights.append(
                                    [w.copy() for w in model.get_weights()]))
        history = pd.read_csv(out / "history.csv")
        assert history["val_loss"].tolist() == SCRIPTED_VAL_LOSS and len(weights) == 6
        assert ("val_accuracy" in history) is monitor
        assert result.best_epoch == expected, (monitor, result.best_epoch)
        assert result.val_metric == pytest.approx(history["val_metric"].iloc[expected - 1])
        kept = model.get_weights()  # the best weights, put back by train()
        for epoch, snapshot in enumerate(weights, start=1):
            same = all(np.array_equal(a, b) for a, b in zip(kept, snapshot))
            assert same == (epoch == expected), (monitor, epoch)


def test_magnet_dropout_at_inference(tmp_path):
    import keras

    from tstransfer import models

    x = {"waveform": np.random.default_rng(0).normal(size=(32, 64, 1)).astype("float32")}
    built = {
        flag: models.build_model("magnet", length=64, channels=1, task="regression", n_outputs=1,
                                 stream_max=False, seed=1, dropout_at_inference=flag)
        for flag in (False, True)
    }
    off = built[False].predict(x, verbose=0)
    np.testing.assert_array_equal(off, built[False].predict(x, verbose=0))  # deterministic
    on = built[True].predict(x, verbose=0)
    assert np.abs(on - off).max() > 1e-3  # same weights (same seed), dropout applied
    built[True].save(tmp_path / "on.keras")
    loaded = keras.models.load_model(tmp_path / "on.keras", compile=False)
    assert np.abs(loaded.predict(x, verbose=0) - off).max() > 1e-3  # survives save and load
    with pytest.raises(TypeError, match="unexpected keyword argument 'dropout_at_inference'"):
        models.build_model("tcn", length=64, channels=1, task="regression", n_outputs=1,
                           stream_max=False, dropout_at_inference=True)


# --------------------------------------------------------------------------- optimizer
def _numpy_adam(grads, lr, multipliers, steps_per_batch, beta_1=0.9, beta_2=0.999, eps=1e-7):
    """Adam by hand: the step count used at batch b is steps_per_batch * b + 1."""
    params = [np.zeros_like(g[0]) for g in grads]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for batch in range(len(grads[0])):
        t = steps_per_batch * batch + 1
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, grad in enumerate(g[batch] for g in grads):
            m[i] += (grad - m[i]) * (1 - beta_1)
            v[i] += (grad**2 - v[i]) * (1 - beta_2)
            params[i] -= multipliers[i] * alpha * m[i] / (np.sqrt(v[i]) + eps)
    return params


@pytest.mark.parametrize("omega, groups", [(0.25, 2), (1.0, 1)])
def test_adam_step_count_advances_once_per_multiplier_group(omega, groups):
    import keras

    from tstransfer.optim import make_optimizer

    rng = np.random.default_rng(0)
    transferred = keras.Variable(np.zeros(3, np.float32), name="kernel")
    fresh = keras.Variable(np.zeros(2, np.float32), name="bias")
    grads = [rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(6, 2)).astype(np.float32)]
    results = {}
    for step_per_group in (False, True):
        transferred.assign(np.zeros(3, np.float32))
        fresh.assign(np.zeros(2, np.float32))
        optimizer = make_optimizer(1e-2, [transferred], omega, step_per_group=step_per_group)
        for batch in range(6):
            optimizer.apply_gradients([(grads[0][batch], transferred), (grads[1][batch], fresh)])
        assert optimizer.steps_per_batch == (groups if step_per_group else 1)
        results[step_per_group] = [np.asarray(transferred), np.asarray(fresh)]
        expected = _numpy_adam(grads, 1e-2, [omega, 1.0], optimizer.steps_per_batch)
        for got, want in zip(results[step_per_group], expected):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7)
    if groups > 1:  # the bias correction differs in the first steps
        assert not np.allclose(results[False][1], results[True][1], rtol=1e-4)


def test_step_per_group_survives_the_optimizer_config():
    from tstransfer.optim import MultiplierAdam

    optimizer = MultiplierAdam(multipliers={"conv1/kernel": 0.5}, step_per_group=True)
    assert MultiplierAdam.from_config(optimizer.get_config()).step_per_group is True


# --------------------------------------------------------------------------- records
def test_result_switches_become_table_columns():
    from tstransfer.analysis.results import record_from_job

    job = json.loads(json.dumps({
        "kind": "referent", "arch": "tcn", "source": None, "target": "speech", "variant": "1k5",
        "run": 0, "omega": None, "seed": 1, "stream_max": True, "task": "classification",
        "status": "ok", "best_epoch": 1, "last_epoch": 2, "val_metric": 0.5, "test_metric": 0.4,
        "metric": "f1_weighted", "convergence_rate": 0.3, "convergence_rate_val": 0.3,
        "convergence_rate_test": None, "runtime_s": 1.0,
        "config": {"switches": {"test_curves": False, "referents_as_regression": True}},
    }))
    row = record_from_job(job)
    assert row["switch_referents_as_regression"] is True and row["switch_test_curves"] is False
    assert row["switch_adam_step_per_multiplier_group"] is None  # does not shape a referent
