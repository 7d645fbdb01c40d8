"""bench/referent_switches.py: the arms' configs, and the paired comparison of their
referents (with the authors' runs) checked against a computation by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

import bench_scripts

from tstransfer import protocol

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "referent_switches.py"


@pytest.fixture(scope="module")
def bench():
    return bench_scripts.load("referent_switches")


def _write_runs(workdir: Path, values: list[float]) -> None:
    for run, value in enumerate(values):
        out = workdir / "results" / "referent" / "convnetquake_ingv" / "sp500" / "9k" / f"run{run}"
        out.mkdir(parents=True)
        (out / "result.json").write_text(json.dumps({"test_metric": value, "best_epoch": 3, "last_epoch": 9}))


def test_arms_pair_run_by_run_and_face_the_published_runs(bench, tmp_path):
    baseline, flipped = [500.0, 420.0, 610.0, 380.0, 455.0], [300.0, 430.0, 515.0, 200.0, 470.0]
    _write_runs(tmp_path / "baseline", baseline)
    _write_runs(tmp_path / "drop_last_batch", flipped)
    runs = {name: bench.referent_runs(tmp_path / name) for name in ("baseline", "drop_last_batch")}
    assert sorted(runs["baseline"]["run"]) == [0, 1, 2, 3, 4]
    theirs = [342.4, 397.6, 428.7, 449.7, 536.7, 538.2, 567.8]
    published = pd.DataFrame({"arch": "convnetquake_ingv", "target": "sp500", "variant": "9k",
                              "test_metric": theirs})
    table = bench.compare(runs, published).set_index("arm")
    arm = table.loc["drop_last_batch"]
    assert arm["n_runs"] == 5 and arm["median"] == np.median(flipped)
    assert arm["mean_difference"] == pytest.approx(np.mean(np.subtract(flipped, baseline)))
    assert arm["ci_low"] < arm["mean_difference"] < arm["ci_high"]
    assert arm["wilcoxon_p"] == pytest.approx(scipy.stats.wilcoxon(flipped, baseline).pvalue)
    assert arm["mannwhitney_p"] == pytest.approx(scipy.stats.mannwhitneyu(flipped, theirs).pvalue)
    assert arm["runs"].split() == [f"{v:.4g}" for v in sorted(flipped)]
    assert pd.isna(table.loc["baseline"]["mean_difference"])
    assert table.loc["baseline"]["published_median"] == np.median(theirs)


def test_the_runner_writes_one_config_per_arm(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["protocol"] = "paper"
    configfile = tmp_path / "item9.yaml"
    configfile.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(SCRIPT), str(configfile), str(tmp_path / "out"), "--switches",
                           "drop_last_batch", "--validation", "--dry-run"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.strip().splitlines()
    assert len(commands) == 3 and all("--until referent" in line for line in commands)
    on = {name: {s for s, value in protocol.project_switches(
        yaml.safe_load((tmp_path / "out" / name / "config.yaml").read_text())).items() if value}
        for name in ("baseline", "drop_last_batch", "validation")}
    assert on["baseline"] == set(protocol.SWITCHES)
    assert on["drop_last_batch"] == set(protocol.SWITCHES) - {"drop_last_batch"}
    assert on["validation"] == set()
    bad = subprocess.run([sys.executable, str(SCRIPT), str(configfile), str(tmp_path / "out"), "--switches",
                          "drop_last"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --switches: unknown switch drop_last"


def test_bad_inputs_are_one_line_errors_that_write_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    listed = tmp_path / "list.yaml"
    listed.write_text("[1, 2]\n")
    cases = {
        (str(tmp_path / "missing.yaml"),): "missing.yaml",
        (str(listed),): "a mapping of config keys expected, got list",
        (str(ROOT / "config" / "demo.yaml"), "--published", str(tmp_path / "none.tar.gz")): "--published",
    }
    for args, named in cases.items():
        done = subprocess.run([sys.executable, str(SCRIPT), args[0], str(tmp_path / "out"), *args[1:]],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 2 and done.stderr.startswith("error: ") and named in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert not (tmp_path / "out").exists()
