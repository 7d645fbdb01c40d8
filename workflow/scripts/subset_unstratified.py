"""Snakemake script: one run's reduced training set and its mask, drawn without
stratifying (switch unstratified_subsets). The rule keeps subset.py otherwise: a
script's mtime is one of Snakemake's rerun triggers, and the default subsets must not
rerun (rules/common.smk SUBSET_SCRIPT)."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import logs, store

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    store.make_subset(
        snakemake.input[0],
        snakemake.output[0],
        variant=snakemake.wildcards.variant,
        size=snakemake.params.size,
        run=int(snakemake.wildcards.run),
        seed=snakemake.params.seed,
        stratified=snakemake.params.stratified,
        log=log,
    )
