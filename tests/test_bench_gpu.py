"""bench/gpu.py's CI-sized form (--quick): it runs the project's job end to end on this
machine and prints the table that a GPU run prints, with parsable figures and its --json."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _table(lines: list[str], column: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of the printed table whose header names ``column``."""
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["arch"] and column in line.split())
    header = lines[start].split()
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(dict(zip(header, line.split(), strict=True)))
    return header, rows


@pytest.mark.slow
def test_the_quick_form_prints_every_figure_and_saves_them(tmp_path):
    out = tmp_path / "figures.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TSTRANSFER_JOBSERVER", None)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--quick", "--datasets", "emg",
                           "--json", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("device: ")

    header, rows = _table(lines, "epoch_s")
    assert header[:4] == ["arch", "dataset", "shape", "variant"]
    assert {"epoch_s", "train_ips", "predict_ips", "wait_%", "same"} <= set(header)
    assert [(r["arch"], r["dataset"], r["variant"]) for r in rows] == [
        ("convnetquake_ingv", "emg", "1k5"), ("convnetquake_ingv", "emg", "9k")]
    for row in rows:
        assert row["shape"] == "64x3"  # EMG's 80-sample window cut to --quick's 64, its 3 channels
        for column in ("epoch_s", "train_ips", "predict_ips"):
            assert math.isfinite(float(row[column])) and float(row[column]) > 0, (column, row)
        assert 0 <= float(row["wait_%"]) <= 100
    assert rows[0]["same"] in ("yes", "no") and rows[1]["same"] == "-"  # the 1k5 job runs twice
    assert int(rows[0]["n_train"]) < int(rows[1]["n_train"])

    header, fixed = _table(lines, "fixed_s")
    assert header == ["arch", "dataset", "fixed_s", "import_s", "same_fresh"]
    (row,) = fixed
    assert 0 < float(row["import_s"]) < float(row["fixed_s"])  # a fresh process imports, then builds and traces
    assert row["same_fresh"] in ("yes", "no")

    figures = json.loads(out.read_text())
    assert figures["quick"] is True
    (rates,) = figures["throughput"]
    assert rates["n_train"] == int(rows[1]["n_train"])  # the larger variant's rates stand for the cell
    assert figures["fixed"]["convnetquake_ingv"]["fixed_s"] == pytest.approx(float(row["fixed_s"]), rel=0.01)
