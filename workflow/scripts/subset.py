"""Snakemake script: one run's reduced training set and its mask."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import logs, store

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    store.make_subset(
        snakemake.input[0],
        snakemake.output[0],
        variant=snakemake.wildcards.variant,
        size=snakemake.params.size,
        run=int(snakemake.wildcards.run),
        seed=snakemake.params.seed,
        log=log,
    )
