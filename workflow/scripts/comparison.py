"""Snakemake script: our results beside the published ones, cell by cell, and referent by referent."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import datasets, logs
from tstransfer.analysis import render, results, tables

# Datasets given by format: (one's own data) join the registry the tables are made from.
datasets.register_config(snakemake.config)

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    ours = results.read_table(snakemake.input.ours)
    theirs = results.read_table(snakemake.input.published)
    label = snakemake.params.label
    comparison = tables.compare_with_published(ours, theirs, protocol=snakemake.params.protocol, label=label)
    render.write_frame(comparison, snakemake.output.tables, "This run beside the published results, cell by cell")
    referents = tables.compare_referents(ours, theirs, label=label)
    render.write_frame(referents, snakemake.output.referents, "This run's referent models beside the published ones")
