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
def test_referents_as_regression_and_single_channel_duplication(stores, tmp_path):
    from tstransfer import jobs

    cls_store, cls_subset = stores["classification"]  # 1 channel, 3 classes

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
    # MSE against one-hot targets: a linear head's loss is not a cross-entropy
    history = pd.read_csv(tmp_path / "theirs" / "history.csv")
    assert (history["val_loss"] < 1.0).all() and (ours["history"]["val_loss"][0] != history["val_loss"][0])


@pytest.mark.slow
def test_monitoring_validation_accuracy_picks_the_best_accuracy_epoch(stores, tmp_path):
    import keras

    from tstransfer.training import train

    try:
        from test_training import make_feed, tiny_model
    except ImportError:  # pragma: no cover
        from tests.test_training import make_feed, tiny_model

    results = {}
    for monitor in (False, True):
        config = base_config(max_epochs=6)
        config["training"]["early_stopping"]["patience"] = 10
        config["protocol_switches"] = {"monitor_val_acc": monitor}
        feed = make_feed(stores, "classification", seed=4)
        model = tiny_model(LENGTH, feed.model_channels, "classification", feed.n_outputs, True, 4)
        out = tmp_path / str(monitor)
        results[monitor] = train(model, keras.optimizers.Adam(3e-3), feed, task="classification",
                                 config=config, out_dir=out, seed=4)
        history = pd.read_csv(out / "history.csv")
        if monitor:
            accuracy = history["val_accuracy"].to_numpy()
            assert results[monitor].best_epoch == int(np.argmax(accuracy)) + 1  # first maximum
        else:
            assert "val_accuracy" not in history
            assert results[monitor].best_epoch == int(np.argmin(history["val_loss"].to_numpy())) + 1


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


# --------------------------------------------------------------------------- issue 21
@pytest.mark.slow
def test_a_referent_trained_as_regression_monitors_val_loss_under_paper(stores, tmp_path, caplog):
    """The authors' train.py picks the callbacks' monitor from the task it is told
    (``regression`` for every referent): a SPEECH/EMG referent under ``paper`` watches
    ``val_loss`` (MSE on one-hot targets), not validation accuracy."""
    import logging

    from tstransfer import jobs

    cls_store, cls_subset = stores["classification"]
    config = _switches_config()
    config["protocol"] = "paper"
    config["training"]["max_epochs"] = 3
    with caplog.at_level(logging.INFO):
        record = jobs.referent(config, "convnetquake_ingv", "toy_classification", "tiny", 0,
                               cls_store, cls_subset, tmp_path / "paper")
    assert record["monitor"] == "val_loss"
    assert "monitoring val_loss" in caplog.text and "monitoring val_accuracy" not in caplog.text
    history = pd.read_csv(tmp_path / "paper" / "history.csv")
    assert "val_accuracy" not in history  # nothing about accuracy steers the run
    assert record["best_epoch"] == int(np.argmin(history["val_loss"].to_numpy())) + 1
    # monitor_val_acc cannot change such a job, so its spec does not carry it
    assert "monitor_val_acc" not in record["config"]["switches"]
    assert record["config"]["switches"]["referents_as_regression"] is True
    # the same referent with a softmax head (referents_as_regression off) monitors accuracy
    config["protocol_switches"] = {"referents_as_regression": False}
    ours = jobs.referent(config, "convnetquake_ingv", "toy_classification", "tiny", 0,
                         cls_store, cls_subset, tmp_path / "softmax")
    assert ours["monitor"] == "val_accuracy"
