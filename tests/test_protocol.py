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
    # (and, with ties_to_largest_multiplier, says so: the analysis reads it from there)
    assert protocol.selection_curve(protocol.resolve("paper")) == "paper+ties_to_largest"
    assert protocol.selection_curve(protocol.resolve("paper", {"ties_to_largest_multiplier": False})) == "paper"
    assert protocol.selection_curve(protocol.resolve("paper", {"test_curves": False,
                                                               "ties_to_largest_multiplier": False})) == "validation"
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
        ("pretrain", "tcn", "lomax", {"test_curves", "drop_last_batch"}),
        ("pretrain", "magnet", "speech", {"test_curves", "drop_last_batch", "monitor_val_acc",
                                          "magnet_dropout_at_inference", "test_metric_from_curve"}),
        # trained as regression, a referent monitors val_loss: monitor_val_acc cannot shape it
        ("referent", "tcn", "speech", {"test_curves", "drop_last_batch", "referents_as_regression",
                                       "duplicate_single_channel"}),
        ("referent", "tcn", "emg", {"test_curves", "drop_last_batch", "referents_as_regression"}),
        ("referent", "tcn", "sp500", {"test_curves", "drop_last_batch", "duplicate_single_channel"}),
        ("referent", "mlstm_fcn", "lomax", {"test_curves", "drop_last_batch", "lstm_hard_sigmoid"}),
        ("finetune", "convnetquake_ingv", "sp500", {"test_curves", "drop_last_batch", "duplicate_single_channel",
                                                    "adam_step_per_multiplier_group"}),
        ("finetune", "tcn", "stead", {"test_curves", "drop_last_batch", "adam_step_per_multiplier_group"}),
        ("finetune", "tcn", "emg", {"test_curves", "drop_last_batch", "monitor_val_acc",
                                    "adam_step_per_multiplier_group"}),
        ("stream_max", "tcn", "sp500", {"test_curves", "drop_last_batch"}),
    ],
)
def test_a_job_spec_carries_exactly_the_switches_that_shape_it(kind, arch, dataset, expected):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["protocol"] = "paper"
    spec = plan.job_spec(config, kind=kind, arch=arch, dataset=dataset)
    assert spec["switches"] == dict.fromkeys(expected, True)
    # under validation the spec names the same switches but those added for issue 21
    # (off, they are left out), so the default study's jobs keep their params
    config["protocol"] = "validation"
    validation = plan.job_spec(config, kind=kind, arch=arch, dataset=dataset)["switches"]
    before_issue_21 = expected - set(protocol.LATER_SWITCHES)
    if kind == "referent" and dataset in ("speech", "emg"):
        before_issue_21.add("monitor_val_acc")  # trained with a softmax head, it may monitor accuracy
    assert validation == dict.fromkeys(before_issue_21, False)
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

    def scripted(model, feed, split, loss=None, rows=None):
        values = real_evaluate_all(model, feed, split, loss, rows)
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


def test_drop_last_batch_cuts_floor_batches_and_validates_on_whole_batches(stores):
    try:
        from test_training import make_feed
    except ImportError:  # pragma: no cover
        from tests.test_training import make_feed

    ours = make_feed(stores, "classification")  # 120 training instances, batches of 32
    theirs = make_feed(stores, "classification", drop_remainder=True)
    assert (ours.steps_per_epoch(), theirs.steps_per_epoch()) == (4, 3)
    assert [len(batch[1]) for batch in theirs.training_dataset(0, 2)] == [32] * 6
    assert sum(len(batch[1]) for batch in ours.training_dataset(0, 1)) == 120
    streamed = make_feed(stores, "classification", drop_remainder=True, force_stream=True)
    assert [len(batch[1]) for batch in streamed.training_dataset(0, 1)] == [32] * 3
    n_val = len(theirs.val)
    assert n_val % 32  # else there is nothing to drop
    assert ours.validation_rows(0) is None
    first, second = theirs.validation_rows(0), theirs.validation_rows(1)
    assert len(first) == len(second) == n_val // 32 * 32
    assert not np.array_equal(first, second)  # a fresh shuffle each epoch
    assert np.array_equal(first, theirs.validation_rows(0))  # seeded


@pytest.mark.slow
def test_drop_last_batch_in_a_job(stores, tmp_path):
    from tstransfer import jobs

    cls_store, cls_subset = stores["classification"]
    records = {}
    for on in (False, True):
        records[on] = jobs.referent(_switches_config(drop_last_batch=on), "convnetquake_ingv",
                                    "toy_classification", "tiny", 0, cls_store, cls_subset, tmp_path / str(on))
    assert (records[False]["steps_per_epoch"], records[True]["steps_per_epoch"]) == (4, 3)
    assert "drop_last_batch" not in records[False]["config"]["switches"]
    assert records[True]["config"]["switches"]["drop_last_batch"] is True
    assert records[False]["history"]["val_loss"][0] != records[True]["history"]["val_loss"][0]


def test_lstm_hard_sigmoid_builds_mlstm_fcn_with_tf114_gates():
    from tstransfer import jobs

    attrs = {"task": "classification", "n_outputs": 3, "length": 64, "channels": 1}
    x = {"waveform": np.random.default_rng(0).normal(size=(4, 64, 1)).astype("float32")}
    outputs = {}
    for on, gate in ((False, "sigmoid"), (True, "hard_sigmoid")):
        switches = protocol.resolve("validation", {"lstm_hard_sigmoid": on})
        model, _, _ = jobs._model_and_optimizer("referent", "mlstm_fcn", "toy", attrs, base_config(), switches,
                                                seed=1, use_stream_max=False, pretrained=None, omega=None)
        assert model.get_layer("lstm").get_config()["recurrent_activation"] == gate
        outputs[on] = model.predict(x, verbose=0)
    assert np.abs(outputs[True] - outputs[False]).max() > 1e-6  # same weights, other gates
    assert protocol.shaping(protocol.resolve("paper"), kind="pretrain", arch="tcn", task="regression",
                            channels=3).get("lstm_hard_sigmoid") is None  # MLSTM-FCN's alone


def test_unstratified_subsets_shuffle_without_keeping_class_shares(stores, tmp_path):
    import zarr

    from tstransfer import store

    path, _ = stores["classification"]
    root = zarr.open_group(str(path), mode="r")
    labels = np.asarray(root["label"][:])
    train = np.flatnonzero(np.asarray(root["split"][:]) == 0)
    share = np.bincount(labels[train], minlength=3) / len(train)
    counts = {}
    for stratified in (True, False):
        out = tmp_path / f"{stratified}.npz"
        meta = store.make_subset(path, out, variant="tiny", size=60, run=0, seed=3, stratified=stratified)
        assert meta["stratified"] is stratified
        counts[stratified] = np.bincount(labels[np.load(out)["indices"]], minlength=3)
    assert np.all(np.abs(counts[True] - 60 * share) < 1)  # the class shares, to the instance
    assert not np.all(np.abs(counts[False] - 60 * share) < 1)  # a plain shuffle misses them


def test_select_seed_on_test_picks_by_the_test_metric_and_says_so(tmp_path):
    from tstransfer import jobs

    paths = []
    for index, (val, test) in enumerate([(0.4, 0.9), (0.5, 0.2), (0.6, 0.3)]):
        path = tmp_path / f"seed{index}" / "result.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"kind": "pretrain", "arch": "tcn", "source": "lomax", "seed_index": index,
                                    "seed": index, "status": "ok", "metric": "mae",
                                    "val_metric": val, "test_metric": test}))
        paths.append(path)
    ours = jobs.select_pretrained(paths, tmp_path / "val.json")
    theirs = jobs.select_pretrained(paths, tmp_path / "test.json", criterion="test")
    assert (ours["seed_index"], ours["criterion"]) == (0, "validation")
    assert (theirs["seed_index"], theirs["criterion"]) == (1, "test")
    assert "criterion is unknown" in theirs["criterion_note"]
    assert json.loads((tmp_path / "test.json").read_text())["criterion"] == "test"
    with pytest.raises(ValueError, match="criterion 'best'"):
        jobs.select_pretrained(paths, tmp_path / "x.json", criterion="best")


def test_ties_to_largest_multiplier_in_the_convergence_gains():
    from tstransfer.analysis import results, stats

    def job(kind, omega, val, cr):
        return {"kind": kind, "arch": "magnet", "source": None if kind == "referent" else "lomax",
                "target": "lendb", "variant": "1k5", "run": 0, "omega": omega, "seed": 1, "stream_max": True,
                "task": "regression", "status": "ok", "best_epoch": 2, "last_epoch": 4, "metric": "mae",
                "val_metric": val, "test_metric": val, "convergence_rate": cr, "convergence_rate_val": cr,
                "convergence_rate_test": None, "runtime_s": 1.0, "config": {}}

    # three multipliers tie on the validation metric; their convergence rates differ
    jobs = [job("finetune", omega, 0.5, cr) for omega, cr in ((0.1, 0.2), (1.0, 0.4), (2.0, 0.8))]
    table = results.table_from_records(results.record_from_job(j) for j in jobs + [job("referent", None, 0.6, 0.4)])
    ours = stats.paired_runs(table, "validation").iloc[0]
    theirs = stats.paired_runs(table, protocol.selection_curve(protocol.resolve(
        "validation", {"ties_to_largest_multiplier": True}))).iloc[0]
    assert (ours["omega"], ours["tl_cr"]) == (0.1, pytest.approx(0.2))
    assert (theirs["omega"], theirs["omega_convergence"], theirs["tl_cr"]) == (0.1, 2.0, pytest.approx(0.8))
    assert theirs["gain_performance"] == ours["gain_performance"]  # the performance choice keeps its ties
    assert theirs["gain_convergence"] != ours["gain_convergence"]
    assert protocol.selection_curve(protocol.resolve("paper")) == "paper+ties_to_largest"


@pytest.mark.slow
def test_test_metric_from_curve_reports_magnets_curve_at_the_best_epoch(stores, tmp_path):
    from tstransfer import jobs

    reg_store, reg_subset = stores["regression"]
    records = {}
    for on in (False, True):
        config = _switches_config(magnet_dropout_at_inference=True, test_metric_from_curve=on)
        # a best epoch before the last: evaluated again after training, the best weights
        # meet other dropout masks than the curve's at that epoch (at the last epoch the
        # generators stand where the curve left them, so the numbers would agree)
        config["training"].update(max_epochs=5, learning_rate=0.01)
        records[on] = jobs.referent(config, "magnet", "toy_regression", "tiny", 0, reg_store, reg_subset,
                                    tmp_path / str(on))
    ours, theirs = records[False], records[True]
    best = theirs["best_epoch"] - 1
    assert theirs["test_metric"] == pytest.approx(theirs["history"]["test_metric"][best], rel=1e-12)
    assert "test_metric" not in ours["history"]  # no test curve without the switch (or test_curves)
    # the same weights evaluated again draw new dropout masks: another number
    assert ours["best_epoch"] == theirs["best_epoch"] < len(theirs["history"]["test_metric"])
    assert ours["test_metric"] != pytest.approx(theirs["test_metric"], rel=1e-9)


def test_authors_data_releases_sets_the_extract_settings():
    on = protocol.resolve("paper")
    off = protocol.resolve("validation")
    assert protocol.data_settings(on, "stead", {"layout": "chunks", "chunks": [1]})["layout"] == "single"
    assert protocol.data_settings(on, "speech", {"sample_rate": 8000})["resampler"] == "kaiser_best"
    assert protocol.data_settings(on, "speech", {"sample_rate": 8000})["padding"] == "rotating_buffer"
    assert protocol.data_settings(on, "stead", {"layout": "chunks"}, synthetic=True)["layout"] == "single"
    assert "resampler" not in protocol.data_settings(on, "speech", {"clips_per_word": 3}, synthetic=True)
    assert protocol.data_settings(off, "speech", {"sample_rate": 8000}) == {"sample_rate": 8000}
    assert protocol.data_settings(on, "lomax", {"keep_list": None}) == {"keep_list": None}


def _resampy_kaiser_best_halving(x: np.ndarray) -> np.ndarray:
    """resampy 0.2.2's resample(x, 16000, 8000, filter="kaiser_best") written out: its
    windowed sinc (64 zero crossings, roll-off, Kaiser beta) evaluated exactly, scaled by
    the ratio 1/2, summed around each output instant t = 2m."""
    from scipy.signal import get_window

    from tstransfer.datasets.speech import KAISER_BEST

    zeros, rolloff, beta = KAISER_BEST["zeros"], KAISER_BEST["rolloff"], KAISER_BEST["beta"]
    taps = np.arange(-2 * zeros, 2 * zeros + 1)  # input samples within 64 scaled crossings
    t = taps * 0.5  # in the unscaled filter's units
    window = get_window(("kaiser", beta), 2 * 2**15 + 1, fftbins=False)
    w = np.interp(t, np.linspace(-zeros, zeros, len(window)), window)
    h = 0.5 * rolloff * np.sinc(rolloff * t) * w
    padded = np.concatenate([np.zeros(2 * zeros), x, np.zeros(2 * zeros)])
    return np.array([padded[2 * m : 2 * m + len(taps)] @ h[::-1] for m in range(len(x) // 2)])


def test_kaiser_best_resampler_is_resampys_filter():
    from tstransfer.datasets.speech import resample

    rng = np.random.default_rng(0)
    x = rng.normal(size=1600)
    reference = _resampy_kaiser_best_halving(x)
    ours = resample(x, 8000, "kaiser_best")
    poly = resample(x, 8000)
    assert len(ours) == len(reference) == 800
    inner = slice(100, 700)  # away from the edges' zero padding
    scale = np.abs(reference[inner]).max()
    assert np.abs(ours[inner] - reference[inner]).max() < 2e-3 * scale
    assert np.abs(poly[inner] - reference[inner]).max() > 1e-2 * scale  # the default is another filter


# --------------------------------------------------------------------------- the DAG
# Snakemake's DAG of a config (what `snakemake -n` builds): per job of the rules that a
# data or selection switch shapes, its params and script.
_SWITCHED_RULES = {"subset", "select_pretrained", "convert", "synthesize", "analysis", "summary", "zoo"}


def _dag_params(config: dict, tmp_path: Path) -> dict[str, list[dict]]:
    from workflow_runs import dag_jobs

    tmp_path.mkdir(parents=True, exist_ok=True)
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    jobs = dag_jobs(configfile, tmp_path, '{"rule": job.rule.name, "wildcards": dict(job.wildcards.items()), '
                    '"params": dict(job.params.items()), "script": job.rule.script}')
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        if job["rule"] in _SWITCHED_RULES:
            by_rule.setdefault(job["rule"], []).append(job)
    return by_rule


def test_data_and_selection_switches_reach_their_rules_and_leave_the_default_as_it_was(tmp_path):
    """With the switches off a rule keeps its script (whose mtime is a rerun trigger) and
    its params exactly; with them on it gets its own script and the param that says so."""
    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    default = _dag_params(demo, tmp_path / "default")
    for job in default["subset"]:
        assert set(job["params"]) == {"size", "seed"} and job["script"] == "../workflow/scripts/subset.py"
    for job in default["select_pretrained"]:
        assert job["params"] == {} and job["script"] == "../workflow/scripts/select_pretrained.py"
    convert = {job["wildcards"]["dataset"]: job["params"]["extract"] for job in default["convert"]}
    assert "resampler" not in convert["speech"] and convert["stead"]["layout"] == "chunks"
    assert {job["params"]["protocol"] for job in default["analysis"]} == {"validation"}
    before = set(protocol.SWITCHES) - set(protocol.LATER_SWITCHES)
    assert set(default["summary"][0]["params"]["switches"]) == before
    assert set(default["zoo"][0]["params"]["protocol"]["switches"]) == before

    switched = dict(demo, protocol_switches=dict.fromkeys(
        ("unstratified_subsets", "select_seed_on_test", "authors_data_releases", "ties_to_largest_multiplier"), True))
    theirs = _dag_params(switched, tmp_path / "switched")
    for job in theirs["subset"]:
        assert job["params"]["stratified"] is False
        assert job["script"] == "../workflow/scripts/subset_unstratified.py"
    for job in theirs["select_pretrained"]:
        assert job["params"] == {"criterion": "test"}
        assert job["script"] == "../workflow/scripts/select_pretrained_on_test.py"
    convert = {job["wildcards"]["dataset"]: job["params"]["extract"] for job in theirs["convert"]}
    assert convert["speech"]["resampler"] == "kaiser_best" and convert["stead"]["layout"] == "single"
    synthesize = {job["wildcards"]["dataset"]: job["params"]["synthetic"] for job in theirs["synthesize"]}
    assert synthesize["stead"]["layout"] == "single"
    assert {job["params"]["protocol"] for job in theirs["analysis"]} == {"validation+ties_to_largest"}
    assert theirs["summary"][0]["params"]["switches"]["select_seed_on_test"] is True
