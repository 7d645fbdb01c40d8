"""The published-results rules end to end on a small archive built here.

The demo config has `published_results: null`, and tests/test_published_reproduction.py
reads the authors' real archive with the package alone; here a config names a tiny archive
of the authors' format (`our_models/<model>/metrics.json`, tstransfer.analysis.published)
and Snakemake runs published_table, published_analysis and comparison on it. Every value
the rules print is checked against the numbers written into the archive.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pandas as pd
import pytest
import yaml
from workflow_runs import planned_jobs, snakemake

from tstransfer.analysis.published import load_published
from tstransfer.metrics import METRIC_FOR_TASK

RUNS = 3
OMEGAS = ("0.5", "1.0")
# target -> (metric key, referent value of run r, fine-tuned value of run r at each omega)
# emg is classification (F1, higher is better); sp500 regression (MAE, lower is better).
VALUES = {
    "emg": ("f1", lambda r: 0.50 + 0.01 * r, {"0.5": lambda r: 0.55 + 0.01 * r, "1.0": lambda r: 0.60 + 0.02 * r}),
    "sp500": ("mae", lambda r: 200.0 + r, {"0.5": lambda r: 150.0 + 3 * r, "1.0": lambda r: 180.0 + r}),
}
SOURCE = {"emg": "sp500", "sp500": "emg"}
# The omega each run's grid search picks on the test curve (the authors' protocol).
BEST = {"emg": "1.0", "sp500": "0.5"}


def _metrics(key: str, value: float) -> dict:
    """An authors' metrics.json whose best epoch (2 of 3) holds ``value``."""
    worse = value * 0.5 if key == "f1" else value * 2
    return {"bestEpoch": 2, "lastEpoch": 3, key: [worse, value, worse], "convergence_rate": 0.01 * value}


def _members() -> dict[str, dict]:
    members = {}
    for target, (key, referent, finetuned) in VALUES.items():
        for run in range(RUNS):
            members[f"convnetquakeingv-{target}1k5_{run}"] = _metrics(key, referent(run))
            for omega in OMEGAS:
                name = f"convnetquakeingv-{SOURCE[target]}-{target}1k5_{run}-{omega}"
                members[name] = _metrics(key, finetuned[omega](run))
    return members


def _write_archive(path, mode: str) -> None:
    with tarfile.open(path, mode) as archive:
        for name, metrics in _members().items():
            data = json.dumps(metrics).encode()
            info = tarfile.TarInfo(f"tstl-f3497acd/our_models/{name}/metrics.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        readme = b"not a model\n"
        info = tarfile.TarInfo("tstl-f3497acd/README.md")
        info.size = len(readme)
        archive.addfile(info, io.BytesIO(readme))


def _expected_gain(target: str, run: int) -> float:
    key, referent, finetuned = VALUES[target]
    ref, tl = referent(run), finetuned[BEST[target]](run)
    return (tl - ref) / ref * 100 if key == "f1" else (ref - tl) / ref * 100


@pytest.mark.parametrize("suffix, mode", [(".tar.gz", "w:gz"), (".tar", "w")])
def test_load_published_reads_the_archive_compressed_or_not(tmp_path, suffix, mode):
    """load_published accepts .tar as well as .tar.gz: both must read (a plain .tar once
    failed, opened as gzip)."""
    archive = tmp_path / f"published{suffix}"
    _write_archive(archive, mode)
    table = load_published(archive)
    assert len(table) == len(_members())
    row = table[(table.kind == "finetune") & (table.target == "sp500") & (table.run == 2) & (table.omega == 0.5)]
    assert row.test_metric.tolist() == [156.0] and row.source.tolist() == ["emg"]


@pytest.mark.slow
def test_published_rules_import_analyse_and_compare_a_small_archive(finished_run, bare_env, tmp_path):
    archive = tmp_path / "published.tar.gz"
    _write_archive(archive, "w:gz")
    run = tmp_path / "run"  # a copy of the shared finished run: its config changes here
    shutil.copytree(finished_run, run, symlinks=True)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["published_results"] = str(archive)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    targets = ["results/published/analysis/done", "results/analysis/comparison_with_published.csv"]
    # Only the published rules and the comparison run: our finished results stand.
    planned = {rule for rule, _ in planned_jobs(snakemake(run, bare_env, "-n", *targets).stdout)}
    assert planned == {"published_table", "published_analysis", "comparison"}
    snakemake(run, bare_env, "--cores", "2", *targets)
    results = run / "results"

    # published_table: one row per model, each value the best epoch's of its curve
    table = pd.read_csv(results / "published" / "results.csv")
    assert len(table) == RUNS * (1 + len(OMEGAS)) * len(VALUES)
    for target, (key, referent, finetuned) in VALUES.items():
        for r in range(RUNS):
            ref = table[(table.kind == "referent") & (table.target == target) & (table.run == r)]
            assert ref.test_metric.tolist() == pytest.approx([referent(r)])
            for omega in OMEGAS:
                tl = table[(table.kind == "finetune") & (table.target == target) & (table.run == r)
                           & (table.omega == float(omega))]
                assert tl.test_metric.tolist() == pytest.approx([finetuned[omega](r)])
                assert tl.source.tolist() == [SOURCE[target]]
    assert set(table[table.target == "emg"].metric) == {METRIC_FOR_TASK["classification"]}
    assert set(table[table.target == "sp500"].metric) == {METRIC_FOR_TASK["regression"]} == {"mae"}

    # published_analysis: the paper's protocol picks the best test value per run, gains from it
    analysis = results / "published" / "analysis"
    assert (analysis / "done").is_file()
    pairs = pd.read_csv(analysis / "tables" / "pairs.csv")
    assert len(pairs) == RUNS * len(VALUES)
    for row in pairs.itertuples():
        assert row.gain_performance == pytest.approx(_expected_gain(row.target, row.run))
    assert any((analysis / "figures").glob("*.png"))

    # comparison: the published side of every cell is the mean of the per-run gains above
    comparison = pd.read_csv(results / "analysis" / "comparison_with_published.csv")
    cells = comparison[comparison.table.astype(str) == "7"]  # Table 7: performance, other domains
    by_cell = {(row.row, row.column): row for row in cells.itertuples()}
    ours = pd.read_csv(results / "analysis" / "tables" / "pairs.csv")
    for target in VALUES:
        cell = by_cell[(SOURCE[target], f"{target} 1k5")]
        expected = sum(_expected_gain(target, r) for r in range(RUNS)) / RUNS
        assert cell.published == pytest.approx(expected)
        # ours: the mean of this run's own per-run gains in the same cell
        mine = ours[(ours.source == SOURCE[target]) & (ours.target == target)]
        assert len(mine) == 2 and cell.ours == pytest.approx(mine.gain_performance.mean())
    assert (results / "analysis" / "comparison_referents_with_published.csv").is_file()
