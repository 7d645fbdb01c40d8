"""Snakemake script: the report's summary page (HTML), its numbers (JSON) and its gain heatmap."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

import os

import pandas as pd

from tstransfer import datasets, logs
from tstransfer.analysis import figures, render, results, stats, summary
from tstransfer.fsutil import write_json, write_text
from tstransfer.selection import validation

# Datasets given by format: (one's own data) join the registry the tables are made from.
datasets.register_config(snakemake.config)

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    table = results.read_table(snakemake.input.results)
    comparison = None
    if snakemake.input.comparison:
        comparison = pd.read_csv(snakemake.input.comparison[0])
    selection = None
    if snakemake.input.selection:
        estimators = pd.read_csv(snakemake.input.selection[0])
        best = validation.best_estimator(estimators)
        selection = {"summary": estimators.to_dict("records"), "best": best}
    analysis = stats.analyse(table, snakemake.params.protocol)
    check = render.add_referent_check(analysis, table, {"referent_check": snakemake.params.referent_check})
    numbers = summary.build_summary(
        table,
        snakemake.params.protocol,
        label=snakemake.params.label,
        switches=dict(snakemake.params.switches),
        expected_jobs=dict(snakemake.params.expected_jobs),
        comparison=comparison,
        selection=selection,
        analysis=analysis,
        referent_check=check,
        referent_note=analysis.get("referents_note", ""),
    )
    stem = os.path.splitext(snakemake.output.heatmap)[0]
    figures.plot_study_heatmap(analysis["domains_performance"], analysis["study"], stem,
                               short=analysis.get("referents_short", frozenset()),
                               short_note=analysis.get("referents_note", ""))
    with open(snakemake.output.heatmap, "rb") as png:
        heatmap = png.read()
    write_json(snakemake.output.json, numbers)
    write_text(snakemake.output.html, summary.summary_page(numbers, heatmap))
    log.info("summary page written to %s", snakemake.output.html)
