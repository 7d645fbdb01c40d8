# The results tree as a data artifact: checksums, provenance, a Workflow Run RO-Crate, and
# verification (src/tstransfer/archive.py, src/tstransfer/crate.py).


rule archive:
    """results/MANIFEST.sha256 over the results tree, results/PROVENANCE.json, and the tree as a Workflow Run RO-Crate (results/ro-crate-metadata.json, with a copy of the workflow definition in results/workflow)."""
    input:
        all_targets(),
    output:
        manifest="results/MANIFEST.sha256",
        provenance="results/PROVENANCE.json",
        crate="results/ro-crate-metadata.json",
        workflow=directory("results/workflow"),
    log:
        "results/logs/archive.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=60,
        mem_mb=2000,
    params:
        exclude_large=config["archive"]["exclude_large"],
        config=config,
    script:
        "../workflow/scripts/archive.py"


# `snakemake verify`: name every archived file that changed or went missing since
# `archive`. The manifest is a param, not an input: verifying an archived tree must
# never rebuild it first (an input would make Snakemake rerun whatever it deems outdated).
rule verify:
    log:
        "results/logs/verify.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=60,
        mem_mb=2000,
    params:
        manifest="results/MANIFEST.sha256",
    script:
        "../workflow/scripts/verify.py"
