"""Snakemake script: the tidy results table (a row per trained model) from the manifest."""

from tstransfer import logs
from tstransfer.analysis import results

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    table = results.build_results_table(snakemake.input[0])
    results.write_table(table, snakemake.output.parquet, snakemake.output.csv)
    log.info("%d rows, %d diverged", len(table), int((table["status"] == "diverged").sum()))
