"""Snakemake script: the workflow definition's copy, provenance, the RO-Crate and the
checksum manifest of the results tree (src/tstransfer/archive.py, src/tstransfer/crate.py)."""

import srcpath  # noqa: F401  (the workflow's src/ first on sys.path: the envs do not install it)

from pathlib import Path

from tstransfer import archive, crate, logs

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    results = Path(snakemake.output.manifest).parent
    exclude = snakemake.params.exclude_large
    # The Snakefile's folder: this script is its workflow/scripts/archive.py.
    basedir = Path(snakemake.scriptdir).resolve().parents[1]
    copied = crate.copy_workflow(basedir, snakemake.output.workflow)
    files = list(archive.archived_files(results, exclude_large=exclude))  # the one walk of the tree
    provenance = archive.write_provenance(
        results, snakemake.output.provenance, snakemake.params.config, repo=basedir,
        exclude_large=exclude, files=files,
    )
    jobs = crate.write_crate(
        results, snakemake.params.config, files, workflow_files=copied, exclude_large=exclude,
        git_commit=provenance["git_commit"], archived_at=provenance["archived_at"],
    )
    log.info("RO-Crate %s: %s", snakemake.output.crate, jobs)
    count = archive.write_manifest(
        results, snakemake.output.manifest, exclude_large=exclude,
        files=[*files, Path(snakemake.output.crate).relative_to(results)],
    )
    log.info("archived %d files (large intermediates excluded: %s)", count, exclude)
