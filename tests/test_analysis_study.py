"""The tables, figures and summary lay out what the results table holds: its own datasets,
variants of any name and its multiplier grid, never the paper's constants."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_analysis import experiment

from tstransfer import datasets
from tstransfer.analysis import results, stats, summary
from tstransfer.analysis.render import write_all_outputs

BUILTIN_LABELS = ("LOMAX", "LEN-DB", "STEAD", "SPEECH", "EMG", "S&P 500")
VARIANTS = ("500", "n40")  # a numeric name and one that does not follow the paper's
OMEGAS = (0.3, 0.7, 1.3)  # not the paper's grid


@pytest.fixture
def own_datasets():
    """Three datasets of one's own (no data is read for their titles and domains)."""
    entries = {
        "gunpoint": {"format": "numpy", "path": "unused", "domain": "motion", "title": "GunPoint"},
        "arrowhead": {"format": "numpy", "path": "unused", "domain": "shape", "title": "ArrowHead"},
        "quakes": {"format": "numpy", "path": "unused", "domain": "seismology", "title": "Quakes"},
    }
    datasets.register_config({"datasets": entries})
    yield tuple(entries)
    datasets.register_config({"datasets": {}})  # drop what this test registered


def test_own_datasets_variants_and_grid_through_tables_figures_and_summary(tmp_path, own_datasets):
    df = experiment(np.random.default_rng(3), archs=("magnet",), sources=own_datasets,
                    targets=("gunpoint", "quakes"), runs=4, variants=VARIANTS, omegas=OMEGAS)
    # Through the CSV the pipeline writes: a variant named 500 comes back as "500".
    results.write_table(df, tmp_path / "results.parquet", tmp_path / "results.csv")
    df = results.read_table(tmp_path / "results.csv")
    assert set(df["variant"]) == set(VARIANTS)

    study = stats.study_of(df)
    assert study.variants == VARIANTS and study.omegas == OMEGAS
    assert study.sources == own_datasets and study.targets == ("gunpoint", "quakes")

    out = tmp_path / "analysis"
    written = write_all_outputs(df, out, "validation")
    assert all(path.stat().st_size > 0 for path in written)
    for number in (6, 7, 8, 9):
        assert (out / "figures" / f"table{number}_heatmap.png").read_bytes()[:4] == b"\x89PNG"
    table6 = pd.read_csv(out / "tables" / "table6_performance_seismology.csv")
    assert set(table6["target"]) == {"quakes"} and set(table6["variant"].astype(str)) == set(VARIANTS)
    markdown6 = (out / "tables" / "table6_performance_seismology.md").read_text()
    assert "| Source | Quakes 500 | Quakes n40 |" in markdown6
    assert "| GunPoint |" in markdown6 and "| ArrowHead |" in markdown6
    markdown7 = (out / "tables" / "table7_performance_other.md").read_text()
    assert "| Source | GunPoint 500 | GunPoint n40 |" in markdown7
    assert "GunPoint targets" in markdown7.splitlines()[0]
    figure8 = (out / "tables" / "figure8_data.md").read_text()
    assert "| 0.3 | 0.7 | 1.3 |" in figure8
    # No row, column or label of a dataset this study does not use.
    for path in (out / "tables").glob("*.md"):
        text = path.read_text()
        assert not [label for label in BUILTIN_LABELS if label in text], path.name
    wins = (out / "tables" / "table3_wins_performance.md").read_text()
    assert "TL between other domains (GunPoint, ArrowHead)" in wins

    page = summary.summary_page(summary.build_summary(df, "validation"))
    assert not [label for label in BUILTIN_LABELS if label in page.replace("&amp;", "&")]
    numbers = json.loads((out / "summary.json").read_text())
    assert numbers["pairs"] == 4 * len(VARIANTS) * 4  # 4 (source, target) pairs x variants x runs


def test_built_in_datasets_the_results_do_not_hold_are_left_out(tmp_path):
    # Other domains only, as a study of real non-seismic problems would be: Tables 6 and 8
    # have no target column, and their heatmaps say so instead of drawing empty axes.
    df = experiment(np.random.default_rng(4), archs=("magnet",), sources=("speech", "emg"),
                    targets=("speech", "emg"), runs=3)
    out = tmp_path / "analysis"
    write_all_outputs(df, out, "validation")
    table6 = (out / "tables" / "table6_performance_seismology.md").read_text()
    assert "| Source |\n|---|\n\n" in table6  # no columns, no rows
    table7 = (out / "tables" / "table7_performance_other.md").read_text()
    rows = [line.split(" |")[0] for line in table7.splitlines() if line.startswith("| ")][1:]
    assert rows == ["| SPEECH", "| EMG"]
    assert "S&P 500" not in table7 and "LOMAX" not in table7
    per_arch = (out / "tables" / "per_architecture_performance.md").read_text()
    assert "[LOMAX]" not in per_arch and "MagNet [SPEECH]" in per_arch
    assert (out / "figures" / "table6_heatmap.png").stat().st_size > 0
