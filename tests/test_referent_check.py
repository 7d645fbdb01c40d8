"""Referents held to the published accuracy of their family (config referent_check): the
check's arithmetic, and the marks it puts on the gain tables, heatmaps and summary page."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_analysis import experiment

from tstransfer.analysis import competence, results, summary
from tstransfer.analysis.render import write_all_outputs


def referents(rows):
    """A results table of referent rows: (arch, target, status, test_accuracy, test_metric, task)."""
    records = [{"kind": "referent", "arch": arch, "source": "", "target": target, "variant": "all", "run": run,
                "omega": np.nan, "seed": run, "stream_max": False, "task": task, "status": status,
                "best_epoch": 1, "last_epoch": 1, "val_metric": 0.5, "test_metric": f1, "test_accuracy": acc,
                "metric": "f1_weighted" if task == "classification" else "mae", "convergence_rate": 0.5,
                "convergence_rate_val": 0.5, "convergence_rate_test": np.nan, "runtime_s": 1.0}
               for run, (arch, target, status, acc, f1, task) in enumerate(rows)]
    return results.table_from_records(records)


def test_check_means_runs_counts_diverged_as_zero_and_falls_back_to_f1():
    table = referents([
        ("magnet", "gunpoint", "ok", 0.80, 0.70, "classification"),
        ("magnet", "gunpoint", "ok", 0.90, 0.85, "classification"),
        ("tcn", "gunpoint", "ok", 0.90, 0.90, "classification"),
        ("tcn", "gunpoint", "diverged", np.nan, np.nan, "classification"),
        # results written before test_accuracy existed: F1 stands in
        ("magnet", "arrowhead", "ok", np.nan, 0.60, "classification"),
        ("magnet", "covid", "ok", np.nan, 0.10, "regression"),  # no accuracy to hold it to
        ("magnet", "osuleaf", "ok", 0.20, 0.20, "classification"),  # no published figure given
    ])
    check = competence.referent_check(table, {"gunpoint": 0.95, "arrowhead": 0.75, "covid": 0.5}, margin=0.10)
    rows = check.set_index(["arch", "target"])
    assert list(check.columns) == competence.CHECK_COLUMNS
    assert set(rows.index) == {("magnet", "gunpoint"), ("tcn", "gunpoint"), ("magnet", "arrowhead")}
    magnet = rows.loc[("magnet", "gunpoint")]
    assert magnet["measure"] == "accuracy" and magnet["n_runs"] == 2
    assert magnet["ours"] == pytest.approx(0.85) and magnet["gap_points"] == pytest.approx(10.0)
    assert bool(magnet["competent"])  # exactly ten points short is within the margin
    tcn = rows.loc[("tcn", "gunpoint")]
    assert tcn["ours"] == pytest.approx(0.45) and not bool(tcn["competent"])  # (0.9 + 0) / 2
    arrowhead = rows.loc[("magnet", "arrowhead")]
    assert arrowhead["measure"] == "f1_weighted" and arrowhead["ours"] == pytest.approx(0.60)
    assert not bool(arrowhead["competent"])  # 15 points short
    assert competence.short_targets(check) == {("gunpoint", "all"), ("arrowhead", "all")}
    # a wider margin lets the arrowhead referents through, not the half-diverged tcn ones
    wide = competence.referent_check(table, {"gunpoint": 0.95, "arrowhead": 0.75}, margin=0.2)
    assert competence.short_targets(wide) == {("gunpoint", "all")}
    with pytest.raises(ValueError, match=r"margin must lie in \[0, 1\]"):
        competence.referent_check(table, {"gunpoint": 0.95}, margin=10)


def test_settings_read_the_config_entry():
    assert competence.settings({}) == ({}, competence.DEFAULT_MARGIN, "")
    assert competence.settings({"referent_check": None})[0] == {}
    published, margin, source = competence.settings(
        {"referent_check": {"accuracy": {"emg": 0.9}, "margin": 0.05, "source": "Someone 2019"}})
    assert published == {"emg": 0.9} and margin == 0.05 and source == "Someone 2019"
    assert "5 points" in competence.note(margin, source) and "(Someone 2019)" in competence.note(margin, source)


def study():
    """Fine-tuning into EMG and SPEECH (classification) from two sources, magnet and tcn."""
    df = experiment(np.random.default_rng(5), archs=("magnet", "tcn"), sources=("lomax", "speech", "emg"),
                    targets=("speech", "emg"), runs=3, variants=("1k5",))
    # referents' test accuracy: EMG's magnet referents at 0.5 against 0.9 published (short),
    # SPEECH's at 0.85 against 0.9 (within ten points)
    referent = df["kind"] == "referent"
    df.loc[referent & (df["target"] == "emg"), "test_accuracy"] = 0.5
    df.loc[referent & (df["target"] == "speech"), "test_accuracy"] = 0.85
    return df


CONFIG = {"referent_check": {"accuracy": {"emg": 0.9, "speech": 0.9}, "margin": 0.1, "source": "their paper"}}


def test_tables_heatmaps_and_summary_mark_the_short_target_only(tmp_path):
    df = study()
    out = tmp_path / "with"
    write_all_outputs(df, out, "validation", CONFIG)
    check = pd.read_csv(out / "tables" / "referent_check.csv")
    assert sorted(zip(check["arch"], check["target"], check["competent"])) == [
        ("magnet", "emg", False), ("magnet", "speech", True), ("tcn", "emg", False), ("tcn", "speech", True)]
    markdown = (out / "tables" / "table7_performance_other.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| Source"))
    assert "| EMG 1k5 ‡ |" in header and "| SPEECH 1k5 |" in header
    assert "‡ target whose referents" in markdown and "(their paper)" in markdown
    data = pd.read_csv(out / "tables" / "table7_performance_other.csv")
    assert dict(zip(data["target"], data["referent_short"])) == {"emg": True, "speech": False}
    # the convergence table marks the same column
    assert "EMG 1k5 ‡" in (out / "tables" / "table9_convergence_other.md").read_text()

    # without the config entry: no check table, no mark, no extra column (the paper's outputs unchanged)
    plain = tmp_path / "without"
    write_all_outputs(df, plain, "validation")
    assert not (plain / "tables" / "referent_check.csv").exists()
    assert "‡" not in (plain / "tables" / "table7_performance_other.md").read_text()
    assert "referent_short" not in pd.read_csv(plain / "tables" / "table7_performance_other.csv")
    # the heatmap's PNG differs only by the marks (tick labels, legend)
    assert (out / "figures" / "table7_heatmap.png").read_bytes() != (plain / "figures" / "table7_heatmap.png").read_bytes()

    checked = competence.referent_check(df, CONFIG["referent_check"]["accuracy"])
    numbers = summary.build_summary(df, "validation", referent_check=checked, referent_note=competence.note(0.1, ""))
    json.dumps(numbers, default=str)  # plain data, as the page's JSON is written
    page = summary.summary_page(numbers)
    assert "Are the referents competent?" in page
    assert "2 of 4 (architecture, target) referent sets fall short" in page
    assert "1 target variant carries the mark" in page
    assert page.count("no ‡") == 2
    assert "Are the referents competent?" not in summary.summary_page(summary.build_summary(df, "validation"))


def test_per_architecture_tables_mark_only_the_architecture_whose_referents_fall_short(tmp_path):
    df = study()
    # TCN's EMG referents reach 0.88 (within ten points of 0.9); MagNet's stay at 0.5
    df.loc[(df["kind"] == "referent") & (df["target"] == "emg") & (df["arch"] == "tcn"), "test_accuracy"] = 0.88
    check = competence.referent_check(df, CONFIG["referent_check"]["accuracy"])
    assert competence.short_cells(check) == {("magnet", "emg", "1k5")}
    assert competence.short_targets(check) == {("emg", "1k5")}  # the pooled tables still mark EMG
    write_all_outputs(df, tmp_path, "validation", CONFIG)
    for which in ("performance", "convergence"):
        data = pd.read_csv(tmp_path / "tables" / f"per_architecture_{which}.csv")
        short = {(a, t) for a, t, s in zip(data["arch"], data["target"], data["referent_short"]) if s}
        assert short == {("magnet", "emg")}
        markdown = (tmp_path / "tables" / f"per_architecture_{which}.md").read_text()
        header = next(line for line in markdown.splitlines() if line.startswith("|  |")).split("|")
        emg = [c.strip() for c in header].index("EMG 1k5")
        rows = [line.split("|") for line in markdown.splitlines() if line.startswith("| ") and "[" in line]
        marked = {cells[1].strip() for cells in rows if "‡" in cells[emg]}
        assert marked == {"MagNet [LOMAX]", "MagNet [SPEECH]"}, which
        assert not any("‡" in cell for cells in rows for i, cell in enumerate(cells) if i != emg)
        assert "‡ cell whose architecture's referents" in markdown
    assert "EMG 1k5 ‡" in (tmp_path / "tables" / "table7_performance_other.md").read_text()
