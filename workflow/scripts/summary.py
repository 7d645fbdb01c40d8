"""Snakemake script: the report's summary page (HTML) and its numbers (JSON)."""

import pandas as pd

from tstransfer import datasets, logs
from tstransfer.analysis import results, summary
from tstransfer.fsutil import write_json, write_text

# Datasets given by format: (one's own data) join the registry the tables are made from.
datasets.register_config(snakemake.config)

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    table = results.read_table(snakemake.input.results)
    comparison = None
    if snakemake.input.comparison:
        comparison = pd.read_csv(snakemake.input.comparison[0])
    numbers = summary.build_summary(
        table,
        snakemake.params.protocol,
        label=snakemake.params.label,
        switches=dict(snakemake.params.switches),
        expected_jobs=dict(snakemake.params.expected_jobs),
        comparison=comparison,
    )
    write_json(snakemake.output.json, numbers)
    write_text(snakemake.output.html, summary.summary_page(numbers))
    log.info("summary page written to %s", snakemake.output.html)
