"""Snakemake script: synthetic raw files of one dataset in its real on-disk format."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import logs, pipeline

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    pipeline.synthesize(
        snakemake.wildcards.dataset,
        snakemake.output[0],
        snakemake.params.synthetic,
        snakemake.params.seed,
    )
