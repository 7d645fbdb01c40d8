"""Snakemake script: the list of every training job's result.json."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import logs, pipeline

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    count = pipeline.write_manifest(snakemake.input, snakemake.output[0])
    log.info("manifest of %d results", count)
