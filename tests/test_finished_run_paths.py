"""Paths of a finished run that only a finished run shows, on the shared tiny run
(``finished_run``, conftest.py; read here, never changed): the manifest checked by
coreutils' own ``sha256sum -c``, every field of the zoo's cards against what the run
produced, the training CLI's job lock with two local processes, and ``transfer`` run
twice training nothing the second time."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tstransfer import __license__
from workflow_runs import ROOT

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- MANIFEST.sha256
def _sha256sum_check(folder: Path) -> subprocess.CompletedProcess:
    sha256sum = shutil.which("sha256sum")
    assert sha256sum, "coreutils' sha256sum is not on PATH"
    return subprocess.run([sha256sum, "-c", "MANIFEST.sha256"], cwd=folder, capture_output=True, text=True)


def test_sha256sum_checks_the_finished_runs_manifest(finished_run, tmp_path):
    results = finished_run / "results"
    listed = [line.split("  ", 1)[1] for line in (results / "MANIFEST.sha256").read_text().splitlines()]
    assert {"tables/results.csv", "zoo/index.json", "analysis/done"} <= set(listed)
    done = _sha256sum_check(results)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"{path}: OK" for path in listed]
    # The same check fails, naming the file, on a copy with one file changed and one gone.
    copy = tmp_path / "results"
    for path in ["MANIFEST.sha256", *listed]:
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(results / path, copy / path)
    assert _sha256sum_check(copy).returncode == 0
    with open(copy / "tables" / "results.csv", "a") as handle:
        handle.write("\n")
    (copy / "zoo" / "index.json").unlink()
    damaged = _sha256sum_check(copy)
    assert damaged.returncode != 0
    assert "tables/results.csv: FAILED" in damaged.stdout
    assert "zoo/index.json: FAILED open or read" in damaged.stdout


# --------------------------------------------------------------------------- zoo cards
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _front_matter(readme: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", readme, re.S)
    assert match, readme[:200]
    return yaml.safe_load(match.group(1))


def test_zoo_cards_fields_are_what_the_run_produced(finished_run):
    results = finished_run / "results"
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    index = json.loads((results / "zoo" / "index.json").read_text())
    names = []
    for source in config["sources"]:
        for arch in config["architectures"]:
            name = f"{arch}-{source}"
            names.append(name)
            folder = results / "zoo" / name
            card = json.loads((folder / "card.json").read_text())
            selected = results / "pretrain" / arch / source / "selected"
            selection = json.loads((selected / "selection.json").read_text())
            result = json.loads((selected.parent / f"seed{selection['seed_index']}" / "result.json").read_text())
            attrs = json.loads((results / "data" / f"{source}.zarr" / "zarr.json").read_text())["attributes"]

            assert (card["name"], card["arch"], card["source"]) == (name, arch, source)
            assert card["license"] == __license__
            assert card["input"]["channels"] == attrs["channels"]
            assert card["input"]["length"] == attrs["length"]
            assert card["input"]["stream_max"] == result["stream_max"] == config["datasets"][source]["stream_max"]
            assert card["metrics"] == {
                "best_epoch": result["best_epoch"], "epochs": result["last_epoch"], "metric": result["metric"],
                "n_test": result["n_test"], "n_val": result["n_val"],
                "test": result["test_metric"], "validation": result["val_metric"],
            }
            assert card["output"] == {"class_names": attrs["class_names"], "n_outputs": attrs["n_outputs"],
                                      "task": result["task"]}
            assert card["seed"]["config_seed"] == config["seed"] == result["config"]["seed"]
            assert (card["seed"]["seed"], card["seed"]["seed_index"]) == (result["seed"], selection["seed_index"])
            # the seed chosen is the best of the candidates by validation metric
            candidates = [c["val_metric"] for c in selection["candidates"]]
            assert len(candidates) == config["pretrain"]["seeds"]
            best = max(candidates) if result["task"] == "classification" else min(candidates)
            assert result["val_metric"] == best
            assert f"of {config['pretrain']['seeds']} pretraining seeds" in card["seed"]["selection"]
            assert card["switches"] == result["config"]["switches"]
            assert card["training"] == result["config"]["training"]
            assert card["training"]["max_epochs"] == config["training"]["max_epochs"]
            data = card["training_data"]
            for key in ("dataset", "title", "domain", "task", "class_names", "n_outputs", "n_instances",
                        "split_counts", "split_fractions", "split_method", "sampling_rate", "units",
                        "extraction", "raw_sha256"):
                assert data[key] == attrs[key], key
            assert data["split_seed"] == attrs["seed"]
            assert data["raw_data"] == config["raw_data"]
            assert data["trained_on"] == f"the full training split ({result['n_train']} instances)"
            assert result["n_train"] == attrs["split_counts"]["train"]
            assert card["versions"] == result["versions"]
            assert card["weights"] == {"file": "model.keras", "sha256": _sha256(folder / "model.keras")}
            assert _sha256(folder / "model.keras") == _sha256(selected / "model.keras")
            assert card == next(m for m in index["models"] if m["name"] == name)

            # README.md's front matter: the same values, as model hubs read them
            front = _front_matter((folder / "README.md").read_text())
            assert front["license"] == __license__.lower()
            assert front["datasets"] == [source] and front["metrics"] == [result["metric"]]
            assert {result["task"], arch} <= set(front["tags"])
            [entry] = front["model-index"]
            assert entry["name"] == name
            found = {}
            for item in entry["results"]:
                assert item["task"]["type"] == result["task"]
                assert (item["dataset"]["type"], item["dataset"]["name"]) == (source, attrs["title"])
                [metric] = item["metrics"]
                assert metric["type"] == result["metric"]
                found[item["dataset"]["split"]] = metric["value"]
            assert found == {"validation": result["val_metric"], "test": result["test_metric"]}
    assert [m["name"] for m in index["models"]] == sorted(names)


# --------------------------------------------------------------------------- the job lock
CELL = ["finetune", "--arch", "convnetquake_ingv", "--source", "emg", "--target", "sp500", "--variant", "1k5",
        "--run", "1", "--omega", "0.5",
        "--pretrained", "results/pretrain/convnetquake_ingv/emg/selected/model.keras",
        "--store", "results/data/sp500.zarr", "--subset", "results/data/subsets/sp500/1k5/run1.npz"]


def _locked_by(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds a lock on ``path`` (/proc/locks, read without locking)."""
    inode = path.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (a blocked waiter adds "->")
        if "->" not in fields and len(fields) >= 6 and fields[4] == str(pid) \
                and fields[5].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def _wait_for(condition, what: str, *alive: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert all(p.poll() is None for p in alive), f"a job ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.05)


def test_a_resubmitted_job_waits_for_the_running_one_and_adopts_its_result(finished_run, tmp_path):
    cell = json.loads((finished_run / "results/finetune/convnetquake_ingv/emg/sp500/1k5/run1/omega0.5/result.json")
                      .read_text())
    out = tmp_path / "cell"
    argv = [sys.executable, "-m", "tstransfer.cli", *CELL, "--spec", json.dumps(cell["config"]), "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "TSTRANSFER_JOBSERVER"}  # both run here, not served
    # this checkout's package, whatever else the interpreter could import (cwd is the run)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    logs = {name: open(tmp_path / f"{name}.err", "w+") for name in ("first", "second")}
    first = subprocess.Popen(argv, cwd=finished_run, env=env, stdout=subprocess.DEVNULL, stderr=logs["first"])
    try:
        _wait_for(lambda: (out / ".lock").exists() and _locked_by(first.pid, out / ".lock"),
                  "lock taken by the first job", first)
        # The first stopped while it holds the lock (whatever the machine's speed), the
        # second must wait for it; then the first goes on and finishes the job.
        first.send_signal(signal.SIGSTOP)
        second = subprocess.Popen(argv, cwd=finished_run, env=env, stdout=subprocess.DEVNULL,
                                  stderr=logs["second"])
        _wait_for(lambda: "waiting for it" in (tmp_path / "second.err").read_text(),
                  "waiting message from the second job", first, second)
        assert second.poll() is None and not (out / "result.json").exists()
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=600) == 0, (tmp_path / "first.err").read_text()[-3000:]
        written = (out / "result.json").stat().st_mtime_ns
        assert second.wait(timeout=120) == 0, (tmp_path / "second.err").read_text()[-3000:]
    finally:
        for process in (first, locals().get("second")):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
        for handle in logs.values():
            handle.close()
    said = (tmp_path / "second.err").read_text()
    assert f"another process is running the job in {out}; waiting for it" in said
    assert f"{out}/result.json was written meanwhile; nothing left to do" in said
    # it adopted the first's result: one result, not rewritten, the first one's numbers
    assert (out / "result.json").stat().st_mtime_ns == written
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "ok" and result["val_metric"] == cell["val_metric"]


@pytest.mark.parametrize("threads, says", [("0", "must be at least 1, not 0"), ("two", "invalid int value: 'two'")])
def test_a_training_job_refuses_a_thread_count_below_one_before_making_its_folder(tmp_path, capsys, threads, says):
    from tstransfer import cli

    out = tmp_path / "job"
    argv = ["referent", "--spec", "{}", "--arch", "magnet", "--target", "emg", "--variant", "1k5", "--run", "0",
            "--store", "s.zarr", "--subset", "s.npz", "--out", str(out), "--threads", threads]
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert f"argument --threads: {says}" in capsys.readouterr().err.splitlines()[-1]
    assert not out.exists()


# --------------------------------------------------------------------------- transfer twice
def test_transfer_run_twice_trains_nothing_the_second_time(finished_run, tmp_path, capsys, monkeypatch):
    from tstransfer import cli, jobs

    out = tmp_path / "transfer"
    argv = ["transfer", "--zoo", str(finished_run / "results" / "zoo"),
            "--data", str(finished_run / "results" / "data" / "emg.zarr"), "--out", str(out),
            "--runs", "1", "--omegas", "1.0", "--size", "40", "--max-epochs", "1"]
    assert cli.main(argv) == 0
    first_table = capsys.readouterr().out
    results = sorted(out.rglob("result.json"))
    assert [p.relative_to(out).parts[0] for p in results] == ["finetune", "referent"]
    stamps = {p: p.stat().st_mtime_ns for p in [*results, *out.glob("data/subsets/emg/*/run0.npz")]}

    def no_training(*args, **kwargs):
        raise AssertionError("transfer ran a job again")

    monkeypatch.setattr(jobs, "referent", no_training)
    monkeypatch.setattr(jobs, "finetune", no_training)
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == first_table
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert sorted(out.rglob("result.json")) == results
    # other settings are other jobs: the same call with 2 epochs would train again
    with pytest.raises(AssertionError, match="transfer ran a job again"):
        cli.main([*argv[:-1], "2"])


# --------------------------------------------------------------------------- bench/job_fixed_cost.py
def test_the_fixed_cost_bench_times_a_cell_of_the_run_phase_by_phase(finished_run):
    """bench/job_fixed_cost.py reruns one of the run's fine-tuning cells through a job
    server, gets the run's own metrics back, and its phases add up to the job's wall time."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "job_fixed_cost.py"), "--results", str(finished_run / "results"),
         "--repeats", "1", "--arch", "convnetquake_ingv"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    values = {}
    for line in done.stdout.splitlines():
        if match := re.fullmatch(r"(\S.*?)\s+(\d+\.\d{3})\s+\d+%", line):
            values[match[1]] = float(match[2])
    phases = [p for p in values if p not in ("wall", "fixed (wall - training - evaluation)")]
    assert {"client -> fork", "model build", "epochs: training", "epochs: validation", "evaluation",
            "unaccounted in job"} <= set(phases)
    assert sum(values[p] for p in phases) == pytest.approx(values["wall"], abs=0.05)
    assert 0 < values["fixed (wall - training - evaluation)"] < values["wall"]
    assert re.search(r"same metrics as the finished run's, every run \(.*\): yes", done.stdout)
