"""Snakemake script: export one zoo model (rule zoo_model) or write the zoo's index (rule zoo)."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

import os

from tstransfer import logs, zoo

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    if snakemake.rule == "zoo_model":
        card = zoo.export_model(
            snakemake.wildcards.arch,
            snakemake.wildcards.source,
            selection_json=snakemake.input.selection,
            model=snakemake.input.model,
            store=snakemake.input.store,
            out_dir=os.path.dirname(snakemake.output.card),
            raw_data=snakemake.params.raw_data,
        )
        log.info("%s: sha256 %s", card["name"], card["weights"]["sha256"])
    else:
        index = zoo.write_index(
            os.path.dirname(snakemake.output.index),
            snakemake.input.cards,
            snakemake.params.protocol,
        )
        log.info("%d models in %s", len(index["models"]), snakemake.output.index)
