"""Snakemake script: the report's summary page (HTML) and its numbers (JSON)."""

import pandas as pd

from tstransfer import datasets, logs

# First: the analysis reads the dataset registry when imported, and datasets given by
# format: (one's own data) must be in it.
datasets.register_config(snakemake.config)

from tstransfer.analysis import results, summary  # noqa: E402
from tstransfer.fsutil import atomic_path, write_json  # noqa: E402

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
    with atomic_path(snakemake.output.html) as tmp:
        tmp.write_text(summary.summary_page(numbers), encoding="utf-8")
    log.info("summary page written to %s", snakemake.output.html)
