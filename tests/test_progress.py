"""tstransfer.progress on results trees written here (fast) and on the finished tiny run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tstransfer import plan, progress
from tstransfer.layout import STORE, SYNTHETIC_DIR

ROOT = Path(__file__).resolve().parents[1]


def small_config() -> dict:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config.update(architectures=["tcn"], sources=["emg", "sp500"], targets=["emg", "sp500"],
                  variants={"1k5": 60}, runs=2, omegas=[0.5, 1.0], pretrain={"seeds": 2},
                  stream_max_study={"datasets": ["sp500"], "seeds": 1})
    return config


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def benchmark(workdir: Path, job: plan.Job, *seconds: float) -> None:
    rows = "".join(f"{s}\t0:00:01\t100\t200\t50\t60\t0\t0\t1.0\t{s}\n" for s in seconds)
    write(workdir / job.benchmark,
          "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n" + rows)


@pytest.fixture
def run(tmp_path):
    """A run half way: every state present, benchmarks for the finished training jobs."""
    config = small_config()
    workdir = tmp_path / "run"
    write(workdir / "config" / "demo.yaml", yaml.safe_dump(config))
    jobs = plan.planned_jobs(config)
    for job in jobs["synthesize"] + jobs["convert"] + jobs["subset"]:
        (workdir / job.output).mkdir(parents=True)
    pretrain = jobs["pretrain"]
    for job, seconds in zip(pretrain[:3], (10.0, 20.0, 30.0)):
        write(workdir / job.output, json.dumps({"status": "ok"}))
        benchmark(workdir, job, seconds)
    write(workdir / pretrain[3].log, "INFO epoch 1/3: ...\n")  # running, no checkpoint yet
    finetune = jobs["finetune"]
    write(workdir / finetune[0].output, json.dumps({"status": "diverged"}))
    benchmark(workdir, finetune[0], 100.0, 300.0)  # a repeated benchmark: mean of its rows
    write(workdir / finetune[1].output, json.dumps({"status": "ok"}))
    benchmark(workdir, finetune[1], 100.0)
    # interrupted two hours ago: a checkpoint, the log deleted
    hours_ago = time.time() - 2 * 3600
    os.utime(write(workdir / finetune[2].checkpoint), (hours_ago, hours_ago))
    write(workdir / finetune[3].log, "INFO epoch 1/3\nTraceback (most recent call last):\n  ...\n"
                                     "ValueError: boom\n")
    # the result of an earlier attempt wins over a stale traceback
    write(workdir / finetune[4].output, json.dumps({"status": "ok"}))
    write(workdir / finetune[4].log, "Traceback (most recent call last):\n")
    referent = jobs["referent"]
    write(workdir / referent[0].log, "2026-12-01 10:00:00,000 ERROR tstransfer: failed: no store\n"
                                     "Traceback (most recent call last):\n  ...\nOSError: no store\n")
    write(workdir / referent[1].log, "2026-12-01 10:00:00,000 WARNING tstransfer: ERROR-free\n")
    # a benchmark left by another config's job is not this run's
    write(workdir / "results" / "benchmarks" / "pretrain" / "magnet" / "emg" / "seed0.tsv", "s\n9999\n")
    return workdir, config, jobs


def test_states_counts_and_time_left(run):
    workdir, config, jobs = run
    report = progress.survey(workdir, config, parallel=2)
    rules = report["rules"]
    assert list(rules) == ["synthesize", "convert", "subset", "pretrain", "select_pretrained",
                           "referent", "finetune", "stream_max"]  # no downloads: synthetic
    assert {rule: r["planned"] for rule, r in rules.items()} == {
        "synthesize": 6, "convert": 6, "subset": 4, "pretrain": 4, "select_pretrained": 2,
        "referent": 4, "finetune": 8, "stream_max": 2}
    assert rules["convert"]["done"] == 6 and rules["convert"]["seconds_left"] == 0.0
    pick = ("done", "diverged", "failed", "running", "pending")
    assert [rules["pretrain"][k] for k in pick] == [3, 0, 0, 1, 0]
    assert [rules["finetune"][k] for k in pick] == [2, 1, 1, 1, 3]
    assert [rules["referent"][k] for k in pick] == [0, 0, 1, 1, 2]
    # the pretraining job wrote its log just now; the fine-tuning one is quiet for 2 h
    assert (rules["pretrain"]["quiet"], rules["finetune"]["quiet"], report["quiet"]) == (0, 1, 1)
    assert progress.survey(workdir, config, quiet_minutes=180)["quiet"] == 0
    assert rules["pretrain"]["mean_seconds"] == 20.0 and rules["pretrain"]["seconds_left"] == 20.0
    assert rules["finetune"]["mean_seconds"] == 150.0  # (200 + 100) / 2
    assert rules["finetune"]["seconds_left"] == 150.0 * 5
    assert report["seconds_left"] == (20.0 + 750.0) / 2
    assert report["unestimated_rules"] == ["select_pretrained", "referent", "stream_max"]
    assert sorted(report["failed_logs"]) == sorted([jobs["finetune"][3].log, jobs["referent"][0].log])
    assert report["planned"] == 36 and report["done"] == 6 + 6 + 4 + 3 + 2


def test_a_dataset_given_by_format_is_converted_from_its_path_not_synthesized():
    # As rules/common.smk's raw_source (both ask layout.raw_origin): one's own data is read
    # where it lies, also when the rest of the run is synthetic.
    config = small_config()
    config["datasets"]["mine"] = {"format": "numpy", "path": "data/mine.npz", "domain": "motion"}
    jobs = plan.planned_jobs(config)
    assert [job.output for job in jobs["synthesize"]] == [
        f"{SYNTHETIC_DIR}/{name}" for name in config["datasets"] if name != "mine"]
    assert STORE.format(dataset="mine") in [job.output for job in jobs["convert"]]
    assert not [job for job in jobs["download"] if "/mine/" in job.output]


def test_no_estimate_before_a_rule_with_jobs_left_has_a_benchmark(tmp_path):
    config = small_config()
    for job in plan.planned_jobs(config)["convert"]:
        (tmp_path / job.output).mkdir(parents=True)
        benchmark(tmp_path, job, 5.0)
    report = progress.survey(tmp_path, config)
    assert report["rules"]["convert"]["seconds_left"] == 0.0
    assert report["seconds_left"] is None  # not "0 s": the training jobs have no estimate yet
    assert "Time left: no estimate yet;" in progress.format_table(report)


def test_table_and_json_from_the_command_line(run):
    workdir, _, jobs = run
    command = [sys.executable, "-m", "tstransfer.progress", str(workdir / "results")]
    table = subprocess.run([*command, "--parallel", "2"], capture_output=True, text=True, check=True).stdout
    lines = table.splitlines()
    assert lines[0].endswith("22 of 36 jobs finished (61.1 %)")  # the default config/demo.yaml
    finetune = next(line.split() for line in lines if line.startswith("finetune"))
    assert finetune == ["finetune", "8", "2", "1", "1", "1", "3", "150.0", "12", "min", "30", "s"]
    assert "Time left, estimated: 6 min 25 s with 2 jobs at a time;" in table
    assert jobs["finetune"][3].log in table
    assert "1 of the running jobs have not written their log or checkpoint for 60 min" in table
    data = json.loads(subprocess.run([*command, "--json"], capture_output=True, text=True, check=True).stdout)
    assert data["seconds_left"] == 770.0 and data["rules"]["finetune"]["failed"] == 1


def test_bad_config_is_named(tmp_path):
    (tmp_path / "results").mkdir()
    config = small_config()
    del config["omegas"]
    write(tmp_path / "bad.yaml", yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "tstransfer.progress", str(tmp_path / "results"),
                           "--configfile", str(tmp_path / "bad.yaml")], capture_output=True, text=True)
    assert done.returncode == 2 and "bad.yaml: config entry 'omegas' is missing" in done.stderr
    done = subprocess.run([sys.executable, "-m", "tstransfer.progress", str(tmp_path / "results")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "config/demo.yaml not found" in done.stderr


@pytest.mark.slow
def test_finished_tiny_run_is_complete(finished_run):
    """The tiny run's every planned job is done and benchmarked: the plan is Snakemake's."""
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    report = progress.survey(finished_run, config)
    assert report["planned"] > 0 and report["done"] + report["diverged"] == report["planned"]
    for rule in plan.TRAINING_KINDS:
        r = report["rules"][rule]
        assert r["benchmarked"] == r["planned"] and r["mean_seconds"] > 0
    assert report["seconds_left"] == 0.0
    on_disk = {rule: len(list((finished_run / "results" / folder).rglob("result.json")))
               for rule, folder in (("referent", "referent"), ("finetune", "finetune"),
                                    ("stream_max", "stream_max"))}
    assert on_disk == {rule: report["rules"][rule]["planned"] for rule in on_disk}


def test_config_files_merge_nested_entries_as_snakemake_does(tmp_path):
    """An overlay such as `pretrain: {seeds: 1}` changes that key and keeps its siblings."""
    config = small_config()
    config["pretrain"]["other"] = "kept"
    write(tmp_path / "base.yaml", yaml.safe_dump(config))
    write(tmp_path / "overlay.yaml", yaml.safe_dump({"pretrain": {"seeds": 1}, "runs": 1}))
    merged = progress.load_config([tmp_path / "base.yaml", tmp_path / "overlay.yaml"])
    assert merged["pretrain"] == {**config["pretrain"], "seeds": 1} and merged["pretrain"]["other"] == "kept"
    assert merged["runs"] == 1 and merged["datasets"] == config["datasets"]
