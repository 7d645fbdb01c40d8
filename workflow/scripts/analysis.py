"""Snakemake script: the paper's tables and figures from a results table."""

from tstransfer import datasets, logs

# First: the analysis reads the dataset registry when imported, and datasets given by
# format: (one's own data) must be in it.
datasets.register_config(snakemake.config)

from tstransfer.analysis import render, results  # noqa: E402

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    table = results.read_table(snakemake.input[0])
    written = render.write_all_outputs(table, snakemake.params.out, snakemake.params.protocol)
    log.info("wrote %d files under %s", len(written), snakemake.params.out)
