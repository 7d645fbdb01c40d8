"""Snakemake script: one dataset's raw files -> its preprocessed zarr store."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import datasets, logs, pipeline

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    datasets.register_config(snakemake.config)  # datasets given by format:
    pipeline.convert(
        snakemake.wildcards.dataset,
        snakemake.params.raw,
        snakemake.output[0],
        snakemake.params.extract,
        snakemake.params.seed,
    )
