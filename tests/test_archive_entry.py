"""A whole UCR/UEA archive as one config entry (archives.<name>, datasets/collection.py), the
.ts header probe that spares the Snakefile's parse reading the data (datasets/tsheader.py),
and the UCR 2018 .tsv layout."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tstransfer import datasets
from tstransfer.datasets import collection, tsheader
from tstransfer.datasets.custom import CustomDataset
from tstransfer.datasets.readers import read_ts, read_ucr_tsv
from tstransfer.datasets.standin_archive import write_standin_archive
from ucr_data import UCR_DATA, ucr
from workflow_runs import ROOT, planned_jobs, snakemake, tiny_config

# Every real problem `make ucr-data` extracts (the Makefile's UCR_PROBLEMS).
REAL = tuple(sorted(re.search(r"^UCR_PROBLEMS := (.+)$", (ROOT / "Makefile").read_text().replace("\\\n", " "),
                              re.M).group(1).split()))


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    datasets.register_config({"datasets": {}})  # drop what a test registered


@pytest.fixture
def standin(tmp_path) -> Path:
    write_standin_archive(tmp_path / "archive", 16, seed=3)
    return tmp_path / "archive"


def _config(archive: dict, **extra) -> dict:
    return {"datasets": {}, "archives": {"ucr": archive}, "sources": ["ucr"], "targets": ["ucr"], **extra}


# --------------------------------------------------------------------------- expansion
def test_all_expands_every_problem_into_an_ordinary_entry(standin):
    config = _config({"path": str(standin), "domain": "sensors"}, stream_max_study={"datasets": ["ucr"]})
    custom = datasets.register_config(config)
    names = [f"standin{i:03d}" for i in range(16)]
    assert custom == names and list(config["datasets"]) == names
    assert config["sources"] == config["targets"] == config["stream_max_study"]["datasets"] == names
    entry = config["datasets"]["standin007"]
    assert entry == {"format": "ts", "path": str(standin / "StandIn007"), "train": "StandIn007_TRAIN.ts",
                     "test": "StandIn007_TEST.ts", "title": "StandIn007", "domain": "sensors"}
    assert datasets.title("standin007") == "StandIn007" and datasets.domain("standin007") == "sensors"
    # The scripts the Snakefile runs register its already expanded config again: no change.
    again = copy.deepcopy(config)
    assert datasets.register_config(again) == names and again == config


def test_a_list_picks_problems_in_its_order_and_mixes_with_other_entries(standin):
    config = _config({"path": str(standin), "problems": ["StandIn005", "StandIn002", "StandIn009"],
                      "exclude": ["StandIn009"], "domains": {"StandIn002": "motion"}})
    config["datasets"]["mine"] = {"format": "ts", "path": str(standin / "StandIn000"), "domain": "x"}
    config["targets"] = ["mine", "ucr"]
    datasets.register_config(config)
    assert config["sources"] == ["standin005", "standin002"]
    assert config["targets"] == ["mine", "standin005", "standin002"]
    assert datasets.domain("standin002") == "motion" and datasets.domain("standin005") == "ucr"


def test_names_are_lower_case_wildcard_values():
    assert collection.dataset_name("uea", "PEMS-SF") == "pems_sf"
    assert collection.dataset_name("ucr", "50words") == "ucr_50words"
    assert collection.dataset_name("ucr", "GunPoint", "u_") == "u_gunpoint"


def test_the_real_problems_expand_and_their_entries_read(tmp_path):
    for problem in REAL:
        ucr(problem)  # skips (fails under CI) without make ucr-data
    config = _config({"path": str(UCR_DATA), "domain": "ucr"})
    assert sorted(datasets.register_config(config)) == sorted(p.lower() for p in REAL)
    # JapaneseVowels' folder also holds JapaneseVowels_eq_*.ts: the entry names its files.
    assert config["datasets"]["japanesevowels"]["train"] == "JapaneseVowels_TRAIN.ts"
    info = datasets.get("basicmotions").INFO
    assert (info.task, info.channels, info.title) == ("classification", 6, "BasicMotions")
    assert datasets.get("covid3month").INFO.task == "regression"


# --------------------------------------------------------------------------- refused
def _refused(config: dict) -> str:
    with pytest.raises(ValueError, match=r"\Aconfig ") as caught:  # a config error, named as one
        datasets.register_config(config)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_missing_problem_or_bad_folder_is_refused_naming_entry_and_path(standin, tmp_path):
    message = _refused(_config({"path": str(standin), "problems": ["StandIn001", "NoSuch"]}))
    assert message.startswith("config archives.ucr: problem NoSuch:")
    assert str(standin / "NoSuch" / "NoSuch_TRAIN.ts") in message
    (standin / "StandIn003" / "StandIn003_TEST.ts").unlink()
    message = _refused(_config({"path": str(standin)}))
    assert "config archives.ucr: problem StandIn003" in message
    assert str(standin / "StandIn003" / "StandIn003_TEST.ts") in message
    message = _refused(_config({"path": str(tmp_path / "nowhere")}))
    assert message == f"config archives.ucr.path: {tmp_path / 'nowhere'} is not a folder"
    (tmp_path / "empty").mkdir()
    assert "holds no problem folder" in _refused(_config({"path": str(tmp_path / "empty")}))
    assert "problems must be all or" in _refused(_config({"path": str(standin), "problems": "some"}))
    message = _refused(_config({"path": str(standin), "exclude": ["StandIn999"]}))
    assert message == f"config archives.ucr.exclude: StandIn999 is not among the problems in {standin}"


def test_clashing_names_are_refused(standin):
    (standin / "STANDIN001").mkdir()
    for split in ("TRAIN", "TEST"):
        (standin / f"STANDIN001/STANDIN001_{split}.ts").write_text(
            (standin / f"StandIn001/StandIn001_{split}.ts").read_text())
    message = _refused(_config({"path": str(standin), "problems": ["StandIn001", "STANDIN001"]}))
    assert "problems StandIn001 and STANDIN001 both become the dataset name standin001" in message
    config = _config({"path": str(standin), "problems": ["StandIn001"]})
    config["datasets"]["standin001"] = {"format": "ts", "path": "elsewhere", "domain": "x"}
    assert "standin001, which an entry of datasets already has" in _refused(config)
    config = _config({"path": str(standin), "problems": ["StandIn001"]})
    config["archives"]["copy"] = {"path": str(standin), "problems": ["StandIn001"]}
    assert "config archives.copy: problem StandIn001" in _refused(config)
    config["archives"]["copy"]["prefix"] = "copy_"
    datasets.register_config(config)
    assert {"standin001", "copy_standin001"} <= set(config["datasets"])
    config = _config({"path": str(standin)})
    config["datasets"]["ucr"] = {"format": "ts", "path": str(standin / "StandIn000"), "domain": "x"}
    assert "ucr is also an entry of datasets" in _refused(config)


def test_the_schema_takes_an_archive_and_names_a_bad_key():
    from snakemake.utils import validate
    from snakemake_interface_common.exceptions import WorkflowError

    schema = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["archives"] = {"ucr": {"path": "/data/Univariate_ts", "problems": ["GunPoint"], "format": "tsv"}}
    config["targets"] = [*config["targets"], "ucr"]
    validate(config, schema)
    config["archives"]["ucr"]["problem"] = "all"
    with pytest.raises(WorkflowError, match="'problem' was unexpected"):
        validate(config, schema)


# --------------------------------------------------------------------------- header probe
def test_header_probe_agrees_with_the_full_read_without_reading_the_data(standin):
    config = _config({"path": str(standin)})
    if UCR_DATA.is_dir():
        config["archives"]["real"] = {"path": str(UCR_DATA), "problems": [p for p in REAL if (UCR_DATA / p).is_dir()]}
        config["targets"] = ["ucr", "real"]
    names = datasets.register_config(config)
    for name in names:
        probed = datasets.task_and_channels(name)
        module = datasets.get(name)
        assert module._loaded is None, f"{name}: task_and_channels read the data"
        assert probed == (module.INFO.task, module.INFO.channels), name
    tasks = {datasets.get(n).INFO.task for n in names}
    channels = {datasets.get(n).INFO.channels for n in names}
    assert tasks == {"classification", "regression"} and {1, 3} <= channels


def test_header_probe_leaves_undeclared_or_contradictory_files_to_the_full_read(tmp_path):
    good = "@univariate false\n@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n"
    (tmp_path / "good.ts").write_text(good)
    assert tsheader.probe_ts_file(tmp_path / "good.ts") == ("classification", 2)
    (tmp_path / "wrong.ts").write_text(good.replace("@dimensions 2", "@dimensions 3"))
    assert tsheader.probe_ts_file(tmp_path / "wrong.ts") is None
    (tmp_path / "unlabelled.ts").write_text(good.replace("@classLabel true a b", "@classLabel false"))
    assert tsheader.probe_ts_file(tmp_path / "unlabelled.ts") is None
    spec = {"format": "ts", "path": str(tmp_path), "domain": "x"}
    assert tsheader.probe(spec, [tmp_path / "good.ts", tmp_path / "wrong.ts"]) is None
    assert tsheader.probe({**spec, "task": "regression"}, [tmp_path / "good.ts"]) == ("regression", 2)
    assert tsheader.probe({**spec, "channels": 5}, [tmp_path / "good.ts"]) is None
    # Left to the full read, which names the problem.
    dataset = CustomDataset("unlabelled", {**spec, "path": str(tmp_path / "unlabelled.ts")})
    datasets.REGISTRY["unlabelled"] = dataset
    with pytest.raises(datasets.DataError, match="no labels"):
        datasets.task_and_channels("unlabelled")


# --------------------------------------------------------------------------- UCR 2018 .tsv
def test_tsv_layout_reads_as_the_ts_file_and_needs_both_files():
    train = ucr("GunPoint") / "GunPoint_TRAIN.tsv"
    tsv, ts = read_ucr_tsv("gunpoint", train), read_ts("gunpoint", ucr("GunPoint") / "GunPoint_TRAIN.ts")
    assert len(tsv.x) == len(ts.x) == 50 and tsv.task == "classification"
    assert all(np.allclose(a, b) for a, b in zip(tsv.x, ts.x)) and list(tsv.y) == list(ts.y)
    # The aeon wheel ships GunPoint_TRAIN.tsv alone: the archive entry names what is missing.
    message = _refused(_config({"path": str(UCR_DATA), "format": "tsv", "problems": ["GunPoint"]}))
    assert message.startswith("config archives.ucr: problem GunPoint:")
    assert str(UCR_DATA / "GunPoint" / "GunPoint_TEST.tsv") in message


# --------------------------------------------------------------------------- the workflow
def test_dry_run_over_a_small_archive_plans_every_pair(tmp_path):
    write_standin_archive(tmp_path / "archive", 4, seed=1)
    config = tiny_config()
    config["datasets"] = {"sp500": config["datasets"]["sp500"]}
    config["synthetic"] = {"sp500": config["synthetic"]["sp500"]}
    config["archives"] = {"standin": {"path": str(tmp_path / "archive"), "problems": "all"}}
    config.update(sources=["standin"], targets=["standin", "sp500"],
                  stream_max_study={"datasets": [], "seeds": 0})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(tmp_path, dict(os.environ), "-n").stdout)
    problems = [f"standin{i:03d}" for i in range(4)]
    finetune = {(wc["source"], wc["target"]) for rule, wc in jobs if rule == "finetune"}
    assert finetune == {(s, t) for s in problems for t in [*problems, "sp500"] if s != t}
    count = {rule: sum(1 for r, _ in jobs if r == rule) for rule in {r for r, _ in jobs}}
    runs, omegas, seeds = config["runs"], len(config["omegas"]), config["pretrain"]["seeds"]
    assert count["finetune"] == 16 * runs * omegas
    assert count["pretrain"] == 4 * seeds and count["referent"] == 5 * runs
    assert count["convert"] == 5 and count["synthesize"] == 1
    assert {wc["dataset"] for r, wc in jobs if r == "convert"} == {*problems, "sp500"}
    # tstransfer.progress plans the same jobs from the config file (it expands the archive too).
    from tstransfer import progress

    planned = progress.planned_jobs(progress.load_config([tmp_path / "config.yaml"]))
    assert {rule: len(listed) for rule, listed in planned.items()} == {
        rule: count.get(rule, 0) for rule in progress.RULES}
