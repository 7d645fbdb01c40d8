"""The report's summary page in a real browser (headless Chromium): it renders, and it is not empty.

The whole report (``snakemake --report``) is checked the same way on the tiny workflow run
in tests/test_pipeline_e2e.py; this one needs no workflow run.
"""

from __future__ import annotations

import numpy as np
from browser import ink_fraction, rendered, require_chromium, screenshot
from test_analysis import experiment

from tstransfer.analysis import summary


def test_summary_page_shows_its_numbers_in_chromium(tmp_path):
    chromium = require_chromium()
    df = experiment(np.random.default_rng(11), archs=("magnet",), runs=3)
    numbers = summary.build_summary(
        df, "validation", label="validation", switches={"test_curves": False},
        expected_jobs={"pretrain": 2, "referent": 12, "finetune": 24, "stream_max": 0},
    )
    page = tmp_path / "summary.html"
    page.write_text(summary.summary_page(numbers), encoding="utf-8")
    png = screenshot(chromium, page.as_uri(), tmp_path / "summary.png", tmp_path / "profile")
    assert ink_fraction(png) > 0.02, "the summary page rendered (nearly) blank"
    # What Chromium lays out, not the page's source: the sign-test table's rows, each
    # group's counts in its column, and the sections' headings as shown text.
    shown = rendered(chromium, page, tmp_path / "profile2")
    signs = _shown_table(shown, "Domain group")
    column = signs[0].index("Performance: TL wins / losses")
    counts = {row[0]: row[column] for row in signs[1:]}
    expected = {row["label"]: f"{row['wins']} / {row['losses']}" for row in numbers["sign_tests"]["performance"]}
    assert counts == expected and len(counts) == 6
    assert int(counts["Total"].split(" / ")[0]) > 0
    jobs = {row[0]: row[1:] for row in _shown_table(shown, "Training jobs")[1:]}
    assert jobs["finetune"][:2] == ["24", str(numbers["size"]["jobs"]["finetune"]["done"])]
    assert "Significant cells per table" in shown["text"] and "Size of this run" in shown["text"]


def _shown_table(shown: dict, first_header: str) -> list[list[str]]:
    """The one table Chromium shows whose first header cell is ``first_header``."""
    [table] = [t for t in shown["tables"] if t and t[0] and t[0][0] == first_header]
    return table


def test_an_empty_page_counts_as_blank(tmp_path):
    """The blank check itself: an empty page is caught."""
    chromium = require_chromium()
    page = tmp_path / "empty.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    png = screenshot(chromium, page.as_uri(), tmp_path / "empty.png", tmp_path / "profile", size="400,300")
    assert ink_fraction(png) == 0.0


def test_the_gain_heatmap_and_estimator_table_render_in_chromium(tmp_path):
    """The summary's first section in Chromium: the embedded heatmap decodes to an image
    of its PNG's size, and the estimator table with the random row is in the DOM."""
    from PIL import Image

    from tstransfer.analysis import figures, stats
    from tstransfer.selection import validation

    chromium = require_chromium()
    df = experiment(np.random.default_rng(11), archs=("magnet",), runs=3)
    analysis = stats.analyse(df, "validation")
    png = figures.plot_study_heatmap(analysis["domains_performance"], analysis["study"], tmp_path / "heatmap")[0]
    measured = validation.mean_gains(df, keys=validation.STUDY_KEYS)  # the harness on a scorer that follows the gain
    _, table = validation.study_tables(measured.assign(estimator="follows_gain", score=measured["gain"]), df)
    selection = {"summary": table.to_dict("records"), "best": validation.best_estimator(table)}
    numbers = summary.build_summary(df, "validation", analysis=analysis, selection=selection)
    page = tmp_path / "summary.html"
    page.write_text(summary.summary_page(numbers, png.read_bytes()), encoding="utf-8")
    shown = rendered(chromium, page, tmp_path / "profile")
    [heatmap] = [image for image in shown["images"] if image["id"] == "tstl-gain-heatmap"]
    assert heatmap["natural"] == list(Image.open(png).size)  # the embedded PNG decoded
    assert min(heatmap["shown"]) > 100, heatmap  # and laid out at a visible size
    assert "Best estimator on this study: follows_gain" in shown["text"]
    rows = {row[0] for table in shown["tables"] for row in table if row}
    assert {"random", "follows_gain"} <= rows, rows
    shot = screenshot(chromium, page.as_uri(), tmp_path / "summary.png", tmp_path / "profile2")
    assert ink_fraction(shot) > 0.02
