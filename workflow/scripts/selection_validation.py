"""Snakemake script: the study's selection scores beside its measured gains (rule selection_validation)."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

import pandas as pd

from tstransfer import logs
from tstransfer.analysis import results
from tstransfer.fsutil import write_text
from tstransfer.selection import validation

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    # The zoo models' scores and the fine-tuning proxy's (rule selection_proxy), as configured.
    scores = pd.concat([pd.read_csv(path) for path in snakemake.input.scores], ignore_index=True)
    per_target, summary = validation.study_tables(
        scores,
        results.read_table(snakemake.input.results),
        protocol=snakemake.params.protocol,
    )
    write_text(snakemake.output.per_target, per_target.to_csv(index=False))
    write_text(snakemake.output.summary, summary.to_csv(index=False))
    log.info("validation over %d (estimator, target) rows", len(per_target))
