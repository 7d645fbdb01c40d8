"""Snakemake script: the study's selection scores (rule selection_scores) or their
validation against the measured gains (rule selection_validation)."""

import os

import pandas as pd

from tstransfer import logs
from tstransfer.fsutil import write_text

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    from tstransfer.zoo import study

    if snakemake.rule == "selection_scores":
        scores = study.score_study(
            os.path.dirname(snakemake.input.index),
            [tuple(target) for target in snakemake.params.targets],
            dict(snakemake.params.source_stores),
            snakemake.params.estimators,
            seed=snakemake.params.seed,
        )
        write_text(snakemake.output[0], scores.to_csv(index=False))
        log.info("%d scores written to %s", len(scores), snakemake.output[0])
    else:
        from tstransfer.analysis import results

        per_target, summary = study.validation_tables(
            pd.read_csv(snakemake.input.scores),
            results.read_table(snakemake.input.results),
            protocol=snakemake.params.protocol,
        )
        write_text(snakemake.output.per_target, per_target.to_csv(index=False))
        write_text(snakemake.output.summary, summary.to_csv(index=False))
        log.info("validation over %d (estimator, target) rows", len(per_target))
