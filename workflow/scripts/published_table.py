"""Snakemake script: the authors' published per-run results as our tidy table."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import logs
from tstransfer.analysis import published, results

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    table = published.load_published(snakemake.input[0])
    results.write_table(table, snakemake.output.parquet, snakemake.output.csv)
    log.info("%d published models imported from %s", len(table), snakemake.input[0])
