"""Snakemake script: checksum manifest and provenance of the results tree."""

from pathlib import Path

from tstransfer import archive, logs

log = logs.setup(snakemake.log[0])
with logs.logged_errors(log):
    results = Path(snakemake.output.manifest).parent
    exclude = snakemake.params.exclude_large
    count = archive.write_manifest(results, snakemake.output.manifest, exclude_large=exclude)
    archive.write_provenance(
        results, snakemake.output.provenance, snakemake.params.config, exclude_large=exclude
    )
    log.info("archived %d files (large intermediates excluded: %s)", count, exclude)
