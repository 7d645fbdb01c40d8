"""The short fine-tuning proxy on a finished study (tstransfer.selection.proxy.study_proxy_scores,
rule selection_proxy): hand-made result.json records against values worked out by hand, the
config's defaults, and the rules that carry it into the selection validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from tstransfer.fsutil import json_safe, write_json
from tstransfer.selection.proxy import NAME, SCORE_COLUMNS, kept_epoch, study_proxy_scores
from workflow_runs import ROOT, planned_jobs, tiny_config

TRAINING = {"learning_rate": 0.001, "max_epochs": 40, "reduce_lr": {"factor": 0.2, "patience": 3, "min_lr": 5e-7},
            "early_stopping": {"patience": 6}}


def _history(val_loss, val_metric, *, train_loss=None, val_accuracy=None):
    history = {"epoch": list(range(1, len(val_loss) + 1)), "train_loss": train_loss or [1.0] * len(val_loss),
               "val_loss": list(val_loss), "val_metric": list(val_metric)}
    if val_accuracy is not None:
        history["val_accuracy"] = list(val_accuracy)
    return history


def _record(history, *, task="classification", arch="tcn", source="lomax", target="emg", variant="1k5", run=0,
            omega=1.0, kind="finetune", status="ok", training=None, switches=None):
    """A result.json as tstransfer.jobs writes one (the fields the proxy reads, and a few more)."""
    return {"kind": kind, "arch": arch, "source": source if kind == "finetune" else None, "target": target,
            "variant": variant, "run": run, "omega": omega if kind == "finetune" else None, "task": task,
            "metric": "f1_weighted" if task == "classification" else "mae", "status": status,
            "history": history, "config": {"seed": 0, "switches": dict(switches or {}),
                                           "training": dict(training or TRAINING)}}


def _scores(records, epochs, omega=1.0):
    return study_proxy_scores(records, epochs=epochs, omega=omega)


def _one(records, epochs, omega=1.0):
    scores = _scores(records, epochs, omega)
    assert len(scores) == 1, scores
    return scores["score"].iloc[0]


# ------------------------------------------------------------------ the score, by hand
def test_classification_scores_the_f1_of_the_epoch_a_k_epoch_run_keeps():
    # Validation loss 1.0, 0.8, 0.9, 0.5: a run of 3 epochs keeps epoch 2 (its lowest loss)
    # and reports its F1, 0.6 -- not the 0.75 of epoch 3, the best F1 of those epochs.
    record = _record(_history([1.0, 0.8, 0.9, 0.5], [0.4, 0.6, 0.75, 0.9]))
    assert _one([record], epochs=1) == pytest.approx(0.4)
    assert _one([record], epochs=2) == pytest.approx(0.6)
    assert _one([record], epochs=3) == pytest.approx(0.6)
    assert _one([record], epochs=4) == pytest.approx(0.9)
    # A run that stopped after 4 epochs: a run of 10 would have stopped there too.
    assert _one([record], epochs=10) == pytest.approx(0.9)


def test_regression_scores_minus_the_mae_of_the_kept_epoch():
    # Validation loss (MSE) 4, 2, 3 and MAE 1.5, 1.0, 0.8: 3 epochs keep epoch 2, so -1.0
    # (the lowest MAE, 0.8, is epoch 3's, whose loss is higher).
    history = _history([4.0, 2.0, 3.0], [1.5, 1.0, 0.8], train_loss=[3.0, 2.0, 1.0])
    assert _one([_record(history, task="regression")], epochs=1) == pytest.approx(-1.5)
    assert _one([_record(history, task="regression")], epochs=3) == pytest.approx(-1.0)
    # training.monitor train_loss (the real study's): the lowest training loss, epoch 3.
    by_train = _record(history, task="regression", training={**TRAINING, "monitor": "train_loss"})
    assert _one([by_train], epochs=3) == pytest.approx(-0.8)
    assert _one([by_train], epochs=2) == pytest.approx(-1.0)


def test_switch_monitor_val_acc_keeps_the_most_accurate_epoch():
    history = _history([1.0, 0.9, 0.8], [0.45, 0.65, 0.62], val_accuracy=[0.5, 0.7, 0.6])
    assert _one([_record(history)], epochs=3) == pytest.approx(0.62)  # lowest loss: epoch 3
    by_accuracy = _record(history, switches={"monitor_val_acc": True})
    assert _one([by_accuracy], epochs=3) == pytest.approx(0.65)  # highest accuracy: epoch 2


def test_the_kept_epoch_is_the_first_lowest_monitored_value_in_float32():
    """An independent computation of the loop's rule (no early stop within the epochs,
    min_delta 0): the first epoch whose float32 validation loss is the lowest."""
    rng = np.random.default_rng(4)
    training = {**TRAINING, "early_stopping": {"patience": 1000}}
    for _ in range(200):
        n = int(rng.integers(1, 12))
        losses = rng.choice([0.5, 0.5 + 1e-9, 0.6, 0.7, 0.9], n).tolist()  # ties, and ties in float32
        history = _history(losses, rng.uniform(0, 1, n).tolist())
        k = int(rng.integers(1, 14))
        first = np.asarray(losses[:k], dtype=np.float32)
        assert kept_epoch(history, k, task="classification", training=training,
                          switches={"monitor_val_acc": False}) == int(np.argmin(first))


# ------------------------------------------------------------------ which runs it reads
def test_only_run_0_at_the_configured_multiplier_is_read():
    def cell(run, omega, f1, kind="finetune"):
        return _record(_history([1.0, 0.5], [f1 - 0.1, f1]), run=run, omega=omega, kind=kind)

    records = [cell(1, 1.0, 0.3), cell(0, 0.5, 0.4), cell(0, 1.0, 0.7), cell(0, None, 0.2, kind="referent"),
               cell(2, 0.5, 0.1)]
    assert _one(records, epochs=2, omega=1.0) == pytest.approx(0.7)
    assert _one(records, epochs=2, omega=0.5) == pytest.approx(0.4)
    assert _one(records, epochs=2, omega=1) == pytest.approx(0.7)  # 1 and 1.0 name one multiplier
    assert _scores(records, epochs=2, omega=0.25).empty
    with pytest.raises(ValueError, match="a second run 0 at omega 1.0"):
        _scores([cell(0, 1.0, 0.7), cell(0, 1.0, 0.6)], epochs=2)


def test_diverged_and_historyless_runs_leave_no_row():
    ok = _record(_history([1.0, 0.8], [0.5, 0.6]), source="lomax")
    # result.json writes a non-finite number as null: this run diverged in epoch 2 ...
    early = _record(_history([1.0, None], [0.5, None], train_loss=[1.0, None]), source="speech", status="diverged")
    # ... this one in epoch 3, after the 2 epochs the proxy reads: a 2-epoch run would not have.
    late = _record(_history([1.0, 0.7, None], [0.5, 0.55, None], train_loss=[1.0, 1.0, math.inf]), source="stead",
                   status="diverged")
    bare = _record(None, source="lendb")
    empty = _record({}, source="sp500")
    scores = _scores([ok, early, late, bare, empty], epochs=2)
    assert scores["source"].tolist() == ["lomax", "stead"]
    assert scores["score"].tolist() == pytest.approx([0.6, 0.55])
    assert _scores([late], epochs=3).empty  # within 3 epochs it diverged


def test_scores_from_result_json_files_have_the_selection_scores_columns(tmp_path):
    paths = []
    for i, (arch, source, target, task) in enumerate([("tcn", "speech", "emg", "classification"),
                                                      ("magnet", "lomax", "sp500", "regression"),
                                                      ("magnet", "emg", "sp500", "regression")]):
        path = tmp_path / f"{i}" / "result.json"
        path.parent.mkdir()
        write_json(path, json_safe(_record(_history([1.0, 0.5, math.nan], [0.3 + i, 0.2 + i, math.nan]),
                                           arch=arch, source=source, target=target, task=task, status="diverged")))
        paths.append(path)
    scores = _scores(paths, epochs=2)
    assert scores.columns.tolist() == SCORE_COLUMNS
    assert (scores["estimator"] == NAME).all()
    assert scores[["arch", "source", "target"]].values.tolist() == [["magnet", "emg", "sp500"],
                                                                    ["magnet", "lomax", "sp500"],
                                                                    ["tcn", "speech", "emg"]]
    assert scores["score"].tolist() == pytest.approx([-2.2, -1.2, 0.2])


def test_bad_settings_and_records_are_named():
    record = _record(_history([1.0], [0.5]))
    with pytest.raises(ValueError, match=r"selection.proxy.epochs: at least 1 epoch, got 0"):
        _scores([record], epochs=0)
    with pytest.raises(ValueError, match="no training config"):
        _scores([{**record, "config": {}}], epochs=1)
    with pytest.raises(ValueError, match="metric 'mae' for a classification target"):
        _scores([{**record, "metric": "mae"}], epochs=1)


# ------------------------------------------------------------------ config
def _validated(config):
    from snakemake.utils import validate

    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_the_proxy_settings_default_in_code_and_the_schema_takes_them_by_name():
    from tstransfer.selection.proxy import study_settings

    for name in ("config.yaml", "demo.yaml", "real.yaml"):
        config = yaml.safe_load((ROOT / "config" / name).read_text())
        assert "proxy" not in _validated(config)["selection"], name  # validation writes nothing in
        assert study_settings(config) == {"epochs": 2, "omega": 1.0}, name
        assert 1.0 in config["omegas"], name
    config = tiny_config()
    config["selection"] = {"estimators": ["logme", "finetune_proxy"], "proxy": {"epochs": 5}}
    assert study_settings(_validated(config)) == {"epochs": 5, "omega": 1.0}
    config = tiny_config()
    del config["selection"]
    assert "selection" not in _validated(config) and study_settings(config) == {"epochs": 2, "omega": 1.0}
    from snakemake_interface_common.exceptions import WorkflowError

    for bad, message in (({"epochs": 0}, "0 is less than the minimum of 1"), ({"epoch": 2}, "'epoch' was unexpected"),
                         ({"omega": -1}, "-1 is less than the minimum of 0")):
        config = tiny_config()
        config["selection"]["proxy"] = bad
        with pytest.raises(WorkflowError, match=message):
            _validated(config)


# ------------------------------------------------------------------ the rules
def _dry_run(tmp_path, bare_env, config, *targets, check=True):
    from workflow_runs import snakemake

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return snakemake(tmp_path, bare_env, "-n", *targets, check=check)


def test_selection_validation_takes_the_proxy_when_all_or_named(tmp_path, bare_env):
    target = "results/analysis/selection_validation_summary.csv"
    config = tiny_config()  # selection.estimators: [all]
    rules = {rule for rule, _ in planned_jobs(_dry_run(tmp_path, bare_env, config, target).stdout)}
    assert {"selection_proxy", "selection_scores", "selection_validation"} <= rules
    config["selection"] = {"estimators": ["finetune_proxy"]}  # the proxy alone: no zoo is scored
    rules = {rule for rule, _ in planned_jobs(_dry_run(tmp_path, bare_env, config, target).stdout)}
    assert "selection_proxy" in rules and not {"selection_scores", "zoo"} & rules
    config["selection"] = {"estimators": ["logme"]}
    rules = {rule for rule, _ in planned_jobs(_dry_run(tmp_path, bare_env, config, target).stdout)}
    assert "selection_scores" in rules and "selection_proxy" not in rules


def test_a_proxy_multiplier_the_study_does_not_train_is_a_config_error(tmp_path, bare_env):
    config = tiny_config()  # omegas [0.5, 1.0]
    config["selection"]["proxy"] = {"omega": 0.25}
    done = _dry_run(tmp_path, bare_env, config, check=False)
    assert done.returncode != 0
    assert "config selection.proxy.omega: 0.25 is not one of omegas [0.5, 1.0]" in done.stdout + done.stderr
    config["selection"]["estimators"] = ["logme"]  # the proxy not selected: its setting unused
    assert _dry_run(tmp_path, bare_env, config).returncode == 0


# A finished study's (target, source) cells: the test metric of every fine-tuning run
# (the referents': 0.5 F1 on EMG, 1.0 MAE on S&P 500) and the validation metric that
# run 0 at omega 1.0 has in epoch 2, the one 2 epochs keep. Every gain favours the
# first source of its target; the proxy picks it, LogME (written by hand) does not.
STUDY = {("emg", "sp500"): (0.6, 0.8), ("emg", "lomax"): (0.55, 0.7),  # F1: +20 %, +10 %
         ("sp500", "emg"): (0.8, 0.5), ("sp500", "lomax"): (0.9, 0.6)}  # MAE: +20 %, +10 %
REFERENT = {"emg": 0.5, "sp500": 1.0}
TASK = {"emg": "classification", "sp500": "regression"}


def _study_tree(workdir):
    """The results of a finished study that the selection rules read, written by hand:
    convnetquake_ingv, variant 1k5, runs 0-1, omegas 0.5 and 1.0 (the tiny config's), the
    cells of STUDY, their manifest, results table and LogME's scores."""
    from tstransfer import pipeline
    from tstransfer.analysis import results

    common = {"arch": "convnetquake_ingv", "variant": "1k5", "seed": 0, "stream_max": False, "best_epoch": 2,
              "last_epoch": 3, "val_metric": 0.5, "convergence_rate": 0.5, "convergence_rate_val": 0.5,
              "convergence_rate_test": None, "runtime_s": 1.0}
    jobs = []
    for run in (0, 1):
        for target, test in REFERENT.items():
            jobs.append(_record(_history([1.0, 0.9], [0.5, 0.5]), kind="referent", target=target, run=run,
                                task=TASK[target]) | {"test_metric": test})
        for (target, source), (test, proxy) in STUDY.items():
            jobs += [_record(_history([1.0, 0.6, 0.8], [0.4, proxy if (run, omega) == (0, 1.0) else 0.3, 0.9]),
                             source=source, target=target, run=run, omega=omega, task=TASK[target])
                     | {"test_metric": test} for omega in (0.5, 1.0)]
    paths = []
    for job in jobs:
        job.update(common)
        folder = "/".join([f"results/{job['kind']}/{job['arch']}", *([job["source"]] if job["source"] else []),
                           f"{job['target']}/1k5/run{job['run']}", *([f"omega{job['omega']}"] if job["omega"] else [])])
        paths.append(workdir / folder / "result.json")
        paths[-1].parent.mkdir(parents=True)
        write_json(paths[-1], job)
    pipeline.write_manifest(paths, workdir / "results" / "manifest.txt")
    tables = workdir / "results" / "tables"
    tables.mkdir(parents=True)
    results.write_table(results.build_results_table(paths), tables / "results.parquet", tables / "results.csv")
    analysis = workdir / "results" / "analysis"
    analysis.mkdir(parents=True)
    pd.DataFrame([{"arch": "convnetquake_ingv", "source": source, "target": target, "variant": "1k5",
                   "estimator": "logme", "score": proxy if TASK[target] == "regression" else -proxy}
                  for (target, source), (_, proxy) in STUDY.items()]).to_csv(
        analysis / "selection_scores.csv", index=False)


def test_the_rules_put_the_proxy_into_the_validation_summary(tmp_path, bare_env):
    """selection_proxy and selection_validation run on a study's results (the other rules
    not allowed: their outputs are written by hand); the summary sets the proxy beside LogME."""
    from workflow_runs import snakemake

    _study_tree(tmp_path)
    config = tiny_config()
    config.update(sources=["emg", "sp500", "lomax"], job_server=False)  # no training job runs
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    # The scripts import this checkout's package (the venv may hold another checkout's).
    env = {**bare_env, "PYTHONPATH": str(ROOT / "src")}
    snakemake(tmp_path, env, "results/analysis/selection_validation_summary.csv", "--cores", "1",
              "--allowed-rules", "selection_proxy", "selection_validation")
    analysis = tmp_path / "results" / "analysis"
    proxy = pd.read_csv(analysis / "selection_proxy_scores.csv").set_index(["target", "source"])
    # run 0 at omega 1.0, 2 epochs (the defaults): epoch 2's F1, or minus its MAE
    assert proxy["score"].to_dict() == pytest.approx({("emg", "lomax"): 0.7, ("emg", "sp500"): 0.8,
                                                      ("sp500", "emg"): -0.5, ("sp500", "lomax"): -0.6})
    summary = pd.read_csv(analysis / "selection_validation_summary.csv").set_index("estimator")
    assert summary.index.tolist() == ["logme", NAME, "random"]
    assert summary.loc[NAME, "n_targets"] == 2 and summary.loc[NAME, "top1"] == 1.0
    assert summary.loc[NAME, "regret"] == pytest.approx(0.0)
    assert summary.loc["logme", "top1"] == 0.0 and summary.loc["logme", "regret"] == pytest.approx(10.0)
    log = (tmp_path / "results" / "logs" / "selection_proxy.log").read_text()
    assert "4 finetune_proxy scores (run 0, omega 1.0, 2 epochs)" in log
    # the tiny config trains 2 epochs: the proxy reads whole runs, and says so
    assert "selection.proxy.epochs (2) is not below training.max_epochs (2)" in log
