"""Snakemake script: the paper's tables and figures from a results table."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import datasets, logs
from tstransfer.analysis import render, results

# Datasets given by format: (one's own data) join the registry the tables are made from.
datasets.register_config(snakemake.config)

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    table = results.read_table(snakemake.input[0])
    written = render.write_all_outputs(
        table,
        snakemake.params.out,
        snakemake.params.protocol,
        {"referent_check": snakemake.params.referent_check},
    )
    log.info("wrote %d files under %s", len(written), snakemake.params.out)
