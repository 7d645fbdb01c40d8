"""Snakemake script: our results beside the published ones, cell by cell."""

from tstransfer import logs
from tstransfer.analysis import results, tables
from tstransfer.fsutil import atomic_path

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    ours = results.read_table(snakemake.input.ours)
    theirs = results.read_table(snakemake.input.published)
    comparison = tables.compare_with_published(ours, theirs, protocol=snakemake.params.protocol)
    with atomic_path(snakemake.output[0]) as tmp:
        comparison.to_csv(tmp, index=False)
