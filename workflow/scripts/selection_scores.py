"""Snakemake script: every estimator's score of every compatible zoo model per target
variant (rule selection_scores)."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

import os

from tstransfer import logs
from tstransfer.fsutil import write_text

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    from tstransfer.jobs import limit_threads
    from tstransfer.zoo import study

    limit_threads(snakemake.threads)  # as the training jobs: TensorFlow takes its share, not every core

    scores = study.score_study(
        os.path.dirname(snakemake.input.index),
        [tuple(target) for target in snakemake.params.targets],
        dict(snakemake.params.source_stores),
        snakemake.params.estimators,
        seed=snakemake.params.seed,
    )
    write_text(snakemake.output[0], scores.to_csv(index=False))
    log.info("%d scores written to %s", len(scores), snakemake.output[0])
