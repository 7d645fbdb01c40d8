"""Snakemake script: keep the best pretraining seed (by validation performance)."""

from tstransfer import jobs, logs

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    jobs.select_pretrained(
        snakemake.input.results,
        snakemake.output.selection,
        model_out=snakemake.output.model,
    )
