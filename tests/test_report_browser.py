"""The report's summary page in a real browser (headless Chromium): it renders, and it is not empty.

The whole report (``snakemake --report``) is checked the same way on the tiny workflow run
in tests/test_pipeline_e2e.py; this one needs no workflow run.
"""

from __future__ import annotations

import numpy as np
from browser import ink_fraction, require_chromium, screenshot
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
    # The text in the DOM is checked on the whole report (test_pipeline_e2e), which runs
    # Chromium on the real landing page; here the page's source carries it.
    text = page.read_text(encoding="utf-8")
    total = next(row for row in numbers["sign_tests"]["performance"] if row["group"] == "total")
    assert total["wins"] > 0 and f"{total['wins']} / {total['losses']}" in text
    assert "Significant cells per table" in text and "Size of this run" in text


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
    import re

    from PIL import Image

    from browser import dump_dom
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
    # A script after the page's content reports the image's decoded size in the DOM.
    probe = ("<script>window.addEventListener('load', () => { const i = document.getElementById('tstl-gain-heatmap');"
             " document.body.dataset.heatmap = i.naturalWidth + 'x' + i.naturalHeight; });</script>")
    page = tmp_path / "summary.html"
    page.write_text(summary.summary_page(numbers, png.read_bytes()).replace("</body>", probe + "</body>"),
                    encoding="utf-8")
    dom = dump_dom(chromium, page.as_uri(), tmp_path / "profile")
    width, height = Image.open(png).size
    assert re.search(r'data-heatmap="(\d+x\d+)"', dom)[1] == f"{width}x{height}"
    assert "Best estimator on this study: <b>follows_gain</b>" in dom and "<th>random</th>" in dom
    shot = screenshot(chromium, page.as_uri(), tmp_path / "summary.png", tmp_path / "profile2")
    assert ink_fraction(shot) > 0.02
