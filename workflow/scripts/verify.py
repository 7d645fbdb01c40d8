"""Snakemake script: name every archived file that changed or went missing."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from pathlib import Path

from tstransfer import archive, logs

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    manifest = Path(snakemake.params.manifest)
    report = archive.verify(manifest.parent, manifest)
    for kind in ("changed", "missing"):
        for path in report[kind]:
            log.error("%s: %s", kind, path)
    problems = len(report["changed"]) + len(report["missing"])
    if problems:
        raise SystemExit(f"{problems} archived file(s) changed or missing; see {snakemake.log[0]}")
    log.info("every archived file matches %s", manifest)
