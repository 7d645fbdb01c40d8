"""Each switch's effect on the gains (tstransfer.analysis.switch_effects) and the runner
that runs the arms (bench/switch_effects.py), on fabricated results and in a dry run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tstransfer import protocol
from tstransfer.analysis import results, stats
from tstransfer.analysis.switch_effects import bootstrap_interval, switch_effects

ROOT = Path(__file__).resolve().parents[1]
OMEGAS = (0.1, 1.0)


def _job(kind, run, omega, metric, cr):
    return {"kind": kind, "arch": "magnet", "source": None if kind == "referent" else "lomax",
            "target": "lendb", "variant": "1k5", "run": run, "omega": omega, "seed": 1, "stream_max": True,
            "task": "regression", "status": "ok", "best_epoch": 2, "last_epoch": 4, "metric": "mae",
            "val_metric": metric, "test_metric": metric, "convergence_rate": cr, "convergence_rate_val": cr,
            "convergence_rate_test": None, "runtime_s": 1.0, "config": {}}


def _table(shift: float, runs: int = 12, seed: int = 0):
    """A grid of ``runs`` runs; the fine-tuned models' MAE lowered by ``shift`` (a better transfer)."""
    rng = np.random.default_rng(seed)
    jobs = []
    for run in range(runs):
        jobs.append(_job("referent", run, None, 1.0 + rng.uniform(0, 0.1), 0.5))
        for omega in OMEGAS:
            jobs.append(_job("finetune", run, omega, 0.9 + rng.uniform(0, 0.1) - shift, 0.6))
    return results.table_from_records(results.record_from_job(j) for j in jobs)


def test_an_arm_that_changes_nothing_and_one_that_helps():
    off = protocol.resolve("validation")
    base = _table(0.0)
    effects = switch_effects(base, off, {"same": (_table(0.0), off), "better": (_table(0.1), off)})
    effects = effects.set_index(["arm", "gain"])
    same = effects.loc[("same", "gain_performance")]
    assert (same["n_pairs"], same["mean_difference"], same["wilcoxon_p"]) == (12, 0.0, 1.0)
    assert same["ci_low"] == same["ci_high"] == 0.0
    better = effects.loc[("better", "gain_performance")]
    ours = stats.paired_runs(base, "validation")["gain_performance"].to_numpy()
    theirs = stats.paired_runs(_table(0.1), "validation")["gain_performance"].to_numpy()
    assert better["mean_difference"] == pytest.approx(np.mean(theirs - ours))
    assert better["ci_low"] > 0 and better["ci_low"] < better["mean_difference"] < better["ci_high"]
    assert better["wilcoxon_p"] < 0.01
    assert effects.loc[("better", "gain_convergence"), "mean_difference"] == 0.0  # same rates


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    values = np.random.default_rng(1).normal(2.0, 1.0, 50)
    low, high = bootstrap_interval(values, seed=3)
    assert (low, high) == bootstrap_interval(values, seed=3)
    assert low < values.mean() < high and high - low < 1.0
    assert np.isnan(bootstrap_interval(np.array([]))[0])


def _runner(*args, cwd: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, str(ROOT / "bench" / "switch_effects.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env)


def test_the_runner_writes_one_config_per_arm(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    configfile = tmp_path / "tiny.yaml"
    configfile.write_text(yaml.safe_dump(config))
    done = _runner(configfile, tmp_path / "out", "--switches", "drop_last_batch", "lstm_hard_sigmoid",
                   "--paper", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 4  # baseline, two switches, paper
    arms = {name: yaml.safe_load((tmp_path / "out" / name / "config.yaml").read_text())
            for name in ("baseline", "drop_last_batch", "lstm_hard_sigmoid", "paper")}
    flipped = {name: {s for s, on in protocol.project_switches(c).items() if on} for name, c in arms.items()}
    assert flipped["baseline"] == set()
    assert flipped["drop_last_batch"] == {"drop_last_batch"}
    assert flipped["lstm_hard_sigmoid"] == {"lstm_hard_sigmoid"}
    assert flipped["paper"] == set(protocol.SWITCHES)
    assert {c["raw_dir"] for c in arms.values()} == {str((tmp_path / "out" / "raw").resolve())}
    bad = _runner(configfile, tmp_path / "out", "--switches", "drop_last", "--dry-run", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --switches: unknown switch drop_last"
