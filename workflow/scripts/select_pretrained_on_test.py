"""Snakemake script: keep the best pretraining seed by its TEST metric (switch
select_seed_on_test; the authors chose by hand, with tools that read the test set).
The rule keeps select_pretrained.py otherwise: a script's mtime is one of Snakemake's
rerun triggers, and the default selection must not rerun (rules/common.smk
SELECT_SCRIPT)."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import jobs, logs

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    jobs.select_pretrained(
        snakemake.input.results,
        snakemake.output.selection,
        model_out=snakemake.output.model,
        criterion=snakemake.params.criterion,
    )
