"""config/real.yaml, the study on the real problems of the aeon wheel (make study-real):
it passes the schema, names every problem the Makefile extracts as a source and a target,
and turns on the small-training-set settings that the paper's configs leave off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from workflow_runs import ROOT, snakemake


def _makefile_problems() -> list[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return re.search(r"^UCR_PROBLEMS := (.+)$", text, re.M).group(1).split()


def test_real_study_config_uses_every_extracted_problem_and_passes_the_schema():
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config" / "real.yaml").read_text())
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    folders = {name: entry["path"].split("/")[-1] for name, entry in config["datasets"].items()}
    assert all(entry["path"].startswith("resources/ucr/") for entry in config["datasets"].values())
    assert sorted(folders.values()) == sorted(_makefile_problems())
    assert len(folders) == 10
    assert config["sources"] == config["targets"] == list(folders)  # 90 ordered pairs
    assert len(config["architectures"]) >= 2 and config["runs"] >= 3 and len(config["omegas"]) >= 3


def test_small_set_settings_are_on_for_the_real_study_and_off_for_the_paper():
    real = yaml.safe_load((ROOT / "config" / "real.yaml").read_text())["training"]
    assert real["min_epoch_steps"] > 0 and real["monitor"] == "train_loss" and real["recalibrate_batchnorm"]
    for name in ("config.yaml", "demo.yaml"):
        training = yaml.safe_load((ROOT / "config" / name).read_text())["training"]
        assert not {"min_epoch_steps", "monitor", "recalibrate_batchnorm"} & set(training), name


# The CI cut of `make study-real`: three of its problems (two classification, one
# regression), one architecture (the study's FCN, with its recomputed batch-norm
# statistics), two runs and two multipliers, two short epochs; every rule of the study
# runs, on the real files.
CUT = ["gunpoint", "italypowerdemand", "covid3month"]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # its snakemake may take 600 s
def test_a_cut_of_the_real_study_runs_every_rule_on_the_real_files(tmp_path, bare_env):
    import pandas as pd

    from ucr_data import ucr

    config = yaml.safe_load((ROOT / "config" / "real.yaml").read_text())
    config["datasets"] = {name: config["datasets"][name] for name in CUT}
    for entry in config["datasets"].values():
        entry["path"] = str(ucr(entry["path"].split("/")[-1]))
    config.update(sources=CUT, targets=CUT, architectures=["fcn"], runs=2, omegas=[0.1, 1.0])
    published = config["referent_check"]["accuracy"]
    config["referent_check"]["accuracy"] = {name: published[name] for name in CUT if name in published}
    config["training"].update(max_epochs=2, min_epoch_steps=4)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path, bare_env, "--cores", "2", timeout=600)

    table = pd.read_parquet(tmp_path / "results" / "tables" / "results.parquet")
    counts = table["kind"].value_counts().to_dict()
    assert counts == {"finetune": 6 * 2 * 2, "referent": 3 * 2, "pretrain": 3}
    assert set(table["target"].dropna()) == set(CUT)
    assert set(table["arch"]) == {"fcn"}
    referent_log = (tmp_path / "results" / "logs" / "referent" / "fcn" / "gunpoint" / "all" / "run0.log").read_text()
    assert "recomputing the statistics of 3 BatchNormalization layers" in referent_log
    tasks = table.drop_duplicates("target").set_index("target")["task"].to_dict()
    assert tasks == {"gunpoint": "classification", "italypowerdemand": "classification",
                     "covid3month": "regression"}
    # The tables name the study's problems and none of the paper's datasets.
    performance = (tmp_path / "results" / "analysis" / "tables" / "table7_performance_other.csv").read_text()
    assert all(name in performance.lower() for name in ("gunpoint", "italypowerdemand", "covid3month"))
    assert not any(name in performance.lower() for name in ("lomax", "stead", "speech", "sp500"))
    # Source selection validated on the cut: every estimator that applies scored each
    # (source, target), and the summary sets them beside a random pick.
    analysis = tmp_path / "results" / "analysis"
    scores = pd.read_csv(analysis / "selection_scores.csv")
    assert {"logme", "hscore", "linear_mse"} <= set(scores["estimator"])
    assert set(scores.loc[scores["estimator"] == "linear_mse", "target"]) == {"covid3month"}
    summary = pd.read_csv(analysis / "selection_validation_summary.csv")
    assert summary["estimator"].iloc[-1] == "random" and "logme" in set(summary["estimator"])
    # ... and the fine-tuning proxy, read from the runs themselves (rule selection_proxy)
    proxy = pd.read_csv(analysis / "selection_proxy_scores.csv")
    assert set(proxy["estimator"]) == {"finetune_proxy"} and set(proxy["target"]) == set(CUT)
    assert "finetune_proxy" in set(summary["estimator"])
    # The referents held to the published accuracy: each classification target's runs, by
    # their recorded test accuracy; a target that falls short is marked in Table 7.
    referents = table[table["kind"] == "referent"].set_index("target")
    assert referents.loc[["gunpoint", "italypowerdemand"], "test_accuracy"].between(0, 1).all()
    assert referents.loc["covid3month", "test_accuracy"].isna().all()
    check = pd.read_csv(analysis / "tables" / "referent_check.csv").set_index("target")
    assert sorted(check.index) == ["gunpoint", "italypowerdemand"] and set(check["measure"]) == {"accuracy"}
    for target, row in check.iterrows():
        ours = referents.loc[target, "test_accuracy"].mean()
        assert row["ours"] == pytest.approx(ours) and row["competent"] == (ours >= row["published"] - 0.1)
    marked = pd.read_csv(analysis / "tables" / "table7_performance_other.csv")
    short = set(check.index[~check["competent"]])
    assert set(marked.loc[marked["referent_short"], "target"]) == short
    assert "Best estimator on this study: <b>" in (analysis / "summary.html").read_text()


def test_a_benchmark_config_takes_dotted_settings_and_the_checkouts_paths(tmp_path):
    from tstransfer.devtools import bench_config

    config = bench_config.load(ROOT / "config" / "real.yaml",
                               ["training.batch_fraction=0.1", "selection.proxy.epochs=3", "runs=1"], tmp_path)
    assert config["training"]["batch_fraction"] == 0.1 and config["runs"] == 1
    assert config["selection"]["proxy"] == {"epochs": 3}  # a missing level is made
    assert config["training"]["batch_size"] == 16  # the rest as the file has it
    paths = [Path(entry["path"]) for entry in config["datasets"].values()]
    assert paths and all(path.is_relative_to(tmp_path) for path in paths)


@pytest.mark.parametrize("settings, says", [(["training.max_epochs"], "expected KEY=VALUE"),
                                            (["=3"], "expected KEY=VALUE")])
def test_a_benchmark_setting_without_a_key_and_value_is_one_line(tmp_path, settings, says):
    from tstransfer.devtools import bench_config

    with pytest.raises(SystemExit, match=says):
        bench_config.load(ROOT / "config" / "real.yaml", settings, tmp_path)
    with pytest.raises(SystemExit, match="missing.yaml: cannot read the config"):
        bench_config.load(tmp_path / "missing.yaml", [], tmp_path)
