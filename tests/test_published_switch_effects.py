"""bench/published_switch_effects.py: the analysis-only switch measured on a results table,
checked on a table with one tie made by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bench_scripts
from test_analysis import experiment

from tstransfer import protocol
from tstransfer.analysis import stats
from tstransfer.analysis.switch_effects import switch_effects

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "published_switch_effects.py"


@pytest.fixture(scope="module")
def bench():
    return bench_scripts.load("published_switch_effects")


def test_a_tie_moves_one_choice_and_its_convergence_gain(bench):
    df = experiment(np.random.default_rng(3), archs=("magnet",), sources=("lomax", "speech"), targets=("emg",),
                    runs=4, variants=("1k5",), omegas=(0.1, 0.5, 1.0))
    grid = (df["kind"] == "finetune") & (df["source"] == "lomax") & (df["run"] == 2)
    best = df[grid]["test_metric"].max()  # EMG: weighted F1, larger is better
    df.loc[grid, "test_metric"] = [best, best, best - 0.1]  # omegas 0.1 and 0.5 tie
    df.loc[grid & (df["omega"] == 0.5), "convergence_rate"] = 0.9  # the largest tied one converges faster
    off = protocol.resolve("paper", {"ties_to_largest_multiplier": False})
    assert bench.tie_counts(df, protocol.selection_curve(off)) == (8, 1)
    effect = switch_effects(df, off, {"ties": (df, protocol.resolve("paper"))}).set_index("gain")
    assert effect.loc["gain_performance", "mean_difference"] == 0  # performance keeps ties to the smallest
    moved = effect.loc["gain_convergence"]
    assert moved["n_pairs"] == 8 and moved["mean_difference"] != 0
    pairs = stats.paired_runs(df, "paper+ties_to_largest").set_index(stats.GRID_KEYS)
    assert pairs.loc[("magnet", "lomax", "emg", "1k5", 2), "omega_convergence"] == 0.5


def test_an_unreadable_archive_is_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "results.tar.gz"
    bad.write_bytes(b"not a tar")
    out = tmp_path / "effects.csv"
    done = subprocess.run([sys.executable, str(SCRIPT), str(bad), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and str(bad) in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
