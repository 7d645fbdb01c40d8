"""Snakemake script: the study's selection scores beside its measured gains (rule selection_validation)."""

import pandas as pd

from tstransfer import logs
from tstransfer.analysis import results
from tstransfer.fsutil import write_text
from tstransfer.selection import validation

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    per_target, summary = validation.study_tables(
        pd.read_csv(snakemake.input.scores),
        results.read_table(snakemake.input.results),
        protocol=snakemake.params.protocol,
    )
    write_text(snakemake.output.per_target, per_target.to_csv(index=False))
    write_text(snakemake.output.summary, summary.to_csv(index=False))
    log.info("validation over %d (estimator, target) rows", len(per_target))
