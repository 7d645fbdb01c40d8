"""Snakemake script: our results beside the published ones, cell by cell, and referent by referent."""

from tstransfer import datasets, logs

# First: the analysis reads the dataset registry when imported, and datasets given by
# format: (one's own data) must be in it.
datasets.register_config(snakemake.config)

from tstransfer.analysis import results, tables  # noqa: E402
from tstransfer.fsutil import atomic_path  # noqa: E402

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    ours = results.read_table(snakemake.input.ours)
    theirs = results.read_table(snakemake.input.published)
    label = snakemake.params.label
    comparison = tables.compare_with_published(ours, theirs, protocol=snakemake.params.protocol, label=label)
    with atomic_path(snakemake.output.tables) as tmp:
        comparison.to_csv(tmp, index=False)
    referents = tables.compare_referents(ours, theirs, label=label)
    with atomic_path(snakemake.output.referents) as tmp:
        referents.to_csv(tmp, index=False)
