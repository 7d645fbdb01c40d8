"""Snakemake script: keep the best pretraining seed (by validation performance)."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import jobs, logs

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    jobs.select_pretrained(
        snakemake.input.results,
        snakemake.output.selection,
        model_out=snakemake.output.model,
    )
