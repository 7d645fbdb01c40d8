"""The model zoo (snakemake zoo, tstransfer.zoo), LogME, and the rank/transfer commands."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.stats

from tstransfer import zoo
from tstransfer.fsutil import sha256_file
from tstransfer.logme import evidence, logme
from workflow_runs import snakemake


# --------------------------------------------------------------------------- LogME
def _direct_evidence(features, y, alpha, beta):
    """log N(y; 0, F F^T / alpha + I / beta) / n: the evidence straight from its density."""
    n = len(y)
    cov = features @ features.T / alpha + np.eye(n) / beta
    return scipy.stats.multivariate_normal(np.zeros(n), cov).logpdf(y) / n


@pytest.mark.parametrize("n, d", [(40, 5), (12, 30)])
def test_logme_is_the_maximum_of_the_evidence_computed_from_its_density(n, d):
    rng = np.random.default_rng(n * d)
    features = rng.normal(size=(n, d))
    features[:, -1] = features[:, 0]  # rank-deficient: the null directions must count
    y = features @ rng.normal(size=d) + 0.7 * rng.normal(size=n)
    for alpha, beta in [(1.0, 1.0), (0.2, 5.0)]:
        assert evidence(features, y, alpha, beta) == pytest.approx(_direct_evidence(features, y, alpha, beta), abs=1e-9)
    best = scipy.optimize.minimize(lambda p: -_direct_evidence(features, y, *np.exp(p)), [0.0, 0.0],
                                   method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})
    score = logme(features, y, "regression")
    assert score == pytest.approx(-best.fun, abs=1e-6)


def test_logme_prefers_features_that_determine_the_labels():
    rng = np.random.default_rng(7)
    classes = rng.integers(0, 4, 300)
    informative = np.eye(4)[classes] @ rng.normal(size=(4, 16)) + 0.2 * rng.normal(size=(300, 16))
    noise = rng.normal(size=(300, 16))
    assert logme(informative, classes, "classification") > logme(noise, classes, "classification") + 0.1
    values = rng.normal(size=300)
    linear = np.column_stack([values, rng.normal(size=(300, 7))]) @ rng.normal(size=(8, 8))
    assert logme(linear, 3 * values + 1, "regression") > logme(noise[:, :8], 3 * values + 1, "regression") + 0.5


def test_logme_rejects_bad_input():
    with pytest.raises(ValueError, match="3 labels for 4"):
        logme(np.ones((4, 2)), np.zeros(3), "regression")
    with pytest.raises(ValueError, match="non-finite"):
        logme(np.array([[np.nan, 1.0]]), np.zeros(1), "regression")
    with pytest.raises(ValueError, match="task"):
        logme(np.ones((2, 2)), np.zeros(2), "ranking")


def test_validate_ranking_counts_correlation_and_top_hits():
    keys = dict(target="t", variant="v")
    scores = pd.DataFrame([{"arch": a, "source": s, "logme": x, **keys}
                           for a in ("a1", "a2") for s, x in zip("pqr", (1.0, 2.0, 3.0))])
    gains = scores.rename(columns={"logme": "gain"})
    gains.loc[(gains["arch"] == "a2") & (gains["source"] == "p"), "gain"] = 10.0  # a2: worst-ranked is best
    summary = zoo.validate_ranking(scores, gains)
    assert summary["n_cells"] == 6
    assert summary["spearman_per_target_arch"]["t/v/a1"] == pytest.approx(1.0)
    assert summary["spearman_per_target_arch"]["t/v/a2"] == pytest.approx(-0.5)
    assert summary["top_source"] == {"hits": 1, "groups": 2, "rate": 0.5, "chance": pytest.approx(1 / 3)}


def test_adapt_input_matches_the_fine_tuning_channel_rules():
    x = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    np.testing.assert_array_equal(zoo.adapt_input(x, 5, 1)[..., 0], x.sum(axis=-1))  # repeated kernel
    np.testing.assert_array_equal(zoo.adapt_input(x[..., :1], 5, 3), np.repeat(x[..., :1], 3, axis=-1))
    stretched = zoo.adapt_input(x, 9, 3)
    assert stretched.shape == (2, 9, 3)
    np.testing.assert_allclose(stretched[:, [0, -1]], x[:, [0, -1]])


def test_compatibility_rule():
    card = {"arch": "tcn", "source": "emg", "input": {"channels": 3}}
    target = {"dataset": "gunpoint", "task": "classification", "channels": 1}
    assert zoo.compatibility(card, target) is None
    assert "own source" in zoo.compatibility(card, {**target, "dataset": "emg"})
    # Any m -> k channels adapt (tstransfer.transfer: kernels averaged, repeated and
    # scaled); only a channel count that is not a positive int is refused, and named.
    assert zoo.compatibility({**card, "input": {"channels": 2}}, {**target, "channels": 3}) is None
    assert "target_channels must be a positive int" in zoo.compatibility(card, {**target, "channels": 0})
    assert "task" in zoo.compatibility(card, {**target, "task": "forecast"})


# --------------------------------------------------------------------------- the zoo
@pytest.fixture(scope="module")
def zoo_run(finished_run, bare_env, tmp_path_factory):
    """A copy of the finished tiny run with `snakemake zoo` done."""
    run = tmp_path_factory.mktemp("zoo") / "run"
    shutil.copytree(finished_run, run, symlinks=True)
    snakemake(run, bare_env, "--cores", "2", "zoo")
    return run


def test_snakemake_zoo_exports_every_selected_model_with_cards_and_checksums(zoo_run):
    zoo_dir = zoo_run / "results" / "zoo"
    index = json.loads((zoo_dir / "index.json").read_text())
    assert [m["name"] for m in index["models"]] == ["convnetquake_ingv-emg", "convnetquake_ingv-sp500"]
    assert index["protocol"]["omegas"] == [0.5, 1.0] and index["protocol"]["runs"] == 2
    for card in index["models"]:
        folder = zoo_dir / card["name"]
        selected = zoo_run / "results" / "pretrain" / card["arch"] / card["source"] / "selected"
        assert card["weights"]["sha256"] == sha256_file(folder / "model.keras") == sha256_file(selected / "model.keras")
        assert json.loads((folder / "card.json").read_text()) == card
        result = json.loads((selected.parent / f"seed{card['seed']['seed_index']}" / "result.json").read_text())
        assert card["metrics"]["validation"] == result["val_metric"] and card["seed"]["seed"] == result["seed"]
        assert card["input"]["length"] > 0 and card["input"]["channels"] in (1, 3)
        assert card["versions"]["tensorflow"] and card["training_data"]["raw_data"] == "synthetic"
        assert card["weights"]["sha256"] in (folder / "card.md").read_text()
        readme = (folder / "README.md").read_text()  # the card as model hubs read it (tests/test_zoo_cards.py)
        assert readme.startswith("---\nlibrary_name: keras\nlicense: mit\n") and card["weights"]["sha256"] in readme
        assert card["license"] == "MIT"
    listed = {line.split()[1] for line in (zoo_dir / "SHA256SUMS").read_text().splitlines()}
    assert listed == {p.relative_to(zoo_dir).as_posix() for p in zoo_dir.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    zoo.verify(zoo_dir)


def test_load_round_trip_and_a_damaged_model_named(zoo_run, tmp_path):
    from tstransfer.jobs import load_model

    zoo_dir = zoo_run / "results" / "zoo"
    model = zoo.load("convnetquake_ingv", "emg", zoo_dir)
    original = load_model(zoo_run / "results" / "pretrain" / "convnetquake_ingv" / "emg" / "selected" / "model.keras")
    for ours, theirs in zip(model.get_weights(), original.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)

    damaged = tmp_path / "zoo"
    shutil.copytree(zoo_dir, damaged)
    weights = damaged / "convnetquake_ingv-emg" / "model.keras"
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(zoo.ZooError, match=r"convnetquake_ingv-emg/model.keras: sha256 .* does not match"):
        zoo.load("convnetquake_ingv", "emg", damaged)
    with pytest.raises(zoo.ZooError, match=r"convnetquake_ingv-emg/model.keras: sha256 differs"):
        zoo.verify(damaged)
    with pytest.raises(zoo.ZooError, match="no such zoo model"):
        zoo.load("tcn", "emg", damaged)


def test_transfer_command_prints_and_writes_the_gain_table(zoo_run, tmp_path, capsys):
    from tstransfer import cli

    out = tmp_path / "transfer"
    store = zoo_run / "results" / "data" / "emg.zarr"
    argv = ["transfer", "--zoo", str(zoo_run / "results" / "zoo"), "--data", str(store), "--out", str(out),
            "--runs", "1", "--omegas", "0.5", "1.0", "--size", "40", "--max-epochs", "1"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Transfer to emg: 40 training instances, 1 run(s), multipliers 0.5, 1.0" in printed
    assert "| convnetquake_ingv-sp500 |" in printed
    assert "convnetquake_ingv-emg (the target is the model's own source dataset)" in printed
    gains = pd.read_csv(out / "gains.csv")
    assert gains[["model", "logme_rank"]].values.tolist() == [["convnetquake_ingv-sp500", 1]]
    assert np.isfinite(gains["gain_performance"]).all() and np.isfinite(gains["logme"]).all()
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["kind"]) == ["finetune", "finetune", "referent"]
    assert (results["task"] == "classification").all()
    assert set(results.loc[results["kind"] == "finetune", "omega"]) == {0.5, 1.0}
    # rank --size draws the subset transfer's first run fine-tunes on, so its LogME is
    # the one in the gain table; a size of the whole training split is the "all" variant.
    ranked = tmp_path / "rank"
    assert cli.main(["rank", "--zoo", str(zoo_run / "results" / "zoo"), "--data", str(store),
                     "--size", "40", "--out", str(ranked)]) == 0
    ranking = pd.read_csv(ranked / "ranking.csv")
    assert ranking["logme"].tolist() == pytest.approx(gains["logme"].tolist())
    # The jobs lie under --out as the pipeline lays them out under results/ (tstransfer.plan).
    assert len(list(out.glob("finetune/convnetquake_ingv/sp500/emg/*/run0/omega0.5/result.json"))) == 1
    assert len(list(out.glob("data/subsets/emg/*/run0.npz"))) == 1
    # Every estimator at once: the features' estimators score the model; LEEP and NCE need
    # a classification source head (S&P 500's is regression) and DTW the source's series.
    assert cli.main(["rank", "--zoo", str(zoo_run / "results" / "zoo"), "--data", str(store),
                     "--size", "40", "--out", str(ranked), "--method", "all"]) == 0
    every = pd.read_csv(ranked / "ranking.csv")
    assert every["logme"].tolist() == pytest.approx(gains["logme"].tolist())
    assert np.isfinite(every[["hscore", "shrinkage_hscore", "gbc", "transrate"]].to_numpy()).all()
    assert every[["leep", "nce", "dtw_dba", "finetune_proxy", "linear_mse"]].isna().all().all()
    assert (zoo.variant_name(40, 40), zoo.variant_name(40, 41)) == ("all", "n40")


def test_the_studys_selection_rules_score_every_zoo_model_and_validate_through_the_harness(zoo_run):
    """rules/selection.smk in `all` of the tiny run: the scores are rank's on each target's
    run-0 subset, the validation is the harness on them and the results table, and the
    summary page opens on the gain heatmap beside the estimator table."""
    import base64
    import re

    import yaml

    from tstransfer.analysis import results
    from tstransfer.selection import validation
    from tstransfer.zoo import study

    analysis = zoo_run / "results" / "analysis"
    scores = pd.read_csv(analysis / "selection_scores.csv")
    assert list(scores.columns) == study.SCORE_COLUMNS and np.isfinite(scores["score"]).all()
    # Each target's compatible models: every source but itself. S&P 500's head is a
    # regression head (no LEEP, NCE) and EMG a classification target (no linear MSE).
    assert sorted(map(tuple, scores[validation.STUDY_KEYS].drop_duplicates().to_numpy())) == [
        ("convnetquake_ingv", "emg", "sp500", "1k5"), ("convnetquake_ingv", "sp500", "emg", "1k5")]
    estimators = scores.groupby("target")["estimator"].apply(set).to_dict()
    assert estimators == {"emg": {"logme", "hscore", "shrinkage_hscore", "gbc", "transrate", "dtw_dba"},
                          "sp500": {"logme", "linear_mse", "dtw_dba"}}
    seed = yaml.safe_load((zoo_run / "config.yaml").read_text())["seed"]
    for target, source in (("emg", "sp500"), ("sp500", "emg")):
        mine = scores[scores["target"] == target].set_index("estimator")["score"].drop("dtw_dba")
        ranked = zoo.rank(zoo_run / "results" / "zoo", zoo_run / "results" / "data" / f"{target}.zarr",
                          subset=zoo_run / "results" / "data" / "subsets" / target / "1k5" / "run0.npz",
                          seed=seed, methods=list(mine.index))
        assert ranked["source"].tolist() == [source]
        assert ranked.loc[0, list(mine.index)].to_numpy(float) == pytest.approx(mine.to_numpy(), rel=1e-9)

    table = results.read_table(zoo_run / "results" / "tables" / "results.parquet")
    per_target, summary = validation.study_tables(scores, table)
    for name, expected in (("selection_validation.csv", per_target), ("selection_validation_summary.csv", summary)):
        written = pd.read_csv(analysis / name)
        assert list(written.columns) == list(expected.columns)
        pd.testing.assert_frame_equal(written, expected.reset_index(drop=True), check_dtype=False)
    # Every scored cell has its measured gain; with one candidate source per target the
    # tiny run leaves the harness no choice to validate, and the page says so.
    cells = validation.cells(scores, validation.mean_gains(table, keys=validation.STUDY_KEYS), keys=validation.STUDY_KEYS)
    assert len(cells) == len(scores) and (cells.groupby(validation.STUDY_WITHIN)["source"].nunique() == 1).all()
    assert per_target.empty and list(summary.columns) == validation.SUMMARY_COLUMNS

    page = (analysis / "summary.html").read_text(encoding="utf-8")
    image = re.search(r'id="tstl-gain-heatmap"[^>]*src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(image[1]) == (analysis / "summary_heatmap.png").read_bytes()
    assert page.index("tstl-gain-heatmap") < page.index("Source-selection estimators") < page.index("Does transfer help?")
    assert "No target had two or more scored sources" in page
    numbers = json.loads((analysis / "summary_page.json").read_text())
    assert numbers["selection"] == {"summary": [], "best": None}


def test_data_entry_reads_a_yaml_entry_a_ucr_folder_and_names_what_it_cannot(tmp_path):
    entry = tmp_path / "mine.yaml"
    entry.write_text("My-Set:\n  format: csv\n  path: series.csv\n  domain: medicine\n")
    assert zoo.data_entry(entry) == ("my_set", {"format": "csv", "path": str(tmp_path / "series.csv"),
                                                "domain": "medicine"})
    bare = tmp_path / "bare.yaml"
    bare.write_text("format: numpy\npath: /data/x.npz\n")
    assert zoo.data_entry(bare) == ("bare", {"format": "numpy", "path": "/data/x.npz", "domain": "user"})

    archive = tmp_path / "GunPoint"
    archive.mkdir()
    (archive / "GunPoint_TRAIN.ts").write_text("")
    (archive / "GunPoint_TEST.ts").write_text("")
    assert zoo.data_entry(archive) == ("gunpoint", {"format": "ts", "path": str(archive), "domain": "user"})
    # One file of a UCR/UEA archive stands for the archive (its train and test files).
    assert zoo.data_entry(archive / "GunPoint_TRAIN.ts")[0] == "gunpoint"

    odd = tmp_path / "signals.parquet"
    odd.write_text("")
    with pytest.raises(zoo.ZooError, match=r"signals.parquet: not a converted store .* known format"):
        zoo.data_entry(odd)
    with pytest.raises(zoo.ZooError, match="no such file"):
        zoo.data_entry(tmp_path / "absent.ts")
    wrong = tmp_path / "two.yaml"
    wrong.write_text("a: {format: csv}\nb: {format: csv}\n")
    with pytest.raises(zoo.ZooError, match="expected one dataset entry"):
        zoo.data_entry(wrong)


def test_transfer_command_on_a_ucr_archive_converts_it_and_prints_its_gain_table(zoo_run, tmp_path, capsys):
    """The issue's check: `transfer --zoo DIR --data <GunPoint>` on real UCR data (aeon's wheel)."""
    from tstransfer import cli

    from ucr_data import ucr

    out = tmp_path / "gunpoint"
    argv = ["transfer", "--zoo", str(zoo_run / "results" / "zoo"), "--data", str(ucr("GunPoint")),
            "--out", str(out), "--runs", "1", "--omegas", "1.0", "--size", "30", "--max-epochs", "1"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Transfer to gunpoint: 30 training instances, 1 run(s), multipliers 1.0" in printed
    # GunPoint has one channel: for the 3-channel EMG model it is repeated (the paper's
    # n -> 1 rule); the 1-channel S&P 500 model takes it as it is.
    assert "| convnetquake_ingv-emg |" in printed and "| convnetquake_ingv-sp500 |" in printed
    assert (out / "data" / "gunpoint.zarr" / "zarr.json").is_file()
    results = pd.read_csv(out / "results.csv")
    assert (results["task"] == "classification").all() and set(results["target"]) == {"gunpoint"}
    assert sorted(results["kind"]) == ["finetune", "finetune", "referent"]


def test_transfer_reuses_a_subset_only_when_it_is_the_one_it_would_draw(zoo_run, tmp_path):
    from tstransfer.store import make_subset

    store = zoo_run / "results" / "data" / "emg.zarr"
    subset = tmp_path / "run0.npz"
    make_subset(store, subset, variant="n40", size=40, run=0, seed=7)
    assert zoo.target._subset_drawn(subset, size=40, seed=7)
    assert not zoo.target._subset_drawn(subset, size=30, seed=7)  # another --size into the same --out
    assert not zoo.target._subset_drawn(subset, size=40, seed=8)  # another --seed
    assert not zoo.target._subset_drawn(tmp_path / "absent.npz", size=40, seed=7)


def test_the_config_schema_names_every_estimator_the_study_can_run():
    """config selection.estimators: the schema's names are the registry's estimators; the
    zoo models are scored by those that need no training (the fine-tuning proxy, in all or
    named, comes from rule selection_proxy: tests/test_selection_proxy.py)."""
    import yaml

    from tstransfer import selection
    from tstransfer.zoo import study
    from workflow_runs import ROOT

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    names = schema["properties"]["selection"]["properties"]["estimators"]["items"]["enum"]
    assert sorted(names) == sorted([selection.ALL, *selection.ESTIMATORS])
    untrained = [name for name, e in selection.ESTIMATORS.items() if "train_for" not in e.needs]
    assert "finetune_proxy" not in untrained
    assert [e.name for e in study.study_estimators(["all"])] == untrained
    assert [e.name for e in study.study_estimators(["logme", "finetune_proxy"])] == ["logme"]
    assert study.study_estimators(["finetune_proxy"]) == []
    with pytest.raises(ValueError, match=r"config selection.estimators: unknown estimator\(s\) \['lme'\]"):
        study.study_estimators(["lme"])


def test_zoo_commands_answer_bad_input_in_one_line(tmp_path, capsys):
    from tstransfer import cli

    assert cli.main(["rank", "--zoo", str(tmp_path), "--data", str(tmp_path), "--method", "bogus"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --method: unknown estimator(s) ['bogus']")
    out = tmp_path / "transfer"
    assert cli.main(["transfer", "--zoo", str(tmp_path / "nozoo"), "--data", str(tmp_path), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: {tmp_path / 'nozoo' / 'index.json'}: no zoo index (export a zoo with `snakemake zoo`)"]
    assert not out.exists()


def test_rank_answers_five_bad_inputs_in_one_line_without_tensorflows_start_up_lines(zoo_run, tmp_path):
    """Issue 23's five, as a new user meets them: `python -m tstransfer.cli rank` on a
    malformed .ts, a CSV with a missing value, a CSV without its label column, an .npz
    whose X and y differ in length, and a damaged zoo model. Each is one line on stderr
    naming the file and the problem, exit status 2, none of TensorFlow's C++ start-up
    lines; --debug shows the traceback."""
    import subprocess
    import sys

    zoo_dir = zoo_run / "results" / "zoo"
    damaged = tmp_path / "damaged_zoo"
    shutil.copytree(zoo_dir, damaged)
    weights = damaged / "convnetquake_ingv-sp500" / "model.keras"  # the source that ranks EMG
    weights.write_bytes(weights.read_bytes() + b"\0")
    (tmp_path / "bad.ts").write_text("@problemName b\n@timeStamps false\n@univariate true\n@classLabel true a b\n"
                                     "@data\n1,2,oops:a\n")
    (tmp_path / "gap.csv").write_text("label,t0,t1,t2\na,1,,3\nb,4,5,6\n")
    (tmp_path / "nolabel.csv").write_text("t0,t1,t2\n1,2,3\n4,5,6\n")
    np.savez(tmp_path / "short_y.npz", X=np.zeros((4, 8)), y=np.arange(3))
    store = zoo_run / "results" / "data" / "emg.zarr"
    cases = [
        (zoo_dir, tmp_path / "bad.ts", "bad.ts: line 6, channel 0: not a number list"),
        (zoo_dir, tmp_path / "gap.csv", "gap.csv [trace instance 0]: missing or non-finite values"),
        (zoo_dir, tmp_path / "nolabel.csv", "nolabel.csv: missing column(s) ['label']"),
        (zoo_dir, tmp_path / "short_y.npz", "short_y.npz: 4 instances but 3 labels"),
        (damaged, store, "convnetquake_ingv-sp500/model.keras: sha256"),
    ]
    command = [sys.executable, "-m", "tstransfer.cli", "rank"]
    for zoo_folder, data, problem in cases:
        ran = subprocess.run([*command, "--zoo", str(zoo_folder), "--data", str(data)], capture_output=True,
                             text=True, timeout=300)
        lines = ran.stderr.strip().splitlines()
        assert ran.returncode == 2 and len(lines) == 1, ran.stderr
        assert lines[0].startswith("error: ") and problem in lines[0], lines[0]
    ran = subprocess.run([*command, "--debug", "--zoo", str(damaged), "--data", str(store)], capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode != 0 and "Traceback (most recent call last)" in ran.stderr


def test_tensorflows_native_stderr_is_hidden_and_replayed_on_failure(capfd):
    import os

    from tstransfer.tfquiet import native_stderr_hidden

    with native_stderr_hidden():
        os.write(2, b"noise from C++\n")
    assert "noise" not in capfd.readouterr().err
    with pytest.raises(ImportError, match="no such module"), native_stderr_hidden():
        os.write(2, b"why it failed\n")
        raise ImportError("no such module")
    assert capfd.readouterr().err == "why it failed\n"


def test_a_model_with_constant_features_leaves_gaps_not_a_failure(caplog):
    """A zoo model that maps every target instance to one feature vector (seen in the real
    study) gets no feature-based score; the other estimators still score it."""
    from tstransfer import selection
    from tstransfer.zoo.ranking import estimator_scores

    labels = np.array([0, 1] * 10)
    probs = np.tile([[0.3, 0.7]], (20, 1))
    dead = selection.Inputs(task="classification", labels=labels, features=np.ones((20, 4)), source_probs=probs)
    estimators = selection.resolve(["logme", "hscore", "leep"])
    with caplog.at_level("WARNING"):
        scores = estimator_scores(estimators, dead, model="m")
    assert set(scores) == {"leep"} and "m maps every target instance to the same features" in caplog.text
    alive = selection.Inputs(task="classification", labels=labels,
                             features=np.random.default_rng(0).normal(size=(20, 4)), source_probs=probs)
    assert set(estimator_scores(estimators, alive)) == {"logme", "hscore", "leep"}
