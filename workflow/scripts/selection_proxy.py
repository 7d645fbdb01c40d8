"""Snakemake script: the fine-tuning proxy's score of every (arch, source, target, variant),
read from the study's run-0 fine-tuning histories (rule selection_proxy)."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import logs
from tstransfer.analysis import results
from tstransfer.fsutil import write_text
from tstransfer.selection import proxy

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    epochs, omega = int(snakemake.params.epochs), float(snakemake.params.omega)
    if epochs >= int(snakemake.params.max_epochs):
        log.warning("selection.proxy.epochs (%d) is not below training.max_epochs (%d): "
                    "the proxy reads whole runs", epochs, snakemake.params.max_epochs)
    scores = proxy.study_proxy_scores(results.read_manifest(snakemake.input[0]), epochs=epochs, omega=omega)
    write_text(snakemake.output[0], scores.to_csv(index=False))
    log.info("%d %s scores (run 0, omega %s, %d epochs) written to %s",
             len(scores), proxy.NAME, omega, epochs, snakemake.output[0])
