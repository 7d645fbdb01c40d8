"""Snakemake script: the tidy results table (a row per trained model) from the manifest."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import datasets, logs
from tstransfer.analysis import html, results
from tstransfer.fsutil import write_text

# Datasets given by format: (one's own data) join the registry the tables are made from.
datasets.register_config(snakemake.config)

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    table = results.build_results_table(snakemake.input[0])
    results.write_table(table, snakemake.output.parquet, snakemake.output.csv)
    write_text(snakemake.output.html, html.frame_page("Results table: one row per trained model", table))
    log.info("%d rows, %d diverged", len(table), int((table["status"] == "diverged").sum()))
