"""Snakemake script: download one raw file, resumable and checksum-verified."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from tstransfer import download, logs

log = logs.setup(snakemake.log[0])
spec = snakemake.params.spec
with logs.logged_errors(log):
    download.fetch(
        spec["url"],
        snakemake.output[0],
        sha256=spec.get("sha256"),
        size=spec.get("size"),
        log=log,
    )
